"""The client_site and client_names filters (plugins/filter/client_site.py): one host's variables as the
client_setup role's site, and the web names a list of sites is served on."""

from __future__ import annotations

import pytest

from sendmail_fleet.collection import filter_plugin

cs = filter_plugin("client_site")

HOST = {"inventory_hostname": "vps3", "mail_domain": "VPS3.test", "mail_fqdn": "mail.vps3.test",
        "sendmail_effective_features": ["smtp_auth"], "sendmail_smtps": True,
        "mail_users_accounts": [{"name": "bob", "password": "secret-b"}, {"name": "alice", "password": "secret-a"},
                                {"name": "gone", "password": "x", "state": "absent"}]}


def test_a_host_becomes_a_site_with_no_account_name_and_no_password():
    site = cs.client_site(HOST)
    assert site == {"domain": "vps3.test", "server": "mail.vps3.test", "smtp_auth": True, "pop_before_smtp": False,
                    "smtps": True}
    assert "secret" not in repr(site) and "alice" not in repr(site)


def test_a_legacy_host_offers_pop_before_smtp_and_no_465():
    site = cs.client_site({**HOST, "sendmail_effective_features": ["pop_before_smtp"]})
    assert (site["smtp_auth"], site["pop_before_smtp"], site["smtps"]) == (False, True, False)


def test_the_server_name_falls_back_to_the_hosts_fqdn_fact():
    hv = {k: v for k, v in HOST.items() if k != "mail_fqdn"}
    assert cs.client_site({**hv, "ansible_facts": {"fqdn": "vps3.hosting.example"}})["server"] == "vps3.hosting.example"


@pytest.mark.parametrize(("drop", "message"), [("mail_domain", "vps3: no mail_domain"),
                                               ("sendmail_effective_features", "vps3: its inventory names no known")])
def test_a_host_that_cannot_be_published_is_named_with_the_reason(drop, message):
    with pytest.raises(cs.SiteError, match=message):
        cs.client_site({k: v for k, v in HOST.items() if k != drop})


def test_the_web_names_are_autoconfig_and_autodiscover_and_the_domain_when_served():
    sites = [{"domain": "a.test"}, {"domain": "B.test"}]
    assert cs.client_names(sites) == ["autoconfig.a.test", "autodiscover.a.test", "autoconfig.b.test",
                                      "autodiscover.b.test"]
    assert cs.client_names(sites, True)[-2:] == ["a.test", "b.test"]


def test_a_host_outside_the_play_is_published_by_its_inventorys_variant_by_the_roles_rule():
    """site.yml --limit to the host that publishes it: no resolved features, so the inventory's variant counts."""
    import yaml

    from sendmail_fleet import repo_root
    table = yaml.safe_load((repo_root() / "roles/sendmail/defaults/main.yml").read_text())["sendmail_variants"]
    outside = {k: v for k, v in HOST.items() if k != "sendmail_effective_features"}
    assert cs.client_site({**outside, "sendmail_variant": "default-auth-only"}, table)["smtp_auth"] is True
    legacy = cs.client_site({**outside, "sendmail_setup_date": "2002-08-14"}, table)
    assert (legacy["smtp_auth"], legacy["pop_before_smtp"]) == (False, True)
    grace = cs.client_site({**outside, "sendmail_features": ["pop_before_smtp_grace", "smtp_auth"]}, table)
    assert (grace["smtp_auth"], grace["pop_before_smtp"]) == (True, False)
    with pytest.raises(cs.SiteError, match="vps3: its inventory names no known variant .*no-such"):
        cs.client_site({**outside, "sendmail_variant": "no-such"}, table)


def test_each_domain_whose_zone_the_helper_printed_gets_its_snippet_file_and_a_failed_one_none():
    from sendmail_fleet.collection import filter_plugin

    results = [{"item": {"domain": "Vps1.TEST"}, "rc": 0, "stdout": "_submission._tcp.vps1.test. SRV 0 1 587 x."},
               {"item": {"domain": "broken.test"}, "rc": 1, "stdout": ""}]
    assert filter_plugin("client_site").zone_files(results, "/r/dns/") == [
        {"path": "/r/dns/vps1.test.zone", "content": "_submission._tcp.vps1.test. SRV 0 1 587 x.\n", "mode": "0644"}]
