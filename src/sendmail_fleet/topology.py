"""The lab's shape: which containers exist, their addresses, domains, variants and mail accounts.

Pure data, no Docker: unit tests cover it, and `lab.py` turns it into containers.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import ipaddress
import os
import re
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from types import ModuleType
from typing import Any

from .variants import all_variants, extra_table, extra_variants, tables, variant_for_setup_date

# The lab's container and network names begin with it: MAILLAB_PREFIX gives a second lab (another checkout's, with
# its own MAILLAB_SUBNET) names of its own on the same Docker engine.
PREFIX = os.environ.get("MAILLAB_PREFIX", "maillab")
if not re.fullmatch(r"[a-z][a-z0-9-]{0,29}", PREFIX):
    raise ValueError(f"MAILLAB_PREFIX={PREFIX!r}: use lower-case letters, digits and '-', starting with a letter")
DEFAULT_SUBNET = "172.29.25.0/24"
# The Debian releases a VPS may run (codename: version), the current stable release first. The default lab's
# shape comes from the sendmail role's variant table (see setup_variants, grace_vps): one block of the set-up
# variants per release (VPS 1-5 on Debian 13, VPS 6-10 on Debian 12 with today's table; blocks alternate beyond
# the default lab), then the migration's grace phase once per release (VPS 11 on 13, VPS 12 on 12). The mx on 13.
RELEASES = {"trixie": "13", "bookworm": "12"}
# On a grace VPS the second mailbox (bob) keeps POP-before-SMTP through an exception that ends long after any lab
# run (a test moves its end into the past on the host, and puts it back); the first (alice) is the user the grace
# phase's refusal sends to SMTP-Auth.
GRACE_EXCEPTED_USER = "bob"
GRACE_EXCEPTED_UNTIL = "2099-12-31"
MAX_VPS = 40
REMOTE_DOMAIN = "remote.test"
# The lab's ACME CA (pebble): its directory on 14000, its management interface (the issuing root) on 15000.
ACME_NAME = "acme.lab.test"
ACME_DIRECTORY = f"https://{ACME_NAME}:14000/dir"
ACME_ROOT_URL = f"https://{ACME_NAME}:15000/roots/0"
TRUST_BUNDLE = "trust.pem"  # in the lab's pki folder: the lab CA and pebble's current root, what the clients trust
# Seconds: the lab's short POP-before-SMTP window. Every check that relies on a grant relays within a few seconds
# of its POP3 login; the window's end is itself a check (mailcheck's window expiry), which the demo and the tests
# wait for after the other checks, so a shorter window is a shorter wait (25 s: the demo's 12 VPS finish their
# other checks about then; 40 s before, a wait of about 20 s).
POP_BEFORE_SMTP_WINDOW = 25
# The lab knows every address its domains send from, so their SPF records end in -all (the inventory's
# mail_host_spf_all, and the lab DNS's records).
LAB_SPF_ALL = "-all"
# The tests send far more mail per mailbox in an hour than a person would: the lab raises the sending limit (the
# defaults hold everywhere else; the limit's own test sets small numbers on its hosts and puts these back).
# One mailbox per VPS keeps a small limit, so the demo's "sending limit" check sees the refusal a mailbox past its
# limit gets, whenever it runs (the limit's period is an hour: a second demo within it meets the refusal at once).
CAPPED_USER, CAPPED_MESSAGES = "capped", 2
LAB_SENDING_LIMITS = {"sending_limits_messages": 5000, "sending_limits_recipients": 20000,
                      "sending_limits_mailboxes": {CAPPED_USER: {"messages": CAPPED_MESSAGES, "recipients": 20}}}
# The lab's mailbox hashes: crypt(3)'s default rounds. The lab tests log in about 500 times, each login hashing again
# on a VPS (0.25 s of CPU at the role's default 656000, here 2 ms); the role's default holds on every other inventory.
LAB_PASSWORD_ROUNDS = 5000
FAIL2BAN_MAXRETRY = 3  # failed logins that get a lab client banned ...
FAIL2BAN_BANTIME = 20  # ... for this many seconds
# ... within this many seconds. Every demo run makes one failed POP3 login from client2 on each VPS (the "bad POP
# login" check), and demo runs follow each other at least a POP-before-SMTP window plus the checks before it apart
# (about 35 s): with 120 s here the third `maillab demo --skip-provision` in a row got client2 banned mid-run (its
# "excepted POP relay" met a closed port). The brute-force tests make their failures all at once.
FAIL2BAN_FINDTIME = 45
# One VPS (legacy_date_vps: vps6 today) is given only a set-up date this old, so the provider's date rule picks its
# variant.
LEGACY_SETUP_DATE = "2002-11-30"
# VPS numbers whose mail settings (autoconfig, Autodiscover, profiles) the mx publishes for them: the fleet-wide
# set-up, one host serving other hosts' settings. Every other mail host publishes its own.
SETTINGS_FROM_MX = (7, 9)
# client2, the tests' stranger, has a reverse DNS name longer than sendmail's relay= log field (100 characters), as
# a hostile client can choose: its failed SMTP-Auth logins must still get it banned. Its short name resolves too.
LONG_PTR_CLIENT = "client2"
LONG_PTR_NAME = "c2-" + "x" * 57 + "." + "y" * 50 + ".clients.test"  # 124 characters


class TopologyError(ValueError):
    pass


@dataclass(frozen=True)
class Account:
    host: str  # container name
    user: str
    address: str
    password: str


@dataclass(frozen=True)
class Node:
    name: str  # Docker container name
    short: str  # inventory host name
    role: str  # dns | acme | vps | mx | client
    address: str
    fqdn: str
    domain: str | None = None
    variant: str | None = None
    accounts: tuple[Account, ...] = field(default=())
    setup_date: str | None = None  # when set, the inventory gives the date and the role picks the variant
    release: str | None = None  # Debian codename of a mail host (bookworm, trixie); dns and clients: None
    ptr: str | None = None  # the reverse DNS name, where it is not the fqdn


@dataclass(frozen=True)
class Topology:
    subnet: str
    vps_count: int
    nodes: tuple[Node, ...]
    overrides: tuple[tuple[int, str], ...] = ()  # (VPS number, variant) given with `maillab up --variant`
    pinned_releases: tuple[tuple[int, str], ...] = ()  # (VPS number, codename) given with `--release`

    @property
    def variant_overrides(self) -> dict[int, str]:
        return dict(self.overrides)

    @property
    def release_overrides(self) -> dict[int, str]:
        return dict(self.pinned_releases)

    def changed(self, vps_count: int | None = None, subnet: str | None = None,
                variants: dict[int, str] | None = None, releases: dict[int, str] | None = None) -> Topology:
        """This lab with a new size, subnet or more `--variant`/`--release` choices (earlier choices stay)."""
        return build(vps_count or self.vps_count, subnet or self.subnet, {**self.variant_overrides, **(variants or {})},
                     {**self.release_overrides, **(releases or {})})

    @property
    def releases(self) -> list[str]:
        """The codenames the lab's mail hosts run, in RELEASES order."""
        used = {n.release for n in self.mail_hosts}
        return [r for r in RELEASES if r in used]

    @property
    def network(self) -> str:
        return f"{PREFIX}-net"

    @property
    def gateway(self) -> str:
        return str(ipaddress.ip_network(self.subnet)[1])

    def by_role(self, role: str) -> list[Node]:
        return [n for n in self.nodes if n.role == role]

    def get(self, key: str) -> Node:
        for n in self.nodes:
            if key in (n.name, n.short):
                return n
        raise KeyError(key)

    @property
    def dns(self) -> Node:
        return self.by_role("dns")[0]

    @property
    def acme(self) -> Node:
        return self.by_role("acme")[0]

    def settings_host(self, node: Node) -> Node:
        """The mail host that publishes this host's mail settings: the mx for SETTINGS_FROM_MX, else itself."""
        if node.role == "vps" and int(node.short.removeprefix("vps")) in SETTINGS_FROM_MX:
            return self.by_role("mx")[0]
        return node

    @property
    def mail_hosts(self) -> list[Node]:
        return [n for n in self.nodes if n.role in ("vps", "mx")]

    def accounts(self) -> list[Account]:
        return [a for n in self.nodes for a in n.accounts]

    def to_json(self) -> dict:
        return {
            "subnet": self.subnet,
            "containers": [
                {k: v for k, v in {
                    "name": n.name, "role": n.role, "address": n.address, "fqdn": n.fqdn,
                    "domain": n.domain, "variant": n.variant, "release": n.release,
                    "debian": RELEASES.get(n.release or "")}.items() if v is not None or k in ("name",)}
                for n in self.nodes],
            "accounts": [asdict(a) for a in self.accounts()],
        }


def _accounts(container: str, domain: str, users: tuple[str, ...], tag: str) -> tuple[Account, ...]:
    return tuple(Account(container, u, f"{u}@{domain}", f"{u}-{tag}-Lab1") for u in users)


def setup_variants() -> list[str]:
    """The variants a VPS is set up with (the lab cycles through them): every variant of the role's table but the
    grace phases, which only the rollout (or an explicit choice) puts a host in."""
    extra = extra_variants()
    return [n for n, v in all_variants().items() if "pop_before_smtp_grace" not in v.features and n not in extra]


def lab_grace_variant() -> str:
    """The grace phase the lab's grace VPS run: that of the variant a VPS set up today gets (the date rule), which
    is where the rollout's first step moves such a host."""
    return tables()["sendmail_variants"][variant_for_setup_date(dt.date.today())]["grace"]


def grace_vps() -> dict[int, tuple[str, str]]:
    """The VPS numbers that run a grace-phase variant, with their release: one per release, right after the blocks
    of set-up variants (the numbers after them go on with the set-up variants as if these were not there)."""
    first = len(setup_variants()) * len(RELEASES) + 1
    return {first + k: (lab_grace_variant(), release) for k, release in enumerate(RELEASES)}


def default_vps() -> int:
    """The default lab's VPS count: every set-up variant on every release, and a grace VPS per release."""
    return (len(setup_variants()) + 1) * len(RELEASES)


def _cycle_index(i: int) -> int:
    """Where VPS i stands in the cycle of set-up variants and release blocks, the grace VPS left out."""
    return i - sum(1 for g in grace_vps() if g < i)


def variant_for_index(i: int) -> str:
    """VPS i's variant: the grace VPS theirs, the VPS after the default fleet first the variants a lab's extra table
    adds (MAILLAB_VARIANTS, in its order), every other VPS the next set-up variant of the role's table."""
    grace = grace_vps()
    if i in grace:
        return grace[i][0]
    extra = extra_variants()
    if 0 < i - DEFAULT_VPS <= len(extra):
        return extra[i - DEFAULT_VPS - 1]
    names = setup_variants()
    return names[(_cycle_index(i) - 1) % len(names)]


def release_for_index(i: int) -> str:
    """The set-up variants in blocks, one block per release in RELEASES order (VPS 1-5 on Debian 13, VPS 6-10 on
    Debian 12 with today's table, and so on); a grace VPS its own release."""
    grace = grace_vps()
    if i in grace:
        return grace[i][1]
    names = list(RELEASES)
    return names[((_cycle_index(i) - 1) // len(setup_variants())) % len(names)]


def legacy_date_vps() -> int:
    """The VPS that is given a set-up date before the rule's turn instead of a variant name (so the lab proves the
    date rule): the first one on the second release whose variant is what that date gives (VPS 6 today)."""
    legacy = variant_for_setup_date(dt.date.fromisoformat(LEGACY_SETUP_DATE))
    second = list(RELEASES)[min(1, len(RELEASES) - 1)]
    return next(i for i in range(1, MAX_VPS + 1)
                if release_for_index(i) == second and variant_for_index(i) == legacy)


DEFAULT_VPS = default_vps()


def parse_release(text: str) -> str:
    """A codename from a codename or a version number: trixie, 13, bookworm, 12."""
    for codename, version in RELEASES.items():
        if text.lower() in (codename, version, f"debian{version}", f"debian-{version}"):
            return codename
    choices = ", ".join(f"{c} ({v})" for c, v in RELEASES.items())
    raise TopologyError(f"release {text!r} is not supported: choose one of {choices}")


def build(vps_count: int = DEFAULT_VPS, subnet: str = DEFAULT_SUBNET,
          variants: dict[int, str] | None = None, releases: dict[int, str] | None = None) -> Topology:
    if not 1 <= vps_count <= MAX_VPS:
        raise TopologyError(f"VPS count {vps_count} is out of range: choose 1 to {MAX_VPS}")
    try:
        net = ipaddress.ip_network(subnet)
    except ValueError as exc:
        raise TopologyError(f"subnet {subnet!r} is not a network ({exc}); use e.g. {DEFAULT_SUBNET}") from exc
    if net.version != 4 or net.num_addresses - 2 < 103:
        raise TopologyError(f"subnet {subnet} is too small or not IPv4: use an IPv4 /25 or larger")
    if not net.is_private:
        raise TopologyError(f"subnet {subnet} is not a private range: use e.g. {DEFAULT_SUBNET}")
    hosts = list(net.hosts())
    variants = variants or {}
    releases = {i: parse_release(r) for i, r in (releases or {}).items()}

    legacy_vps = legacy_date_vps()

    def addr(i: int) -> str:
        return str(hosts[i - 1])

    nodes: list[Node] = [Node(f"{PREFIX}-dns", "dns", "dns", addr(2), "ns.lab.test"),
                         Node(f"{PREFIX}-acme", "acme", "acme", addr(3), ACME_NAME)]
    mx_name = f"{PREFIX}-mx"
    nodes.append(Node(mx_name, "mx", "mx", addr(10), f"mx.{REMOTE_DOMAIN}", REMOTE_DOMAIN,
                      "default-auth-only", _accounts(mx_name, REMOTE_DOMAIN, ("carol",), "mx"),
                      release=list(RELEASES)[0]))
    for i in range(1, vps_count + 1):
        name, domain = f"{PREFIX}-vps{i}", f"vps{i}.test"
        date = LEGACY_SETUP_DATE if i == legacy_vps and i not in variants else None
        variant = variant_for_setup_date(dt.date.fromisoformat(date)) if date else variants.get(i, variant_for_index(i))
        nodes.append(Node(name, f"vps{i}", "vps", addr(20 + i), f"mail.{domain}", domain, variant,
                          _accounts(name, domain, ("alice", "bob", CAPPED_USER), f"vps{i}"), date,
                          releases.get(i, release_for_index(i))))
    for i in (1, 2):
        short = f"client{i}"
        nodes.append(Node(f"{PREFIX}-{short}", short, "client", addr(100 + i), f"{short}.clients.test",
                          ptr=LONG_PTR_NAME if short == LONG_PTR_CLIENT else None))
    return Topology(str(net), vps_count, tuple(nodes),
                    tuple(sorted((i, v) for i, v in variants.items() if i <= vps_count)),
                    tuple(sorted((i, r) for i, r in releases.items() if i <= vps_count)))


def dnsmasq_conf(topo: Topology, forward_hosts: list[str],
                 dkim: dict[str, list[tuple[str, str]]] | None = None) -> str:
    """dnsmasq config: authoritative A and MX records for every lab domain, nothing forwarded
    except the apt mirror's host names (so apt inside the containers keeps working). Each mail domain's SPF, DKIM
    and DMARC records come from the client_setup role's helper, as its zone snippets do; dkim gives each mail host's
    (selector, public key) pairs, read from the host once it is provisioned (before that: SPF and DMARC only)."""
    lines = [
        "# written by maillab: the lab's DNS",
        "no-resolv", "no-hosts", "bind-interfaces", f"listen-address={topo.dns.address}",
        "domain-needed", "bogus-priv", "log-facility=-",
        "local=/test/",
    ]
    for host in forward_hosts:
        lines.append(f"server=/{host}/127.0.0.11")
    for n in topo.nodes:
        # host-record: A records for every name, the PTR record for the first
        lines.append(f"host-record={n.ptr + ',' if n.ptr else ''}{n.fqdn},{n.address}")
        if n.domain:
            lines.append(f"host-record={n.domain},{n.address}")
            lines.append(f"mx-host={n.domain},{n.fqdn},10")
            # Where mail programs find the settings (the host that publishes them), and the RFC 6186 records the
            # client_setup role writes for the admin's DNS, from the same helper.
            web = topo.settings_host(n).address
            lines.append(f"host-record=autoconfig.{n.domain},autodiscover.{n.domain},{web}")
            for service, prio, weight, port, target in mail_settings().srv_records(settings_site(n)):
                lines.append(f"srv-host={service}.{n.domain}" + (f",{target},{port},{prio},{weight}"
                                                                 if target != "." else ""))
            helper = mail_settings()
            sender = helper.Sender((n.address,), tuple((dkim or {}).get(n.short, ())), spf_all=LAB_SPF_ALL)
            for name, text in helper.txt_records(settings_site(n), sender):
                lines.append(f"txt-record={name}," + ",".join(f'"{part}"' for part in helper.txt_strings(text)))
    return "\n".join(lines) + "\n"


def mail_settings() -> ModuleType:
    """The client_setup role's settings helper (its SRV records are the lab DNS's)."""
    from .host import load

    return load("mail_settings")


def settings_site(n: Node) -> Any:
    """A mail host as the settings helper's Site, by the collection's client_site filter: the rule the role
    applies to a host's variables, here applied to the lab node's."""
    from .collection import filter_plugin
    from .variants import all_variants

    site = filter_plugin("client_site").client_site({
        "inventory_hostname": n.short, "mail_domain": n.domain, "mail_fqdn": n.fqdn,
        "sendmail_effective_features": all_variants()[n.variant or "default"].features})
    return mail_settings().Site(**site, names=(), provider=site["domain"], help_url="")


def shadow_salt(user: str, host: str) -> str:
    """The salt the mail_users role derives for an account's sha512-crypt hash (stable: a second run changes
    nothing): the first 16 hex digits of sha1(user name + inventory host name)."""
    return hashlib.sha1((user + host).encode()).hexdigest()[:16]


def inventory(topo: Topology, key_file: str, pki_dir: str,
              password_hash: Callable[[Account, Node], str] | None = None) -> dict:
    """The Ansible inventory (YAML-ready dict) for the lab's mail hosts. Certificates come from the lab's ACME CA;
    the lab CA's certificate per host stays given, for `-e tls_source=controller`. With password_hash, each
    account also carries the hash of its password (the one the role would make from it), which the role uses as
    it is instead of hashing the password again on every run."""
    def account(a: Account, n: Node) -> dict:
        return {"name": a.user, "password": a.password,
                **({"password_hash": password_hash(a, n)} if password_hash else {})}

    def host_vars(n: Node) -> dict:
        hv: dict = {
            "ansible_host": n.address,
            "mail_fqdn": n.fqdn,
            "mail_domain": n.domain,
            **({"sendmail_setup_date": n.setup_date} if n.setup_date else {"sendmail_variant": n.variant}),
            "tls_acme_email": f"postmaster@{n.domain}",
            "tls_cert_src": f"{pki_dir}/{n.short}.crt",
            "tls_key_src": f"{pki_dir}/{n.short}.key",
            "tls_ca_src": f"{pki_dir}/ca.crt",
            "mail_users_accounts": [account(a, n) for a in n.accounts],
            "rollout_probe_user": n.accounts[0].user,
            "rollout_probe_password": n.accounts[0].password,
        }
        if n.variant and all_variants()[n.variant].grace:
            hv["pop_before_smtp_exceptions"] = [{"mailbox": GRACE_EXCEPTED_USER, "until": GRACE_EXCEPTED_UNTIL}]
        if topo.settings_host(n) is not n:  # the mx publishes this host's mail settings
            hv["mail_client_setup"] = False
        if n.role == "mx":
            hv["mail_host_client_setup_for"] = [v.short for v in topo.by_role("vps") if topo.settings_host(v) is n]
            hv["mail_client_setup_serve_domain"] = False  # the other domains' own names are not the mx's
        return hv

    mx = topo.by_role("mx")[0]
    remote = mx.accounts[0]

    common = {
        "ansible_user": "root",
        "ansible_ssh_private_key_file": key_file,
        "ansible_ssh_common_args": "-o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null "
                                   "-o LogLevel=ERROR",
        # The same for Mitogen, which reads this variable rather than the ssh arguments (throw-away lab hosts only).
        "ansible_host_key_checking": False,
        # Mitogen's own SSH keep-alives (its defaults, 30 s x 10, would take 5 minutes to notice a vanished host);
        # the same 5 s x 3 that ansible.cfg gives plain ssh.
        "mitogen_ssh_keepalive_interval": 5,
        "mitogen_ssh_keepalive_count": 3,
        "ansible_python_interpreter": "/usr/bin/python3",
        # Every mail host publishes its mail programs' settings (the mx also those of SETTINGS_FROM_MX); the lab's
        # domains are the hosts' own web names, so DOMAIN/.well-known/autoconfig is served too.
        "mail_client_setup": True,
        "mail_client_setup_serve_domain": True,
        "audit_help_url": "https://autoconfig.{{ mail_domain }}/",  # the notice links to the domain's help page
        "tls_source": "acme",
        "tls_acme_directory": ACME_DIRECTORY,
        "tls_acme_ca_bundle": f"{pki_dir}/ca.crt",  # pebble's own HTTPS certificate is the lab CA's
        "pop_before_smtp_window": POP_BEFORE_SMTP_WINDOW,
        "pop_before_smtp_expire_interval": 5,
        # The lab's clients are test drivers that connect hundreds of times a minute and fail logins on purpose:
        # no greet pause or client limits for them, and only client2 (and the others) can be banned, quickly.
        "sendmail_limits_exempt": [c.address for c in topo.by_role("client")] + [topo.gateway],
        "fail2ban_ignoreip": [topo.get("client1").address, topo.gateway],
        # The settings' request limit: client1 (the tests' mail programs) and the controller are exempt, client2 is
        # limited like any stranger.
        "client_setup_rate_exempt": [topo.get("client1").address, topo.gateway],
        "mail_host_spf_all": LAB_SPF_ALL,
        **LAB_SENDING_LIMITS,
        "mail_users_password_rounds": LAB_PASSWORD_ROUNDS,
        "fail2ban_maxretry": FAIL2BAN_MAXRETRY,
        "fail2ban_findtime": FAIL2BAN_FINDTIME,
        "fail2ban_bantime": FAIL2BAN_BANTIME,
    }
    if extra_table():  # variants of the lab's own: the inventory gives both tables whole, as a provider's would
        common.update(tables())
    return {
        "all": {
            "vars": common,
            "children": {
                "fleet": {
                    "hosts": {n.short: host_vars(n) for n in topo.by_role("vps")},
                    # The rollout's health check relays to the remote domain and looks in its mailbox.
                    "vars": {"rollout_probe_rcpt": remote.address, "rollout_probe_remote_rcpt": remote.address,
                             "rollout_probe_mailbox_host": mx.short, "rollout_probe_mailbox": f"/var/mail/{remote.user}",
                             # the health check verifies the hosts' certificates: the lab CA's and pebble's root
                             "rollout_probe_cafile": f"{pki_dir}/{TRUST_BUNDLE}"},
                },
                "remote_mx": {"hosts": {n.short: host_vars(n) for n in topo.by_role("mx")}},
            },
        }
    }
