"""Real mail through the lab: probes run in the client containers, delivery checked in the mailboxes.

Each check returns a Result: what the variant promises, the reply code seen, pass or fail.
`maillab demo` and the lab tests use these same checks.
"""

from __future__ import annotations

import io
import json
import shlex
import tarfile
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from docker.models.containers import Container

import docker

from .host import HELPERS
from .lab import LabError
from .topology import CAPPED_MESSAGES, CAPPED_USER, RELEASES, Node, Topology
from .variants import NOT_APPLICABLE, all_variants, applies, promise

PROBE = HELPERS["mailprobe"]
# How long past its POP-before-SMTP window a VPS may keep relaying for a client before the window expiry check runs
# anyway: the host's expiry timer runs every pop_before_smtp_expire_interval seconds (5 in the lab), then rebuilds
# the map.
WINDOW_SLACK = 12.0
PROBE_PATH = "/usr/local/bin/maillab-probe"
# On the mx: the message that carries a token in carol's mailbox, as base64 of its bytes ("" when not there).
MESSAGE_B64 = r"""
import base64, mailbox, sys
for m in mailbox.mbox(sys.argv[2]):
    if sys.argv[1] in m.as_string():
        print(base64.b64encode(m.as_bytes()).decode())
        break
"""
# On a client, as a receiver checks it (dkimpy, Debian's python3-dkim, asking the lab DNS for the key): whether the
# message is signed, by which domain and selector, and whether the signature passes.
DKIM_VERIFY = r"""
import base64, email, json, sys
import dkim
raw = base64.b64decode(sys.argv[1])
value = str(email.message_from_bytes(raw).get("DKIM-Signature") or "")
tags = dict(p.strip().split("=", 1) for p in "".join(value.split()).split(";") if "=" in p)
print(json.dumps({"signed": bool(value), "pass": bool(value) and bool(dkim.verify(raw)),
                  "d": tags.get("d", ""), "s": tags.get("s", "")}))
"""


@dataclass
class Result:
    check: str
    passed: bool
    seen: str
    detail: str = ""


@dataclass
class Smtp:
    raw: dict

    def step(self, step: str) -> dict | None:
        """The last reply to that step ({"step", "code", "text"}), or None when it was not reached."""
        steps = [s for s in self.raw["steps"] if s["step"] == step]
        return steps[-1] if steps else None

    def code(self, step: str) -> int | None:
        found = self.step(step)
        return found["code"] if found else None

    @property
    def last(self) -> dict:
        return self.raw["steps"][-1] if self.raw["steps"] else {"step": "none", "code": 0, "text": ""}

    @property
    def last_code(self) -> int:
        return self.last["code"]

    def summary(self) -> str:
        """Each step and its reply code; a step with no reply (an error, a time-out, a hang-up) says what happened."""
        return " / ".join(f"{s['step']} {s['code']}" + (f" ({s.get('text', '')[:120]})" if not s["code"] else "")
                          for s in self.raw["steps"])


@dataclass
class MailLab:
    topo: Topology
    client: docker.DockerClient = field(default_factory=docker.from_env)
    _probed: set[str] = field(default_factory=set)
    # The checks run in threads: a client counts as equipped only once its copy has landed, and a second check
    # on it waits for that (without the lock it ran the probe before the file was there, exit 2, a false FAIL).
    _probe_lock: threading.Lock = field(default_factory=threading.Lock)

    def container(self, key: str) -> Container:
        return self.client.containers.get(self.topo.get(key).name)

    def _ensure_probe(self, c: Container) -> None:
        # Copied once per run, so a changed probe never meets an old copy.
        with self._probe_lock:
            if c.name in self._probed:
                return
            data = PROBE.read_bytes()
            buf = io.BytesIO()
            with tarfile.open(fileobj=buf, mode="w") as tar:
                info = tarfile.TarInfo("maillab-probe")
                info.size, info.mode = len(data), 0o755
                tar.addfile(info, io.BytesIO(data))
            c.put_archive("/usr/local/bin", buf.getvalue())
            self._probed.add(c.name)

    def _probe(self, client: str, kind: str, req: dict) -> dict:
        c = self.container(client)
        self._ensure_probe(c)
        res = c.exec_run(["python3", PROBE_PATH, kind, json.dumps(req)])
        try:
            return json.loads(res.output.decode().strip().splitlines()[-1])
        except (ValueError, IndexError):
            return {"ok": False, "steps": [{"step": "probe", "code": 0, "text": res.output.decode()[-300:]}]}

    # Every TLS connection verifies the server's certificate and its name against the clients' trust store (the
    # lab's CA is installed there by `maillab up`), as a mail program would.
    def smtp(self, client: str, server: Node, **req) -> Smtp:
        return Smtp(self._probe(client, "smtp", {"server": server.fqdn, "verify": True, **req}))

    def pop3(self, client: str, server: Node, user: str, password: str, port: int = 110) -> dict:
        return self._probe(client, "pop3", {"server": server.fqdn, "port": port, "user": user,
                                             "password": password, "verify": True})

    def sh(self, node: Node, cmd: str) -> tuple[int, str]:
        res = self.client.containers.get(node.name).exec_run(["sh", "-c", cmd])
        return res.exit_code, res.output.decode(errors="replace")

    def wait_for_mail(self, node: Node, path: str, token: str, timeout: float = 30) -> bool:
        """Whether a message carrying token reaches the mailbox file within timeout seconds: polled on the host
        itself (a grep every 0.2 s) in one exec, where an exec per poll cost the machine about 50 ms of CPU each
        (173 of the demo's 581 execs were such polls on the mx)."""
        until = f"until grep -qF -- {shlex.quote(token)} {shlex.quote(path)} 2>/dev/null; do sleep 0.2; done"
        return self.sh(node, f"timeout {timeout:g} sh -c {shlex.quote(until)}")[0] == 0

    def has_mail(self, node: Node, path: str, token: str) -> bool:
        return self.sh(node, f"grep -qF -- {shlex.quote(token)} {shlex.quote(path)}")[0] == 0


def _sleep_until(when: float) -> None:
    while (left := when - time.monotonic()) > 0:
        time.sleep(min(left, 1.0))


CLOSED = "closed"  # what a client sees where no listener is: its connection is refused


def refused_at_connect(steps: list[dict]) -> bool:
    """A probe's steps (SMTP or POP3) say its connection was refused: no listener, or a ban."""
    first = steps[0] if steps else {}
    return first.get("step") == "error" and "Connection refused" in first.get("text", "")


def token() -> str:
    return "tok-" + uuid.uuid4().hex[:16]


def message(tok: str, subject: str = "probe", sender: str | None = None) -> str:
    """A probe message carrying `tok`; with `sender`, a From header as a mail program writes it (OpenDKIM signs
    by the From domain, and signs nothing without one)."""
    head = f"From: {sender}\r\n" if sender else ""
    return f"{head}Subject: {subject} {tok}\r\nX-Maillab-Token: {tok}\r\n\r\nbody {tok}\r\n"


class Checks:
    """The checks for one VPS, in the order they must run (POP-before-SMTP state carries over). Each check records
    what a client saw and passes when that is what the variant promises (sendmail_promises, read through
    variants.promise); a promised relay or delivery must also reach the mailbox."""

    def __init__(self, lab: MailLab, vps: Node) -> None:
        self.lab, self.vps = lab, vps
        self.variant = all_variants()[vps.variant or "default"]
        self.mx = lab.topo.by_role("mx")[0]
        self.alice, self.bob = vps.accounts[0], vps.accounts[1]
        self.capped = next((a for a in vps.accounts if a.user == CAPPED_USER), None)
        self.relayed: list[str] = []  # tokens of relayed messages that reached the remote mailbox
        self.carol = self.mx.accounts[0]
        self.results: list[Result] = []
        self.pop_login_at: float | None = None  # when client1's POP3 login opened its window (pop_login_relay)

    def tally(self) -> str:
        """One line for this VPS: how many checks so far saw what the variant promises, and which did not."""
        bad = [r.check for r in self.results if not r.passed]
        debian = RELEASES.get(self.vps.release or "", "?")
        line = (f"{self.vps.short:6} Debian {debian:3} {self.variant.name:31} "
                f"{len(self.results) - len(bad):>2}/{len(self.results)} checks as promised")
        return line + (f"; FAIL: {', '.join(bad)}" if bad else "")

    def expect(self, check: str) -> str:
        return promise(self.variant.name, check)

    def _add(self, check: str, seen: str, delivered: bool = True, detail: str = "") -> Result:
        want = self.expect(check)
        passed = seen == want and delivered
        why = detail if seen == want else f"expected {want}, saw {seen}: {detail}"
        r = Result(check, passed, seen, "" if passed else why)
        self.results.append(r)
        return r

    def _not_applicable(self, check: str) -> Result | None:
        """A "-" result where the variant lacks the feature the check is about (its features say so, not the table:
        a "-" where it has the feature is a table the checks refuse, variants.TableError)."""
        if applies(self.variant.name, check):
            return None
        return self._add(check, NOT_APPLICABLE, detail=f"does not apply to {self.variant.name}")

    def _relay(self, client: str, port: int = 25, **req) -> tuple[Smtp, str]:
        tok = token()
        res = self.lab.smtp(client, self.vps, port=port, mail_from=self.alice.address,
                            rcpt=[self.carol.address], data=message(tok, sender=self.alice.address), **req)
        return res, tok

    @property
    def help_url(self) -> str:
        """The help page the grace phase's refusal names (the mail_host role's mail_host_help_url for the domain)."""
        return f"https://autoconfig.{self.vps.domain}/"

    def refusal_is_right(self, code: int | None, text: str) -> bool:
        """A refusal says what it is: 550 5.7.1 (relay denied, final), or the grace phase's 450 4.7.1 (try again)
        that tells the user to set up SMTP-Auth and names the help page."""
        if code == 450:
            return "4.7.1" in text and self.help_url in text and "SMTP authentication" in text
        return code == 550 and "5.7.1" in text

    def _relay_check(self, name: str, client: str, **req) -> Result:
        """Relay to the remote mailbox: a 250 must arrive there; a refusal must be 550 5.7.1 (relay denied) or the
        grace phase's 450 4.7.1 naming the help page."""
        res, tok = self._relay(client, **req)
        if res.raw["ok"]:
            delivered = self.lab.wait_for_mail(self.mx, "/var/mail/carol", tok)
            if delivered:
                self.relayed.append(tok)
            return self._add(name, str(res.code("data")), delivered,
                             "" if delivered else f"accepted but not delivered on mx: {res.summary()}")
        code = res.code("rcpt") or res.last_code
        return self._add(name, str(code), self.refusal_is_right(code, res.last["text"]), res.summary())

    # -- the checks ------------------------------------------------------------------------------
    def local_delivery(self) -> Result:
        tok = token()
        res = self.lab.smtp("client1", self.vps, port=25, mail_from=self.carol.address,
                            rcpt=[self.alice.address], data=message(tok))
        delivered = res.raw["ok"] and self.lab.wait_for_mail(self.vps, "/var/mail/alice", tok)
        return self._add("local mail", str(res.code("data") or res.last_code), delivered,
                         "" if delivered else f"not delivered to /var/mail/alice: {res.summary()}")

    def unknown_user(self) -> Result:
        res = self.lab.smtp("client1", self.vps, port=25, mail_from=self.carol.address,
                            rcpt=[f"nosuchuser@{self.vps.domain}"])
        return self._add("unknown user", str(res.code("rcpt")), "5.1.1" in res.last["text"], res.summary())

    def relay_without_auth(self) -> Result:
        return self._relay_check("relay, no auth", "client1")

    def submission_without_auth(self) -> Result:
        res, _ = self._relay("client1", port=587, starttls=True)
        # An SMTP-Auth MSA refuses MAIL (530); without SMTP-Auth MAIL passes and the relay RCPT is refused.
        seen = res.code("rcpt") if res.code("mail") == 250 else res.code("mail")
        return self._add("587 no auth", str(seen or res.last_code), not res.raw["ok"], res.summary())

    def smtps_without_auth(self) -> Result:
        """Submissions on 465 (implicit TLS) without AUTH: 530 where the variant has SMTP-Auth; no listener where
        it has not."""
        res, _ = self._relay("client1", port=465, tls=True)
        if refused_at_connect(res.raw["steps"]):
            return self._add("465 no auth", CLOSED, detail=res.summary())
        seen = res.code("rcpt") if res.code("mail") == 250 else res.code("mail")
        return self._add("465 no auth", str(seen or res.last_code), not res.raw["ok"], res.summary())

    def smtps_auth_relay(self) -> Result:
        """AUTH PLAIN on 465 (the TLS session verified), then relay to the remote mailbox."""
        res, tok = self._relay("client1", port=465, tls=True, auth=["PLAIN", self.alice.user, self.alice.password])
        if refused_at_connect(res.raw["steps"]):
            return self._add("465 AUTH relay", CLOSED, detail=res.summary())
        code = res.code("auth")
        delivered = code != 235 or (res.raw["ok"] and self.lab.wait_for_mail(self.mx, "/var/mail/carol", tok))
        tls = res.raw.get("tls_version", "")
        return self._add("465 AUTH relay", str(code), delivered and tls in ("TLSv1.2", "TLSv1.3"),
                         f"{tls or 'no TLS'}; {res.summary()}")

    def auth_offer(self) -> Result:
        res = self.lab.smtp("client1", self.vps, port=587, starttls=True)
        res25 = self.lab.smtp("client1", self.vps, port=25)
        before = res.raw.get("ehlo_auth_before_tls") or res25.raw.get("ehlo_auth_before_tls")
        after = " ".join(sorted((res.raw.get("ehlo_auth_after_tls") or "").split())) or "none"
        tls = res.raw.get("ehlo_starttls") is True
        return self._add("AUTH offer", after, not before and tls,
                         f"STARTTLS offered: {tls}; AUTH before TLS: {before or 'none'}; after: {after}")

    def auth_relay(self, mech: str) -> Result:
        name = f"AUTH {mech} relay"
        res, tok = self._relay("client1", port=587, starttls=True, auth=[mech, self.alice.user, self.alice.password])
        code = res.code("auth")
        delivered = code != 235 or (res.raw["ok"] and self.lab.wait_for_mail(self.mx, "/var/mail/carol", tok))
        if code == 235 and delivered:
            self.relayed.append(tok)
        return self._add(name, str(code), delivered, res.summary())

    def auth_failures(self) -> Result:
        if r := self._not_applicable("bad/unknown AUTH"):
            return r
        bad = self.lab.smtp("client1", self.vps, port=587, starttls=True,
                            auth=["PLAIN", self.alice.user, "wrong-password"])
        unknown = self.lab.smtp("client1", self.vps, port=587, starttls=True,
                                auth=["PLAIN", "nosuchuser", "whatever"])
        same = bad.last["text"] == unknown.last["text"]  # no hint which user names exist
        return self._add("bad/unknown AUTH", f"{bad.code('auth')}/{unknown.code('auth')}", same,
                         f"{bad.summary()} | {unknown.summary()}")

    def failed_pop_login_opens_nothing(self) -> Result:
        """From client2, which never logs in with the right password: client1's login may have opened its own
        address already."""
        pop = self.lab.pop3("client2", self.vps, self.alice.user, "wrong-password")
        r = self._relay_check("bad POP login", "client2")
        if pop["ok"]:
            r.passed, r.detail = False, "POP3 accepted a wrong password"
        return r

    def pop_login_relay(self) -> Result:
        pop = self.lab.pop3("client1", self.vps, self.alice.user, self.alice.password)
        if not pop["ok"]:
            return self._add("POP login relay", "-ERR", False, f"POP3 login failed: {pop['steps']}")
        self.pop_login_at = time.monotonic()
        return self._relay_check("POP login relay", "client1")

    def pop_login_submission(self) -> Result:
        """The submission port without AUTH after client1's POP3 login (pop_login_relay): the legacy variant's MSA
        relays for it, the grace phase answers 450 4.7.1 naming the help page, SMTP-Auth variants 530."""
        res, tok = self._relay("client1", port=587, starttls=True)
        if res.raw["ok"]:
            delivered = self.lab.wait_for_mail(self.mx, "/var/mail/carol", tok)
            return self._add("POP login 587", str(res.code("data")), delivered,
                             "" if delivered else f"accepted but not delivered on mx: {res.summary()}")
        seen = res.code("rcpt") if res.code("mail") == 250 else res.code("mail")
        text = (res.step("rcpt") if res.code("mail") == 250 else res.step("mail")) or res.last
        right = seen != 450 or self.refusal_is_right(seen, text.get("text", ""))
        return self._add("POP login 587", str(seen or res.last_code), right, res.summary())

    def excepted_pop_relay(self) -> Result:
        """The grace phase's exception: bob (excepted on the grace VPS) logs in by POP3 from client2 and relays
        from there. Last of the checks before the window: client2 then holds a grant for the window."""
        if r := self._not_applicable("excepted POP relay"):
            return r
        pop = self.lab.pop3("client2", self.vps, self.bob.user, self.bob.password)
        if not pop["ok"]:
            return self._add("excepted POP relay", "-ERR", False, f"POP3 login failed: {pop['steps']}")
        return self._relay_check("excepted POP relay", "client2")

    def other_client_refused(self) -> Result:
        return self._relay_check("client2 relay", "client2")

    def window_expired(self) -> Result:
        return self._not_applicable("window expiry") or self._relay_check("window expiry", "client1")

    def await_window_end(self, window: float, slack: float = WINDOW_SLACK) -> None:
        """Returns once client1's POP-before-SMTP window on this VPS has passed, so that window_expired can follow:
        `window` seconds after its POP3 login, then a relay RCPT (no message, so nothing is sent) about once a
        second until the server answers it as the variant promises for an expired window, for at most `slack`
        seconds more. It decides nothing: the check that follows does."""
        if self.pop_login_at is None or not applies(self.variant.name, "window expiry"):
            return
        want, ends = self.expect("window expiry"), self.pop_login_at + window
        _sleep_until(ends)
        while time.monotonic() < ends + slack:
            res = self.lab.smtp("client1", self.vps, port=25, mail_from=self.alice.address, rcpt=[self.carol.address])
            if str(res.code("rcpt") or res.last_code) == want:
                return
            _sleep_until(min(ends + slack, time.monotonic() + 1.0))

    def procmail_recipe(self) -> Result:
        folder = "/home/alice/mail/maillab-folder"
        self.lab.sh(self.vps, "printf ':0\\n* ^Subject:.*FOLDERTEST\\nmaillab-folder\\n' > /home/alice/.procmailrc"
                              " && printf 'MAILDIR=$HOME/mail\\n' | cat - /home/alice/.procmailrc > /tmp/rc"
                              " && mv /tmp/rc /home/alice/.procmailrc && mkdir -p /home/alice/mail"
                              " && chown -R alice: /home/alice/.procmailrc /home/alice/mail"
                              " && chmod 644 /home/alice/.procmailrc")
        tok = token()
        res = self.lab.smtp("client1", self.vps, port=25, mail_from=self.carol.address,
                            rcpt=[self.alice.address], data=message(tok, "FOLDERTEST"))
        seen = "not delivered"
        if res.raw["ok"]:
            deadline = time.monotonic() + 30
            while seen == "not delivered" and time.monotonic() < deadline:
                if self.lab.has_mail(self.vps, folder, tok):
                    seen = "folder"
                elif self.lab.has_mail(self.vps, "/var/mail/alice", tok):
                    seen = "inbox"
                else:
                    time.sleep(0.3)
        return self._add("procmail recipe", seen, detail=res.summary())

    def saslauthd_down(self) -> Result:
        if r := self._not_applicable("saslauthd down"):
            return r
        self.lab.sh(self.vps, "systemctl stop saslauthd")
        try:
            res, _ = self._relay("client1", port=587, starttls=True,
                                 auth=["PLAIN", self.alice.user, self.alice.password])
            code = res.code("auth") or 0
            # Cyrus SASL alone would say 535 (bad password); the submission port's saslauthd probe makes it a
            # temporary 454 4.7.0, so clients retry instead of asking for a new password.
            temporary = "4.7.0" in (res.step("auth") or {}).get("text", "") and not res.raw["ok"]
            unauth, _ = self._relay("client2", port=25)  # client1 may hold a POP-before-SMTP grant
            closed = unauth.code("rcpt") == 550
        finally:
            self.lab.sh(self.vps, "systemctl start saslauthd")
        return self._add("saslauthd down", str(code), temporary and closed,
                         f"{res.summary()} | relay while down: {unauth.summary()}")

    def sending_limit(self) -> Result:
        """The lab's capped mailbox sends by SMTP-Auth until it is refused: within its limit of messages, MAIL must
        get 451 4.7.1 naming it (a second run within the limit's period meets the refusal at once), and every
        message accepted before must reach the remote mailbox."""
        if r := self._not_applicable("sending limit"):
            return r
        if self.capped is None:
            return self._add("sending limit", "no mailbox", False, f"the lab has no {CAPPED_USER} mailbox here")
        sent: list[str] = []
        for _ in range(CAPPED_MESSAGES + 1):
            tok = token()
            res = self.lab.smtp("client1", self.vps, port=587, starttls=True,
                                auth=["PLAIN", self.capped.user, self.capped.password],
                                mail_from=self.capped.address, rcpt=[self.carol.address], data=message(tok))
            if not res.raw["ok"]:
                break
            sent.append(tok)
        if res.raw["ok"]:
            return self._add("sending limit", "250", False, f"{len(sent)} messages accepted, none refused")
        code = res.code("mail") if res.code("auth") == 235 else res.last_code
        text = (res.step("mail") or {}).get("text", "")
        right = code == 451 and text.startswith("4.7.1") and self.capped.user in text
        delivered = all(self.lab.wait_for_mail(self.mx, "/var/mail/carol", t) for t in sent)
        return self._add("sending limit", str(code), right and delivered,
                         f"{len(sent)} accepted before the refusal" + ("" if delivered else ", not all delivered")
                         + f": {res.summary()}")

    def dkim_signed(self) -> Result:
        """The first relayed message that reached the remote mailbox, as a receiver checks it: signed for the VPS's
        domain, and dkimpy (Debian's python3-dkim, on client1, asking the lab DNS) passes the signature."""
        if not self.relayed:
            return self._add("DKIM signed", "no mail", False, "no relayed message reached the remote mailbox")
        tok = self.relayed[0]
        found = self.lab.container(self.mx.short).exec_run(["python3", "-c", MESSAGE_B64, tok, "/var/mail/carol"])
        raw = found.output.decode().strip()
        if found.exit_code != 0 or not raw:
            return self._add("DKIM signed", "no mail", False, f"message {tok} not found on the mx")
        res = self.lab.container("client1").exec_run(["python3", "-c", DKIM_VERIFY, raw])
        try:
            out = json.loads(res.output.decode().strip().splitlines()[-1])
        except (ValueError, IndexError):
            return self._add("DKIM signed", "error", False, res.output.decode(errors="replace")[-300:])
        seen = "pass" if out["pass"] else "fail" if out["signed"] else "unsigned"
        return self._add("DKIM signed", seen, out["d"] == self.vps.domain,
                         f"d={out['d'] or '-'} s={out['s'] or '-'} (the domain must be {self.vps.domain})")

    def start_without_grants(self) -> None:
        """No lab client may relay through this VPS by POP-before-SMTP when the checks start, as before_window
        assumes: a POP3 login minutes ago (an earlier run, a test, a person trying the lab) opens relay for a
        window by design. Ended at once with the host's `pop-before-smtp revoke`; nothing to do without it."""
        if not (self.variant.pop_before_smtp or self.variant.grace):
            return
        for client in self.lab.topo.by_role("client"):
            code, out = self.lab.sh(self.vps, f"pop-before-smtp revoke {client.address}")
            if code != 0:
                raise LabError(f"{self.vps.short}: `pop-before-smtp revoke {client.address}` failed (exit {code}): "
                               f"{out.strip()[-300:]}; is the lab provisioned as its variants say? (maillab demo "
                               "without --skip-provision provisions it)")

    def before_window(self) -> list[Callable[[], Result]]:
        """client1's refusals first (it holds no POP-before-SMTP grant yet), then its POP login, as early as that
        allows: the window expiry is checked a window after the last login, so the checks after the login (the
        slow ones too: a failed login is answered late on purpose) run while the window passes, not before it."""
        return [self.relay_without_auth, self.submission_without_auth, self.smtps_without_auth,
                self.pop_login_relay, self.pop_login_submission, self.local_delivery, self.unknown_user,
                self.auth_offer, lambda: self.auth_relay("PLAIN"), lambda: self.auth_relay("LOGIN"),
                self.smtps_auth_relay, self.auth_failures, self.failed_pop_login_opens_nothing,
                self.other_client_refused, self.procmail_recipe, self.sending_limit, self.saslauthd_down,
                self.excepted_pop_relay, self.dkim_signed]


def run_all(lab: MailLab, window: float, progress: Callable[[str], None] = lambda s: None,
            detail: Callable[[str], None] = lambda s: None, only: Sequence[str] = ()) -> dict[str, Checks]:
    """Every check on every VPS (VPSes in parallel; with `only`, on those VPS alone), then the POP-before-SMTP window
    expiry. `progress` gets a line per VPS when its checks are done, `detail` one per check."""
    checks = {n.short: Checks(lab, n) for n in lab.topo.by_role("vps") if not only or n.short in only}

    def first_phase(c: Checks) -> None:
        c.start_without_grants()
        for fn in c.before_window():
            r = fn()
            detail(f"{c.vps.short:6} {r.check:18} {r.seen:>6} {'pass' if r.passed else 'FAIL'}")
        progress(c.tally())

    def second_phase(c: Checks) -> Result:
        c.await_window_end(window)
        return c.window_expired()

    # Every VPS at once: a check mostly waits (on a reply, on mail arriving), so more threads than cores is right,
    # and a VPS that started late would hold the window's wait back by its whole run.
    with ThreadPoolExecutor(max_workers=max(1, len(checks))) as pool:
        list(pool.map(first_phase, checks.values()))
    logins = [c.pop_login_at for c in checks.values() if c.pop_login_at is not None]
    if logins and (wait := max(logins) + window - time.monotonic()) > 0:
        progress(f"waiting {wait:.0f}s (and up to {WINDOW_SLACK:.0f}s more, until relay is refused again) for the "
                 f"POP-before-SMTP window ({window:.0f}s) to pass")
    with ThreadPoolExecutor(max_workers=max(1, len(checks))) as pool:
        expired = list(pool.map(second_phase, checks.values()))
    for c, r in zip(checks.values(), expired, strict=True):
        detail(f"{c.vps.short:6} {r.check:18} {r.seen:>6} {'pass' if r.passed else 'FAIL'}")
    bad = [c.vps.short for c, r in zip(checks.values(), expired, strict=True) if not r.passed]
    progress(f"window expiry: {len(expired) - len(bad)}/{len(expired)} VPS as promised"
             + (f"; FAIL on {', '.join(bad)}" if bad else ""))
    return checks
