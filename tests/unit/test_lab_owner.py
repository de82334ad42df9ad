"""Each checkout's lab is its own (sendmail_fleet.lab.Owner): `down` removes only what its `up` made, `up` never
takes over the lab of another checkout that still exists, and a container of another checkout is never reused.
Against a stand-in Docker client; the lab test test_z_down proves `down` on the real engine."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest

from sendmail_fleet import lab
from sendmail_fleet.lab import LABEL, OWNER_LABEL, Owner, Paths, _check_owner, down
from sendmail_fleet.progress import Progress
from sendmail_fleet.topology import build


@pytest.fixture(autouse=True)
def own_inventory(tmp_path, monkeypatch):
    """`down` removes the lab's inventory: these tests' own, never the checkout's (a lab may be up beside them)."""
    inventory = tmp_path / "inventory" / "hosts.yml"
    monkeypatch.setenv("MAILLAB_INVENTORY", str(inventory))
    return inventory


class Obj(SimpleNamespace):
    def remove(self, **_kw) -> None:
        self.removed = True


def container(name: str, owner: str | None) -> Obj:
    labels = {LABEL: "vps", **({OWNER_LABEL: owner} if owner else {})}
    return Obj(name=name, attrs={"Config": {"Labels": labels}}, removed=False)


def network(name: str, owner: str | None) -> Obj:
    return Obj(name=name, attrs={"Labels": {LABEL: "network", **({OWNER_LABEL: owner} if owner else {})}},
               removed=False)


class Client:
    def __init__(self, containers: list[Obj], networks: list[Obj]) -> None:
        self.containers = SimpleNamespace(list=lambda **_kw: containers)
        self.networks = SimpleNamespace(list=lambda names=None, **_kw: [n for n in networks
                                                                       if names is None or n.name in names])
        self.volumes = SimpleNamespace(list=lambda **_kw: [])


def test_down_removes_this_checkouts_lab_and_an_unowned_old_one_and_leaves_another_checkouts(tmp_path):
    paths = Paths(tmp_path / "mine" / ".lab")
    me, other = Owner.of(paths).state, str(tmp_path / "other" / ".lab")
    mine, old = container("maillab-vps1", me), container("maillab-vps2", None)
    theirs, their_net = container("maillab2-vps1", other), network("maillab2-net", other)
    my_net = network("maillab-net", me)
    removed = down(paths, Progress(quiet=True), Client([mine, old, theirs], [my_net, their_net]))
    assert removed == 3 and mine.removed and old.removed and my_net.removed
    assert not theirs.removed and not their_net.removed


def test_up_refuses_to_take_over_the_lab_of_a_checkout_that_still_exists_and_says_how_to_run_beside_it(tmp_path):
    other = tmp_path / "other" / ".lab"
    other.mkdir(parents=True)
    topo = build(1)
    client = Client([container(topo.get("vps1").name, str(other))], [])
    with pytest.raises(lab.LabError, match="belongs to the lab of another checkout .*MAILLAB_PREFIX and MAILLAB_SUBNET"):
        _check_owner(client, topo, Owner.of(Paths(tmp_path / "mine")), Progress(quiet=True))


def test_up_takes_over_the_lab_of_a_checkout_that_is_gone(tmp_path):
    topo = build(1)
    client = Client([container(topo.get("vps1").name, str(tmp_path / "removed-clone" / ".lab"))],
                    [network(topo.network, str(tmp_path / "removed-clone" / ".lab"))])
    said: list[str] = []
    progress = Progress(quiet=True)
    progress.say = said.append  # type: ignore[method-assign]
    _check_owner(client, topo, Owner.of(Paths(tmp_path / "mine")), progress)
    assert len(said) == 2 and all("is gone; this lab takes it over" in s for s in said)


def test_a_container_of_another_checkout_is_never_reused(tmp_path):
    from sendmail_fleet.lab import _container_spec, _matches

    topo, vps = build(1), build(1).get("vps1")
    images = {"vps-trixie": "vps13", "vps-bookworm": "vps12"}
    mine, theirs = Owner.of(Paths(tmp_path / "a")), Owner.of(Paths(tmp_path / "b"))
    spec = _container_spec(vps, topo, images, "", theirs)
    made = SimpleNamespace(labels=spec["labels"], attrs={
        "Config": {"Image": spec["image"], "Labels": spec["labels"]},
        "NetworkSettings": {"Networks": {topo.network: {"IPAMConfig": {"IPv4Address": vps.address}}}},
        "HostConfig": {"CapAdd": spec.get("cap_add")}})
    assert not _matches(made, vps, topo, images, "", Path(tmp_path), mine)
