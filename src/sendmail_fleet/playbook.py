"""The one place that runs ansible-playbook for the lab: `maillab provision`, `maillab demo`, the lab tests and
the benchmarks all come through here, with the repository's ansible.cfg and this virtualenv's Ansible."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from . import repo_root


def ansible_env() -> dict[str, str]:
    env = dict(os.environ, ANSIBLE_CONFIG=str(repo_root() / "ansible.cfg"))
    env["PATH"] = os.path.dirname(sys.executable) + os.pathsep + env.get("PATH", "")
    return env


def argv(inventory: Path, playbook: str | Path, *args: str) -> list[str]:
    """A playbook name is looked up in playbooks/; a path is used as it is."""
    path = Path(playbook) if os.sep in str(playbook) else repo_root() / "playbooks" / str(playbook)
    return ["ansible-playbook", "-i", str(inventory), str(path), *args]


def run(inventory: Path, playbook: str | Path, *args: str, capture: bool = False,
        env: dict[str, str] | None = None, timeout: float | None = None) -> subprocess.CompletedProcess:
    """Run a playbook; with capture, stdout holds everything Ansible printed (its errors included)."""
    out = dict(stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) if capture else {}
    return subprocess.run(argv(inventory, playbook, *args), env={**ansible_env(), **(env or {})}, cwd=repo_root(),
                          timeout=timeout, check=False, **out)
