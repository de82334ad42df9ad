"""The promises table (sendmail_promises) against an oracle that derives every cell from the variants' features
(tests/promise_oracle.py), and the role's own check of the table (the promises_problems filter): a wrong cell, or a
"-" that switches a check off where the variant has the feature, fails here, before any lab runs."""

from __future__ import annotations

import copy

import pytest
import yaml

from sendmail_fleet import repo_root
from sendmail_fleet.collection import filter_plugin

from ..promise_oracle import disagreements, expected

ROLE = repo_root() / "roles" / "sendmail"
VARIANTS = yaml.safe_load((ROLE / "defaults" / "main.yml").read_text())["sendmail_variants"]
PROMISES = yaml.safe_load((ROLE / "defaults" / "main.yml").read_text())["sendmail_promises"]
problems = filter_plugin("promises").promises_problems


def test_every_cell_of_the_table_is_what_the_variants_features_mean():
    assert disagreements(PROMISES, VARIANTS) == []


def test_the_oracle_knows_every_check_of_the_table_and_the_table_every_variant():
    assert set(PROMISES) == set(VARIANTS)
    for row in PROMISES.values():
        for check in row:
            expected(frozenset(), check)  # KeyError: a check whose meaning the oracle does not know


def test_the_roles_own_check_finds_nothing_wrong_with_the_table():
    assert problems(PROMISES, VARIANTS) == []


# One cell edited at a time, as a regression and a matching table edit would look: each must fail the oracle.
MUTATIONS = [
    ("default-auth-only", "relay, no auth", "250"),
    ("pop-before-smtp", "AUTH LOGIN relay", "235"),
    ("pop-before-smtp", "465 AUTH relay", "235"),
    ("pop-before-smtp", "AUTH offer", "LOGIN PLAIN"),
    ("default-auth-only", "587 no auth", "250"),
    ("default-auth-only", "client2 relay", "250"),
    ("default-procmail-lda", "procmail recipe", "inbox"),
    ("default-auth-only", "POP login relay", "250"),
    ("pop-before-smtp", "465 no auth", "530"),
    ("default", "bad/unknown AUTH", "535/550"),
    ("default-procmail-lda-auth-only", "saslauthd down", "535"),
    ("pop-before-smtp", "window expiry", "250"),
    ("default-auth-only", "DKIM signed", "unsigned"),
    ("default", "sending limit", "250"),
]
# A "-" where the variant has the feature the check is about: it would switch the check off.
DASHES = [("default", "saslauthd down"), ("default", "window expiry"), ("default-auth-only", "bad/unknown AUTH"),
          ("pop-before-smtp", "window expiry"), ("default-procmail-lda", "relay, no auth"),
          ("default-auth-only", "sending limit"), ("pop-before-smtp", "DKIM signed")]


def mutated(variant: str, check: str, value: str) -> dict:
    table = copy.deepcopy(PROMISES)
    assert str(table[variant][check]) != value, "the mutation must change the cell"
    table[variant][check] = value
    return table


@pytest.mark.parametrize(("variant", "check", "value"), MUTATIONS + [(v, c, "-") for v, c in DASHES],
                         ids=[f"{v}/{c}={x}" for v, c, x in MUTATIONS] + [f"{v}/{c}=-" for v, c in DASHES])
def test_a_wrong_cell_disagrees_with_the_oracle(variant, check, value):
    found = disagreements(mutated(variant, check, value), VARIANTS)
    assert len(found) == 1 and found[0].startswith(f"{variant} / {check}: the table says {value}"), found


@pytest.mark.parametrize(("variant", "check"), DASHES, ids=[f"{v}/{c}" for v, c in DASHES])
def test_a_dash_where_the_variant_has_the_feature_is_refused_by_the_roles_own_check(variant, check):
    found = problems(mutated(variant, check, "-"), VARIANTS)
    assert len(found) == 1 and f"sendmail_promises[{variant}][{check}] is '-'" in found[0], found


def test_a_reply_where_the_variant_lacks_the_feature_is_refused_too():
    found = problems(mutated("pop-before-smtp", "saslauthd down", "454"), VARIANTS)
    assert found == ["sendmail_promises[pop-before-smtp][saslauthd down] promises 454, but pop-before-smtp has no "
                     "smtp_auth: it must be '-'"]


def test_a_table_with_a_row_missing_or_a_check_missing_is_refused():
    short = copy.deepcopy(PROMISES)
    del short["default"]
    assert problems(short, VARIANTS) == ["sendmail_promises has no row for default"]
    short = copy.deepcopy(PROMISES)
    del short["default"]["saslauthd down"]
    assert any("[default] has other checks" in p for p in problems(short, VARIANTS))
