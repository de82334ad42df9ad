"""What a provisioned lab VPS holds in memory (the sum of its processes' resident sizes), with the mail settings
service idle (socket-activated: no process between visits of mail programs) and running (right after a request),
in the same run on every mail host that publishes settings, and the largest processes of one host.

Needs a provisioned lab (`maillab up`, `maillab provision`). Run: .venv/bin/python benchmarks/memory.py
"""

from __future__ import annotations

import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import arguments, write  # noqa: E402

from sendmail_fleet.lab import Paths, container, saved_topology  # noqa: E402
from sendmail_fleet.topology import RELEASES, Node, Topology  # noqa: E402

UNIT = "sendmail-fleet-mail-settings.service"
SUM_RSS = "ps -eo rss= | awk '{s += $1} END {print s}'"  # KiB, every process of the container
TOP = "ps -eo rss=,comm= --sort=-rss | head -n 12"


def sh(node: Node, cmd: str) -> str:
    res = container(node.name).exec_run(["sh", "-c", cmd])
    if res.exit_code != 0:
        raise SystemExit(f"{node.short}: {cmd} exited {res.exit_code}: {res.output.decode(errors='replace')[-300:]}")
    return res.output.decode(errors="replace").strip()


def publishing(topo: Topology) -> list[Node]:
    """The mail hosts that run the settings service (the others' settings are published by the mx)."""
    return [n for n in topo.mail_hosts if topo.settings_host(n) is n]


def measure(node: Node, topo: Topology) -> tuple[int, int]:
    """(KiB with the service stopped, KiB right after a request started it)."""
    sh(node, f"systemctl stop {UNIT}")
    idle = int(sh(node, SUM_RSS))
    client = topo.by_role("client")[0]
    res = container(client.name).exec_run(["curl", "-sS", "-o", "/dev/null", "-w", "%{http_code}",
                                           f"https://autoconfig.{node.domain}/"])
    if res.output.decode() != "200":
        raise SystemExit(f"{node.short}: the help page answered {res.output.decode()!r}")
    running = int(sh(node, SUM_RSS))
    if sh(node, f"systemctl is-active {UNIT} || true") != "active":
        raise SystemExit(f"{node.short}: the request did not start {UNIT}")
    return idle, running


def main() -> None:
    arguments(__doc__)
    topo = saved_topology(Paths.default())
    nodes = publishing(topo)
    rows = [(n, *measure(n, topo)) for n in nodes]
    lines = ["| host | Debian | idle (service not running) | running (after a request) | the service |",
             "|---|---|---|---|---|"]
    for n, idle, running in rows:
        lines.append(f"| {n.short} | {RELEASES.get(n.release or '', '?')} | "
                     f"{idle / 1024:.1f} MiB | {running / 1024:.1f} MiB | {(running - idle) / 1024:.1f} MiB |")
    idle_mean = statistics.mean(r[1] for r in rows) / 1024
    running_mean = statistics.mean(r[2] for r in rows) / 1024
    lines += ["", f"Mean over {len(rows)} hosts: {idle_mean:.1f} MiB idle, {running_mean:.1f} MiB while the service "
              f"runs ({running_mean - idle_mean:.1f} MiB, {100 * (running_mean - idle_mean) / running_mean:.0f}% of "
              f"the host); idle / running = {idle_mean / running_mean:.2f}. The service ends itself 60 s "
              "(client_setup_idle_exit) after the last request.", "",
              f"The largest processes of {rows[0][0].short} while the service runs (RSS KiB, name):", "", "```",
              sh(rows[0][0], TOP), "```"]
    write("memory", "Memory of a provisioned lab VPS, the settings service idle and running", lines)


if __name__ == "__main__":
    main()
