"""The dkim role's plan (plugins/filter/dkim.py): which keys a host holds for its domains and selectors, which go
when their date has passed, and what is wrong with the settings; and the host's listing read back as public keys."""

from __future__ import annotations

from sendmail_fleet.collection import filter_plugin

dkim = filter_plugin("dkim")
KEY = "MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEA" + "x" * 40
DIR = "/etc/sendmail-fleet/dkim"


def test_each_domain_gets_a_key_for_the_signing_selector_and_one_for_each_published_selector():
    plan = dkim.dkim_plan(["Vps1.Test."], "fleet2", [{"selector": "fleet3"}, {"selector": "fleet1",
                                                                          "until": "2026-12-31"}], DIR, "2026-12-04")
    assert plan["problems"] == [] and plan["retired"] == []
    assert [(k["domain"], k["selector"], k["signs"]) for k in plan["keys"]] == [
        ("vps1.test", "fleet2", True), ("vps1.test", "fleet3", False), ("vps1.test", "fleet1", False)]
    assert plan["keys"][0]["path"] == f"{DIR}/vps1.test.fleet2.private"
    assert {f["mode"] for f in plan["key_files"]} == {"0640"} and len(plan["key_files"]) == 3


def test_a_selector_past_its_until_date_is_no_longer_held_so_its_key_goes():
    plan = dkim.dkim_plan(["vps1.test"], "fleet2", [{"selector": "fleet1", "until": "2026-12-03"}], DIR,
                          "2026-12-04")
    assert plan["retired"] == ["fleet1"] and [k["selector"] for k in plan["keys"]] == ["fleet2"]
    listing = f"vps1.test.fleet2.private {KEY}\nvps1.test.fleet1.private {KEY}\nold.test.x.private {KEY}\n"
    found = dkim.dkim_public_keys(listing, plan)
    assert found["keys"] == [{"domain": "vps1.test", "selector": "fleet2", "key": KEY}]
    assert found["extra"] == ["old.test.x.private", "vps1.test.fleet1.private"]  # no key outlives its removal


def test_bad_settings_are_named_with_the_variable():
    plan = dkim.dkim_plan(["not a domain", "a.test"], "Bad_Selector", [{"selector": "a.test"},
                                                                      {"selector": "ok", "until": "soon"}], DIR,
                          "2026-12-04")
    text = "; ".join(plan["problems"])
    assert "dkim_domains: 'not a domain'" in text and "dkim_selector: 'Bad_Selector'" in text
    assert "dkim_publish_selectors[0].selector: 'a.test'" in text and "dkim_publish_selectors[1].until: 'soon'" in text
    assert dkim.dkim_plan([], "fleet1", [], DIR, "2026-12-04")["problems"] == [
        "dkim_domains is empty: name the mail domains to sign for"]


def test_a_listing_line_without_a_usable_public_key_publishes_nothing_for_it():
    plan = dkim.dkim_plan(["vps1.test"], "fleet1", [], DIR, "2026-12-04")
    assert dkim.dkim_public_keys("vps1.test.fleet1.private \n", plan)["keys"] == []
    assert dkim.dkim_public_keys('vps1.test.fleet1.private AAAA" "v=spf1 +all\n', plan)["keys"] == []


def test_the_mail_sender_of_a_host_lists_its_addresses_and_its_own_domains_keys():
    site = filter_plugin("client_site")
    hv = {"mail_domain": "vps1.test", "ansible_host": "192.0.2.21",
          "ansible_facts": {"default_ipv4": {"address": "192.0.2.21"}, "default_ipv6": {}},
          "dkim_public_keys": [{"domain": "vps1.test", "selector": "fleet1", "key": KEY},
                               {"domain": "other.test", "selector": "fleet1", "key": KEY}]}
    sender = site.mail_sender(hv, "-all")
    assert sender == {"addresses": ["192.0.2.21"], "dkim": [{"selector": "fleet1", "key": KEY}], "spf_all": "-all",
                      "dmarc_policy": "none", "dmarc_rua": ""}
    # Not in this play (site.yml --limit to the publishing host): its inventory address, and no key known.
    assert site.mail_sender({"mail_domain": "vps1.test", "ansible_host": "192.0.2.21"})["addresses"] == ["192.0.2.21"]
    assert site.mail_sender({"mail_domain": "vps1.test", "ansible_host": "vps1.example"})["addresses"] == []
    assert site.mail_sender({**hv, "mail_host_spf_addresses": ["198.51.100.7"]})["addresses"] == ["198.51.100.7"]
