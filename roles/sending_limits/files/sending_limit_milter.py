#!/usr/bin/python3
"""sendmail-fleet's per-mailbox sending limit: a milter for sendmail, on pymilter (Debian's python3-milter).

  sending_limit_milter.py serve --settings FILE     the milter (systemd runs it)
  sending_limit_milter.py status --settings FILE    the mailboxes held now, as JSON (the fleet report)
  sending_limit_milter.py check --settings FILE     check the settings file, print nothing (the role, before a restart)

Mail from a client that authenticated (sendmail's {auth_authen} macro, the mailbox name) is counted per mailbox over
a sliding period. Once a mailbox has sent its number of messages in the period, its next MAIL gets 451 4.7.1; once it
has sent to its number of recipients, its next RCPT gets 451 4.7.1 - until enough of the period has passed. Every
other mailbox keeps sending. Mail without SMTP-Auth is not counted (this host's own programs, POP-before-SMTP relays,
mail coming in). Counts live in this process: a restart starts every mailbox from zero.

Each refusal is logged (standard output, so the journal) with the mailbox, and the mailboxes held in the period are
written to the status file. Everything but the milter glue is standard library, so the tests run it without pymilter.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import tempfile
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

MAILBOX = re.compile(r"^[^\s@]{1,64}@[A-Za-z0-9.-]{1,253}$|^[A-Za-z0-9._+-]{1,64}$")
SOCKET = re.compile(r"^inet6?:[0-9]{1,5}@[A-Za-z0-9.:_-]+$|^local:/[A-Za-z0-9/._-]+$")
PERIOD_RANGE = (10, 7 * 24 * 3600)  # seconds; 10 lets a test see a period end


@dataclass(frozen=True)
class Limit:
    messages: int
    recipients: int


@dataclass(frozen=True)
class Settings:
    period: int
    default: Limit
    mailboxes: dict[str, Limit]
    listen: str
    status_file: str

    def limit(self, mailbox: str) -> Limit:
        return self.mailboxes.get(mailbox.lower(), self.default)


def _count(value: object, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 10_000_000:
        raise ValueError(f"{name}: {value!r} is not a whole number from 1 to 10000000")
    return value


def _limit(raw: object, name: str) -> Limit:
    if not isinstance(raw, dict) or set(raw) != {"messages", "recipients"}:
        raise ValueError(f"{name}: wants exactly messages and recipients")
    return Limit(_count(raw["messages"], name + ".messages"), _count(raw["recipients"], name + ".recipients"))


def parse_settings(raw: object) -> Settings:
    """The settings file's JSON, checked: a value it cannot use is an error naming it, never a limit left out."""
    if not isinstance(raw, dict):
        raise ValueError("the settings are not a JSON object")
    period = raw.get("period")
    if isinstance(period, bool) or not isinstance(period, int) or not PERIOD_RANGE[0] <= period <= PERIOD_RANGE[1]:
        raise ValueError(f"period: {period!r} is not a number of seconds from {PERIOD_RANGE[0]} to {PERIOD_RANGE[1]}")
    mailboxes = raw.get("mailboxes", {})
    if not isinstance(mailboxes, dict):
        raise ValueError("mailboxes: not a mapping of mailbox to its limit")
    for name in mailboxes:
        if not MAILBOX.match(name):
            raise ValueError(f"mailboxes: {name!r} is not a mailbox name (user or user@domain)")
    listen, status_file = raw.get("listen"), raw.get("status_file")
    if not isinstance(listen, str) or not SOCKET.match(listen):
        raise ValueError(f"listen: {listen!r} is not inet:PORT@ADDRESS or local:/PATH")
    if not isinstance(status_file, str) or not status_file.startswith("/"):
        raise ValueError(f"status_file: {status_file!r} is not an absolute path")
    return Settings(period, _limit(raw.get("default"), "default"),
                    {k.lower(): _limit(v, f"mailboxes[{k}]") for k, v in mailboxes.items()}, listen, status_file)


def load_settings(path: str) -> Settings:
    with open(path, encoding="utf-8") as f:
        return parse_settings(json.load(f))


def printable(text: str, limit: int = 254) -> str:
    """A stranger's text as it may go into a log line or an SMTP reply: printable ASCII only (no control characters,
    no spaces, nothing an SMTP reply may not carry), no '%' (libmilter drops a reply with a single one), at most
    `limit` characters."""
    return "".join(c if c.isascii() and c.isprintable() and not c.isspace() and c != "%" else "?"
                   for c in text[:limit]) or "?"


def duration(seconds: float) -> str:
    """A span as a person says it: seconds up to two minutes, then whole minutes (rounded up)."""
    if seconds < 120:
        n, unit = max(1, int(seconds + 0.999)), "second"
    else:
        n, unit = int(seconds + 59) // 60, "minute"
    return f"{n} {unit}" + ("s" if n != 1 else "")


@dataclass
class Hold:
    since: float
    last: float
    refused: int = 1


@dataclass
class Ledger:
    """What each mailbox sent in the last period: the time and the recipient count of each accepted message. Thread
    safe (libmilter runs a thread per SMTP connection). A mailbox keeps at most its limit of entries, so memory is
    bounded by the mailboxes that sent in the period."""

    settings: Settings
    clock: Callable[[], float] = time.time
    _sent: dict[str, deque[tuple[float, int]]] = field(default_factory=dict)
    _held: dict[str, Hold] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def _window(self, mailbox: str, now: float) -> deque[tuple[float, int]]:
        sent = self._sent.get(mailbox)
        if sent is None:
            return deque()
        while sent and sent[0][0] <= now - self.settings.period:
            sent.popleft()
        if not sent:
            del self._sent[mailbox]
        return sent

    def _refusal(self, mailbox: str, what: str, count: int, limit: int, window: deque[tuple[float, int]],
                 now: float) -> str:
        wait = window[0][0] + self.settings.period - now if window else self.settings.period
        sent = f"sent {count} messages" if what == "messages" else f"sent to {count} recipients"
        return (f"{printable(mailbox)} has {sent} in the last {duration(self.settings.period)},"
                f" its limit: try again in {duration(wait)}")

    def may_send(self, mailbox: str) -> str | None:
        """At MAIL: None, or the reason this mailbox may not send another message now."""
        key, now = mailbox.lower(), self.clock()
        limit = self.settings.limit(key)
        with self._lock:
            window = self._window(key, now)
            messages, recipients = len(window), sum(n for _, n in window)
            if messages >= limit.messages:
                return self._refusal(mailbox, "messages", messages, limit.messages, window, now)
            if recipients >= limit.recipients:
                return self._refusal(mailbox, "recipients", recipients, limit.recipients, window, now)
        return None

    def may_add_recipient(self, mailbox: str, pending: int) -> str | None:
        """At RCPT: None, or the reason this recipient (after `pending` ones already taken in this message) is one
        too many now."""
        key, now = mailbox.lower(), self.clock()
        limit = self.settings.limit(key)
        with self._lock:
            window = self._window(key, now)
            recipients = sum(n for _, n in window) + pending
            if recipients >= limit.recipients:
                return self._refusal(mailbox, "recipients", recipients, limit.recipients, window, now)
        return None

    def sent(self, mailbox: str, recipients: int) -> None:
        """A message was accepted (end of message) for `recipients` recipients."""
        key, now = mailbox.lower(), self.clock()
        with self._lock:
            self._window(key, now)
            self._sent.setdefault(key, deque()).append((now, recipients))

    def refused(self, mailbox: str) -> None:
        key, now = mailbox.lower(), self.clock()
        with self._lock:
            hold = self._held.get(key)
            if hold is None or hold.last <= now - self.settings.period:
                self._held[key] = Hold(now, now)
            else:
                hold.last, hold.refused = now, hold.refused + 1

    def status(self) -> dict:
        """The mailboxes refused in the period, for the status file."""
        now = self.clock()
        with self._lock:
            for key in [k for k, h in self._held.items() if h.last <= now - self.settings.period]:
                del self._held[key]
            held = {k: {"since": round(h.since), "last": round(h.last), "refused": h.refused}
                    for k, h in sorted(self._held.items())}
        return {"period": self.settings.period, "written": round(now), "held": held}


def write_status(path: str, status: dict) -> None:
    """The status file, replaced whole (a reader never sees half of it)."""
    folder = os.path.dirname(path) or "."
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=".status.")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(status, f, sort_keys=True)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


def held_now(status: dict, now: float) -> list[dict]:
    """The status file's mailboxes still held at `now` (refused within the period), as the fleet report lists them."""
    period = status.get("period", 0)
    rows = []
    for mailbox, h in sorted(status.get("held", {}).items()):
        if isinstance(h, dict) and isinstance(h.get("last"), (int, float)) and h["last"] > now - period:
            rows.append({"mailbox": printable(mailbox), "refused": int(h.get("refused", 0)),
                         "since": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(h.get("since", 0))),
                         "last": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(h["last"]))})
    return rows


def log(line: str) -> None:
    print(line, flush=True)


def serve(settings: Settings) -> None:  # pragma: no cover - the lab runs it under sendmail (tests/lab)
    import Milter  # Debian's python3-milter; only the milter itself needs it

    ledger = Ledger(settings)

    class LimitMilter(Milter.Base):
        def __init__(self) -> None:
            self.mailbox: str | None = None
            self.recipients = 0

        def _refuse(self, reason: str) -> int:
            assert self.mailbox is not None
            ledger.refused(self.mailbox)
            client = printable(self.getsymval("{client_addr}") or "?", 64)
            log(f"held mailbox={printable(self.mailbox)} client={client} reply=451 4.7.1: {reason}")
            try:
                write_status(settings.status_file, ledger.status())
            except OSError as e:
                log(f"status file {settings.status_file} not written: {e}")
            self.setreply("451", "4.7.1", reason)
            return Milter.TEMPFAIL

        def envfrom(self, mailfrom: str, *params: str) -> int:
            self.mailbox, self.recipients = self.getsymval("{auth_authen}") or None, 0
            if self.mailbox is None:
                return Milter.CONTINUE
            reason = ledger.may_send(self.mailbox)
            return self._refuse(reason) if reason else Milter.CONTINUE

        def envrcpt(self, to: str, *params: str) -> int:
            if self.mailbox is None:
                return Milter.CONTINUE
            reason = ledger.may_add_recipient(self.mailbox, self.recipients)
            if reason:
                return self._refuse(reason)
            self.recipients += 1
            return Milter.CONTINUE

        def eom(self) -> int:
            if self.mailbox is not None and self.recipients:
                ledger.sent(self.mailbox, self.recipients)
            self.mailbox = None
            return Milter.CONTINUE

        def abort(self) -> int:
            self.mailbox = None
            return Milter.CONTINUE

    Milter.factory = LimitMilter
    Milter.set_flags(0)  # it changes no message: it only answers
    log(f"listening on {settings.listen}: {settings.default.messages} messages and {settings.default.recipients}"
        f" recipients per mailbox in {settings.period} s, {len(settings.mailboxes)} mailboxes with their own limit")
    Milter.runmilter("sendmail-fleet-limits", settings.listen, timeout=60)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("command", choices=["serve", "status", "check"])
    ap.add_argument("--settings", required=True)
    args = ap.parse_args(argv)
    try:
        settings = load_settings(args.settings)
    except (OSError, ValueError) as e:
        print(f"{args.settings}: {e}", file=sys.stderr)
        return 2
    if args.command == "check":
        return 0
    if args.command == "status":
        try:
            with open(settings.status_file, encoding="utf-8") as f:
                status = json.load(f)
        except FileNotFoundError:
            status = {}
        except (OSError, ValueError) as e:
            print(f"{settings.status_file}: {e}", file=sys.stderr)
            return 2
        json.dump({"held": held_now(status if isinstance(status, dict) else {}, time.time())}, sys.stdout)
        print()
        return 0
    serve(settings)
    return 1  # runmilter returns only when the milter stops


if __name__ == "__main__":
    sys.exit(main())
