"""When a run is one slice of an AWX sliced job (plugins/filter/awx.py): the one rule the rollout's pre-flight and
mail_host's publisher check both read."""

import pytest

from sendmail_fleet.collection import filter_plugin

awx = filter_plugin("awx")


def test_a_slice_runs_in_a_workflow_job_named_after_its_job_template():
    assert awx.awx_sliced("Mail fleet: site", "Mail fleet: site") is True


@pytest.mark.parametrize(("workflow", "template"), [
    ("", "Mail fleet: site"),            # an unsliced job: no workflow job
    (None, None),                        # not run by AWX at all
    ("Nightly", "Mail fleet: site"),     # a node of another workflow, not a slice
    ("", ""),
])
def test_anything_else_is_not_a_slice(workflow, template):
    assert awx.awx_sliced(workflow, template) is False
