"""The window expiry check waits for the window, not for a fixed time: it runs once client1's relay gets the
refusal an expired window promises (polled with RCPT only, so no mail is sent), or when the slack is spent. A fake
clock stands in for time: each sleep moves it on."""

from __future__ import annotations

import pytest

from sendmail_fleet import mailcheck
from sendmail_fleet.mailcheck import Checks

from .test_checks_verdicts import CONNECT, DENIED, EHLO, MAIL_OK, RCPT_OK, SENT, TOPO, Lab, steps

STILL_OPEN = steps(CONNECT, EHLO, MAIL_OK, RCPT_OK)  # the RCPT-only probe: relay would still be accepted


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        assert seconds > 0
        self.now += seconds


@pytest.fixture
def clock(monkeypatch) -> Clock:
    c = Clock()
    monkeypatch.setattr(mailcheck.time, "monotonic", c.monotonic)
    monkeypatch.setattr(mailcheck.time, "sleep", c.sleep)
    return c


def polled(clock: Clock, answers: list[dict], short: str = "vps2", login_ago: float = 10.0, window: float = 10.0,
           slack: float = 5.0) -> tuple[Checks, Lab, list[float]]:
    queue, asked_at = list(answers), []

    def answer(client, req):
        asked_at.append(clock.now)
        return queue.pop(0) if len(queue) > 1 else queue[0]

    lab = Lab(answer)
    c = Checks(lab, TOPO.get(short))  # type: ignore[arg-type]
    c.pop_login_at = clock.now - login_ago
    c.await_window_end(window, slack)
    return c, lab, asked_at


def test_it_returns_at_the_first_refusal_after_the_window_and_sends_no_message(clock):
    start = clock.now
    _, lab, asked_at = polled(clock, [STILL_OPEN, STILL_OPEN, DENIED])
    assert asked_at == [start, start + 1, start + 2]  # about once a second, from the window's end
    assert clock.now == start + 2  # and no longer once refused
    assert all(client == "client1" and "data" not in req and req["rcpt"] == ["carol@remote.test"]
               for client, req in lab.asked)


def test_a_relay_still_open_when_the_slack_is_spent_is_left_to_the_check_to_fail(clock):
    start = clock.now
    c, lab, asked_at = polled(clock, [STILL_OPEN], slack=3.0)
    assert asked_at == [start, start + 1, start + 2] and clock.now == start + 3
    c.lab.answer = lambda client, req: SENT  # type: ignore[attr-defined]
    r = c.window_expired()
    assert not r.passed and r.seen == "250"


def test_it_waits_out_the_window_before_asking(clock):
    start = clock.now
    _, _, asked_at = polled(clock, [DENIED], login_ago=4.0, window=30.0)
    assert asked_at == [start + 26.0]


def test_no_window_no_wait_where_the_variant_has_no_pop_before_smtp_or_no_login_happened(clock):
    start = clock.now
    _, lab, _ = polled(clock, [STILL_OPEN], short="vps3", login_ago=0.0, window=30.0)  # default-auth-only
    assert lab.asked == [] and clock.now == start
    c = Checks(Lab(lambda client, req: STILL_OPEN), TOPO.get("vps2"))  # type: ignore[arg-type]
    c.await_window_end(30.0, 5.0)  # pop_login_at is None: its POP3 login failed, and that check says so
    assert c.lab.asked == [] and clock.now == start  # type: ignore[attr-defined]
