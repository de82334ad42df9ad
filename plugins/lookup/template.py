"""Lookup `sendmail_fleet.mail.template`: ansible.builtin.template's lookup, rendering with a shallow copy of the
task's variables, as the template action does, instead of a deep copy of every one of them for each file.

The roles render their files with this lookup into one run of the collection's files module. Ansible's lookup copies
all of the host's variables (the role defaults, the inventory, the facts) with copy.deepcopy before each file, to add
the template_* variables; the template action adds them to a shallow copy (`task_vars.copy()`). A profile of the
controller during a rollout found a third of the workers' time in that copy; a settled site.yml took 17% less
controller CPU without it on two lab hosts, 14% on five (benchmarks/results/second_run_template_lookup.md). The
rendering, the options, the search path and the variables a template sees are ansible.builtin.template's own: this
plugin runs its code and only hands it variables whose deep copy is one level deep. The template_* variables still go
into a copy, never into the task's variables."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ansible.plugins.lookup.template import LookupModule as BuiltinTemplateLookup

DOCUMENTATION = r"""
name: template
short_description: ansible.builtin.template's lookup without the deep copy of the task's variables for each file
description:
  - Returns, for each template named, its contents rendered with Jinja2, exactly as ansible.builtin.template's lookup
    does (same options, same search path, same variables), but on a shallow copy of the variables, as the template
    action renders.
options:
  _terms:
    description: The templates to render (found as ansible.builtin.template finds them, in the role's templates/).
  template_vars:
    description: A dictionary, the keys become additional variables available for templating.
    type: dict
    default: {}
  variable_start_string:
    description: The string marking the beginning of a print statement.
    type: str
    default: '{{'
  variable_end_string:
    description: The string marking the end of a print statement.
    type: str
    default: '}}'
  comment_start_string:
    description: The string marking the beginning of a comment statement.
    type: str
    default: '{#'
  comment_end_string:
    description: The string marking the end of a comment statement.
    type: str
    default: '#}'
  trim_blocks:
    description: Whether the first newline after a block is removed (ansible-core 2.19 and later).
    type: bool
    default: true
  convert_data:
    description: Read by ansible-core before 2.19 only, as its own lookup reads it.
    type: bool
    default: true
  jinja2_native:
    description: Read by ansible-core before 2.19 only, as its own lookup reads it.
    type: bool
    default: false
"""

EXAMPLES = r"""
content: "{{ lookup('sendmail_fleet.mail.template', 'jail.conf.j2') }}"
"""

RETURN = r"""
_raw:
  description: Each template's contents, rendered.
  type: list
  elements: raw
"""


class ShallowOnDeepcopy(dict[str, Any]):
    """The task's variables for ansible.builtin.template's code: its copy.deepcopy of them returns a plain dict of the
    same values, a copy one level deep (what the template action makes), so adding the template_* variables to it
    leaves the task's variables as they were."""

    def __deepcopy__(self, memo: dict[int, Any]) -> dict[str, Any]:
        return dict(self)


class LookupModule(BuiltinTemplateLookup):
    def run(self, terms: list[Any], variables: Mapping[str, Any] | None = None, **kwargs: Any) -> list[Any]:
        return super().run(terms, ShallowOnDeepcopy(variables or {}), **kwargs)
