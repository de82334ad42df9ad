"""`maillab up` reuses a running container only if it holds what this checkout's .lab gave it: a lab left running
by another checkout (or before .lab was removed) is recreated, so its clients never trust one CA while the ACME CA
serves a certificate from another (CI saw "certificate signature failure" from exactly that)."""

from pathlib import Path
from types import SimpleNamespace

from sendmail_fleet import pki
from sendmail_fleet.lab import LABEL, _container_spec, _key_id, _matches
from sendmail_fleet.topology import ACME_NAME, Node, Topology, build

IMAGES = {"vps-bookworm": "vps12", "vps-trixie": "vps13", "dns": "dns", "acme": "acme", "client": "client"}
PUBKEY = "ssh-ed25519 AAAA this-checkout"


def container(node: Node, topo: Topology, key_id: str) -> SimpleNamespace:
    """A container as `up` would have made it, labelled with `key_id`."""
    spec = _container_spec(node, topo, IMAGES, key_id)
    return SimpleNamespace(
        labels=spec["labels"],
        attrs={"Config": {"Image": spec["image"]},
               "NetworkSettings": {"Networks": {topo.network: {"IPAMConfig": {"IPv4Address": node.address}}}},
               "HostConfig": {"CapAdd": spec.get("cap_add")}})


def lab_pki(directory: Path) -> Path:
    pki.ensure_host_cert(directory, "acme", [ACME_NAME])
    return directory


def test_the_acme_ca_is_reused_while_it_serves_the_certificate_this_checkout_issued(tmp_path):
    topo, here = build(2), lab_pki(tmp_path / "pki")
    acme = topo.acme
    assert _matches(container(acme, topo, _key_id(acme, PUBKEY, here)), acme, topo, IMAGES, PUBKEY, here)


def test_the_acme_ca_is_recreated_when_its_certificate_comes_from_another_lab_ca(tmp_path):
    topo, old, new = build(2), lab_pki(tmp_path / "old"), lab_pki(tmp_path / "new")
    acme = topo.acme
    stale = container(acme, topo, _key_id(acme, PUBKEY, old))
    assert not _matches(stale, acme, topo, IMAGES, PUBKEY, new)


def test_an_acme_ca_made_before_its_certificate_was_recorded_is_recreated(tmp_path):
    topo, here = build(2), lab_pki(tmp_path / "pki")
    acme = topo.acme
    unlabelled = container(acme, topo, "")
    assert not _matches(unlabelled, acme, topo, IMAGES, PUBKEY, here)


def test_a_mail_host_is_recreated_when_it_lets_in_another_ssh_key(tmp_path):
    topo, here = build(2), lab_pki(tmp_path / "pki")
    vps = topo.by_role("vps")[0]
    mine = container(vps, topo, _key_id(vps, PUBKEY, here))
    theirs = container(vps, topo, _key_id(vps, "ssh-ed25519 AAAA another-checkout", here))
    assert _matches(mine, vps, topo, IMAGES, PUBKEY, here)
    assert not _matches(theirs, vps, topo, IMAGES, PUBKEY, here)


def test_dns_and_clients_hold_nothing_from_the_checkout_and_are_reused(tmp_path):
    topo, here = build(2), lab_pki(tmp_path / "pki")
    for node in topo.by_role("dns") + topo.by_role("client"):
        assert container(node, topo, "").labels[f"{LABEL}.key"] == ""
        assert _matches(container(node, topo, ""), node, topo, IMAGES, PUBKEY, here), node.name


def test_a_lab_the_inotify_limit_fits_leaves_it_alone_and_a_bigger_one_raises_it(tmp_path):
    from sendmail_fleet.lab import INOTIFY_PER_HOST, _ensure_inotify
    from sendmail_fleet.progress import Progress

    limit = tmp_path / "max_user_instances"
    limit.write_text("128\n")
    _ensure_inotify(128 // INOTIFY_PER_HOST, Progress(quiet=True), limit)
    assert limit.read_text() == "128\n"
    _ensure_inotify(41, Progress(quiet=True), limit)  # the growth benchmark's 40 VPS and the mx
    assert int(limit.read_text()) >= 41 * INOTIFY_PER_HOST
