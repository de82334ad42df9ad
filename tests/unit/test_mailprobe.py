"""The rollout's probe checks certificates when asked (the rollout's default, and every lab client), and only then."""

import ssl

import pytest

from sendmail_fleet.host import load

probe = load("mailprobe")


def test_with_verify_the_certificate_chain_and_the_server_name_are_checked():
    ctx = probe._ctx({"verify": True})
    assert ctx.verify_mode == ssl.CERT_REQUIRED and ctx.check_hostname


def test_the_name_checked_is_the_mail_name_even_when_connecting_to_an_address():
    assert probe._name({"server": "198.51.100.12", "server_name": "mail.example.test"}) == "mail.example.test"
    assert probe._name({"server": "mail.example.test"}) == "mail.example.test"


def test_without_verify_nothing_is_checked():
    ctx = probe._ctx({})
    assert ctx.verify_mode == ssl.CERT_NONE and not ctx.check_hostname


def test_a_server_that_does_not_answer_is_a_step_not_a_crash():
    out = probe.smtp({"server": "127.0.0.1", "port": 9, "timeout": 2})
    assert out["ok"] is False and out["steps"][-1]["step"] == "error"


@pytest.mark.parametrize("argv", [[], ["--help"], ["smtp"], ["imap", "{}"], ["smtp", "{not json"]])
def test_bad_usage_is_one_message_and_exit_2_not_a_traceback(argv, capsys):
    assert load("mailprobe").main(argv) == 2
    err = capsys.readouterr().err
    assert "usage: mailprobe.py smtp|pop3|batch REQUEST" in err and "Traceback" not in err
