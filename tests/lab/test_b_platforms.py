"""site.yml refuses a platform it does not support before it changes anything, and says which ones it supports."""

from __future__ import annotations

import ipaddress
import subprocess

import pytest
import yaml

import docker
from sendmail_fleet.images import LABEL, tag
from sendmail_fleet.lab import Owner
from sendmail_fleet.topology import PREFIX

from .conftest import DEBIAN_13, lab_host, playbook, recap

# a provisioned Debian 13 host whose facts stand in for other platforms, and whose inventory entry the
# container without systemd borrows
HOST = lab_host("default-auth-only", DEBIAN_13)

SUPPORTED = "supports Debian 12 (bookworm) and 13 (trixie) with systemd. Nothing was changed on this host."


@pytest.fixture(scope="module")
def debian13_without_systemd(provisioned, paths, tmp_path_factory):
    """A real Debian 13 host whose PID 1 is sshd, not systemd, reachable like a lab VPS."""
    client = docker.from_env()
    address = str(list(ipaddress.ip_network(provisioned.subnet).hosts())[89])
    name = f"{PREFIX}-nosystemd"
    key = paths.key.with_suffix(".pub").read_text()
    boot = ("ssh-keygen -A >/dev/null && mkdir -p /run/sshd && umask 077 && mkdir -p /root/.ssh"
            f" && printf '%s\\n' '{key.strip()}' > /root/.ssh/authorized_keys && exec /usr/sbin/sshd -D -e")
    box = client.containers.create(tag("vps", "trixie"), ["sh", "-c", boot], name=name, detach=True,
                                   labels={LABEL: "test", **Owner.of(paths).labels}, hostname="nosystemd.example.test")
    client.networks.get(provisioned.network).connect(box, ipv4_address=address)
    box.start()
    vps = yaml.safe_load(paths.inventory.read_text())["all"]["children"]["fleet"]["hosts"][HOST]
    inventory = tmp_path_factory.mktemp("platform") / "nosystemd.yml"
    inventory.write_text(yaml.safe_dump({"fleet": {"hosts": {"nosystemd": {**vps, "ansible_host": address}}}}))
    try:
        yield inventory
    finally:
        box.remove(force=True)


def test_a_debian_13_host_without_systemd_is_refused_before_anything_changes(debian13_without_systemd, paths):
    run = playbook(paths, "-i", str(debian13_without_systemd), "-l", "nosystemd")
    assert run.returncode != 0
    assert "nosystemd runs Debian 13" in run.stdout and SUPPORTED in " ".join(run.stdout.split()), run.stdout[-3000:]
    assert recap(run.stdout)["nosystemd"]["changed"] == 0
    installed = subprocess.run(["docker", "exec", f"{PREFIX}-nosystemd", "dpkg-query", "-W", "sendmail"],
                               capture_output=True, text=True)
    assert installed.returncode != 0, "sendmail was installed on a host the play refused"


@pytest.mark.parametrize(("facts", "named"), [
    ({"ansible_distribution_major_version": "11", "ansible_distribution_version": "11.11"}, "Debian 11.11"),
    ({"ansible_distribution": "Ubuntu", "ansible_distribution_version": "24.04",
      "ansible_distribution_major_version": "24"}, "Ubuntu 24.04"),
], ids=["debian-11", "ubuntu-24.04"])
def test_another_release_or_distribution_is_refused_before_anything_changes(provisioned, paths, facts, named):
    # A real VPS with its release facts replaced: the check reads the facts, so this is what Debian 11 or
    # Ubuntu would show; nothing runs after it.
    extra = " ".join(f"{k}={v}" for k, v in facts.items())
    run = playbook(paths, "-l", HOST, "-e", extra)
    assert run.returncode != 0
    assert f"{HOST} runs {named} with systemd" in run.stdout and SUPPORTED in " ".join(run.stdout.split())
    counts = recap(run.stdout)[HOST]
    assert (counts["changed"], counts["failed"]) == (0, 1), counts
