"""The rollout test's count of refused submissions (tests/refusals.py): only a POP-before-SMTP relay refused with
550 5.7.1 by a host that no longer has POP-before-SMTP was promised; every other refusal fails the test."""

from __future__ import annotations

from sendmail_fleet.variants import promise

from ..refusals import POP_BEFORE_SMTP, SMTP_AUTH, Refusal, unpromised

RELAY_DENIED = "5.7.1 <carol@remote.test>... Relaying denied. Proper authentication required."


def test_a_pop_before_smtp_relay_refused_by_a_switched_host_was_promised():
    assert unpromised([Refusal("vps2", POP_BEFORE_SMTP, 550, RELAY_DENIED, "default-auth-only")], promise) == []


def test_one_submission_refused_with_550_fails_the_test_whatever_else_went_well():
    planted = Refusal("vps3", SMTP_AUTH, 550, RELAY_DENIED, "default-auth-only")
    promised = Refusal("vps2", POP_BEFORE_SMTP, 550, RELAY_DENIED, "default-auth-only")
    assert unpromised([promised, planted], promise) == [planted]


def test_a_pop_before_smtp_relay_refused_by_a_host_that_still_has_it_was_not_promised():
    rolled_back = Refusal("vps6", POP_BEFORE_SMTP, 550, RELAY_DENIED, "pop-before-smtp")
    assert unpromised([rolled_back], promise) == [rolled_back]


def test_other_codes_and_giving_up_were_not_promised():
    refusals = [Refusal("vps1", POP_BEFORE_SMTP, 554, "5.7.1 rejected", "default-auth-only"),
                Refusal("vps1", POP_BEFORE_SMTP, 550, "5.1.1 user unknown", "default-auth-only"),
                Refusal("vps4", SMTP_AUTH, 535, "5.7.0 authentication failed", "default-procmail-lda-auth-only"),
                Refusal("vps5", SMTP_AUTH, None, "gave up after 8 tries", "default-procmail-lda-auth-only")]
    assert unpromised(refusals, promise) == refusals
