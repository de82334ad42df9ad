"""A lab's own variants given as data (MAILLAB_VARIANTS): added to the role's tables, checked by the role's rules,
placed on the VPS after the default fleet, written whole into the lab's inventory. The lab test
test_y_sixth_variant builds and checks one with real mail."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from sendmail_fleet import topology, variants

SIXTH = Path(__file__).parents[1] / "lab" / "data" / "sixth_variant.yml"


@pytest.fixture
def sixth(monkeypatch) -> dict:
    monkeypatch.setenv(variants.EXTRA_ENV, str(SIXTH))
    return yaml.safe_load(SIXTH.read_text())


def test_without_an_extra_table_the_lab_uses_the_roles_tables_alone(monkeypatch):
    monkeypatch.delenv(variants.EXTRA_ENV, raising=False)
    role = yaml.safe_load((Path(__file__).parents[2] / "roles/sendmail/defaults/main.yml").read_text())
    assert variants.tables() == {k: role[k] for k in ("sendmail_variants", "sendmail_promises")}
    assert variants.extra_variants() == [] and not variants.extra_table()
    assert "sendmail_variants" not in topology.inventory(topology.build(12), "/k", "/pki")["all"]["vars"]


def test_an_extra_variant_and_its_promises_join_the_tables_and_pass_the_roles_table_check(sixth):
    (name,) = sixth["sendmail_variants"]
    assert variants.extra_variants() == [name]
    assert name in variants.variant_names()
    assert variants.all_variants()[name].features == frozenset(sixth["sendmail_variants"][name]["features"])
    assert {c: variants.promise(name, c) for c in variants.checks()} == sixth["sendmail_promises"][name]


def test_the_default_fleet_keeps_its_variants_and_the_next_vps_runs_the_extra_one(sixth, monkeypatch):
    (name,) = sixth["sendmail_variants"]
    with_extra = [(n.short, n.variant, n.release) for n in topology.build(13).by_role("vps")]
    monkeypatch.delenv(variants.EXTRA_ENV)
    without = [(n.short, n.variant, n.release) for n in topology.build(12).by_role("vps")]
    assert with_extra[:12] == without
    assert with_extra[12][:2] == ("vps13", name)


def test_the_lab_inventory_gives_both_tables_whole_as_an_inventory_must(sixth):
    common = topology.inventory(topology.build(13), "/k", "/pki")["all"]["vars"]
    assert common["sendmail_variants"] == variants.tables()["sendmail_variants"]
    assert common["sendmail_promises"] == variants.tables()["sendmail_promises"]
    assert set(common["sendmail_variants"]) == set(variants.variant_names())


def _extra(tmp_path: Path, monkeypatch, data: object) -> None:
    path = tmp_path / "extra.yml"
    path.write_text(yaml.safe_dump(data))
    monkeypatch.setenv(variants.EXTRA_ENV, str(path))


def test_an_extra_table_may_not_replace_a_variant_of_the_role(tmp_path, monkeypatch):
    _extra(tmp_path, monkeypatch, {"sendmail_variants": {"default": {"features": ["smtp_auth"],
                                                                      "auth_only": "default-auth-only"}}})
    with pytest.raises(variants.TableError, match="must be a mapping of new variants"):
        variants.tables()


def test_an_extra_table_with_other_keys_is_refused_naming_the_two_it_may_give(tmp_path, monkeypatch):
    _extra(tmp_path, monkeypatch, {"sendmail_variant": "x"})
    with pytest.raises(variants.TableError, match="give sendmail_variants and sendmail_promises entries"):
        variants.tables()


def test_a_promise_row_that_contradicts_its_features_is_refused_as_the_role_refuses_it(tmp_path, monkeypatch, sixth):
    data = yaml.safe_load(SIXTH.read_text())
    (name,) = data["sendmail_variants"]
    data["sendmail_promises"][name]["window expiry"] = "-"  # it has POP-before-SMTP: the window's end applies
    _extra(tmp_path, monkeypatch, data)
    with pytest.raises(variants.TableError, match=rf"sendmail_promises\[{name}\]\[window expiry\] is '-'"):
        variants.promise(name, "window expiry")


def test_the_extra_variants_row_is_what_its_features_mean_to_the_independent_oracle(sixth):
    from ..promise_oracle import disagreements

    assert disagreements(sixth["sendmail_promises"], sixth["sendmail_variants"]) == []
