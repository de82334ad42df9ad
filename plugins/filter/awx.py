"""`awx_sliced`: is this run one slice of an AWX sliced job? AWX runs a job template with job slicing > 1 as a
workflow job named after the template, one job per slice, and passes both names as extra variables
(awx_workflow_job_name, awx_job_template_name); an unsliced job has no workflow job, and a job started by a workflow
of another name is a workflow node, not a slice. The rollout's pre-flight and mail_host's publisher check read it.
"""

from __future__ import annotations

from typing import Any

DOCUMENTATION = r"""
name: awx_sliced
short_description: Whether this run is one slice of an AWX sliced job
options:
  _input:
    description: awx_workflow_job_name (empty or undefined when not in a workflow).
    type: str
    required: true
  job_template_name:
    description: awx_job_template_name (empty or undefined when not run by AWX).
    type: str
    required: true
"""

EXAMPLES = r"""
sliced: >-
  {{ awx_workflow_job_name | default('') | sendmail_fleet.mail.awx_sliced(awx_job_template_name | default('')) }}
"""

RETURN = r"""
_value:
  description: true for one slice of a sliced job.
  type: bool
"""


def awx_sliced(workflow_job_name: Any, job_template_name: Any) -> bool:
    workflow, template = str(workflow_job_name or ""), str(job_template_name or "")
    return bool(workflow) and workflow == template


class FilterModule:
    def filters(self) -> dict:
        return {"awx_sliced": awx_sliced}
