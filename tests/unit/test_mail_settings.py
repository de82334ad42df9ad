"""The mail settings service (roles/client_setup/files/mail_settings.py): what it tells each mail program, for an
SMTP-Auth server and for a legacy POP-before-SMTP one, and what it refuses, over real HTTP on loopback."""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
import xml.etree.ElementTree as ET
from http.server import ThreadingHTTPServer
from pathlib import Path

import pytest

from sendmail_fleet.host import load

from ..client_rules import apple_account, outlook_protocols, thunderbird_config

ms = load("mail_settings")


def site(domain: str, **kw) -> dict:
    return {"domain": domain, "server": f"mail.{domain}", "names": [f"autoconfig.{domain}", f"autodiscover.{domain}",
                                                                     domain],
            "smtp_auth": True, "pop_before_smtp": False, "smtps": True, "help_url": f"https://autoconfig.{domain}/",
            **kw}


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


@pytest.mark.parametrize(("host", "address"), [("autodiscover.auth.test", "alice@legacy.test"),
                                               ("autodiscover.nosuch.test", "alice@nosuch.test")])
def test_an_address_of_a_domain_not_served_under_that_name_gets_404_never_another_domains_settings(host, address):
    status, _, body = ms.answer(SITES, "POST", host, "/autodiscover/autodiscover.xml", autodiscover_request(address))
    assert status == 404 and b"mail." not in body


def test_autoconfig_for_another_domains_address_or_an_unknown_name_is_404():
    assert get("autoconfig.auth.test", "/mail/config-v1.1.xml?emailaddress=alice@legacy.test")[0] == 404
    assert get("autoconfig.other.test", "/mail/config-v1.1.xml")[0] == 404
    assert get("autoconfig.auth.test", "/etc/passwd")[0] == 404


# Nothing tells which mailboxes exist: the data holds no mailbox names, and a made-up address of a served domain gets
# the answer a real one gets, with its own address and local part filled in (as Thunderbird's %EMAILADDRESS% does).
def _three_answers(address: str) -> list[tuple[int, str, bytes]]:
    query = urllib.parse.urlencode({"emailaddress": address})
    return [get("autoconfig.auth.test", f"/mail/config-v1.1.xml?{query}"),
            get("autoconfig.auth.test", f"/profile?{query}"),
            ms.answer(SITES, "POST", "autodiscover.auth.test", "/autodiscover/autodiscover.xml",
                      autodiscover_request(address))]


@pytest.mark.parametrize("made_up", ["nosuchuser@auth.test", "zz9plural@AUTH.test", "a.b+c@auth.test"])
def test_an_existing_and_a_made_up_mailbox_get_the_same_status_and_body_up_to_the_address(made_up):
    for real, fake in zip(_three_answers("alice@auth.test"), _three_answers(made_up), strict=True):
        assert (fake[0], fake[1]) == (real[0], real[1]) == (200, real[1])
        assert _masked(fake[2], made_up) == _masked(real[2], "alice@auth.test")


def _masked(body: bytes, address: str) -> bytes:
    """The answer with what follows from the address replaced: the address, its local part (the login) and the
    profile's identifiers (made from the address, so one address always gets the same profile)."""
    for kind in ("a", "p"):
        body = body.replace(str(uuid.uuid5(uuid.NAMESPACE_DNS, f"{kind}.{address}")).encode(), b"UUID-" + kind.encode())
    return body.replace(address.encode(), b"ADDRESS").replace(address.split("@")[0].encode(), b"LOGIN")


def test_the_settings_data_holds_no_mailbox_names():
    assert all(not hasattr(site, "mailboxes") for site in SITES.values())
    old = {"sites": [{**site("old.test"), "mailboxes": ["alice"]}]}  # data written by an earlier version: ignored
    assert ms.load(json.dumps(old))["old.test"].login("anyone@old.test") == "anyone"


@pytest.mark.parametrize("address", ["", "alice", "@auth.test", "alice@", "al ice@auth.test", "<a>@auth.test",
                                     "a" * 65 + "@auth.test", "alice@auth.test\r\nX-Injected: 1"])
def test_what_is_not_an_address_gets_400_from_the_profile_and_autodiscover(address):
    assert get("autoconfig.auth.test", f"/profile?emailaddress={urllib.parse.quote(address)}")[0] == 400
    status, _, _ = ms.answer(SITES, "POST", "autodiscover.auth.test", "/autodiscover/autodiscover.xml",
                             autodiscover_request(address or "x"))
    assert status == 400


def test_autodiscover_answers_with_microsofts_default_namespaces_and_no_prefixes():
    body = ms.answer(SITES, "POST", "autodiscover.auth.test", "/autodiscover/autodiscover.xml",
                     autodiscover_request("alice@auth.test"))[2]
    text = body.decode()
    assert f'<Autodiscover xmlns="{ms.AUTODISCOVER_RESPONSE}">' in text
    assert f'<Response xmlns="{ms.OUTLOOK_2006A}">' in text and "<Account>" in text and "<Protocol>" in text
    assert not re.search(r"<\w+:", text) and "xmlns:" not in text
    root = ET.fromstring(body)  # and a namespace-aware reader sees the 2006a elements where they belong
    assert root.tag == f"{{{ms.AUTODISCOVER_RESPONSE}}}Autodiscover"
    assert root.find(f"{{{ms.OUTLOOK_2006A}}}Response/{{{ms.OUTLOOK_2006A}}}Account") is not None


def test_the_apple_profile_is_a_pop_account_with_no_password_and_stable_identifiers():
    status, ctype, body = get("autoconfig.auth.test", "/profile?emailaddress=alice@auth.test")
    assert status == 200 and ctype == "application/x-apple-aspen-config"
    account = apple_account(body)
    assert (account["EmailAddress"], account["IncomingMailServerUsername"], account["OutgoingMailServerUsername"]) == \
        ("alice@auth.test", "alice", "alice")
    assert (account["IncomingMailServerPortNumber"], account["OutgoingMailServerPortNumber"]) == (995, 465)
    assert account["OutgoingMailServerAuthentication"] == "EmailAuthPassword"
    assert body == get("autoconfig.auth.test", "/profile?emailaddress=alice@auth.test")[2]  # same address, same profile
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


def test_each_section_the_audits_notice_can_link_is_on_the_help_page():
    from sendmail_fleet.host import load
    page = get("autoconfig.auth.test", "/")[2].decode()
    sections = {section for section, _ in load("relay_audit").HELP_SECTIONS}
    assert sections == set(ms.PROGRAM_SECTIONS)
    for section in sections:
        assert page.count(f'id="{section}"') == 1, section
    assert load("relay_audit").help_section("Mozilla/5.0.Gecko/20100101.Thunderbird/115.3.1") == "thunderbird"
    assert load("relay_audit").help_section("iPhone.Mail") == "apple"
    assert load("relay_audit").help_section("swaks.v20240103.0") == ""


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


def _http(port: int, host: str, path: str) -> int:
    req = urllib.request.Request(f"http://127.0.0.1:{port}{path}", headers={"Host": host})
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status
    except urllib.error.HTTPError as e:
        return e.code


def test_the_service_ends_itself_after_idle_exit_seconds_without_a_request_and_not_before():
    ms.Handler.sites = SITES
    sock = socket.create_server(("127.0.0.1", 0))
    server = ms.Server(sock, ms.Handler)
    port = sock.getsockname()[1]
    done = threading.Event()
    thread = threading.Thread(target=lambda: (server.serve(1.5), done.set()), daemon=True)
    thread.start()
    for _ in range(4):  # requests 0.5 s apart keep it alive for 2 s, longer than its idle time
        assert _http(port, "autoconfig.auth.test", "/") == 200
        time.sleep(0.5)
    assert not done.is_set(), "it ended while requests kept coming"
    assert done.wait(10), "it did not end after 1.5 s without a request"
    server.server_close()


def test_systemd_socket_activation_the_service_answers_on_the_socket_it_is_given_and_exits_when_idle(tmp_path):
    data = tmp_path / "settings.json"
    data.write_text(json.dumps(DATA))
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    helper = Path(ms.__file__)
    # As systemd starts it: the socket as file descriptor 3, LISTEN_FDS=1 and LISTEN_PID its own process id (set by a
    # launcher that then execs the helper, keeping its pid); --listen names a port nobody listens on, so only the
    # passed socket can answer.
    launch = ("import os, sys; os.dup2(int(sys.argv[1]), 3); os.environ.update(LISTEN_PID=str(os.getpid()), "
              "LISTEN_FDS='1'); os.execv(sys.argv[2], sys.argv[2:])")
    proc = subprocess.Popen([sys.executable, "-c", launch, str(listener.fileno()), sys.executable, str(helper), "serve",
                             "--data", str(data), "--listen", "127.0.0.1:9", "--idle-exit", "1"],
                            pass_fds=[listener.fileno()], stderr=subprocess.PIPE, text=True,
                            env={k: v for k, v in os.environ.items() if not k.startswith("LISTEN_")})
    try:
        assert _http(port, "autoconfig.legacy.test", "/mail/config-v1.1.xml") == 200
        assert proc.wait(timeout=15) == 0  # ended by itself, idle
        assert f"127.0.0.1:{port}" in proc.stderr.read()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        listener.close()


def test_a_client_that_sends_nothing_is_dropped_after_the_request_timeout(monkeypatch):
    monkeypatch.setattr(ms.Handler, "timeout", 0.5)
    ms.Handler.sites = SITES
    server = ThreadingHTTPServer(("127.0.0.1", 0), ms.Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        with socket.create_connection(server.server_address, timeout=10) as slow:
            slow.sendall(b"GET / HTTP/1.1\r\n")  # and never the rest
            t0 = time.monotonic()
            assert slow.recv(100) == b""  # the server closed the connection ...
            assert time.monotonic() - t0 < 5  # ... after its timeout, not whenever the client pleased
    finally:
        server.shutdown()
        server.server_close()
