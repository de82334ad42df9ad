"""The switch_offers filters (plugins/filter/switch_offers.py): what the switch helper verifies on each port after a
restart, derived from a variant's features; and the same for every variant of the role's table."""

from __future__ import annotations

import yaml

from sendmail_fleet import repo_root
from sendmail_fleet.collection import filter_plugin

so = filter_plugin("switch_offers")
MECHS = ["LOGIN", "PLAIN"]


def test_an_smtp_auth_variant_offers_auth_on_587_and_465_and_leaves_25_unchecked_when_an_msa_takes_submissions():
    assert so.switch_offers(["smtp_auth"], True, True, True, MECHS) == {
        "25": {"starttls": True, "auth": None}, "587": {"starttls": True, "auth": MECHS},
        "465": {"implicit_tls": True, "auth": MECHS}}


def test_a_variant_without_smtp_auth_offers_no_auth_anywhere_and_no_465():
    assert so.switch_offers(["pop_before_smtp"], True, True, True, MECHS) == {
        "25": {"starttls": True, "auth": []}, "587": {"starttls": True, "auth": []}}


def test_without_an_msa_port_25_offers_the_mechanisms_and_without_tls_nothing_listens_on_465():
    assert so.switch_offers(["smtp_auth"], False, True, False, MECHS) == {"25": {"starttls": True, "auth": MECHS}}
    assert "465" not in so.switch_offers(["smtp_auth"], True, False, True, MECHS)


def test_every_variant_of_the_roles_table_gets_the_offers_its_features_mean():
    table = yaml.safe_load((repo_root() / "roles/sendmail/defaults/main.yml").read_text())["sendmail_variants"]
    by_variant = so.switch_offers_by_variant(table, True, True, True, MECHS)
    assert set(by_variant) == set(table)
    for name, offers in by_variant.items():
        auth = "smtp_auth" in table[name]["features"]
        assert offers["587"]["auth"] == (MECHS if auth else []), name
        assert ("465" in offers) == auth, name
