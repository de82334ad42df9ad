"""Fixtures the unit tests share."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from types import ModuleType

import pytest


@pytest.fixture
def strategy(request: pytest.FixtureRequest) -> Iterator[ModuleType]:
    """The collection's strategy module (mitogen_linear_unpinned), loaded as a copy of its own for one test; Mitogen's
    CPU pinning policy and Ansible's template environment are put back afterwards. Needs Mitogen."""
    import ansible_mitogen.affinity
    from ansible._internal._templating._jinja_bits import AnsibleEnvironment

    from sendmail_fleet.collection import load_module, plugin_dir, root

    collections = str(root() / ".collections")  # its ansible_collections imports resolve as under Ansible
    if collections not in sys.path:
        sys.path.append(collections)
    pinning, name = ansible_mitogen.affinity.policy, f"sendmail_fleet_strategy_{request.node.name}"
    try:
        yield load_module(plugin_dir("strategy") / "mitogen_linear_unpinned.py", name)
    finally:
        if "compile" in AnsibleEnvironment.__dict__:  # share_compiled_templates sets it on the class
            del AnsibleEnvironment.compile
        ansible_mitogen.affinity.policy = pinning
        sys.modules.pop(name, None)
