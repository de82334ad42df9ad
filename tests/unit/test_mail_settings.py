"""The mail settings service (roles/client_setup/files/mail_settings.py): what it tells each mail program, for an
SMTP-Auth server and for a legacy POP-before-SMTP one, and what it refuses, over real HTTP on loopback."""

from __future__ import annotations

import json
import threading
import urllib.error
import urllib.request
from http.server import ThreadingHTTPServer

import pytest

from sendmail_fleet.host import load

from ..client_rules import apple_account, outlook_protocols, thunderbird_config

ms = load("mail_settings")


def site(domain: str, **kw) -> dict:
    return {"domain": domain, "server": f"mail.{domain}", "names": [f"autoconfig.{domain}", f"autodiscover.{domain}",
                                                                     domain],
            "smtp_auth": True, "pop_before_smtp": False, "smtps": True, "mailboxes": ["alice", "bob"],
            "help_url": f"https://autoconfig.{domain}/", **kw}


DATA = {"sites": [site("auth.test"), site("legacy.test", smtp_auth=False, pop_before_smtp=True, smtps=False),
                  site("both.test", pop_before_smtp=True)]}
SITES = ms.load(json.dumps(DATA))
REQUEST = ("<?xml version='1.0'?><Autodiscover xmlns='{ns}'><Request><EMailAddress>{a}</EMailAddress>"
           "<AcceptableResponseSchema>{schema}</AcceptableResponseSchema></Request></Autodiscover>")


def autodiscover_request(address: str) -> bytes:
    return REQUEST.format(ns=ms.AUTODISCOVER_REQUEST, a=address, schema=ms.OUTLOOK_2006A).encode()


def get(host: str, path: str) -> tuple[int, str, bytes]:
    return ms.answer(SITES, "GET", host, path)


def test_thunderbird_gets_pop3_and_smtp_auth_on_465_and_587_with_the_mailbox_name():
    status, ctype, body = get("autoconfig.auth.test", "/mail/config-v1.1.xml?emailaddress=alice%40auth.test")
    assert status == 200 and ctype.startswith("text/xml")
    servers = thunderbird_config(body, "auth.test")
    assert [(s.kind, s.type, s.port, s.socket, s.auth) for s in servers] == [
        ("incoming", "pop3", 995, "SSL", "password-cleartext"), ("incoming", "pop3", 110, "STARTTLS",
                                                                  "password-cleartext"),
        ("outgoing", "smtp", 465, "SSL", "password-cleartext"), ("outgoing", "smtp", 587, "STARTTLS",
                                                                 "password-cleartext")]
    assert {s.hostname for s in servers} == {"mail.auth.test"} and {s.username for s in servers} == {"%EMAILLOCALPART%"}


def test_the_domains_own_well_known_url_gives_the_same_config():
    assert get("auth.test", "/.well-known/autoconfig/mail/config-v1.1.xml") == get("autoconfig.auth.test",
                                                                                   "/mail/config-v1.1.xml")


def test_a_legacy_server_says_smtp_after_pop_and_asks_no_password_for_sending():
    servers = thunderbird_config(get("autoconfig.legacy.test", "/mail/config-v1.1.xml")[2], "legacy.test")
    out = [s for s in servers if s.kind == "outgoing"]
    assert [(s.port, s.socket, s.auth, s.username) for s in out] == [(587, "STARTTLS", "smtp-after-pop", "")]


def test_an_auth_only_server_never_advertises_pop_before_smtp_anywhere():
    for path in ("/mail/config-v1.1.xml", "/", "/profile?emailaddress=alice@auth.test"):
        body = get("autoconfig.auth.test", path)[2]
        assert b"smtp-after-pop" not in body and b"POP-before-SMTP" not in body and b"EmailAuthNone" not in body
    smtp = outlook_protocols(ms.answer(SITES, "POST", "autodiscover.auth.test", "/autodiscover/autodiscover.xml",
                                       autodiscover_request("alice@auth.test"))[2])["SMTP"]
    assert smtp["SMTPLast"] == "off" and smtp["AuthRequired"] == "on"


def test_outlook_gets_pop3_and_smtp_for_a_known_address_in_the_2006a_schema():
    status, _, body = ms.answer(SITES, "POST", "autodiscover.auth.test", "/Autodiscover/Autodiscover.xml",
                                autodiscover_request("bob@auth.test"))
    assert status == 200
    protos = outlook_protocols(body)
    assert set(protos) == {"POP3", "SMTP"}
    assert (protos["POP3"]["Server"], protos["POP3"]["Port"], protos["POP3"]["SSL"]) == ("mail.auth.test", "995", "on")
    assert (protos["SMTP"]["Port"], protos["SMTP"]["LoginName"], protos["SMTP"]["AuthRequired"]) == ("465", "bob", "on")


def test_outlook_on_a_legacy_server_is_told_to_check_mail_before_sending_without_a_login():
    smtp = outlook_protocols(ms.answer(SITES, "POST", "autodiscover.legacy.test", "/autodiscover/autodiscover.xml",
                                       autodiscover_request("alice@legacy.test"))[2])["SMTP"]
    assert (smtp["Port"], smtp["AuthRequired"], smtp["SMTPLast"]) == ("587", "off", "on") and "LoginName" not in smtp


@pytest.mark.parametrize("body", [b"", b"not xml at all", b"<Autodiscover/>", b"<a><Request></Request></a>",
                                  REQUEST.format(ns=ms.AUTODISCOVER_REQUEST, a="alice@auth.test",
                                                 schema="http://example.invalid/other").encode()])
def test_a_malformed_autodiscover_request_gets_400_not_500(body):
    status, _, answer = ms.answer(SITES, "POST", "autodiscover.auth.test", "/autodiscover/autodiscover.xml", body)
    assert status == 400, answer


@pytest.mark.parametrize(("host", "address"), [("autodiscover.auth.test", "carol@auth.test"),
                                               ("autodiscover.auth.test", "alice@legacy.test"),
                                               ("autodiscover.nosuch.test", "alice@nosuch.test")])
def test_an_unknown_address_or_domain_gets_404_never_another_domains_settings(host, address):
    status, _, body = ms.answer(SITES, "POST", host, "/autodiscover/autodiscover.xml", autodiscover_request(address))
    assert status == 404 and b"mail." not in body


def test_autoconfig_for_another_domains_address_or_an_unknown_name_is_404():
    assert get("autoconfig.auth.test", "/mail/config-v1.1.xml?emailaddress=alice@legacy.test")[0] == 404
    assert get("autoconfig.auth.test", "/mail/config-v1.1.xml?emailaddress=nobody@auth.test")[0] == 404
    assert get("autoconfig.other.test", "/mail/config-v1.1.xml")[0] == 404
    assert get("autoconfig.auth.test", "/etc/passwd")[0] == 404


def test_the_apple_profile_is_a_pop_account_with_no_password_and_stable_identifiers():
    status, ctype, body = get("autoconfig.auth.test", "/profile?emailaddress=alice@auth.test")
    assert status == 200 and ctype == "application/x-apple-aspen-config"
    account = apple_account(body)
    assert (account["EmailAddress"], account["IncomingMailServerUsername"], account["OutgoingMailServerUsername"]) == \
        ("alice@auth.test", "alice", "alice")
    assert (account["IncomingMailServerPortNumber"], account["OutgoingMailServerPortNumber"]) == (995, 465)
    assert account["OutgoingMailServerAuthentication"] == "EmailAuthPassword"
    assert body == get("autoconfig.auth.test", "/profile?emailaddress=alice@auth.test")[2]  # same address, same profile
    assert get("autoconfig.auth.test", "/profile?emailaddress=nobody@auth.test")[0] == 404
    legacy = apple_account(get("autoconfig.legacy.test", "/profile?emailaddress=bob@legacy.test")[2])
    assert (legacy["OutgoingMailServerPortNumber"], legacy["OutgoingMailServerAuthentication"]) == (587, "EmailAuthNone")


def test_srv_records_say_what_is_offered_and_dot_for_what_is_not():
    records = {r[0]: r[1:] for r in ms.srv_records(SITES["auth.test"])}
    assert records["_submissions._tcp"] == (0, 1, 465, "mail.auth.test")
    assert records["_submission._tcp"] == (0, 1, 587, "mail.auth.test")
    assert records["_pop3s._tcp"][2:] == (995, "mail.auth.test") and records["_imap._tcp"][3] == "."
    legacy = {r[0]: r[1:] for r in ms.srv_records(SITES["legacy.test"])}
    assert legacy["_submission._tcp"] == (0, 0, 0, ".") and legacy["_submissions._tcp"] == (0, 0, 0, ".")
    zone = ms.zone(SITES["auth.test"])
    assert "_submission._tcp.auth.test. 3600 IN SRV 0 1 587 mail.auth.test." in zone.splitlines()


def test_the_help_page_shows_the_settings_and_a_profile_form_and_escapes_what_it_shows():
    page = get("autoconfig.both.test", "/")[2].decode()
    assert '<meta name="viewport"' in page and 'action="/profile"' in page and "<script" not in page
    assert "mail.both.test" in page and "465 with SSL/TLS or 587 with STARTTLS" in page
    assert "set up SMTP-Auth" in page  # a server with both ways tells users to move to SMTP-Auth
    legacy = get("autoconfig.legacy.test", "/")[2].decode()
    assert "check your mail (POP3) first" in legacy and "465" not in legacy


@pytest.mark.parametrize(("data", "message"), [
    ({"sites": []}, "no sites"),
    ({"sites": [site("x.test", smtp_auth=False)]}, "no way to send"),
    ({"sites": [site("x.test"), site("y.test", names=["autoconfig.x.test"])]}, "already served for x.test"),
    ({"sites": [{"domain": "x.test"}]}, "missing or bad"),
])
def test_bad_data_is_refused_with_what_is_wrong(data, message):
    with pytest.raises(ms.DataError, match=message):
        ms.load(json.dumps(data))


def test_over_http_on_loopback_each_name_gets_its_own_domains_settings(tmp_path):
    ms.Handler.sites = SITES
    server = ThreadingHTTPServer(("127.0.0.1", 0), ms.Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        def fetch(host: str, path: str, data: bytes | None = None) -> tuple[int, bytes, str]:
            req = urllib.request.Request(base + path, data=data, headers={"Host": host})
            try:
                with urllib.request.urlopen(req, timeout=10) as r:
                    return r.status, r.read(), r.headers.get("Content-Type", "")
            except urllib.error.HTTPError as e:
                return e.code, e.read(), e.headers.get("Content-Type", "")

        status, body, _ = fetch("autoconfig.legacy.test", "/mail/config-v1.1.xml")
        assert status == 200 and b"mail.legacy.test" in body and b"mail.auth.test" not in body
        status, body, ctype = fetch("autoconfig.auth.test", "/profile?emailaddress=bob@auth.test")
        assert (status, ctype) == (200, "application/x-apple-aspen-config")
        assert fetch("autodiscover.auth.test", "/autodiscover/autodiscover.xml", b"\x00garbage")[0] == 400
        assert fetch("autodiscover.auth.test", "/autodiscover/autodiscover.xml", b"x" * (ms.MAX_BODY + 1))[0] == 413
        assert fetch("nosuch.test", "/")[0] == 404
    finally:
        server.shutdown()


def test_the_command_line_checks_data_and_writes_a_zone_and_says_what_is_wrong(tmp_path, capsys):
    data = tmp_path / "settings.json"
    data.write_text(json.dumps(DATA))
    assert ms.main(["check", "--data", str(data)]) == 0
    assert ms.main(["zone", "legacy.test", "--data", str(data)]) == 0
    assert "_pop3s._tcp.legacy.test. 3600 IN SRV 0 1 995 mail.legacy.test." in capsys.readouterr().out
    assert ms.main(["zone", "nosuch.test", "--data", str(data)]) == 2
    assert "choose one of auth.test, both.test, legacy.test" in capsys.readouterr().err
    data.write_text("{")
    assert ms.main(["check", "--data", str(data)]) == 2 and "not JSON" in capsys.readouterr().err
