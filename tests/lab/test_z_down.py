"""`maillab down` removes everything this checkout's lab made, and nothing of another checkout's lab (runs last)."""

import subprocess
import sys
from pathlib import Path

import docker
from sendmail_fleet.images import LABEL, tag
from sendmail_fleet.lab import OWNER_LABEL, Owner


def test_down_leaves_nothing_of_this_lab_behind_and_another_checkouts_lab_running(topo, paths, tmp_path):
    client = docker.from_env()
    # Another checkout's lab on the same engine, as `up` would have made it there (its own names and network): one
    # container in one network is enough to show whose `down` removes what. This test made it, and removes it.
    other = str(tmp_path / "other-checkout" / ".lab")
    labels = {LABEL: "client", OWNER_LABEL: other}
    net = client.networks.create("otherlab-net", labels={LABEL: "network", OWNER_LABEL: other})
    box = client.containers.create(tag("client"), ["sleep", "300"], name="otherlab-client1",
                                   labels=labels, detach=True)
    try:
        net.connect(box)
        box.start()
        r = subprocess.run([str(Path(sys.executable).parent / "maillab"), "down"], capture_output=True, text=True,
                           timeout=300)
        assert r.returncode == 0, r.stderr
        mine = Owner.of(paths)
        assert [c.name for c in client.containers.list(all=True, filters={"label": LABEL}) if mine.owns(c)] == []
        assert [n.name for n in client.networks.list(filters={"label": LABEL}) if mine.owns(n)] == []
        assert client.volumes.list(filters={"label": f"{OWNER_LABEL}={mine.state}"}) == []
        assert not paths.inventory.exists()
        box.reload()
        assert box.status == "running", "maillab down removed another checkout's container"
        assert client.networks.get(net.id).name == "otherlab-net"
    finally:
        box.remove(force=True)
        net.remove()
