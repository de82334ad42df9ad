"""The floor under provisioning on this machine: what the packages (download and dpkg), one sendmail restart per
host and Ansible's own cost per task take here, measured without the roles, on the lab's own containers.

Needs a provisioned lab (run it after provision.py, or after `maillab provision`): the package set is read from
a provisioned host of each Debian release. The lab is then made anew (containers only) to time the packages on
bare hosts, and left bare; `maillab provision` brings it back.
Run: .venv/bin/python benchmarks/floor.py
"""

from __future__ import annotations

import shlex
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import arguments, playbook, timed, write  # noqa: E402

from sendmail_fleet.lab import Paths, container, down, save_topology, saved_topology, up  # noqa: E402
from sendmail_fleet.progress import Progress  # noqa: E402
from sendmail_fleet.topology import Node  # noqa: E402

APT_ENV = "DEBIAN_FRONTEND=noninteractive"
# The daemon is up when it greets on port 25 (what the switch helper's verify waits for).
GREETS = ("python3 -c 'import socket,time\n"
          "t=time.monotonic()+60\n"
          "while time.monotonic()<t:\n"
          "  try:\n"
          "    s=socket.create_connection((\"127.0.0.1\",25),1); l=s.makefile(\"rb\").readline(); s.close()\n"
          "    if l.startswith(b\"220\"): raise SystemExit(0)\n"
          "  except OSError: pass\n"
          "  time.sleep(0.05)\n"
          "raise SystemExit(1)'")
PIDFILE = "/run/sendmail/mta/sendmail.pid"


def sh(node: Node, script: str) -> float:
    """Run a shell script in the node's container; its wall time; a failure ends the benchmark."""
    t0 = time.monotonic()
    code, out = container(node.name).exec_run(["sh", "-c", script])
    if code != 0:
        raise SystemExit(f"{node.short}: {script[:80]}... exited {code}: {out.decode(errors='replace')[-800:]}")
    return time.monotonic() - t0


def on_all(nodes: list[Node], work: Callable[[Node], float]) -> tuple[float, list[float]]:
    """work on every node at once (threads); the wall time of the lot and each node's own time."""
    times: dict[str, float] = {}

    def one(n: Node) -> None:
        times[n.short] = work(n)

    threads = [threading.Thread(target=one, args=(n,)) for n in nodes]
    t0 = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if len(times) != len(nodes):
        raise SystemExit("a node's work failed (see above)")
    return time.monotonic() - t0, [times[n.short] for n in nodes]


def packages(node: Node) -> list[str]:
    """Every package installed on the node (main takes a bare host's from a provisioned one's: what the roles
    installed)."""
    _, out = container(node.name).exec_run(["dpkg-query", "-W", "-f", "${Package}\\n"])
    return sorted(set(out.decode().split()))


PORT_FREE = ("python3 -c 'import socket,time\n"
             "t=time.monotonic()+15\n"
             "while time.monotonic()<t:\n"
             "  try: socket.create_connection((\"127.0.0.1\",25),1).close()\n"
             "  except OSError: raise SystemExit(0)\n"
             "  time.sleep(0.05)\n"
             "raise SystemExit(1)'")


def restart_init(node: Node) -> float:
    """Debian's way, as the switch helper takes it when it must: the init script's stop (its sleeps), an end to
    a daemon the script left on the ports, its start (its sleep and its make), the first 220."""
    return sh(node, f"systemctl stop sendmail && {{ pkill -TERM -x sendmail-mta || true; }} && {PORT_FREE} "
                    f"&& systemctl start sendmail && {GREETS}")


def restart_hup(node: Node) -> float:
    """sendmail's own way: SIGHUP makes the daemon exec itself again with the new .cf."""
    return sh(node, f"kill -HUP $(head -1 {PIDFILE}) && sleep 0.05 && {GREETS}")


def ansible_cost(paths: Paths, hosts: str, tasks: int) -> dict[str, float]:
    """Wall time of a playbook of `tasks` tasks that touch each host and change nothing (stat), of one of as many
    controller-only tasks (debug), and of an empty one (start-up), with the project's settings."""
    walls: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for kind, task in (("empty", None), ("host", {"ansible.builtin.stat": {"path": "/etc/hostname"}}),
                           ("controller", {"ansible.builtin.debug": {"msg": "x", "verbosity": 1}})):
            body = "" if task is None else "".join(
                f"    - name: t{i}\n      {next(iter(task))}: {next(iter(task.values()))}\n" for i in range(tasks))
            book = Path(tmp) / f"{kind}.yml"
            book.write_text(f"- hosts: {hosts}\n  gather_facts: false\n  tasks:\n"
                            + (body or "    - ansible.builtin.meta: noop\n"))
            with timed() as t:
                playbook(paths.inventory, str(book))
            walls[kind] = t[0]
    return walls


def main() -> None:
    arguments(__doc__)
    paths, progress = Paths.default(), Progress()
    topo = saved_topology(paths)
    hosts = topo.mail_hosts
    by_release = {n.release: n for n in reversed(hosts)}
    tasks = 40
    with progress.step(f"Ansible's cost per task: {tasks} stat tasks, {tasks} debug tasks on {len(hosts)} hosts"):
        walls = ansible_cost(paths, ",".join(n.short for n in hosts), tasks)
    per_host_task = (walls["host"] - walls["empty"]) / tasks
    per_controller_task = (walls["controller"] - walls["empty"]) / tasks
    with progress.step("one sendmail restart, Debian's init script vs SIGHUP, one host alone, then all at once"):
        alone = {f.__name__: f(hosts[0]) for f in (restart_init, restart_hup)}
        together = {f.__name__: on_all(hosts, f)[0] for f in (restart_init, restart_hup)}
    installed = {rel: packages(n) for rel, n in by_release.items()}
    with progress.step("a new lab (containers made anew: bare hosts)"):
        down(paths, Progress(quiet=True))
        up(topo, paths, progress)
        save_topology(paths, topo)
    wanted = {rel: sorted(set(installed[rel]) - set(packages(n))) for rel, n in by_release.items()}

    def download(n: Node) -> float:
        return sh(n, f"{APT_ENV} apt-get install -y -q --no-install-recommends --download-only "
                     f"{shlex.join(wanted[n.release])} >/dev/null")

    def dpkg(n: Node, option: str = "") -> float:
        return sh(n, f"{APT_ENV} apt-get install -y -q --no-install-recommends {option} "
                     f"{shlex.join(wanted[n.release])} >/dev/null")

    # Two bare hosts of one release alone, one after the other: dpkg syncing every file it writes (Debian's
    # default), and dpkg with --force-unsafe-io (what Docker's Debian images set), on the same packages.
    first, second = [n for n in hosts if n.release == hosts[0].release][:2]
    rest = [n for n in hosts if n not in (first, second)]
    with progress.step(f"packages on one bare host alone ({first.short}, {second.short}: download, then dpkg)"):
        dl_alone = download(first)
        dpkg_alone = dpkg(first, "-o Dpkg::Options::=--refuse-unsafe-io")
        download(second)
        dpkg_unsafe = dpkg(second, "-o Dpkg::Options::=--force-unsafe-io")
    with progress.step(f"packages on the other {len(rest)} bare hosts at once (download, then dpkg)"):
        dl_all, _ = on_all(rest, download)
        dpkg_all, _ = on_all(rest, dpkg)
    code, _ = container(first.name).exec_run(["sh", "-c", "grep -qs '^force-unsafe-io' /etc/dpkg/dpkg.cfg.d/*"])
    image_dpkg = "--force-unsafe-io (the lab image's setting)" if code == 0 else "Debian's default"
    counts = ", ".join(f"Debian {rel}: {len(p)}" for rel, p in sorted(wanted.items()))
    lines = [
        f"The lab's {len(hosts)} mail hosts; the project's Ansible settings (ansible.cfg, Mitogen where installed).",
        "",
        "| what | one host alone (s) | every host at once (s) |",
        "|---|---|---|",
        f"| packages the roles install ({counts}): download | {dl_alone:.1f} | {dl_all:.1f} ({len(rest)} hosts) |",
        f"| the same packages: dpkg (unpack, configure, postinst), every file synced | {dpkg_alone:.1f} | - |",
        f"| the same packages: dpkg --force-unsafe-io ({second.short}) | {dpkg_unsafe:.1f} | - |",
        f"| the same packages: dpkg as the image sets it: {image_dpkg} | - | {dpkg_all:.1f} ({len(rest)} hosts) |",
        f"| sendmail restart, Debian's init script (stop, start, first 220) | {alone['restart_init']:.1f} | "
        f"{together['restart_init']:.1f} |",
        f"| sendmail restart by SIGHUP (the daemon execs itself; first 220) | {alone['restart_hup']:.1f} | "
        f"{together['restart_hup']:.1f} |",
        "",
        "| Ansible's own cost | s |",
        "|---|---|",
        f"| ansible-playbook start-up to end, no task | {walls['empty']:.1f} |",
        f"| a task on every host that changes nothing (stat) | {per_host_task:.2f} |",
        f"| a task that touches no host (debug) | {per_controller_task:.2f} |",
        "",
        "The lab is left bare (containers made anew, packages installed by hand): `maillab provision` provisions "
        "it again.",
    ]
    write("floor", "The floor: packages, one sendmail restart and Ansible's cost per task on this machine", lines)


if __name__ == "__main__":
    main()
