"""The lost-host rollout scenario (asserted in test_e_unreachable): a host goes away in the middle of its rollout
batch; once it is back, the next rollout finishes the job.

It touches only HOSTS (four Debian 12 hosts) and writes its reports to its own files, so the `lost_host_rollout`
fixture runs it in a thread beside the fleet rollout of test_d_rollout (the other hosts): the two scenarios' minutes
overlap instead of adding up. It records what it saw; the tests assert on the record.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import docker
from sendmail_fleet import lab, repo_root
from sendmail_fleet import playbook as ansible_playbook
from sendmail_fleet.lab import Paths
from sendmail_fleet.topology import Topology

from .conftest import DEBIAN_12, lab_host

# The Debian 12 hosts in the four SMTP-Auth set-up variants, in the inventory's order: batches [1, 2, 1], and the
# host lost is the second of the middle batch.
HOSTS = tuple(lab_host(v, DEBIAN_12) for v in ("default", "default-auth-only", "default-procmail-lda",
                                                "default-procmail-lda-auth-only"))
LOST = HOSTS[2]


def _run(paths: Paths, *args: str, name: str = "site.yml") -> subprocess.CompletedProcess:
    return ansible_playbook.run(paths.inventory, name, *args, capture=True, timeout=1800)


def run(topo: Topology, paths: Paths, reports: Path) -> dict:
    rollout_file, fleet_file = reports / "rollout-auth-only.json", reports / "fleet-report.json"
    rollout = ("-e", f"target={','.join(HOSTS)}", "-e", "rollout_force=true", "-e", '{"rollout_batches": [1, 2, 1]}',
               "-e", f"rollout_report_file={rollout_file}")
    # Every host on a variant with POP-before-SMTP again (earlier tests may have switched them), on purpose.
    back = _run(paths, "-l", ",".join(HOSTS), "-e", "sendmail_variant=default",
                "-e", "sendmail_allow_pop_before_smtp_again=true")
    assert back.returncode == 0, back.stdout[-3000:]
    lost = topo.get(LOST)
    # Plain ansible-core: the run must notice a vanished host through ssh itself.
    argv = ansible_playbook.argv(paths.inventory, "rollout-auth-only.yml", *rollout)
    proc = subprocess.Popen(argv, env=ansible_playbook.ansible_env(accelerated=False), cwd=repo_root(), text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    assert proc.stdout is not None
    lines: list[str] = []
    killed = switching = batch2 = False
    try:
        for line in proc.stdout:
            lines.append(line)
            # LOST's batch has started and the switch is at the first role of mail_host's variant entry point
            # (tasks/variant_roles.yml): pull it.
            switching = switching or line.startswith("PLAY [Rollout | Switch")
            batch2 = batch2 or (switching and line.startswith(f"ok: [{LOST}]"))
            if batch2 and not killed and line.startswith("TASK [procmail :"):
                docker.from_env().containers.get(lost.name).kill()
                killed = True
        proc.wait(timeout=1800)
        first = json.loads(rollout_file.read_text())
        first_txt = rollout_file.with_suffix(".txt").read_text()
    finally:
        lab.start(lost, topo)  # back up, whatever happened above
    # This time the rollout writes the hosts' variants into the inventory, so inventory and fleet agree.
    again = _run(paths, *rollout, "-e", "rollout_write_inventory=true", name="rollout-auth-only.yml")
    second = json.loads(rollout_file.read_text())
    fleet = _run(paths, "-e", "target=" + ",".join(HOSTS), "-e", f"mail_host_report_file={fleet_file}",
                 name="fleet-report.yml")
    return {"rc": proc.returncode, "out": "".join(lines), "killed": killed, "report": first, "table": first_txt,
            "rows": {h["inventory_hostname"]: h for h in first["hosts"]},
            "again": again, "again_rows": {h["inventory_hostname"]: h for h in second["hosts"]},
            "fleet": fleet, "fleet_hosts": {h["host"]: h for h in json.loads(fleet_file.read_text())["hosts"]}}
