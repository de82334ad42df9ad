"""The per-mailbox sending limit (roles/sending_limits/files/sending_limit_milter.py): what a mailbox may send over the
sliding period, per message and per recipient, each mailbox on its own; the settings it refuses; the status the fleet
report reads. The milter glue itself runs under sendmail in the lab (tests/lab/test_c_sending_limits.py)."""

from __future__ import annotations

import json
import threading

import pytest

from sendmail_fleet.host import load

sl = load("sending_limits")


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


def settings(**over) -> object:
    raw = {"period": 3600, "default": {"messages": 3, "recipients": 5}, "mailboxes": {},
           "listen": "inet:8892@127.0.0.1", "status_file": "/run/x/status.json"}
    raw.update(over)
    return sl.parse_settings(raw)


def ledger(**over) -> tuple[object, Clock]:
    clock = Clock()
    return sl.Ledger(settings(**over), clock=clock), clock


def send(book, mailbox: str, recipients: int = 1) -> str | None:
    """One message as the milter sees it: MAIL, then each RCPT, then the end of the message; the first refusal."""
    if reason := book.may_send(mailbox):
        return reason
    taken = 0
    for _ in range(recipients):
        if reason := book.may_add_recipient(mailbox, taken):
            break
        taken += 1
    if taken:
        book.sent(mailbox, taken)
    return reason


def test_a_mailbox_sends_its_limit_of_messages_and_the_next_is_refused_with_when_to_try_again():
    book, clock = ledger()
    for _ in range(3):
        assert send(book, "alice@vps3.test") is None
        clock.now += 60
    reason = send(book, "alice@vps3.test")
    assert reason == ("alice@vps3.test has sent 3 messages in the last 60 minutes, its limit: "
                      "try again in 57 minutes")


def test_a_short_period_is_said_in_seconds_and_a_long_one_in_minutes():
    book, clock = ledger(period=30)
    for _ in range(3):
        send(book, "alice")
    clock.now += 12
    assert send(book, "alice") == "alice has sent 3 messages in the last 30 seconds, its limit: try again in 18 seconds"
    assert [sl.duration(s) for s in (0.2, 1, 119, 120, 121, 3600)] == [
        "1 second", "1 second", "119 seconds", "2 minutes", "3 minutes", "60 minutes"]


def test_another_mailbox_on_the_same_host_still_sends_while_one_is_held():
    book, _ = ledger()
    for _ in range(3):
        send(book, "alice@vps3.test")
    assert send(book, "alice@vps3.test") is not None
    assert send(book, "bob@vps3.test") is None


def test_after_the_period_the_oldest_message_leaves_the_window_and_the_mailbox_sends_again():
    book, clock = ledger()
    for _ in range(3):
        send(book, "alice@vps3.test")
        clock.now += 10
    assert send(book, "alice@vps3.test") is not None
    clock.now += 3600 - 30  # the first message is exactly one period old: it no longer counts
    assert send(book, "alice@vps3.test") is None
    assert send(book, "alice@vps3.test") is not None  # the second and third still count, with the new one


def test_recipients_over_the_limit_are_refused_one_by_one_and_the_rest_of_the_message_goes():
    book, _ = ledger()
    assert book.may_send("alice@vps3.test") is None
    replies = [book.may_add_recipient("alice@vps3.test", n) for n in range(5)]
    assert replies == [None] * 5
    for _ in range(2):  # the milter takes no refused recipient: each further one meets the same five
        assert "alice@vps3.test has sent to 5 recipients in the last" in book.may_add_recipient("alice@vps3.test", 5)
    book.sent("alice@vps3.test", 5)
    assert "sent to 5 recipients" in book.may_send("alice@vps3.test")  # no recipient left in the period: MAIL waits


def test_recipients_of_earlier_messages_count_against_a_later_one():
    book, _ = ledger()
    assert send(book, "alice@vps3.test", recipients=4) is None
    assert book.may_send("alice@vps3.test") is None
    assert book.may_add_recipient("alice@vps3.test", 0) is None
    assert book.may_add_recipient("alice@vps3.test", 1) is not None


def test_a_mailbox_with_its_own_limit_gets_it_and_the_name_matches_in_any_case():
    book, _ = ledger(mailboxes={"News@vps3.test": {"messages": 5, "recipients": 50}})
    for _ in range(5):
        assert send(book, "news@VPS3.test") is None
    assert send(book, "NEWS@vps3.test") is not None
    assert send(book, "alice@vps3.test") is None


def test_the_same_mailbox_in_other_letter_case_shares_one_count():
    book, _ = ledger()
    for name in ("alice@vps3.test", "Alice@vps3.test", "ALICE@VPS3.TEST"):
        assert send(book, name) is None
    assert send(book, "alice@vps3.test") is not None


def test_a_held_mailbox_is_in_the_status_with_its_refusals_until_a_period_after_the_last():
    book, clock = ledger()
    for _ in range(3):
        send(book, "alice@vps3.test")
    for _ in range(2):
        book.refused("alice@vps3.test")
        clock.now += 5
    status = book.status()
    assert status["held"]["alice@vps3.test"]["refused"] == 2 and status["period"] == 3600
    rows = sl.held_now(json.loads(json.dumps(status)), clock.now)
    assert [(r["mailbox"], r["refused"]) for r in rows] == [("alice@vps3.test", 2)]
    assert sl.held_now(status, clock.now + 3600) == []
    clock.now += 3600
    assert book.status()["held"] == {}


def test_the_status_reader_survives_a_hostile_or_broken_status_file():
    now = 2_000_000.0
    bad = {"period": 3600, "held": {"x\r\nFAKE: y%n": {"last": now - 1, "since": now - 9, "refused": 3},
                                    "no-last": {"refused": 1}, "not-a-dict": 5}}
    rows = sl.held_now(bad, now)
    assert [r["mailbox"] for r in rows] == ["x??FAKE:?y?n"]
    assert sl.held_now({}, now) == []


def test_mailbox_names_go_into_replies_and_logs_without_control_characters_spaces_or_percent():
    assert sl.printable("a\nb c%d\x00e" + "f" * 400) == "a?b?c?d?e" + "f" * 245
    assert sl.printable("jos\u00e9\u202e@x") == "jos??@x"  # no non-ASCII, no direction override
    assert sl.printable("") == "?"


def test_concurrent_sessions_of_one_mailbox_do_not_lose_counts():
    book, _ = ledger(default={"messages": 10_000, "recipients": 100_000})

    def many() -> None:
        for _ in range(500):
            book.sent("alice@vps3.test", 2)

    threads = [threading.Thread(target=many) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    window = book._window("alice@vps3.test", book.clock())
    assert len(window) == 2000 and sum(n for _, n in window) == 4000


@pytest.mark.parametrize("over, named", [
    ({"period": 5}, "period"),
    ({"period": "3600"}, "period"),
    ({"period": True}, "period"),
    ({"default": {"messages": 0, "recipients": 5}}, "default.messages"),
    ({"default": {"messages": 3}}, "default"),
    ({"default": {"messages": 3, "recipients": 5, "extra": 1}}, "default"),
    ({"mailboxes": {"alice@vps3.test": {"messages": "9", "recipients": 5}}}, "mailboxes[alice@vps3.test].messages"),
    ({"mailboxes": {"two words@x": {"messages": 9, "recipients": 5}}}, "mailboxes: 'two words@x' is not a mailbox"),
    ({"mailboxes": ["alice"]}, "mailboxes"),
    ({"listen": "inet:8892@127.0.0.1; rm -rf /"}, "listen"),
    ({"status_file": "relative.json"}, "status_file"),
])
def test_settings_it_cannot_use_are_refused_naming_the_setting(over, named):
    with pytest.raises(ValueError, match="^" + __import__("re").escape(named)):
        settings(**over)


def test_check_reads_the_settings_file_and_status_prints_the_held_mailboxes(tmp_path, capsys):
    status = tmp_path / "status.json"
    conf = tmp_path / "limits.json"
    conf.write_text(json.dumps({"period": 3600, "default": {"messages": 3, "recipients": 5},
                                "listen": "inet:8892@127.0.0.1", "status_file": str(status)}))
    assert sl.main(["check", "--settings", str(conf)]) == 0
    assert sl.main(["status", "--settings", str(conf)]) == 0
    assert json.loads(capsys.readouterr().out) == {"held": []}
    book = sl.Ledger(sl.load_settings(str(conf)))
    book.refused("bob@vps8.test")
    sl.write_status(str(status), book.status())
    assert sl.main(["status", "--settings", str(conf)]) == 0
    assert [r["mailbox"] for r in json.loads(capsys.readouterr().out)["held"]] == ["bob@vps8.test"]
    conf.write_text("{")
    assert sl.main(["check", "--settings", str(conf)]) == 2
    assert str(conf) in capsys.readouterr().err
