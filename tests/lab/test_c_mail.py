"""Real mail through every variant: clients in their own containers, delivery checked in the mailboxes.

The checks run once per session (VPSes in parallel, see mailcheck.run_all); each test states one promise
and asserts on the reply codes and mailboxes that check recorded.
"""

import pytest

from sendmail_fleet.mailcheck import Result
from sendmail_fleet.variants import all_variants

from .conftest import VPS, VPS_IDS

every_vps = pytest.mark.parametrize("node", VPS, ids=VPS_IDS)


def vps_with(feature: str):
    """Parametrize over the VPSes whose variant has this feature (the others do not make the promise)."""
    chosen = [(n, i) for n, i in zip(VPS, VPS_IDS) if feature in all_variants()[n.variant].features]
    return pytest.mark.parametrize("node", [n for n, _ in chosen], ids=[i for _, i in chosen])


def result(mail_results, node, check: str) -> Result:
    return next(r for r in mail_results[node.short].results if r.check == check)


def features(node):
    return all_variants()[node.variant]


def assert_check(mail_results, node, check):
    r = result(mail_results, node, check)
    assert r.passed, f"{node.short} ({node.variant}) {check}: saw {r.seen}: {r.detail}"
    return r


@every_vps
def test_local_mail_to_an_existing_user_is_delivered_to_the_mailbox(mail_results, node):
    assert assert_check(mail_results, node, "local mail").seen == "250"


@every_vps
def test_mail_to_an_unknown_local_user_is_refused_with_550_5_1_1(mail_results, node):
    assert assert_check(mail_results, node, "unknown user").seen == "550"


@every_vps
def test_unauthenticated_relay_is_refused_with_550_5_7_1(mail_results, node):
    assert assert_check(mail_results, node, "relay, no auth").seen == "550"


@every_vps
def test_submission_on_587_without_auth_gets_530_where_smtp_auth_is_required(mail_results, node):
    r = assert_check(mail_results, node, "587 no auth")
    assert r.seen == ("530" if features(node).smtp_auth else "550")


@every_vps
def test_auth_plain_and_login_are_offered_only_after_starttls_and_only_with_smtp_auth(mail_results, node):
    r = assert_check(mail_results, node, "AUTH offer")
    assert (r.seen != "none") == features(node).smtp_auth


@every_vps
@pytest.mark.parametrize("mech", ["PLAIN", "LOGIN"])
def test_auth_with_a_good_password_gets_235_and_relayed_mail_reaches_the_remote_mailbox(mail_results, node, mech):
    r = assert_check(mail_results, node, f"AUTH {mech} relay")
    assert r.seen == ("235" if features(node).smtp_auth else "503")


@vps_with("smtp_auth")
def test_a_wrong_password_and_an_unknown_user_get_the_same_535(mail_results, node):
    assert assert_check(mail_results, node, "bad/unknown AUTH").seen == "535/535"


@every_vps
def test_a_failed_pop3_login_opens_no_relay(mail_results, node):
    assert assert_check(mail_results, node, "bad POP login").seen == "550"


@every_vps
def test_a_pop3_login_opens_relay_from_that_client_only_in_pop_before_smtp_variants(mail_results, node):
    r = assert_check(mail_results, node, "POP login relay")
    assert r.seen == ("250" if features(node).pop_before_smtp else "550")


@every_vps
def test_another_client_stays_refused_after_the_first_logs_in(mail_results, node):
    assert assert_check(mail_results, node, "client2 relay").seen == "550"


@vps_with("pop_before_smtp")
def test_relay_closes_again_after_the_pop_before_smtp_window(mail_results, node):
    assert assert_check(mail_results, node, "window expiry").seen == "550"


@every_vps
def test_user_procmail_recipes_file_mail_only_where_procmail_delivers(mail_results, node):
    r = assert_check(mail_results, node, "procmail recipe")
    assert r.seen == ("folder" if features(node).procmail_lda else "inbox")


@vps_with("smtp_auth")
def test_with_saslauthd_stopped_auth_on_587_gets_454_4_7_0_and_relay_stays_closed(mail_results, node):
    assert assert_check(mail_results, node, "saslauthd down").seen == "454"
