"""The lab's shape: addresses, domains, variants, accounts, DNS records and inventory."""

import datetime as dt
import ipaddress

import pytest

from sendmail_fleet import topology
from sendmail_fleet.topology import (
    LONG_PTR_CLIENT,
    MAX_VPS,
    SETTINGS_FROM_MX,
    TopologyError,
    build,
    dnsmasq_conf,
    grace_vps,
    inventory,
    lab_grace_variant,
    setup_variants,
)
from sendmail_fleet.variants import tables, variant_for_setup_date, variant_names


def test_default_lab_has_every_variant_on_debian_13_and_on_debian_12_and_its_infrastructure():
    topo = build()
    roles = [n.role for n in topo.nodes]
    assert roles.count("vps") == 12 and roles.count("client") == 2
    assert roles.count("dns") == 1 and roles.count("mx") == 1 and roles.count("acme") == 1
    vps = topo.by_role("vps")
    assert [(n.short, n.release) for n in vps[:5]] == [(f"vps{i}", "trixie") for i in range(1, 6)]
    assert [(n.short, n.release) for n in vps[5:10]] == [(f"vps{i}", "bookworm") for i in range(6, 11)]
    for release in ("trixie", "bookworm"):  # the five set-up variants, and a grace phase
        assert sorted(n.variant for n in vps if n.release == release) == sorted(setup_variants() + ["default-grace"])
    assert [(n.short, n.variant, n.release) for n in vps[10:]] == [("vps11", "default-grace", "trixie"),
                                                                   ("vps12", "default-grace", "bookworm")]
    assert set(setup_variants()) == {v for v in variant_names() if not v.endswith("-grace")}
    assert topo.releases == ["trixie", "bookworm"]


def test_after_the_grace_vps_the_set_up_variants_go_on_where_they_stopped():
    topo = build(14)
    assert [(n.variant, n.release) for n in topo.by_role("vps")[12:]] == [("pop-before-smtp", "trixie"),
                                                                           ("default", "trixie")]


def test_a_vps_release_can_be_chosen_by_codename_or_version_and_is_in_status_json():
    topo = build(3, releases={3: "12", 1: "bookworm"})
    assert [n.release for n in topo.by_role("vps")] == ["bookworm", "trixie", "bookworm"]
    assert topo.release_overrides == {1: "bookworm", 3: "bookworm"}
    rows = {c["name"]: c for c in topo.to_json()["containers"]}
    assert (rows["maillab-vps3"]["release"], rows["maillab-vps3"]["debian"]) == ("bookworm", "12")
    assert "release" not in rows["maillab-dns"]


@pytest.mark.parametrize("bad", ["bullseye", "11", "jammy", ""])
def test_an_unsupported_release_is_refused_naming_the_supported_ones(bad):
    with pytest.raises(TopologyError, match=r"choose one of trixie \(13\), bookworm \(12\)"):
        build(2, releases={1: bad})


def test_addresses_are_unique_static_and_inside_the_subnet():
    topo = build(MAX_VPS, "10.77.0.0/24")
    addrs = [n.address for n in topo.nodes]
    assert len(set(addrs)) == len(addrs)
    net = ipaddress.ip_network("10.77.0.0/24")
    assert all(ipaddress.ip_address(a) in net for a in addrs)
    assert topo.gateway not in addrs


def test_clients_have_two_different_addresses_outside_192_0_2():
    c1, c2 = build().by_role("client")
    assert c1.address != c2.address
    assert not any(a.startswith("192.0.2.") for a in (c1.address, c2.address))


@pytest.mark.parametrize("n", [0, -1, MAX_VPS + 1])
def test_vps_count_out_of_range_is_refused(n):
    with pytest.raises(TopologyError, match=f"1 to {MAX_VPS}"):
        build(n)


@pytest.mark.parametrize("subnet", ["nonsense", "8.8.8.0/24", "10.0.0.0/28", "fd00::/64"])
def test_bad_subnets_are_refused(subnet):
    with pytest.raises(TopologyError):
        build(2, subnet)


def test_variant_override_and_cycling():
    topo = build(7, variants={2: "default-auth-only"})
    vs = [n.variant for n in topo.by_role("vps")]
    assert vs[1] == "default-auth-only"
    assert vs[6] == variant_names()[1]


def test_vps6_gets_a_set_up_date_instead_of_a_variant():
    topo = build(6)
    vps6 = topo.get("vps6")
    assert vps6.setup_date < "2003-01-16" and vps6.variant == "pop-before-smtp"
    hv = inventory(topo, "/k", "/p")["all"]["children"]["fleet"]["hosts"]["vps6"]
    assert hv["sendmail_setup_date"] == vps6.setup_date and "sendmail_variant" not in hv


def test_a_sixth_set_up_variant_in_the_table_reshapes_the_lab_without_a_code_change(monkeypatch):
    six = [*setup_variants(), "default-sixth"]
    monkeypatch.setattr(topology, "setup_variants", lambda: six)
    assert topology.default_vps() == 14
    assert topology.grace_vps() == {13: ("default-grace", "trixie"), 14: ("default-grace", "bookworm")}
    assert [topology.release_for_index(i) for i in (6, 7, 12)] == ["trixie", "bookworm", "bookworm"]
    assert [topology.variant_for_index(i) for i in (6, 7, 15)] == ["default-sixth", "pop-before-smtp",
                                                                   "pop-before-smtp"]
    assert topology.legacy_date_vps() == 7


def test_the_grace_vps_run_the_grace_phase_of_the_variant_a_vps_gets_today():
    today = tables()["sendmail_variants"][variant_for_setup_date(dt.date.today())]
    assert lab_grace_variant() == today["grace"] == "default-grace"
    assert sorted(grace_vps()) == [11, 12]


def test_every_mail_domain_has_mx_and_a_records():
    topo = build(3)
    conf = dnsmasq_conf(topo, ["mirror.invalid"])
    for n in topo.mail_hosts:
        assert f"mx-host={n.domain},{n.fqdn},10" in conf
        assert f"host-record={n.fqdn},{n.address}" in conf
    assert "no-resolv" in conf and "server=/mirror.invalid/127.0.0.11" in conf
    assert conf.count("server=") == 1, "nothing but the mirror is forwarded"


def test_client2_has_a_reverse_name_longer_than_sendmails_relay_field_and_both_names_resolve():
    topo = build(2)
    c2 = topo.get(LONG_PTR_CLIENT)
    assert len(c2.ptr) > 120 and all(len(label) <= 63 for label in c2.ptr.split("."))
    conf = dnsmasq_conf(topo, [])
    # dnsmasq: the first name of a host-record is the address's PTR, and every name gets an A record
    assert f"host-record={c2.ptr},{c2.fqdn},{c2.address}" in conf.splitlines()
    assert f"host-record={topo.get('client1').fqdn},{topo.get('client1').address}" in conf.splitlines()


def test_status_json_shape():
    data = build(2).to_json()
    for c in data["containers"]:
        assert {"name", "role", "address"} <= set(c)
        assert c["role"] in ("dns", "acme", "vps", "mx", "client")
        if c["role"] == "vps":
            assert c["domain"] and c["variant"]
    for a in data["accounts"]:
        assert set(a) == {"host", "user", "address", "password"}
        assert a["address"].startswith(a["user"] + "@")


def test_inventory_groups_fleet_and_mx_with_ssh_key():
    inv = inventory(build(2), "/k/id", "/pki")
    assert set(inv["all"]["children"]["fleet"]["hosts"]) == {"vps1", "vps2"}
    assert set(inv["all"]["children"]["remote_mx"]["hosts"]) == {"mx"}
    assert inv["all"]["vars"]["ansible_ssh_private_key_file"] == "/k/id"
    vps1 = inv["all"]["children"]["fleet"]["hosts"]["vps1"]
    assert vps1["sendmail_variant"] == "pop-before-smtp" and vps1["tls_ca_src"] == "/pki/ca.crt"


def test_variant_and_release_choices_travel_with_the_topology_and_survive_a_resize():
    topo = build(3, variants={2: "default-auth-only", 5: "default"}, releases={3: "bookworm"})
    assert topo.variant_overrides == {2: "default-auth-only"}  # VPS 5 does not exist in a 3-VPS lab
    bigger = topo.changed(6, releases={1: "12"})
    assert bigger.get("vps2").variant == "default-auth-only"
    assert [n.release for n in bigger.by_role("vps")] == ["bookworm", "trixie", "bookworm", "trixie", "trixie",
                                                          "bookworm"]


def test_the_lab_inventory_gets_certificates_from_the_lab_acme_ca_and_keeps_the_controller_pair_at_hand():
    inv = inventory(build(2), "/k", "/pki")
    common = inv["all"]["vars"]
    assert common["tls_source"] == "acme" and common["tls_acme_directory"] == "https://acme.lab.test:14000/dir"
    assert common["tls_acme_ca_bundle"] == "/pki/ca.crt"
    vps1 = inv["all"]["children"]["fleet"]["hosts"]["vps1"]
    assert vps1["tls_acme_email"] == "postmaster@vps1.test" and vps1["tls_cert_src"] == "/pki/vps1.crt"
    assert inv["all"]["children"]["fleet"]["vars"]["rollout_probe_cafile"] == "/pki/trust.pem"


def test_the_lab_dns_points_each_domains_settings_names_at_the_host_that_publishes_them():
    topo = build()
    conf = dnsmasq_conf(topo, []).splitlines()
    mx = topo.get("mx")
    for n in topo.by_role("vps"):
        web = mx if int(n.short[3:]) in SETTINGS_FROM_MX else n
        assert f"host-record=autoconfig.{n.domain},autodiscover.{n.domain},{web.address}" in conf
    # the SRV records are the settings helper's: SMTP-Auth where the variant has it, "not offered" elsewhere
    assert "srv-host=_submission._tcp.vps3.test,mail.vps3.test,587,0,1" in conf  # default-auth-only
    assert "srv-host=_submission._tcp.vps1.test" in conf  # pop-before-smtp: no SMTP-Auth to submit with
    assert "srv-host=_pop3s._tcp.vps1.test,mail.vps1.test,995,0,1" in conf


def test_the_lab_inventory_has_every_host_publish_its_settings_but_those_the_mx_publishes():
    inv = inventory(build(), "key", "pki")["all"]
    assert inv["vars"]["mail_client_setup"] is True
    fleet = inv["children"]["fleet"]["hosts"]
    assert [h for h, hv in fleet.items() if hv.get("mail_client_setup") is False] == \
        [f"vps{i}" for i in SETTINGS_FROM_MX]
    assert inv["children"]["remote_mx"]["hosts"]["mx"]["mail_host_client_setup_for"] == \
        [f"vps{i}" for i in SETTINGS_FROM_MX]


def test_the_lab_writes_each_accounts_hash_the_one_the_mail_users_role_makes_from_its_password(tmp_path):
    from pathlib import Path

    import yaml
    from ansible.parsing.dataloader import DataLoader
    from ansible.template import Templar, trust_as_template

    from sendmail_fleet import repo_root
    from sendmail_fleet.lab import Paths, password_hashes

    topo = build(1)
    paths = Paths(tmp_path)
    hashes = password_hashes(paths, topo)
    vps1 = topo.get("vps1")
    inv = inventory(topo, "k", "p", hashes)["all"]
    accounts = inv["children"]["fleet"]["hosts"]["vps1"]["mail_users_accounts"]
    tasks = yaml.safe_load((repo_root() / "roles/mail_users/tasks/accounts.yml").read_text())
    expr = next(t for t in tasks if t["name"] == "Users | Accounts")["ansible.builtin.user"]["password"]
    for entry, account in zip(accounts, vps1.accounts, strict=True):
        role_hash = Templar(loader=DataLoader(), variables={
            "item": {"name": account.user, "password": account.password}, "inventory_hostname": "vps1",
            "mail_users_password_rounds": inv["vars"]["mail_users_password_rounds"],
        }).template(trust_as_template(expr))
        assert entry == {"name": account.user, "password": account.password, "password_hash": role_hash}
    store = Path(tmp_path / "password-hashes.json")
    assert store.stat().st_mode & 0o077 == 0, "the hashes file is the owner's alone"
    assert all(a.password not in store.read_text() for a in vps1.accounts)
    # Kept: a second inventory needs no hashing (a changed password would be hashed anew).
    store.write_text(store.read_text().replace("$6$", "$6$KEPT"))
    assert password_hashes(paths, topo)(vps1.accounts[0], vps1).startswith("$6$KEPT")
