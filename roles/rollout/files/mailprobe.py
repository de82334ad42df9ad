#!/usr/bin/env python3
"""A mail client probe that runs inside a lab client container (standard library only).

It speaks SMTP or POP3 to one server and prints one JSON object: every reply code it saw, in order,
so the caller asserts on reply codes rather than on logs. Usage:
  mailprobe.py smtp '{"server": ..., "port": 25, "starttls": true, "auth": ["PLAIN", "u", "p"],
                      "mail_from": ..., "rcpt": [...], "data": "..."}'
  mailprobe.py smtp '{"server": ..., "port": 465, "tls": true, ...}'   (implicit TLS, RFC 8314)
  mailprobe.py pop3 '{"server": ..., "port": 110, "user": ..., "password": ..., "stls": true}'
  mailprobe.py smtp -      (the same JSON on standard input: keeps a password off the command line)
  mailprobe.py batch '{"defaults": {...}, "hosts": {"vps1": [{"kind": "smtp", ...}, {"kind": "pop3", ...}]}}'
                           (each host's dialogues in order, the hosts at once; prints {"vps1": [result, ...]})
"""

from __future__ import annotations

import base64
import json
import poplib
import re
import smtplib
import socket
import ssl
import sys
from concurrent.futures import ThreadPoolExecutor


def _ctx(req: dict) -> ssl.SSLContext:
    """With "verify" (what the rollout and the lab ask for) the server's certificate must chain to "cafile" (else
    the system's CAs) and name "server_name" (else "server"); without it only the MTA's behaviour is tested, for
    a server whose certificate nothing can check (rollout_probe_verify: false)."""
    if req.get("verify"):
        return ssl.create_default_context(cafile=req.get("cafile") or None)
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


def _name(req: dict) -> str:
    """The name the server's certificate must carry (the probe may connect to an address)."""
    return req.get("server_name") or req["server"]


class _POP3S(poplib.POP3_SSL):
    """POP3 over TLS to an address, checking the certificate against the server's name."""

    def __init__(self, host: str, port: int, name: str, timeout: float, context: ssl.SSLContext) -> None:
        self._name = name
        super().__init__(host, port, timeout=timeout, context=context)

    def _create_socket(self, timeout):  # noqa: ANN001, ANN202 - poplib's own signature
        sock = poplib.POP3._create_socket(self, timeout)
        return self.context.wrap_socket(sock, server_hostname=self._name)


def _tls(out: dict, sock: ssl.SSLSocket) -> None:
    """The TLS version, and the certificate's serial, issuer and names where it was verified (Python shows
    nothing of an unverified one)."""
    out["tls_version"] = sock.version()
    cert = sock.getpeercert() or {}
    out["cert_serial"] = cert.get("serialNumber")
    out["cert_issuer"] = dict(rdn[0] for rdn in cert.get("issuer", ())).get("commonName")
    out["cert_names"] = [v for k, v in cert.get("subjectAltName", ()) if k == "DNS"]


def smtp(req: dict) -> dict:
    steps: list[dict] = []
    out: dict = {"steps": steps, "ok": False}

    def step(name: str, code: int, text: bytes | str) -> bool:
        msg = text.decode(errors="replace") if isinstance(text, bytes) else text
        steps.append({"step": name, "code": code, "text": msg.replace("\n", " ")[:300]})
        return 200 <= code < 400

    try:
        if req.get("tls"):
            s = smtplib.SMTP_SSL(timeout=req.get("timeout", 20), context=_ctx(req))
        else:
            s = smtplib.SMTP(timeout=req.get("timeout", 20))
        s._host = _name(req)  # TLS checks the certificate against this name; connect() alone does not set it
        code, msg = s.connect(req["server"], req.get("port", 25))
        if isinstance(s.sock, ssl.SSLSocket):
            _tls(out, s.sock)
        if not step("connect", code, msg):
            return out
        code, msg = s.ehlo(req.get("helo", socket.getfqdn()))
        step("ehlo", code, msg)
        out["ehlo_auth_before_tls"] = s.esmtp_features.get("auth", None)
        out["ehlo_starttls"] = "starttls" in s.esmtp_features
        if req.get("starttls"):
            code, msg = s.starttls(context=_ctx(req))
            if not step("starttls", code, msg):
                return out
            _tls(out, s.sock)
            code, msg = s.ehlo(req.get("helo", socket.getfqdn()))
            step("ehlo", code, msg)
            out["ehlo_auth_after_tls"] = s.esmtp_features.get("auth", None)
        if req.get("auth"):
            mech, user, password = req["auth"]
            if mech == "PLAIN":
                token = base64.b64encode(f"\0{user}\0{password}".encode()).decode()
                code, msg = s.docmd("AUTH", f"PLAIN {token}")
            else:
                code, msg = s.docmd("AUTH", "LOGIN")
                if code == 334:
                    code, msg = s.docmd(base64.b64encode(user.encode()).decode())
                if code == 334:
                    code, msg = s.docmd(base64.b64encode(password.encode()).decode())
            if not step("auth", code, msg):
                return out
        if req.get("mail_from") is None:
            s.quit()
            out["ok"] = True
            return out
        code, msg = s.docmd("MAIL", f"FROM:<{req['mail_from']}>")
        if not step("mail", code, msg):
            return out
        accepted = 0
        for rcpt in req.get("rcpt", []):
            code, msg = s.docmd("RCPT", f"TO:<{rcpt}>")
            accepted += step("rcpt", code, msg)
        if not accepted:
            return out
        data = re.sub(r"\r?\n", "\r\n", req.get("data", "Subject: probe\n\nprobe\n"))  # sendmail refuses bare LF
        code, msg = s.data(data.encode())
        if step("data", code, msg):
            out["ok"] = True
        s.quit()
    except smtplib.SMTPServerDisconnected as exc:
        steps.append({"step": "disconnected", "code": 0, "text": str(exc)})
    except smtplib.SMTPResponseException as exc:
        step("error", exc.smtp_code, exc.smtp_error)
    except (OSError, ValueError, smtplib.SMTPException) as exc:
        steps.append({"step": "error", "code": 0, "text": f"{type(exc).__name__}: {exc}"})
    return out


def pop3(req: dict) -> dict:
    out: dict = {"ok": False, "steps": []}
    try:
        if req.get("port", 110) == 995:
            p = _POP3S(req["server"], 995, _name(req), 20, _ctx(req))
        else:
            p = poplib.POP3(req["server"], req.get("port", 110), timeout=20)
            p.host = _name(req)  # stls() checks the certificate against self.host
            if req.get("stls", True):
                out["steps"].append({"step": "stls", "text": p.stls(context=_ctx(req)).decode()})
        if isinstance(p.sock, ssl.SSLSocket):
            _tls(out, p.sock)
        out["steps"].append({"step": "user", "text": p.user(req["user"]).decode()})
        out["steps"].append({"step": "pass", "text": p.pass_(req["password"]).decode()})
        out["messages"] = p.stat()[0]
        p.quit()
        out["ok"] = True
    except poplib.error_proto as exc:
        out["steps"].append({"step": "error", "text": str(exc)})
    except OSError as exc:
        out["steps"].append({"step": "error", "text": f"{type(exc).__name__}: {exc}"})
    return out


def batch(req: dict) -> dict:
    """Every host's dialogues: in the order given on one host (a relay after a POP3 login needs the login first),
    the hosts side by side (a batch of a rollout is checked in the time of its slowest host, not of their sum).
    A dialogue is its "kind" (smtp or pop3) and its request, over "defaults"."""
    defaults = req.get("defaults", {})
    hosts: dict = req.get("hosts", {})

    def run(dialogues: list) -> list:
        out = []
        for d in dialogues:
            full = {**defaults, **{k: v for k, v in d.items() if k != "kind"}}
            out.append(pop3(full) if d.get("kind") == "pop3" else smtp(full))
        return out

    if not hosts:
        return {}
    with ThreadPoolExecutor(max_workers=min(32, len(hosts))) as pool:
        return dict(zip(hosts, pool.map(run, hosts.values()), strict=True))


KINDS = {"smtp": smtp, "pop3": pop3, "batch": batch}
USAGE = "usage: mailprobe.py smtp|pop3|batch REQUEST  (REQUEST: a JSON object, or - to read it from stdin)"


def main(argv: list[str]) -> int:
    """Prints one JSON object; exit status 0 when the probe ran (its result says how the server answered),
    2 on bad usage."""
    if len(argv) != 2 or argv[0] not in KINDS:
        print(USAGE, file=sys.stderr)
        return 2
    try:
        req = json.loads(sys.stdin.read() if argv[1] == "-" else argv[1])
    except json.JSONDecodeError as exc:
        print(f"mailprobe.py: REQUEST is not JSON ({exc}); {USAGE}", file=sys.stderr)
        return 2
    print(json.dumps(KINDS[argv[0]](req)))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
