"""The mail probe (roles/rollout/files/mailprobe.py) against a scripted server on loopback that answers as the lab's
sendmail and dovecot do (the reply texts are theirs, recorded on the lab): the steps and reply codes it reports are
what every real-mail verdict is made of, refusals and time-outs included."""

from __future__ import annotations

import base64
import socket
import threading
from collections.abc import Callable

import pytest

from sendmail_fleet.host import load

probe = load("mailprobe")

EHLO = ["250-mail.vps3.test Hello client1.clients.test [172.29.25.101], pleased to meet you", "250-ENHANCEDSTATUSCODES",
        "250-PIPELINING", "250-8BITMIME", "250-SIZE 26214400", "250-DSN", "250-AUTH LOGIN PLAIN", "250-DELIVERBY",
        "250 HELP"]
GREETING = "220 mail.vps3.test ESMTP Sendmail 8.18.1/8.18.1/Debian-6; Fri, 4 Dec 2026 17:59:48 GMT; (No UCE/UBE)"
RELAY_DENIED = "550 5.7.1 <carol@remote.test>... Relaying denied. Proper authentication required."
AUTH_REQUIRED = "530 5.7.0 Authentication required"
AUTH_FAILED = "535 5.7.0 authentication failed"
SASL_DOWN = "454 4.7.0 Authentication service temporarily unavailable, try again later"


Script = Callable[[str], list[str] | None]  # a client line -> the reply lines (None: close the connection)


class Server:
    """Listens on loopback and answers each client line by `script`, after `greeting` (None: never greets)."""

    def __init__(self, greeting: list[str] | None, script: Script) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.greeting, self.script, self.seen = greeting, script, []
        self.thread = threading.Thread(target=self.serve, daemon=True)
        self.thread.start()

    def serve(self) -> None:
        conn, _ = self.sock.accept()
        with conn, conn.makefile("rwb") as f:
            if self.greeting is None:
                f.readline()  # wait for the client to give up
                return
            self.send(f, self.greeting)
            data_mode = False
            for raw in f:
                line = raw.decode().rstrip("\r\n")
                self.seen.append(line)
                if data_mode:
                    if line == ".":
                        data_mode = False
                        self.send(f, ["250 2.0.0 6B4HtsGl007902 Message accepted for delivery"])
                    continue
                reply = self.script(line)
                if reply is None:
                    return
                self.send(f, reply)
                data_mode = reply[-1].startswith("354")

    @staticmethod
    def send(f, lines: list[str]) -> None:
        f.write("".join(line + "\r\n" for line in lines).encode())
        f.flush()

    def close(self) -> None:
        self.sock.close()


def sendmail(**replies: list[str] | None) -> Script:
    """sendmail's answers by command, with these overrides (MAIL, RCPT, AUTH, ...; a value of None closes)."""
    defaults = {"EHLO": EHLO, "MAIL": ["250 2.1.0 <alice@vps3.test>... Sender ok"],
                "RCPT": ["250 2.1.5 <carol@remote.test>... Recipient ok"],
                "DATA": ["354 Enter mail, end with \".\" on a line by itself"],
                "QUIT": ["221 2.0.0 mail.vps3.test closing connection"], "NOOP": ["250 2.0.0 OK"]}
    defaults.update(replies)

    def answer(line: str) -> list[str] | None:
        verb = line.split(" ", 1)[0].upper()
        return defaults.get(verb, ["500 5.5.1 Command unrecognized"])
    return answer


@pytest.fixture
def smtp_server():
    made: list[Server] = []

    def start(script: Script, greeting: list[str] | None = (GREETING,)) -> Server:
        made.append(Server(list(greeting) if greeting else None, script))
        return made[-1]
    yield start
    for s in made:
        s.close()


def run(server: Server, **req) -> dict:
    return probe.smtp({"server": "127.0.0.1", "port": server.port, "helo": "client1.clients.test", "timeout": 3,
                       **req})


def codes(out: dict) -> list[tuple[str, int]]:
    return [(s["step"], s["code"]) for s in out["steps"]]


RELAY = {"mail_from": "alice@vps3.test", "rcpt": ["carol@remote.test"], "data": "Subject: t\n\nbody\n"}


def test_unauthenticated_relay_refused_with_550_5_7_1_is_a_failed_rcpt_and_no_data(smtp_server):
    out = run(smtp_server(sendmail(RCPT=[RELAY_DENIED])), **RELAY)
    assert codes(out) == [("connect", 220), ("ehlo", 250), ("mail", 250), ("rcpt", 550)] and not out["ok"]
    assert out["steps"][-1]["text"].startswith("5.7.1")
    assert out["ehlo_auth_before_tls"].split() == ["LOGIN", "PLAIN"]  # smtplib keeps it with a leading space


def test_an_accepted_relay_goes_through_data_with_crlf_lines(smtp_server):
    server = smtp_server(sendmail())
    out = run(server, **RELAY)
    assert codes(out) == [("connect", 220), ("ehlo", 250), ("mail", 250), ("rcpt", 250), ("data", 250)] and out["ok"]
    data = server.seen[server.seen.index("data") + 1:]
    assert data[:4] == ["Subject: t", "", "body", "."]  # the message's lines, then the end of the data


def test_mail_without_auth_on_the_submission_port_stops_at_530(smtp_server):
    out = run(smtp_server(sendmail(MAIL=[AUTH_REQUIRED])), **RELAY)
    assert codes(out)[-1] == ("mail", 530) and not out["ok"] and "rcpt" not in [s for s, _ in codes(out)]


@pytest.mark.parametrize(("reply", "code"), [([AUTH_FAILED], 535), ([SASL_DOWN], 454), (["235 2.0.0 OK Authenticated"],
                                                                                        235)])
def test_auth_plain_sends_the_credentials_and_reports_the_reply(smtp_server, reply, code):
    server = smtp_server(sendmail(AUTH=reply))
    out = run(server, auth=["PLAIN", "alice", "s3cret"], **RELAY)
    assert ("auth", code) in codes(out) and out["ok"] == (code == 235)
    token = next(line for line in server.seen if line.startswith("AUTH PLAIN ")).split()[-1]
    assert base64.b64decode(token) == b"\0alice\0s3cret"


def test_auth_login_answers_both_challenges(smtp_server):
    script, credentials = sendmail(), []

    def login(line: str) -> list[str] | None:
        if line.upper() == "AUTH LOGIN":
            return ["334 VXNlcm5hbWU6"]  # "Username:"
        if len(credentials) < 2 and line and line.split(" ", 1)[0].lower() not in ("ehlo", "quit", "mail", "rcpt"):
            credentials.append(base64.b64decode(line))
            return ["334 UGFzc3dvcmQ6"] if len(credentials) == 1 else ["235 2.0.0 OK Authenticated"]  # "Password:"
        return script(line)
    out = run(smtp_server(login), auth=["LOGIN", "alice", "s3cret"])
    assert ("auth", 235) in codes(out) and out["ok"] and credentials == [b"alice", b"s3cret"]


def test_a_server_that_hangs_up_mid_dialogue_is_a_disconnected_step_not_a_crash(smtp_server):
    out = run(smtp_server(sendmail(RCPT=None)), **RELAY)
    assert codes(out)[-1] == ("disconnected", 0) and not out["ok"]


def test_a_server_that_never_greets_ends_in_a_step_that_says_it_timed_out(smtp_server):
    out = run(smtp_server(sendmail(), greeting=None), **RELAY)  # the probe waits 3 s here (the request's timeout)
    assert [(s["step"], s["code"]) for s in out["steps"]] == [("disconnected", 0)] and not out["ok"]
    assert "timed out" in out["steps"][0]["text"]


def test_a_refusal_to_connect_is_its_own_step():
    sock = socket.create_server(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()  # nothing listens there now
    out = probe.smtp({"server": "127.0.0.1", "port": port, "timeout": 3, **RELAY})
    assert out["steps"][0]["step"] == "error" and "Connection refused" in out["steps"][0]["text"]


# -- POP3 (dovecot's replies) ---------------------------------------------------------------------------------------
def dovecot(password_ok: bool) -> Script:
    def answer(line: str) -> list[str] | None:
        verb = line.split(" ", 1)[0].upper()
        return {"USER": ["+OK"], "PASS": ["+OK Logged in."] if password_ok else ["-ERR [AUTH] Authentication failed."],
                "STAT": ["+OK 2 1024"], "QUIT": ["+OK Logging out."]}.get(verb, ["-ERR Unknown command."])
    return answer


@pytest.mark.parametrize("password_ok", [True, False])
def test_pop3_login_reports_each_step_and_a_refused_password(smtp_server, password_ok):
    server = smtp_server(dovecot(password_ok), greeting=["+OK Dovecot ready."])
    out = probe.pop3({"server": "127.0.0.1", "port": server.port, "user": "alice", "password": "s3cret",
                      "stls": False})
    assert out["ok"] == password_ok
    if password_ok:
        assert [s["step"] for s in out["steps"]] == ["user", "pass"] and out["messages"] == 2
    else:
        assert out["steps"][-1] == {"step": "error", "text": "b'-ERR [AUTH] Authentication failed.'"}


# -- A batch: each host's dialogues in order, the hosts at once (the rollout's health check of a whole batch) -------
def test_a_batch_runs_each_hosts_dialogues_in_order_and_returns_them_by_host(smtp_server):
    order: list[str] = []

    def pop(line: str) -> list[str] | None:
        order.append(f"pop3 {line.split()[0].upper()}")
        return dovecot(True)(line)

    def smtp_after_login(line: str) -> list[str] | None:
        order.append(f"smtp {line.split()[0].upper()}")
        return sendmail()(line)

    pop_server = smtp_server(pop, greeting=["+OK Dovecot ready."])
    relay_server = smtp_server(smtp_after_login)
    refusing = smtp_server(sendmail(RCPT=[RELAY_DENIED]))
    out = probe.batch({
        "defaults": {"server": "127.0.0.1", "helo": "client1.clients.test", "timeout": 3},
        "hosts": {
            "vps1": [{"kind": "pop3", "port": pop_server.port, "user": "alice", "password": "s3cret", "stls": False},
                     {"kind": "smtp", "port": relay_server.port, **RELAY}],
            "vps2": [{"kind": "smtp", "port": refusing.port, **RELAY}],
        }})
    assert list(out) == ["vps1", "vps2"]
    login, relay = out["vps1"]
    assert login["ok"] and [s["step"] for s in login["steps"]] == ["user", "pass"]
    assert relay["ok"] and codes(relay)[-1] == ("data", 250)
    assert codes(out["vps2"][0])[-1] == ("rcpt", 550) and not out["vps2"][0]["ok"]
    # the relay of vps1 began only after its POP3 session had ended
    assert order.index("pop3 QUIT") < order.index("smtp EHLO"), order


def test_the_hosts_of_a_batch_are_probed_at_once_not_one_after_the_other(smtp_server):
    # vps1's server answers EHLO only once vps2's server has been greeted by the probe: one after the other,
    # vps1's dialogue would time out (3 s) before vps2's began.
    vps2_reached = threading.Event()

    def waits_for_vps2(line: str) -> list[str] | None:
        if line.upper().startswith("EHLO") and not vps2_reached.wait(10):
            return None
        return sendmail()(line)

    def marks(line: str) -> list[str] | None:
        vps2_reached.set()
        return sendmail()(line)

    first, second = smtp_server(waits_for_vps2), smtp_server(marks)
    out = probe.batch({"defaults": {"server": "127.0.0.1", "helo": "client1.clients.test", "timeout": 3},
                       "hosts": {"vps1": [{"kind": "smtp", "port": first.port, **RELAY}],
                                 "vps2": [{"kind": "smtp", "port": second.port, **RELAY}]}})
    assert out["vps1"][0]["ok"] and out["vps2"][0]["ok"], out


def test_an_empty_batch_is_an_empty_answer():
    assert probe.batch({"hosts": {}}) == {}
