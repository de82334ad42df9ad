"""Real mail through every variant: clients in their own containers, delivery checked in the mailboxes.

The checks run once per session, by `maillab demo` itself (conftest.demo_run; VPSes in parallel, see
mailcheck.run_all); each test states one promise and asserts that the reply code a client saw (and the mailbox)
is what the sendmail role's promises table (`sendmail_promises`) says for that VPS's variant, and what the variant's
features mean (tests/promise_oracle.py, written without reading the table): a server regression that came with a
matching table edit fails here.
"""

import pytest

from sendmail_fleet.mailcheck import Result
from sendmail_fleet.variants import all_variants, checks, promise

from ..promise_oracle import expected
from .conftest import VPS, VPS_IDS

every_vps = pytest.mark.parametrize("node", VPS, ids=VPS_IDS)


def vps_with(feature: str):
    """Parametrize over the VPSes whose variant has this feature (the others do not make the promise)."""
    chosen = [(n, i) for n, i in zip(VPS, VPS_IDS, strict=True) if feature in all_variants()[n.variant].features]
    return pytest.mark.parametrize("node", [n for n, _ in chosen], ids=[i for _, i in chosen])


def assert_check(mail_results, node, check: str) -> Result:
    r = next(r for r in mail_results[node.short].results if r.check == check)
    want = promise(node.variant, check)
    assert r.passed and r.seen == want, f"{node.short} ({node.variant}) {check}: promised {want}, saw {r.seen}: {r.detail}"
    meant = expected(all_variants()[node.variant].features, check)
    assert r.seen == meant, f"{node.short} ({node.variant}) {check}: its features mean {meant}, saw {r.seen}"
    return r


@every_vps
def test_local_mail_to_an_existing_user_is_delivered_to_the_mailbox(mail_results, node):
    assert_check(mail_results, node, "local mail")


@every_vps
def test_mail_to_an_unknown_local_user_is_refused_with_550_5_1_1(mail_results, node):
    assert_check(mail_results, node, "unknown user")


@every_vps
def test_unauthenticated_relay_is_refused_with_550_5_7_1(mail_results, node):
    assert_check(mail_results, node, "relay, no auth")


@every_vps
def test_submission_on_587_without_auth_gets_530_where_smtp_auth_is_required(mail_results, node):
    assert_check(mail_results, node, "587 no auth")


@every_vps
def test_auth_plain_and_login_are_offered_only_after_starttls_and_only_with_smtp_auth(mail_results, node):
    assert_check(mail_results, node, "AUTH offer")


@every_vps
@pytest.mark.parametrize("mech", ["PLAIN", "LOGIN"])
def test_auth_with_a_good_password_gets_235_and_relayed_mail_reaches_the_remote_mailbox(mail_results, node, mech):
    assert_check(mail_results, node, f"AUTH {mech} relay")


@every_vps
def test_submission_on_465_without_auth_gets_530_and_465_is_closed_without_smtp_auth(mail_results, node):
    assert_check(mail_results, node, "465 no auth")


@every_vps
def test_auth_on_465_over_verified_tls_gets_235_and_relayed_mail_reaches_the_remote_mailbox(mail_results, node):
    assert_check(mail_results, node, "465 AUTH relay")


@vps_with("smtp_auth")
def test_a_wrong_password_and_an_unknown_user_get_the_same_535(mail_results, node):
    assert_check(mail_results, node, "bad/unknown AUTH")


@every_vps
def test_a_failed_pop3_login_opens_no_relay(mail_results, node):
    assert_check(mail_results, node, "bad POP login")


@every_vps
def test_a_pop3_login_opens_relay_from_that_client_only_in_pop_before_smtp_variants(mail_results, node):
    assert_check(mail_results, node, "POP login relay")


@every_vps
def test_submission_without_auth_after_a_pop3_login_relays_only_in_the_legacy_variant_and_gets_450_in_grace(
        mail_results, node):
    assert_check(mail_results, node, "POP login 587")


@vps_with("pop_before_smtp_grace")
def test_in_grace_a_pop3_login_gets_450_4_7_1_that_names_the_help_page(mail_results, node):
    r = assert_check(mail_results, node, "POP login relay")
    assert r.seen == "450"


@vps_with("pop_before_smtp_grace")
def test_in_grace_an_excepted_mailbox_still_relays_after_its_pop3_login_and_the_mail_arrives(mail_results, node):
    assert_check(mail_results, node, "excepted POP relay")


@every_vps
def test_another_client_stays_refused_after_the_first_logs_in(mail_results, node):
    assert_check(mail_results, node, "client2 relay")


@every_vps
def test_relay_closes_again_after_the_pop_before_smtp_window(mail_results, node):
    assert_check(mail_results, node, "window expiry")


@every_vps
def test_user_procmail_recipes_file_mail_only_where_procmail_delivers(mail_results, node):
    assert_check(mail_results, node, "procmail recipe")


@vps_with("smtp_auth")
def test_with_saslauthd_stopped_auth_on_587_gets_454_4_7_0_and_relay_stays_closed(mail_results, node):
    assert_check(mail_results, node, "saslauthd down")


def test_every_check_of_the_promises_table_ran_on_every_vps(mail_results):
    for node in VPS:
        assert sorted(r.check for r in mail_results[node.short].results) == sorted(checks()), node.short
