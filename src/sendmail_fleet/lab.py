"""Bring the lab up, repair it, take it down, and say what is in it."""

from __future__ import annotations

import hashlib
import io
import ipaddress
import json
import os
import shlex
import socket
import subprocess
import tarfile
import time
from collections.abc import Callable
from concurrent.futures import Future, ProcessPoolExecutor, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import yaml
from cryptography.hazmat.primitives.serialization import Encoding
from docker.errors import APIError, NotFound
from docker.models.containers import Container
from docker.models.networks import Network

import docker

from . import pki, repo_root
from .engine import EngineError, connect
from .engine import ensure as ensure_engine
from .images import LABEL, all_at_once, ensure_all
from .mirror import MirrorNotFound, detect
from .progress import Progress
from .topology import (
    ACME_NAME,
    ACME_ROOT_URL,
    DEFAULT_SUBNET,
    DEFAULT_VPS,
    LAB_PASSWORD_ROUNDS,
    PREFIX,
    TRUST_BUNDLE,
    Account,
    Node,
    Topology,
    build,
    dnsmasq_conf,
    inventory,
    shadow_salt,
)


class LabError(RuntimeError):
    pass


SYSTEMD_FLAGS = dict(
    cap_add=["SYS_ADMIN", "NET_ADMIN"],  # NET_ADMIN: fail2ban bans with nftables in the container's own netns
    security_opt=["seccomp=unconfined", "apparmor=unconfined"],
    cgroupns="host",
    volumes={"/sys/fs/cgroup": {"bind": "/sys/fs/cgroup", "mode": "rw"}},
    tmpfs={"/run": "", "/run/lock": ""},
)


@dataclass
class Paths:
    state: Path

    @classmethod
    def default(cls) -> Paths:
        return cls(Path(os.environ.get("MAILLAB_STATE_DIR", repo_root() / ".lab")))

    @property
    def key(self) -> Path:
        return self.state / "ssh" / "id_ed25519"

    @property
    def pki(self) -> Path:
        return self.state / "pki"

    @property
    def config(self) -> Path:
        return self.state / "lab.json"

    @property
    def inventory(self) -> Path:
        return Path(os.environ.get("MAILLAB_INVENTORY", repo_root() / "inventory" / "lab" / "hosts.yml"))


OWNER_LABEL = f"{LABEL}.owner"


def _labels(obj: Container | Network) -> dict[str, str]:
    """A container's labels (attrs Config.Labels) or a network's (attrs Labels)."""
    attrs = obj.attrs or {}
    return (attrs["Config"].get("Labels") if "Config" in attrs else attrs.get("Labels")) or {}


@dataclass(frozen=True)
class Owner:
    """The checkout a lab belongs to, named by its state folder (.lab, or MAILLAB_STATE_DIR): every container and
    network `up` makes carries it, and `down` removes only what carries its own. Two checkouts' labs run on one
    engine side by side when the second has its own MAILLAB_PREFIX and MAILLAB_SUBNET."""

    state: str

    @classmethod
    def of(cls, paths: Paths) -> Owner:
        return cls(str(paths.state.resolve()))

    @property
    def labels(self) -> dict[str, str]:
        return {OWNER_LABEL: self.state}

    def owns(self, obj: Container | Network, prefix: str = PREFIX) -> bool:
        """Made by this checkout's lab; or by a lab from before owners were recorded, under this lab's prefix."""
        owner = _labels(obj).get(OWNER_LABEL)
        return owner == self.state if owner else obj.name.startswith(f"{prefix}-")

    def other(self, obj: Container | Network) -> str | None:
        """The state folder of another checkout whose lab made this object (None: this one's, or not recorded)."""
        owner = _labels(obj).get(OWNER_LABEL)
        return owner if owner and owner != self.state else None


def saved_topology(paths: Paths) -> Topology:
    cfg = json.loads(paths.config.read_text()) if paths.config.exists() else {}
    variants = {int(k): v for k, v in cfg.get("variants", {}).items()}
    releases = {int(k): v for k, v in cfg.get("releases", {}).items()}
    return build(cfg.get("vps", DEFAULT_VPS), cfg.get("subnet", DEFAULT_SUBNET), variants, releases)


def save_topology(paths: Paths, topo: Topology) -> None:
    """Remember the lab's shape, with its `--variant` and `--release` choices, for every later command."""
    paths.state.mkdir(parents=True, exist_ok=True)
    paths.config.write_text(json.dumps({"vps": topo.vps_count, "subnet": topo.subnet,
                                        "variants": {str(k): v for k, v in topo.overrides},
                                        "releases": {str(k): v for k, v in topo.pinned_releases}}))


def _put_file(container: Container, path: str, data: bytes, mode: int = 0o644) -> None:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        info = tarfile.TarInfo(os.path.basename(path))
        info.size, info.mode, info.mtime = len(data), mode, int(time.time())
        tar.addfile(info, io.BytesIO(data))
    container.put_archive(os.path.dirname(path), buf.getvalue())


def _ensure_key(paths: Paths) -> str:
    if not paths.key.exists():
        paths.key.parent.mkdir(parents=True, exist_ok=True)
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "maillab", "-f", str(paths.key)],
                       check=True)
    return (paths.key.with_suffix(".pub")).read_text()


def _check_subnet_free(client: docker.DockerClient, topo: Topology) -> None:
    """Refuse a subnet another network uses before touching anything of the lab."""
    wanted = ipaddress.ip_network(topo.subnet)
    for net in client.networks.list():
        if net.name == topo.network:
            continue
        for cfg in (client.networks.get(net.id).attrs.get("IPAM") or {}).get("Config") or []:
            try:
                other = ipaddress.ip_network(cfg.get("Subnet", ""), strict=False)
            except ValueError:
                continue
            if other.version == wanted.version and other.overlaps(wanted):
                raise LabError(f"subnet {topo.subnet} overlaps network {net.name!r} ({other}); choose another with "
                               "`maillab up --subnet 10.123.0.0/24` or MAILLAB_SUBNET")


def _ensure_network(client: docker.DockerClient, topo: Topology, owner: Owner) -> None:
    # _up has already refused a subnet another network uses, and a network of another checkout's lab.
    try:
        net = client.networks.get(topo.network)
        subnets = [c.get("Subnet") for c in net.attrs["IPAM"]["Config"] or []]
        if subnets == [topo.subnet]:
            return
        for c in net.containers:
            c.remove(force=True)
        net.remove()
    except NotFound:
        pass
    ipam = docker.types.IPAMConfig(pool_configs=[docker.types.IPAMPool(subnet=topo.subnet,
                                                                        gateway=topo.gateway)])
    try:
        client.networks.create(topo.network, driver="bridge", ipam=ipam, labels={LABEL: "network", **owner.labels})
    except APIError as exc:
        msg = str(exc.explanation or exc)
        if "overlap" in msg.lower() or "in use" in msg.lower():
            raise LabError(f"subnet {topo.subnet} is already used by another network ({msg}); "
                           "choose another with `maillab up --subnet 10.123.0.0/24` or MAILLAB_SUBNET") from exc
        raise LabError(f"cannot create network {topo.network}: {msg}") from exc


def _container_spec(node: Node, topo: Topology, images: dict[str, str], key_id: str = "",
                    owner: Owner | None = None) -> dict:
    spec: dict = dict(name=node.name, hostname=node.fqdn, detach=True,
                      labels={LABEL: node.role, f"{LABEL}.host": node.short, f"{LABEL}.key": key_id,
                              **(owner.labels if owner else {})},
                      dns=[topo.dns.address], dns_search=["test"])
    if node.role in ("vps", "mx"):
        spec.update(SYSTEMD_FLAGS, image=images[f"vps-{node.release}"], mem_limit="256m")
    elif node.role == "dns":
        spec.update(image=images["dns"], dns=[])
    elif node.role == "acme":
        # No random waits before a check and no random nonce refusals: the lab's CA answers at once.
        spec.update(image=images["acme"], environment={"PEBBLE_DNS": f"{topo.dns.address}:53",
                                                       "PEBBLE_VA_NOSLEEP": "1", "PEBBLE_WFE_NONCEREJECT": "0"})
    else:
        spec.update(image=images["client"])
    return spec


def _create(client: docker.DockerClient, node: Node, topo: Topology, images: dict[str, str],
            pubkey: str, dns_conf: str, pki_dir: Path, owner: Owner) -> Container:
    spec = _container_spec(node, topo, images, _key_id(node, pubkey, pki_dir), owner)
    image = spec.pop("image")
    container = client.containers.create(image, **spec)
    client.networks.get(topo.network).connect(container, ipv4_address=node.address)
    try:
        container.client.api.disconnect_container_from_network(container.id, "bridge")
    except APIError:
        pass
    if node.role in ("vps", "mx"):
        _put_file(container, "/root/.ssh/authorized_keys", pubkey.encode(), 0o600)
    if node.role == "dns":
        _put_file(container, "/etc/maillab/dnsmasq.conf", dns_conf.encode())
    if node.role == "acme":
        _put_file(container, "/etc/maillab/pebble.json", json.dumps(PEBBLE_CONFIG).encode())
        _put_file(container, "/etc/maillab/pebble.crt", (pki_dir / "acme.crt").read_bytes())
        _put_file(container, "/etc/maillab/pebble.key", (pki_dir / "acme.key").read_bytes(), 0o600)
    container.start()
    return container


# Each key file on a mail host (DOMAIN.SELECTOR.private) and the base64 of its public key, derived by openssl on the
# host: the lab DNS publishes what actually signs there, not what a report says.
DKIM_LISTING = ('cd "$1" 2>/dev/null || exit 0; for f in *.private; do [ -e "$f" ] || continue; printf "%s " "$f"; '
                'openssl pkey -in "$f" -pubout -outform DER | base64 -w0; echo; done')


def dkim_keys(container: Container, domain: str) -> list[tuple[str, str]]:
    """(selector, public key) of each DKIM key the dkim role made on a mail host for its domain; none before."""
    from .collection import role_defaults

    res = container.exec_run(["sh", "-c", DKIM_LISTING, "sh", str(role_defaults("dkim")["dkim_key_dir"])])
    keys = []
    for line in res.output.decode(errors="replace").splitlines() if res.exit_code == 0 else []:
        name, _, key = line.strip().partition(" ")
        stem = name.removesuffix(".private")
        if stem != name and stem.startswith(f"{domain}.") and key:
            keys.append((stem[len(domain) + 1:], key))
    return keys


def publish_dns(topo: Topology, progress: Progress, client: docker.DockerClient | None = None) -> None:
    """The lab DNS with each running mail host's DKIM keys (its SPF and DMARC records are there from the start);
    dnsmasq restarts only when its config changed."""
    client = client or docker.from_env()
    dkim = {}
    for n in topo.mail_hosts:
        try:
            c = client.containers.get(n.name)
        except NotFound:
            continue
        if c.status == "running" and n.domain:
            dkim[n.short] = dkim_keys(c, n.domain)
    conf = dnsmasq_conf(topo, mirror_hosts(), dkim).encode()
    dns = client.containers.get(topo.dns.name)
    current = dns.exec_run(["cat", "/etc/maillab/dnsmasq.conf"]).output
    if current != conf:
        keys = sum(len(k) for k in dkim.values())
        with progress.step(f"lab DNS: the DKIM keys of the mail hosts ({keys})"):
            _put_file(dns, "/etc/maillab/dnsmasq.conf", conf)
            dns.restart(timeout=2)
            if not _wait_port(topo.dns.address, 53, time.monotonic() + 20):
                raise LabError(f"the lab DNS ({topo.dns.address}) did not answer again within 20 s")


SENDMAIL_PID = "/run/sendmail/mta/sendmail.pid"
START_WORKERS = 6  # containers `up` creates or starts at once
LAB_RESOLV_CONF = "# written by maillab: the lab's DNS answers every name, reverse names of the lab's addresses too\n" \
    "nameserver {dns}\nsearch test\noptions ndots:0\n"


def _use_lab_dns(container: Container, topo: Topology) -> None:
    """The mail host asks the lab's DNS directly, not Docker's resolver in front of it: Docker answers reverse
    lookups of the network's addresses itself (container.network names), so sendmail would never see the lab's
    PTR records (client2's long name among them). Written in place (the file is Docker's bind mount), and again
    after every start (Docker writes its own then). A running sendmail reads the file only when it starts: where one
    runs (a lab reused from before this rule; on a new container it is not installed yet), it restarts itself on
    SIGHUP, as the sendmail role restarts it (Debian's init script can leave the old daemon on the ports)."""
    want = LAB_RESOLV_CONF.format(dns=topo.dns.address)
    current = container.exec_run(["cat", "/etc/resolv.conf"]).output.decode(errors="replace")
    if current != want:
        hup = f'[ ! -s {SENDMAIL_PID} ] || kill -HUP "$(head -n1 {SENDMAIL_PID})" || true'
        res = container.exec_run(["sh", "-c", f"printf %s {shlex.quote(want)} > /etc/resolv.conf && {{ {hup}; }}"])
        if res.exit_code != 0:
            raise LabError(f"{container.name}: cannot point /etc/resolv.conf at the lab DNS: "
                           f"{res.output.decode(errors='replace')[-300:]}")


# pebble's settings: its directory and management interface, HTTP-01 checks on port 80 of each VPS.
PEBBLE_CONFIG = {"pebble": {"listenAddress": "0.0.0.0:14000", "managementListenAddress": "0.0.0.0:15000",
                            "certificate": "/etc/maillab/pebble.crt", "privateKey": "/etc/maillab/pebble.key",
                            "httpPort": 80, "tlsPort": 443, "ocspResponderURL": "",
                            "externalAccountBindingRequired": False}}
CLIENT_TRUST = "/usr/local/share/ca-certificates/sendmail-fleet-{}.crt"
FETCH_ROOT = ("import sys, urllib.request; "
              f"sys.stdout.write(urllib.request.urlopen({ACME_ROOT_URL!r}, timeout=5).read().decode())")


def _trust(container: Container, cas: dict[str, bytes]) -> None:
    """CA certificates in a client's trust store, so its mail programs verify the servers' certificates."""
    for name, pem in cas.items():
        _put_file(container, CLIENT_TRUST.format(name), pem)
    res = container.exec_run(["update-ca-certificates"])
    if res.exit_code != 0:
        raise LabError(f"{container.name}: update-ca-certificates failed: {res.output.decode()[-300:]}")


def _trust_lab_cas(client: docker.DockerClient, topo: Topology, paths: Paths) -> None:
    """Every client trusts the lab's CA (pebble's HTTPS, certificates from the controller) and pebble's issuing
    roots, fetched from pebble through a client (pebble makes a new root each time it starts); the controller's
    copy of them all is TRUST_BUNDLE."""
    lab_ca = pki.ensure_ca(paths.pki)[0].public_bytes(Encoding.PEM)
    clients = [client.containers.get(n.name) for n in topo.by_role("client")]
    for c in clients:
        _trust(c, {"lab": lab_ca})
    deadline, last = time.monotonic() + 60, ""
    while True:
        res = clients[0].exec_run(["python3", "-c", FETCH_ROOT])
        root = res.output if res.exit_code == 0 else b""
        if b"BEGIN CERTIFICATE" in root:
            break
        last = res.output.decode(errors="replace")[-300:]
        if time.monotonic() > deadline:
            raise LabError(f"the lab's ACME CA ({ACME_ROOT_URL}) gave no root within 60 s: {last}")
        time.sleep(0.5)
    # Roots seen before stay trusted: certificates issued before pebble last started still chain to them.
    roots = paths.pki / "acme-roots"
    roots.mkdir(exist_ok=True)
    (roots / f"{hashlib.sha256(root).hexdigest()[:16]}.pem").write_bytes(root)
    known = {f"acme-{f.stem}": f.read_bytes() for f in sorted(roots.glob("*.pem"))}
    for c in clients:
        _trust(c, {"lab": lab_ca, **known})
    (paths.pki / TRUST_BUNDLE).write_bytes(lab_ca + b"".join(known.values()))


def _key_id(node: Node, pubkey: str, pki_dir: Path) -> str:
    """What a container was given from this checkout's .lab that a later run must not silently replace: the SSH key
    a mail host lets in, or the certificate (signed by this checkout's lab CA) that the ACME CA serves HTTPS with.
    A lab left running by another checkout, or by this one before its .lab was removed, has other ones."""
    if node.role in ("vps", "mx"):
        return hashlib.sha256(pubkey.encode()).hexdigest()[:12]
    if node.role == "acme":
        return hashlib.sha256((pki_dir / "acme.crt").read_bytes()).hexdigest()[:12]
    return ""


def _matches(container: Container, node: Node, topo: Topology, images: dict[str, str], pubkey: str,
             pki_dir: Path, owner: Owner | None = None) -> bool:
    """Same image, same address, and the same SSH key (mail hosts) or HTTPS certificate (the ACME CA) as this
    checkout's lab, and (given an owner) made by it."""
    if owner is not None and _labels(container).get(OWNER_LABEL) != owner.state:
        return False
    spec = _container_spec(node, topo, images)
    nets = container.attrs["NetworkSettings"]["Networks"]
    addr = nets.get(topo.network, {}).get("IPAMConfig") or {}
    key_ok = container.labels.get(f"{LABEL}.key", "") == _key_id(node, pubkey, pki_dir)
    caps = set(container.attrs["HostConfig"].get("CapAdd") or [])
    caps_ok = {c if c.startswith("CAP_") else f"CAP_{c}" for c in spec.get("cap_add", [])} <= \
        {c if c.startswith("CAP_") else f"CAP_{c}" for c in caps}
    return (container.attrs["Config"]["Image"] == spec["image"]
            and addr.get("IPv4Address") == node.address and key_ok and caps_ok)


def _wait_port(address: str, port: int, deadline: float) -> bool:
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((address, port), timeout=1):
                return True
        except OSError:
            time.sleep(0.3)
    return False


# systemd in each container takes inotify instances of the host's root user (PID 1, journald, logind, ...): about 8
# per mail host. The kernel's default of 128 ran out at the 19th VPS, whose container exited at once with status 255.
INOTIFY_INSTANCES = Path("/proc/sys/fs/inotify/max_user_instances")
INOTIFY_PER_HOST = 8


def _ensure_inotify(mail_hosts: int, progress: Progress, path: Path = INOTIFY_INSTANCES) -> None:
    """Raise the host's inotify instance limit when this many systemd containers would run out of it (as root;
    otherwise say which sysctl to set). A lab the limit already fits leaves it alone."""
    try:
        have = int(path.read_text())
    except (OSError, ValueError):
        return  # not Linux's procfs: nothing to check
    if mail_hosts * INOTIFY_PER_HOST <= have:
        return
    want = mail_hosts * INOTIFY_PER_HOST * 2
    if os.geteuid() != 0:
        raise LabError(f"{mail_hosts} mail hosts need more inotify instances than fs.inotify.max_user_instances={have} "
                       f"allows (systemd in each container takes about {INOTIFY_PER_HOST}): as root, "
                       f"`sysctl -w fs.inotify.max_user_instances={want}`, or run a smaller lab")
    progress.say(f"raising fs.inotify.max_user_instances from {have} to {want}: systemd in each of the "
                 f"{mail_hosts} mail hosts takes about {INOTIFY_PER_HOST}")
    path.write_text(f"{want}\n")


def _wait_systemd(container: Container, deadline: float) -> str:
    state = ""
    while time.monotonic() < deadline:
        container.reload()
        if container.status != "running":
            code = container.attrs.get("State", {}).get("ExitCode")
            raise LabError(f"{container.name} stopped as it started (status {container.status}, exit code {code}); "
                           f"`docker logs {container.name}` shows why")
        res = container.exec_run(["systemctl", "is-system-running"])
        state = res.output.decode().strip()
        if state in ("running", "degraded"):
            return state
        time.sleep(0.5)
    return state or "unknown"


def _wait_ready(container: Container, node: Node, deadline: float) -> None:
    state = _wait_systemd(container, deadline)
    if state not in ("running", "degraded"):
        raise LabError(f"{node.name}: systemd did not come up (state {state!r})")
    if not _wait_port(node.address, 22, deadline):
        raise LabError(f"{node.name}: sshd does not answer on {node.address}:22")


def start(node: Node, topo: Topology, timeout: float = 120) -> None:
    """Start one mail host's stopped container (a test killed it) and wait for its systemd and sshd; unlike `up`,
    it leaves every other container, the DNS and the inventory alone, so it can run beside a playbook."""
    c = container(node.name)
    if c.status != "running":
        c.start()
    _wait_ready(c, node, time.monotonic() + timeout)
    _use_lab_dns(c, topo)  # Docker gives a started container its own resolver again


def mirror_hosts() -> list[str]:
    try:
        return detect().hosts()
    except MirrorNotFound:
        return []


def shadow_hash(user: str, host: str, password: str, rounds: int = LAB_PASSWORD_ROUNDS) -> str:
    """The hash the mail_users role makes from an account's password on `host` at `rounds` (its
    mail_users_password_rounds): Ansible's password_hash, sha512-crypt, the role's salt."""
    from ansible.plugins.filter.core import get_encrypted_password

    return get_encrypted_password(password, "sha512", salt=shadow_salt(user, host), rounds=rounds)


def _shadow_hash(account: tuple[str, str, str]) -> str:
    return shadow_hash(*account)


def password_hashes(paths: Paths, topo: Topology, workers: int | None = None) -> Callable[[Account, Node], str]:
    """Each lab account's shadow hash, the one the mail_users role makes from its password (Ansible's
    password_hash, sha512-crypt at the lab's mail_users_password_rounds, the role's salt), made once per password
    and rounds and kept in .lab/ (mode 0600, beside the passwords themselves) rather than by every site run."""
    store = paths.state / "password-hashes.json"
    try:
        known: dict[str, str] = json.loads(store.read_text())
    except (OSError, ValueError):
        known = {}
    wanted = {(a.user, n.short, a.password) for n in topo.mail_hosts for a in n.accounts}
    keys = {w: hashlib.sha256("\0".join((*w, str(LAB_PASSWORD_ROUNDS))).encode()).hexdigest() for w in wanted}
    missing = [w for w in sorted(wanted) if keys[w] not in known]
    if missing:
        # CPU: one process per core, or `workers`
        with ProcessPoolExecutor(max_workers=min(len(missing), workers or os.cpu_count() or 2)) as pool:
            made = pool.map(_shadow_hash, missing)
            known.update({keys[w]: h for w, h in zip(missing, made, strict=True)})
        paths.state.mkdir(parents=True, exist_ok=True)
        fd = os.open(store.with_suffix(".new"), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            json.dump({keys[w]: known[keys[w]] for w in wanted}, f)
        os.replace(store.with_suffix(".new"), store)
    return lambda a, n: known[keys[(a.user, n.short, a.password)]]


def write_inventory(paths: Paths, topo: Topology,
                    hashes: Callable[[Account, Node], str] | None = None) -> None:
    paths.inventory.parent.mkdir(parents=True, exist_ok=True)
    data = inventory(topo, str(paths.key), str(paths.pki), hashes or password_hashes(paths, topo))
    # Written beside and renamed over: a playbook that reads the inventory meanwhile sees the old or the new file.
    tmp = paths.inventory.with_name(paths.inventory.name + ".new")
    tmp.write_text("# written by `maillab up`: the lab's fleet (regenerated each time)\n"
                   + yaml.safe_dump(data, sort_keys=False))
    os.replace(tmp, paths.inventory)


def up(topo: Topology, paths: Paths, progress: Progress) -> Topology:
    # The accounts' hashes (CPU, made once per password) are made on one core while the engine,
    # the images and the containers are set up, which mostly wait on apt, the mirror and Docker; the inventory,
    # written last, needs them.
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="hashes") as pool:
        hashes = pool.submit(password_hashes, paths, topo, 1)
        try:
            client = ensure_engine(paths.state, progress)
        except EngineError as exc:
            raise LabError(str(exc)) from exc
        owner = Owner.of(paths)
        existed = any(owner.owns(c) for c in client.containers.list(all=True, filters={"label": LABEL}))
        try:
            _up(client, topo, paths, progress, hashes)
        except BaseException:
            if not existed:
                progress.say("up failed: removing what this run made")
                down(paths, Progress(quiet=True), client)
            raise
    return topo


def _check_owner(client: docker.DockerClient, topo: Topology, owner: Owner, progress: Progress) -> None:
    """Refuse, before touching anything, to take over the lab of another checkout that still exists: its
    containers and network have this lab's names. The lab of a checkout that is gone (its state folder removed)
    is taken over: nobody else can take it down."""
    found: list[Container | Network] = [c for c in client.containers.list(all=True, filters={"label": LABEL})
                                        if c.name in {n.name for n in topo.nodes}]
    found += [n for n in client.networks.list(names=[topo.network]) if n.name == topo.network]
    for obj in found:
        other = owner.other(obj)
        if other and Path(other).exists():
            raise LabError(f"{obj.name} belongs to the lab of another checkout ({other}): take that lab down there "
                           "(`maillab down`), or run this one beside it with its own MAILLAB_PREFIX and "
                           "MAILLAB_SUBNET (for example MAILLAB_PREFIX=maillab2 MAILLAB_SUBNET=10.123.0.0/24)")
        if other:
            progress.say(f"  {obj.name}: its checkout ({other}) is gone; this lab takes it over")


def _up(client: docker.DockerClient, topo: Topology, paths: Paths, progress: Progress,
        hashes: Future[Callable[[Account, Node], str]]) -> None:
    owner = Owner.of(paths)
    _check_owner(client, topo, owner, progress)
    _check_subnet_free(client, topo)
    try:
        images = ensure_all(client, progress, topo.releases)
    except (EngineError, MirrorNotFound) as exc:
        raise LabError(str(exc)) from exc
    pubkey = _ensure_key(paths)
    for n in topo.mail_hosts:
        pki.ensure_host_cert(paths.pki, n.short, [n.fqdn, n.domain or n.fqdn])
    pki.ensure_host_cert(paths.pki, "acme", [ACME_NAME])  # pebble's own HTTPS
    _ensure_network(client, topo, owner)
    dns_conf = dnsmasq_conf(topo, mirror_hosts())
    wanted = {n.name for n in topo.nodes}
    for c in client.containers.list(all=True, filters={"label": LABEL}):
        if c.name not in wanted and owner.owns(c):
            progress.say(f"removing {c.name} (not in the lab's topology any more)")
            c.remove(force=True)
    _ensure_inotify(len(topo.mail_hosts), progress)

    def bring_up(node: Node) -> None:
        try:
            c = client.containers.get(node.name)
            if not _matches(c, node, topo, images, pubkey, paths.pki, owner):
                progress.say(f"  {node.name}: out of date, recreating")
                c.remove(force=True)
                raise NotFound("recreate")
            if node.role == "dns":
                _put_file(c, "/etc/maillab/dnsmasq.conf", dns_conf.encode())
                c.restart(timeout=2) if c.status == "running" else c.start()
            elif c.status != "running":
                progress.say(f"  {node.name}: was {c.status}, starting")
                c.start()
        except NotFound:
            _create(client, node, topo, images, pubkey, dns_conf, paths.pki, owner)
            _forget_written_variant(paths, node.short)  # a new container runs the topology's variant

    # Several at once: each start mostly waits on the engine (mounts, the network, runc); 17 one after another took
    # 8.0 s here.
    with progress.step(f"starting {len(topo.nodes)} containers on {topo.subnet}"):
        all_at_once(topo.nodes, bring_up, START_WORKERS)
    deadline = time.monotonic() + 120

    # The clients' trust (it waits for the ACME CA to answer) beside the wait for the mail hosts' systemd and sshd:
    # neither needs the other (8.4 s and 4.7 s one after the other here).
    def trust_clients() -> None:
        with progress.step("clients trust the lab's CA and the ACME CA's root"):
            _trust_lab_cas(client, topo, paths)

    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="trust") as pool:
        trust = pool.submit(trust_clients)
        with progress.step("waiting for systemd and sshd in every VPS"):
            for node in topo.mail_hosts:
                _wait_ready(client.containers.get(node.name), node, deadline)
                _use_lab_dns(client.containers.get(node.name), topo)
        trust.result()
    publish_dns(topo, progress, client)  # keys of hosts provisioned before
    write_inventory(paths, topo, hashes.result())
    progress.say(f"lab is up; inventory: {paths.inventory}")


def down(paths: Paths, progress: Progress, client: docker.DockerClient | None = None) -> int:
    """Remove this checkout's lab: the containers, networks and volumes its `up` made (and those of a lab from before
    owners were recorded, under this lab's prefix); another checkout's lab keeps running."""
    client = client or connect()
    if client is None:
        raise LabError("no Docker engine answers: nothing to take down (start the engine, then retry)")
    owner, removed = Owner.of(paths), 0
    for c in client.containers.list(all=True, filters={"label": LABEL}):
        if owner.owns(c):
            progress.say(f"removing container {c.name}")
            c.remove(force=True, v=True)
            removed += 1
    for net in client.networks.list(filters={"label": LABEL}):
        if owner.owns(net):
            progress.say(f"removing network {net.name}")
            net.remove()
            removed += 1
    for vol in client.volumes.list(filters={"label": LABEL}):
        if (vol.attrs.get("Labels") or {}).get(OWNER_LABEL) in (None, owner.state):
            vol.remove(force=True)
            removed += 1
    if paths.inventory.exists():
        paths.inventory.unlink()
    for written in sorted(_host_vars(paths).glob("*.yml")):
        written.unlink()
    return removed


def _host_vars(paths: Paths) -> Path:
    """Where a rollout with rollout_write_inventory writes each lab host's variant."""
    return paths.inventory.parent / "host_vars"


def _forget_written_variant(paths: Paths, short: str) -> None:
    (_host_vars(paths) / f"{short}.yml").unlink(missing_ok=True)


def status(topo: Topology) -> dict:
    client = connect()
    data = topo.to_json()
    for entry in data["containers"]:
        state = "absent"
        if client:
            try:
                state = client.containers.get(entry["name"]).status
            except NotFound:
                pass
        else:
            state = "no engine"
        entry["state"] = state
    return data


def container(name: str) -> Container:
    client = connect()
    if client is None:
        raise LabError("no Docker engine answers: run `maillab up` first")
    try:
        return client.containers.get(name)
    except NotFound as exc:
        raise LabError(f"no container {name}: run `maillab up` first") from exc
