"""The verdicts of the real-mail checks (sendmail_fleet.mailcheck.Checks), every one the demo, the lab tests and the
rollout rely on, against a stand-in lab that answers with recorded probe results (the probe's JSON as it reports
the lab's sendmail and dovecot): right codes pass, wrong codes, wrong refusals, undelivered mail and time-outs fail.
"""

from __future__ import annotations

import copy
from collections.abc import Callable

from sendmail_fleet import mailcheck, variants
from sendmail_fleet.mailcheck import Checks, Smtp
from sendmail_fleet.topology import build

TOPO = build(12)
RELAY_DENIED = "5.7.1 <carol@remote.test>... Relaying denied. Proper authentication required."


def steps(*pairs: tuple[str, int, str]) -> dict:
    return {"ok": pairs[-1][0] == "data" and pairs[-1][1] == 250,
            "steps": [{"step": s, "code": c, "text": t} for s, c, t in pairs]}


CONNECT, EHLO = ("connect", 220, "mail.vps ESMTP Sendmail"), ("ehlo", 250, "mail.vps Hello")
MAIL_OK, RCPT_OK = ("mail", 250, "2.1.0 Sender ok"), ("rcpt", 250, "2.1.5 Recipient ok")
SENT = steps(CONNECT, EHLO, MAIL_OK, RCPT_OK, ("data", 250, "2.0.0 Message accepted for delivery"))
DENIED = steps(CONNECT, EHLO, MAIL_OK, ("rcpt", 550, RELAY_DENIED))
REFUSED_CONNECTION = {"ok": False, "steps": [{"step": "error", "code": 0, "text": "ConnectionRefusedError: [Errno 111] "
                                                                                 "Connection refused"}]}
TIMED_OUT = {"ok": False, "steps": [{"step": "disconnected", "code": 0,
                                     "text": "Connection unexpectedly closed: timed out"}]}


class Lab:
    """A stand-in for MailLab: `smtp` answers by `answer(client, req)`; mail is delivered when `delivers`."""

    def __init__(self, answer: Callable[[str, dict], dict], delivers: bool = True) -> None:
        self.topo, self.answer, self.delivers, self.asked = TOPO, answer, delivers, []

    def smtp(self, client: str, server, **req) -> Smtp:
        self.asked.append((client, req))
        return Smtp(copy.deepcopy(self.answer(client, req)))

    def pop3(self, client: str, server, user: str, password: str, port: int = 110) -> dict:
        return {"ok": password != "wrong-password", "steps": []}

    def sh(self, node, cmd: str) -> tuple[int, str]:
        return 0, ""

    def wait_for_mail(self, node, path: str, token: str, timeout: float = 30) -> bool:
        return self.delivers

    def has_mail(self, node, path: str, token: str) -> bool:
        return self.delivers


def checks(short: str, answer: Callable[[str, dict], dict], delivers: bool = True) -> Checks:
    return Checks(Lab(answer, delivers), TOPO.get(short))  # type: ignore[arg-type]


def always(raw: dict) -> Callable[[str, dict], dict]:
    return lambda client, req: raw


# vps1 pop-before-smtp, vps2 default, vps3 default-auth-only (the topology's variants by number)
def test_unauthenticated_relay_passes_only_when_refused_with_550_5_7_1():
    assert checks("vps2", always(DENIED)).relay_without_auth().passed
    wrong_refusal = steps(CONNECT, EHLO, MAIL_OK, ("rcpt", 550, "5.1.1 <carol@remote.test>... User unknown"))
    r = checks("vps2", always(wrong_refusal)).relay_without_auth()
    assert (r.passed, r.seen) == (False, "550")
    r = checks("vps2", always(SENT)).relay_without_auth()
    assert (r.passed, r.seen) == (False, "250") and "expected 550" in r.detail


def test_an_accepted_relay_must_also_reach_the_remote_mailbox():
    ok = checks("vps2", always(SENT)).pop_login_relay()
    lost = checks("vps2", always(SENT), delivers=False).pop_login_relay()
    assert ok.passed and not lost.passed and "not delivered" in lost.detail


def test_smtp_auth_relay_needs_235_and_delivery_and_a_legacy_host_must_answer_503():
    auth_ok = steps(CONNECT, EHLO, ("starttls", 220, "Ready"), EHLO, ("auth", 235, "2.0.0 OK Authenticated"), MAIL_OK,
                    RCPT_OK, ("data", 250, "2.0.0 accepted"))
    assert checks("vps3", always(auth_ok)).auth_relay("PLAIN").passed
    assert not checks("vps3", always(auth_ok), delivers=False).auth_relay("PLAIN").passed
    not_offered = steps(CONNECT, EHLO, ("starttls", 220, "Ready"), EHLO, ("auth", 503, "5.3.3 AUTH not available"))
    assert checks("vps1", always(not_offered)).auth_relay("LOGIN").passed
    r = checks("vps3", always(not_offered)).auth_relay("LOGIN")
    assert (r.passed, r.seen) == (False, "503")


def test_submission_without_auth_is_530_at_mail_with_smtp_auth_and_550_at_rcpt_without():
    at_mail = steps(CONNECT, EHLO, ("starttls", 220, "Ready"), EHLO, ("mail", 530, "5.7.0 Authentication required"))
    assert checks("vps3", always(at_mail)).submission_without_auth().passed
    assert checks("vps1", always(DENIED)).submission_without_auth().passed
    assert not checks("vps3", always(DENIED)).submission_without_auth().passed


def test_465_is_closed_exactly_where_smtp_auth_is_not():
    legacy, auth_only = checks("vps1", always(REFUSED_CONNECTION)), checks("vps3", always(REFUSED_CONNECTION))
    assert legacy.smtps_without_auth().seen == "closed" and legacy.results[-1].passed
    assert auth_only.smtps_without_auth().seen == "closed" and not auth_only.results[-1].passed


def test_auth_must_be_offered_only_after_starttls():
    def offer(before: str | None) -> Callable[[str, dict], dict]:
        return always({**steps(CONNECT, EHLO), "ehlo_starttls": True, "ehlo_auth_before_tls": before,
                       "ehlo_auth_after_tls": " PLAIN LOGIN"})
    assert checks("vps3", offer(None)).auth_offer().seen == "LOGIN PLAIN"  # sorted, smtplib's leading space gone
    assert checks("vps3", offer(None)).auth_offer().passed
    assert not checks("vps3", offer(" LOGIN PLAIN")).auth_offer().passed  # a password before TLS


def test_a_wrong_password_and_an_unknown_user_must_get_the_same_answer():
    def answer(text_for_unknown: str) -> Callable[[str, dict], dict]:
        def reply(client: str, req: dict) -> dict:
            text = text_for_unknown if req["auth"][1] == "nosuchuser" else "5.7.0 authentication failed"
            return steps(CONNECT, EHLO, ("starttls", 220, "Ready"), EHLO, ("auth", 535, text))
        return reply
    assert checks("vps3", answer("5.7.0 authentication failed")).auth_failures().passed
    told = checks("vps3", answer("5.7.0 no such user")).auth_failures()
    assert not told.passed and told.seen == "535/535"  # same code, but the text says which user names exist


def test_a_time_out_is_never_a_pass():
    r = checks("vps2", always(TIMED_OUT)).relay_without_auth()
    assert (r.passed, r.seen) == (False, "0") and "timed out" in r.detail


def test_a_check_that_needs_a_feature_the_variant_lacks_is_not_applicable_without_asking_the_server():
    c = checks("vps3", always(SENT))  # default-auth-only: no POP-before-SMTP, so no window to expire
    r = c.window_expired()
    assert (r.seen, r.passed) == ("-", True) and c.lab.asked == []


def test_a_dash_in_the_table_cannot_switch_off_a_check_the_variant_has_the_feature_for(monkeypatch):
    table = copy.deepcopy(variants._promises())
    table["default"]["saslauthd down"] = "-"
    monkeypatch.setattr(variants, "_promises", lambda: table)
    down = steps(CONNECT, EHLO, ("starttls", 220, "Ready"), EHLO,
                 ("auth", 454, "4.7.0 Authentication service temporarily unavailable"))
    c = checks("vps2", lambda client, req: down if client == "client1" else DENIED)
    r = c.saslauthd_down()
    assert c.lab.asked, "the check must run: vps2's variant has smtp_auth"
    assert (r.seen, r.passed) == ("454", False)  # it saw the real answer, and the table's '-' does not match it
    assert mailcheck.applies("default", "saslauthd down")


GRACE_TEXT = ("4.7.1 <carol@remote.test>... This server now needs SMTP authentication: set up your mail program with "
              "your mailbox name and password, as https://autoconfig.{domain}/ shows")


def test_in_grace_a_pop3_users_relay_passes_only_with_450_4_7_1_naming_its_own_help_page():
    grace = TOPO.get("vps11")
    assert grace.variant == "default-grace"
    right = steps(CONNECT, EHLO, MAIL_OK, ("rcpt", 450, GRACE_TEXT.format(domain=grace.domain)))
    r = checks("vps11", always(right)).pop_login_relay()
    assert (r.passed, r.seen) == (True, "450")
    for wrong in (GRACE_TEXT.format(domain="vps1.test"),                   # another domain's page
                  "4.7.1 <carol@remote.test>... Relaying temporarily denied",  # no page, no instruction
                  GRACE_TEXT.format(domain=grace.domain).replace("4.7.1", "4.3.0")):
        r = checks("vps11", always(steps(CONNECT, EHLO, MAIL_OK, ("rcpt", 450, wrong)))).pop_login_relay()
        assert (r.passed, r.seen) == (False, "450"), wrong
    r = checks("vps11", always(DENIED)).pop_login_relay()  # a final refusal where a temporary one is promised
    assert (r.passed, r.seen) == (False, "550")


def test_in_grace_the_submission_port_after_a_pop3_login_passes_only_with_the_grace_refusal():
    grace = TOPO.get("vps11")
    at_mail = steps(CONNECT, EHLO, ("mail", 450, GRACE_TEXT.format(domain=grace.domain)))
    assert checks("vps11", always(at_mail)).pop_login_submission().passed
    auth_required = steps(CONNECT, EHLO, ("mail", 530, "5.7.0 Authentication required"))
    r = checks("vps11", always(auth_required)).pop_login_submission()
    assert (r.passed, r.seen) == (False, "530")
    assert checks("vps2", always(auth_required)).pop_login_submission().passed  # default: 530 after a POP3 login
    r = checks("vps1", always(SENT), delivers=False).pop_login_submission()  # legacy: relays, and must deliver
    assert (r.passed, r.seen) == (False, "250") and "not delivered" in r.detail


def test_the_excepted_mailbox_must_relay_and_deliver_in_grace_and_the_check_does_not_apply_elsewhere():
    assert checks("vps11", always(SENT)).excepted_pop_relay().passed
    r = checks("vps11", always(steps(CONNECT, EHLO, MAIL_OK, ("rcpt", 450, GRACE_TEXT.format(domain="vps11.test")))))\
        .excepted_pop_relay()
    assert (r.passed, r.seen) == (False, "450")
    lab = Lab(always(SENT))
    r = Checks(lab, TOPO.get("vps2")).excepted_pop_relay()  # type: ignore[arg-type]
    assert (r.passed, r.seen, lab.asked) == (True, "-", [])
