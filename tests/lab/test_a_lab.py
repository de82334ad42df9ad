"""The lab itself: systemd VPSes reachable over SSH, the lab's DNS, status output."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

import docker
from sendmail_fleet.host import HELPERS
from sendmail_fleet.images import LABEL
from sendmail_fleet.lab import Owner, _put_file
from sendmail_fleet.playbook import MITOGEN_STRATEGY, ansible_env

from .conftest import TOPOLOGY


@pytest.mark.parametrize("node", TOPOLOGY.mail_hosts, ids=lambda n: n.short)
def test_systemd_is_running_in_every_vps(topo, node):
    c = docker.from_env().containers.get(node.name)
    state = c.exec_run(["systemctl", "is-system-running", "--wait"]).output.decode().strip()
    assert state == "running", c.exec_run(["systemctl", "--failed", "--no-legend"]).output.decode()


def test_ssh_with_the_lab_key_reaches_every_vps(topo, paths):
    for node in topo.mail_hosts:
        r = subprocess.run(["ssh", "-i", str(paths.key), "-o", "StrictHostKeyChecking=no", "-o",
                            "UserKnownHostsFile=/dev/null", "-o", "BatchMode=yes", "-o", "LogLevel=ERROR",
                            f"root@{node.address}", "hostname", "-f"], capture_output=True, text=True, timeout=30)
        assert r.returncode == 0 and r.stdout.strip() == node.fqdn, r.stderr


def test_ansible_ping_is_green_for_the_whole_inventory(topo, paths):
    r = subprocess.run(["ansible", "all", "-i", str(paths.inventory), "-m", "ping"], env=ansible_env(),
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
    assert r.stdout.count("SUCCESS") == len(topo.mail_hosts)


@pytest.mark.parametrize("node", TOPOLOGY.mail_hosts, ids=lambda n: n.short)
def test_mx_record_of_each_domain_resolves_from_another_container(topo, node):
    client = docker.from_env().containers.get(topo.get("client2").name)
    mx = client.exec_run(["dig", "+short", "MX", node.domain]).output.decode().split()
    assert mx == ["10", node.fqdn + "."]
    a = client.exec_run(["dig", "+short", node.fqdn]).output.decode().strip()
    assert a == node.address


def test_names_outside_the_lab_do_not_resolve(topo):
    client = docker.from_env().containers.get(topo.get("client1").name)
    out = client.exec_run(["dig", "+short", "+time=2", "+tries=1", "example.com"]).output.decode().strip()
    assert out == "" or "timed out" in out


def test_status_json_lists_containers_and_accounts(topo):
    r = subprocess.run([str(Path(sys.executable).parent / "maillab"), "status", "--json"], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    data = json.loads(r.stdout)
    names = {c["name"]: c for c in data["containers"]}
    assert set(names) == {n.name for n in topo.nodes}
    assert all(c["state"] == "running" for c in data["containers"])
    assert {c["role"] for c in data["containers"]} == {"dns", "acme", "vps", "mx", "client"}
    for node in topo.by_role("vps"):  # each as the topology made it: the variant it runs, its domain, its mailboxes
        shown = names[node.name]
        assert (shown["variant"], shown["domain"], shown["release"]) == (node.variant, node.domain, node.release)
        alice = node.accounts[0]
        assert {"host": node.name, "user": alice.user, "address": f"alice@{node.domain}",
                "password": alice.password} in data["accounts"]


def test_a_busy_subnet_is_refused_in_one_line_and_the_running_lab_is_untouched(topo, paths):
    client = docker.from_env()
    busy = client.networks.create("maillab-busy-subnet-test", ipam=docker.types.IPAMConfig(
        pool_configs=[docker.types.IPAMPool(subnet="10.213.7.0/24")]))
    try:
        r = subprocess.run([str(Path(sys.executable).parent / "maillab"), "up", "--subnet", "10.213.7.0/25"],
                           capture_output=True, text=True, timeout=300)
    finally:
        busy.remove()
    assert r.returncode == 1
    errors = [line for line in r.stderr.splitlines() if "error" in line]
    assert len(errors) == 1 and "10.213.7.0/25" in errors[0] and "--subnet" in errors[0], r.stderr
    states = {c.name: c.status for c in client.containers.list(all=True, filters={"label": LABEL}) if
              Owner.of(paths).owns(c)}
    assert states and all(s == "running" for s in states.values())
    assert client.networks.get(topo.network).attrs["IPAM"]["Config"][0]["Subnet"] == topo.subnet


# What each refuses with: ssh itself, or Mitogen (which reads host_key_checking and runs ssh its own way).
REFUSAL = {False: "Host key verification failed", True: "mismatching host key"}


@pytest.mark.parametrize("accelerated", [False, True], ids=["plain ansible-core", "mitogen"])
def test_an_inventory_with_a_wrong_host_key_is_refused(topo, paths, tmp_path, accelerated):
    """Host keys are checked for every inventory but the lab's own: a key that does not match stops the run."""
    vps1 = topo.by_role("vps")[0]  # any VPS: the inventory below names it vps1
    wrong = subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(tmp_path / "other")],
                           capture_output=True, text=True)
    assert wrong.returncode == 0, wrong.stderr
    key = (tmp_path / "other.pub").read_text().split()
    (tmp_path / "known_hosts").write_text(f"{vps1.address} {key[0]} {key[1]}\n")
    (tmp_path / "hosts.yml").write_text(json.dumps({"all": {"hosts": {"vps1": {
        "ansible_host": vps1.address, "ansible_user": "root", "ansible_ssh_private_key_file": str(paths.key),
        "ansible_ssh_common_args": f"-o UserKnownHostsFile={tmp_path / 'known_hosts'}"}}}}))
    # A connection of its own: reusing a control master an earlier test opened would skip the key check.
    env = {**ansible_env(accelerated=accelerated), "ANSIBLE_SSH_ARGS": "-o ControlMaster=no -o ControlPath=none"}
    if accelerated and env.get("ANSIBLE_STRATEGY") != MITOGEN_STRATEGY:
        pytest.fail("Mitogen is not installed: scripts/bootstrap.sh installs the fast extra")
    r = subprocess.run(["ansible", "all", "-i", str(tmp_path / "hosts.yml"), "-m", "ping"], env=env,
                       capture_output=True, text=True, timeout=120)
    assert r.returncode != 0
    assert "UNREACHABLE" in r.stdout and REFUSAL[accelerated] in r.stdout + r.stderr, r.stdout + r.stderr


@pytest.mark.parametrize("release", TOPOLOGY.releases)
def test_every_host_helper_loads_and_answers_on_each_releases_python_with_warnings_as_errors(topo, release):
    """The helpers run on the VPS's own python3 (3.11 on Debian 12, 3.13 on Debian 13): each one compiles and
    loads there with every warning an error (invalid escapes, deprecations), and its command line answers."""
    node = next(n for n in topo.mail_hosts if n.release == release)
    c = docker.from_env().containers.get(node.name)
    for name, path in sorted(HELPERS.items()):
        code = ("import importlib.util, sys; s = importlib.util.spec_from_file_location('h', sys.argv[1]); "
                "m = importlib.util.module_from_spec(s); sys.modules['h'] = m; s.loader.exec_module(m)")
        _put_file(c, f"/var/tmp/{path.name}", path.read_bytes())  # /tmp is a tmpfs systemd mounts over the image
        res = c.exec_run(["python3", "-W", "error", "-c", code, f"/var/tmp/{path.name}"])
        assert res.exit_code == 0, f"{name} on {node.short} ({release}): {res.output.decode()[-2000:]}"
        usage = c.exec_run(["python3", "-W", "error", f"/var/tmp/{path.name}", "--help"])
        assert usage.exit_code in (0, 2) and b"Traceback" not in usage.output, (name, usage.output.decode()[-2000:])

