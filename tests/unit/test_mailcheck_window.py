"""The window expiry check waits for the window, not for a fixed time: it runs once client1's relay gets the
refusal an expired window promises (polled with RCPT only, so no mail is sent), or when the slack is spent."""

from __future__ import annotations

import time

from sendmail_fleet.mailcheck import Checks

from .test_checks_verdicts import CONNECT, DENIED, EHLO, MAIL_OK, RCPT_OK, SENT, TOPO, Lab, steps

STILL_OPEN = steps(CONNECT, EHLO, MAIL_OK, RCPT_OK)  # the RCPT-only probe: relay would still be accepted


def polled(answers: list[dict], short: str = "vps2", login_ago: float = 10.0, window: float = 10.0,
           slack: float = 5.0) -> tuple[Checks, Lab, float]:
    queue = list(answers)
    lab = Lab(lambda client, req: queue.pop(0) if len(queue) > 1 else queue[0])
    c = Checks(lab, TOPO.get(short))  # type: ignore[arg-type]
    c.pop_login_at = time.monotonic() - login_ago
    t0 = time.monotonic()
    c.await_window_end(window, slack)
    return c, lab, time.monotonic() - t0


def test_it_returns_at_the_first_refusal_after_the_window_and_sends_no_message():
    _, lab, took = polled([STILL_OPEN, STILL_OPEN, DENIED])
    assert len(lab.asked) == 3
    assert all(client == "client1" and "data" not in req and req["rcpt"] == ["carol@remote.test"]
               for client, req in lab.asked)
    assert 1.5 < took < 4.5  # two one-second pauses, well inside the slack


def test_a_relay_still_open_when_the_slack_is_spent_is_left_to_the_check_to_fail():
    c, lab, took = polled([STILL_OPEN], slack=2.0)
    assert 1.5 < took < 3.5 and len(lab.asked) >= 2
    c.lab.answer = lambda client, req: SENT  # type: ignore[attr-defined]
    r = c.window_expired()
    assert not r.passed and r.seen == "250"


def test_it_waits_out_the_window_before_asking():
    _, lab, took = polled([DENIED], login_ago=0.0, window=1.5)
    assert took >= 1.4 and len(lab.asked) == 1


def test_no_window_no_wait_where_the_variant_has_no_pop_before_smtp_or_no_login_happened():
    _, lab, took = polled([STILL_OPEN], short="vps3", login_ago=0.0, window=30.0)  # default-auth-only
    assert lab.asked == [] and took < 0.5
    c = Checks(Lab(lambda client, req: STILL_OPEN), TOPO.get("vps2"))  # type: ignore[arg-type]
    c.await_window_end(30.0, 5.0)  # pop_login_at is None: its POP3 login failed, and that check says so
    assert c.lab.asked == []  # type: ignore[attr-defined]
