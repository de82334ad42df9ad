"""`maillab down` removes everything the lab made (runs last)."""

import subprocess
import sys
from pathlib import Path

import docker
from sendmail_fleet.images import LABEL


def test_down_leaves_no_container_network_or_volume_behind(topo, paths):
    r = subprocess.run([str(Path(sys.executable).parent / "maillab"), "down"], capture_output=True, text=True,
                       timeout=300)
    assert r.returncode == 0, r.stderr
    client = docker.from_env()
    assert client.containers.list(all=True, filters={"label": LABEL}) == []
    assert client.networks.list(filters={"label": LABEL}) == []
    assert client.volumes.list(filters={"label": LABEL}) == []
    assert not paths.inventory.exists()
