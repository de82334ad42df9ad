"""Cold and warm `maillab up` for 5 VPS + infrastructure, and the memory each VPS container uses.

Cold: no lab images at all (they are removed first). Warm: images present, lab taken down first.
Memory: the container's cgroup (memory.usage_in_bytes and RSS), bare after `up` and after provisioning.
Run: .venv/bin/python benchmarks/lab_up.py   (takes a few minutes; removes and rebuilds the lab)
"""

from __future__ import annotations

import sys
from pathlib import Path

import docker

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import arguments, timed, write  # noqa: E402

from sendmail_fleet.cli import provision  # noqa: E402  (maillab provision: site.yml on the lab)
from sendmail_fleet.lab import Paths, down, save_topology, up  # noqa: E402
from sendmail_fleet.progress import Progress  # noqa: E402
from sendmail_fleet.topology import build  # noqa: E402


def memory(client: docker.DockerClient, name: str) -> tuple[float, float]:
    cid = client.containers.get(name).id
    base = Path("/sys/fs/cgroup/memory/docker") / cid
    if not base.exists():  # cgroup v2
        base = Path(f"/sys/fs/cgroup/system.slice/docker-{cid}.scope")
        usage = int((base / "memory.current").read_text())
        stat = dict(line.split() for line in (base / "memory.stat").read_text().splitlines())
        return usage / 2**20, int(stat.get("anon", 0)) / 2**20
    usage = int((base / "memory.usage_in_bytes").read_text())
    stat = dict(line.split() for line in (base / "memory.stat").read_text().splitlines())
    return usage / 2**20, int(stat.get("total_rss", stat.get("rss", 0))) / 2**20


def main() -> None:
    arguments(__doc__)
    paths, progress, client = Paths.default(), Progress(), docker.from_env()
    topo = build(5)
    down(paths, progress, client)
    for img in client.images.list(filters={"label": "sendmail-fleet.lab"}):
        client.images.remove(img.id, force=True)
    with timed() as cold:
        up(topo, paths, progress)
    save_topology(paths, topo)
    down(paths, progress, client)
    with timed() as warm:
        up(topo, paths, progress)
    bare = {n.name: memory(client, n.name) for n in topo.by_role("vps")}
    provision(paths, [], progress)  # raises LabError when a host fails
    full = {n.name: memory(client, n.name) for n in topo.by_role("vps")}
    lines = ["| measure | value | target |", "|---|---|---|",
             f"| cold `up` (no images: mmdebstrap, import, 3 builds, 9 containers) | {cold[0]:.1f} s | - |",
             f"| warm `up` (images present, lab down) | {warm[0]:.1f} s | < 60 s |", "",
             "| VPS container | bare: usage / RSS (MiB) | provisioned: usage / RSS (MiB) | target |",
             "|---|---|---|---|"]
    for name in bare:
        lines.append(f"| {name} | {bare[name][0]:.0f} / {bare[name][1]:.0f} | {full[name][0]:.0f} / {full[name][1]:.0f}"
                     " | < 100 MB |")
    lines += ["", "usage includes the page cache the kernel may reclaim; RSS is the processes' own memory."]
    write("lab_up", "Lab bring-up time and VPS memory", lines)


if __name__ == "__main__":
    main()
