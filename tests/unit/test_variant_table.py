"""The variant table's rules (plugins/filter/variant_table.py): the sendmail role's table check and the phase the
rollout and the durability check read."""

from __future__ import annotations

import copy

import pytest
import yaml

from sendmail_fleet import repo_root
from sendmail_fleet.collection import filter_plugin

vt = filter_plugin("variant_table")
TABLE = yaml.safe_load((repo_root() / "roles/sendmail/defaults/main.yml").read_text())["sendmail_variants"]


def test_the_roles_own_table_is_sound():
    assert vt.variants_problems(TABLE) == []


@pytest.mark.parametrize(("features", "phase"), [(["pop_before_smtp"], "pop-before-smtp"),
                                                 (["pop_before_smtp", "smtp_auth"], "pop-before-smtp"),
                                                 (["pop_before_smtp_grace", "smtp_auth"], "grace"),
                                                 (["smtp_auth", "procmail_lda"], "auth-only")])
def test_each_variant_stands_in_one_phase_of_the_way_off_pop_before_smtp(features, phase):
    assert vt.relay_phase(features) == phase


def test_the_phases_go_forward_from_pop_before_smtp_through_grace_to_auth_only():
    assert [vt.phase_rank(p) for p in ("pop-before-smtp", "grace", "auth-only")] == [0, 1, 2]


@pytest.mark.parametrize(("edit", "says"), [
    ({"features": ["pop_before_smtp", "uucp"]}, "unknown features uucp"),
    ({"features": ["procmail_lda"]}, "no relay method"),
    ({"features": ["pop_before_smtp", "pop_before_smtp_grace", "smtp_auth"]}, "at once"),
    ({"features": ["pop_before_smtp_grace", "pop_before_smtp"]}, "at once"),
    ({"auth_only": "default"}, "auth_only 'default' is not an auth-only variant"),
    ({"auth_only": "nosuch"}, "auth_only 'nosuch' is not a variant of the table"),
    ({"grace": "default-auth-only"}, "grace 'default-auth-only' is not a grace variant"),
])
def test_a_wrong_entry_is_named_with_what_is_wrong(edit, says):
    table = copy.deepcopy(TABLE)
    table["default"] = {**table["default"], **edit}
    found = vt.variants_problems(table)
    assert len(found) == 1 and found[0].startswith("sendmail_variants[default]: ") and says in found[0], found


def test_grace_needs_smtp_auth():
    table = {**copy.deepcopy(TABLE), "odd": {"features": ["pop_before_smtp_grace"], "auth_only": "default-auth-only"}}
    assert any("pop_before_smtp_grace without smtp_auth" in p for p in vt.variants_problems(table))


def test_an_inventorys_own_features_are_checked_by_the_same_rules():
    assert vt.features_problems(["smtp_auth", "pop_before_smtp_grace"]) == []
    assert vt.features_problems(["procmail_lda"]) == ["no relay method (smtp_auth or pop_before_smtp)"]
    assert vt.features_problems(["pop_before_smtp", "pop_before_smtp_grace", "smtp_auth"]) == [
        "pop_before_smtp and pop_before_smtp_grace at once (the grace phase replaces the first)"]


@pytest.mark.parametrize(("variant", "features", "date", "want"), [
    ("default-auth-only", [], "", ("default-auth-only", ["smtp_auth"])),
    ("", ["smtp_auth", "procmail_lda"], "", ("default-procmail-lda-auth-only", ["procmail_lda", "smtp_auth"])),
    ("default", ["procmail_lda"], "", ("custom", ["procmail_lda"])),  # features given win, a set no variant has
    ("", [], "2002-08-14", ("pop-before-smtp", ["pop_before_smtp"])),
    ("", [], "2003-01-16", ("default", ["pop_before_smtp", "smtp_auth"])),
    ("no-such-variant", [], "", ("no-such-variant", [])),  # the role's check names it
    ("", [], "", ("", [])),
])
def test_the_inventory_resolves_to_one_variant_by_the_roles_rule(variant, features, date, want):
    got = vt.resolve_variant(TABLE, variant, features, date)
    assert (got["variant"], got["features"]) == want


def refusal(record, wanted: str, allow_again: bool = False, setup_date: str = "") -> str:
    """record_refusal as the sendmail role's init calls it, for vps1 with the role's table and the given variant."""
    given = "" if setup_date else wanted
    return vt.record_refusal(record, TABLE, wanted, TABLE[wanted]["features"], allow_again, "vps1",
                             "/etc/ansible/facts.d/sendmail_fleet_rollout.fact", given, setup_date)


@pytest.mark.parametrize("record", [{}, {"before": "default"}])
def test_a_host_the_rollout_never_moved_follows_the_inventory_whatever_it_asks(record):
    assert all(refusal(record, wanted) == "" for wanted in TABLE)


@pytest.mark.parametrize(("recorded", "wanted"), [("default-grace", "default-grace"), ("default-grace", "default-auth-only"),
                                                  ("default-auth-only", "default-procmail-lda-auth-only"),
                                                  ("default-procmail-lda-grace", "default-grace")])
def test_the_inventory_may_ask_for_the_recorded_phase_or_one_further_along(recorded, wanted):
    assert refusal({"variant": recorded, "switched_at": "2026-12-06T07:20:13"}, wanted) == ""


def test_asking_for_pop_before_smtp_again_on_a_host_moved_to_auth_only_is_refused_with_the_way_out():
    why = refusal({"variant": "default-auth-only", "before": "pop-before-smtp", "switched_at": "2026-12-06T07:20:13"},
                  "pop-before-smtp", setup_date="2002-11-30")
    assert why == (
        "vps1: the rollout moved this host to default-auth-only (auth-only) on 2026-12-06T07:20:13 (recorded in "
        "/etc/ansible/facts.d/sendmail_fleet_rollout.fact), but the inventory asks for pop-before-smtp "
        "(sendmail_variant=-, sendmail_setup_date=2002-11-30), which is back in the pop-before-smtp phase "
        "(POP-before-SMTP again). Nothing was changed. Set sendmail_variant: default-auth-only for this host (the "
        "rollout writes it with rollout_write_inventory=true), or set sendmail_allow_pop_before_smtp_again: true for "
        "it to go back on purpose.")
    assert refusal({"variant": "default-auth-only"}, "pop-before-smtp", allow_again=True) == ""


def test_grace_after_auth_only_is_refused_as_grace_again():
    why = refusal({"variant": "default-auth-only"}, "default-grace")
    assert "which is back in the grace phase (grace again)" in why and " on ? (recorded in" in why


def test_a_recorded_variant_the_table_does_not_know_counts_as_auth_only_so_nothing_goes_back():
    assert "back in the pop-before-smtp phase" in refusal({"variant": "gone-from-the-table"}, "default")
    assert refusal({"variant": "gone-from-the-table"}, "default-auth-only") == ""


@pytest.mark.parametrize("damaged", ["error loading facts as JSON or ini - please check content: x", ["variant"], None])
def test_a_record_that_is_not_a_json_object_stops_the_host_whatever_the_inventory_asks(damaged):
    for wanted in ("pop-before-smtp", "default-auth-only"):
        why = refusal(damaged, wanted, allow_again=True)
        assert why.startswith("vps1: the rollout's record /etc/ansible/facts.d/sendmail_fleet_rollout.fact is not a "
                              "JSON object (") and "Nothing was changed." in why
