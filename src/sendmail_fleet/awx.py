"""Running the playbooks as AWX runs them: ansible-runner's streaming (`transmit | worker | process`, what AWX's
receptor mesh carries between its control node and an execution node) over a private data directory made from
this checkout, and AWX's job slicing (each slice job gets the inventory pared down to its own hosts).

AWX slices a job template with a slice count N above 1 into a workflow job of the template's own name, whose jobs
each run on every N-th host of the inventory, hosts sorted by name; the jobs share nothing but what they return as
artifacts (set_stats)."""

from __future__ import annotations

import copy
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import yaml

from . import repo_root

# What a job needs of the project: AWX checks out the whole repository; these are the parts the playbooks read.
PROJECT_PARTS = ("ansible.cfg", "galaxy.yml", "meta", "playbooks", "roles", "plugins")


def slice_hosts(hosts: Iterable[str], count: int, number: int) -> list[str]:
    """The hosts of slice `number` (1 to `count`) as AWX cuts them: sorted by name, every count-th from the
    number-th."""
    if not 1 <= number <= count:
        raise ValueError(f"slice {number} of {count}: the number runs from 1 to the count")
    return sorted(hosts)[number - 1::count]


def inventory_hosts(inventory: dict) -> set[str]:
    """Every host a YAML inventory names, in any group."""
    found: set[str] = set()

    def walk(group: dict) -> None:
        found.update((group.get("hosts") or {}).keys())
        for child in (group.get("children") or {}).values():
            walk(child or {})

    for group in inventory.values():
        walk(group or {})
    return found


def pared_inventory(inventory: dict, keep: Iterable[str]) -> dict:
    """The inventory with only the hosts in `keep`, its groups and variables as they were: what a slice job gets."""
    kept, pared = set(keep), copy.deepcopy(inventory)

    def walk(group: dict) -> None:
        if group.get("hosts"):
            group["hosts"] = {h: v for h, v in group["hosts"].items() if h in kept}
        for child in (group.get("children") or {}).values():
            walk(child or {})

    for group in pared.values():
        walk(group or {})
    return pared


def private_data_dir(root: Path, inventory: dict, host_vars: Path | None = None, extravars: dict | None = None,
                     envvars: dict | None = None) -> Path:
    """An ansible-runner private data directory: project/ (this checkout's playbooks, roles and plugins, with the
    collection link ansible.cfg reads), inventory/ (the given inventory and host_vars), env/."""
    project = root / "project"
    project.mkdir(parents=True)
    for part in PROJECT_PARTS:
        src = repo_root() / part
        (shutil.copytree if src.is_dir() else shutil.copy2)(src, project / part)
    link = project / ".collections" / "ansible_collections" / "sendmail_fleet" / "mail"
    link.parent.mkdir(parents=True)
    link.symlink_to("../../..")
    (root / "inventory").mkdir()
    (root / "inventory" / "hosts.yml").write_text(yaml.safe_dump(inventory, sort_keys=False))
    if host_vars is not None and host_vars.is_dir():
        shutil.copytree(host_vars, root / "inventory" / "host_vars")
    (root / "env").mkdir()
    (root / "env" / "extravars").write_text(json.dumps(extravars or {}))
    (root / "env" / "envvars").write_text(json.dumps(envvars or {}))
    return root


@dataclass
class RunnerJob:
    """What `ansible-runner process` wrote: the job's return code, status, output and events."""

    rc: int
    status: str
    stdout: str
    events: list[dict]

    @property
    def stats(self) -> dict:
        """The playbook's stats event data (per host: ok, changed, failures, ...; artifact_data: set_stats)."""
        found = [e for e in self.events if e.get("event") == "playbook_on_stats"]
        return found[-1].get("event_data", {}) if found else {}

    @property
    def artifacts(self) -> dict:
        """What the playbook returned with set_stats: AWX's job artifacts."""
        return self.stats.get("artifact_data") or {}

    def changed(self) -> dict[str, int]:
        return dict(self.stats.get("changed") or {})


def run(private: Path, playbook: str, work: Path, out: Path, timeout: float = 1200) -> RunnerJob:
    """`ansible-runner transmit PRIVATE -p PLAYBOOK | ansible-runner worker | ansible-runner process OUT`, as AWX
    streams a job to an execution node and its results back."""
    bindir = str(Path(sys.executable).parent)  # this environment's ansible-runner and ansible-playbook
    runner, env = os.path.join(bindir, "ansible-runner"), dict(os.environ, PATH=bindir + os.pathsep + os.environ["PATH"])
    env.pop("ANSIBLE_CONFIG", None)  # the job reads its project's ansible.cfg, as on an execution node
    work.mkdir(parents=True, exist_ok=True)
    out.mkdir(parents=True, exist_ok=True)
    transmit = subprocess.Popen([runner, "transmit", str(private), "-p", playbook], stdout=subprocess.PIPE, env=env)
    worker = subprocess.Popen([runner, "worker", "--private-data-dir", str(work)], stdin=transmit.stdout,
                              stdout=subprocess.PIPE, env=env)
    process = subprocess.Popen([runner, "process", str(out)], stdin=worker.stdout, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, env=env)
    assert transmit.stdout is not None and worker.stdout is not None
    transmit.stdout.close()  # so each process sees the end of its input when the one before it ends
    worker.stdout.close()
    try:
        printed, _ = process.communicate(timeout=timeout)
    finally:
        for p in (transmit, worker, process):
            if p.poll() is None:
                p.kill()
            p.wait()
    # process writes artifacts/ itself, or artifacts/IDENT/ when the job was given an ident
    found = [d for d in [out / "artifacts", *sorted((out / "artifacts").glob("*/"))] if (d / "job_events").is_dir()]
    if not found:
        raise RuntimeError(f"ansible-runner process wrote no events: {printed.decode(errors='replace')[-2000:]}")
    art = found[0]
    events = [json.loads(p.read_text()) for p in sorted((art / "job_events").glob("*.json"),
                                                         key=lambda p: int(p.name.split("-", 1)[0]))]
    rc_file, status_file, stdout_file = art / "rc", art / "status", art / "stdout"
    return RunnerJob(int(rc_file.read_text()) if rc_file.exists() else -1,
                     status_file.read_text().strip() if status_file.exists() else "?",
                     stdout_file.read_text(errors="replace") if stdout_file.exists() else printed.decode(errors="replace"),
                     events)
