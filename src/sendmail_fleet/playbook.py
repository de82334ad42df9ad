"""The one place that runs ansible-playbook for the lab: `maillab provision`, `maillab demo`, the lab tests and
the benchmarks all come through here, with the repository's ansible.cfg and this virtualenv's Ansible."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

from . import repo_root

# Mitogen (the optional `fast` extra) runs each host's modules in one long-lived Python instead of a new one per
# task: the lab's second site.yml run took half the time with it (benchmarks/results/provision_after.md). The roles
# need only plain ansible-core; SENDMAIL_FLEET_ACCELERATOR=none runs without Mitogen even where it is installed.
ACCELERATOR_ENV = "SENDMAIL_FLEET_ACCELERATOR"
ACCELERATORS = ("mitogen", "none")


def mitogen_strategies() -> Path | None:
    """Mitogen's strategy plugins, or None when it is not installed or turned off."""
    wanted = os.environ.get(ACCELERATOR_ENV, "mitogen")
    if wanted not in ACCELERATORS:
        raise SystemExit(f"{ACCELERATOR_ENV}={wanted!r}: must be one of {', '.join(ACCELERATORS)}")
    spec = importlib.util.find_spec("ansible_mitogen") if wanted == "mitogen" else None
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations))) / "plugins" / "strategy"


def ansible_env(accelerated: bool = True) -> dict[str, str]:
    """The environment for ansible-playbook: this checkout's ansible.cfg, this virtualenv's Ansible and, unless
    accelerated is False (plain ansible-core, for tests of SSH-level behaviour), Mitogen where it is installed."""
    env = dict(os.environ, ANSIBLE_CONFIG=str(repo_root() / "ansible.cfg"))
    env["PATH"] = os.path.dirname(sys.executable) + os.pathsep + env.get("PATH", "")
    if not accelerated:
        if env.get("ANSIBLE_STRATEGY", "").startswith("mitogen"):
            env["ANSIBLE_STRATEGY"] = "linear"
        return env
    strategies = mitogen_strategies()
    if strategies is not None and "ANSIBLE_STRATEGY" not in os.environ:
        env["ANSIBLE_STRATEGY_PLUGINS"] = str(strategies)
        env["ANSIBLE_STRATEGY"] = "mitogen_linear"
    return env


def accelerator() -> str:
    """What the lab's playbooks run with: "mitogen" or "none" (plain ansible-core)."""
    return "mitogen" if ansible_env().get("ANSIBLE_STRATEGY", "").startswith("mitogen") else "none"


def argv(inventory: Path, playbook: str | Path, *args: str) -> list[str]:
    """A playbook name is looked up in playbooks/; a path is used as it is."""
    path = Path(playbook) if os.sep in str(playbook) else repo_root() / "playbooks" / str(playbook)
    return ["ansible-playbook", "-i", str(inventory), str(path), *args]


def run(inventory: Path, playbook: str | Path, *args: str, capture: bool = False,
        env: dict[str, str] | None = None, timeout: float | None = None,
        accelerated: bool = True) -> subprocess.CompletedProcess:
    """Run a playbook; with capture, stdout holds everything Ansible printed (its errors included); with
    accelerated False on plain ansible-core."""
    out = dict(stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) if capture else {}
    return subprocess.run(argv(inventory, playbook, *args), env={**ansible_env(accelerated), **(env or {})}, cwd=repo_root(),
                          timeout=timeout, check=False, **out)
