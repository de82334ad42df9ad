#!/usr/bin/env python3
"""Who relayed mail through this host, and how: SMTP-Auth or POP-before-SMTP.

Reads the mail log (the systemd journal through journalctl, else /var/log/mail.log*) and prints one
JSON object. A relayed message is one whose recipients went out through an SMTP mailer (joined by queue
id). It counts as SMTP-Auth when its own `from=` line says the session authenticated (`proto=ESMTPA` or
`ESMTPSA`), named by the session's `AUTH=server ... authid=` line (same process and client address, before
the message; a process id used again later never lends its name to another session); as local when it
came from this host itself; otherwise as POP-before-SMTP, and its user is the last POP3 login from that
client address before the message. A damaged log file is reported and skipped; user names that are not
valid local parts are reported apart and never get a notice.

Standard library only: this runs on the VPS (Ansible's script module sends it).
"""

from __future__ import annotations

import argparse
import datetime as dt
import glob
import gzip
import ipaddress
import json
import re
import shutil
import socket
import subprocess
import sys
import zlib
from collections.abc import Iterable
from dataclasses import dataclass, field

LINE = re.compile(r"^(?P<ts>\d{4}-\d\d-\d\dT\S+|[A-Z][a-z]{2} [ \d]\d \d\d:\d\d:\d\d) (?P<host>\S+) "
                  r"(?P<prog>[\w./-]+)\[(?P<pid>\d+)\]: (?P<msg>.*)$")
# sendmail's from= line: "QID: from=<SENDER>, size=.., msgid=<ID>, bodytype=.., proto=P, daemon=D, relay=NAME [IP]".
# The sender and the Message-ID are the client's own text and may hold "proto=" or "relay=[...]": the fields are read
# from the end of the line, where sendmail writes them after that text (relay= is never cut; a local submission ends
# in relay=USER@localhost, with no address).
FROM = re.compile(r"^(?P<qid>\w+): from=")
FROM_TAIL = re.compile(r"(?:, proto=(?P<proto>[\w-]+))?(?:, daemon=[^,]*)?, relay=(?P<relay>[^,]*)$")
RELAY_IP = re.compile(r"\[(?:IPv6:)?(?P<ip>[0-9A-Fa-f:.]+)\](?: \(may be forged\))?$")
TO = re.compile(r"^(?P<qid>\w+): to=.*?mailer=(?P<mailer>[\w-]+).*?stat=(?P<stat>\w+)")
AUTH = re.compile(r"^AUTH=server, relay=.*?\[(?P<ip>[^\]]+)\].*?authid=(?P<authid>[^,\s]+)")
# dovecot 2.3 (Debian 12) logs "Login:", dovecot 2.4 (Debian 13) "Logged in:".
POP_LOGIN = re.compile(r"pop3-login: (?:Login|Logged in): user=<(?P<user>[^>]*)>.*?rip=(?P<ip>[0-9a-fA-F:.]+)")
GRANT = re.compile(r"relay granted to (?P<ip>\S+) for user=(?P<user>\S+)")
LOCAL_MAILERS = {"local", "procmail", "prog", "*file*", "*include*"}
AUTHENTICATED = re.compile(r"^E?SMTPS?A$")  # sendmail's proto= for a session that authenticated
LOCAL_PART = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+-]{0,63}$")  # a user we may write to as USER@domain


def parse_ts(text: str, now: dt.datetime) -> dt.datetime:
    if text[:4].isdigit():
        ts = dt.datetime.fromisoformat(re.sub(r"([+-]\d\d)(\d\d)$", r"\1:\2", text))
        return ts if ts.tzinfo else ts.replace(tzinfo=dt.timezone.utc)
    ts = dt.datetime.strptime(f"{now.year} {text}", "%Y %b %d %H:%M:%S").replace(tzinfo=now.tzinfo)
    return ts.replace(year=now.year - 1) if ts > now + dt.timedelta(days=1) else ts


@dataclass
class Message:
    when: dt.datetime
    ip: str
    authenticated: bool
    authid: str
    relayed: bool = False


@dataclass
class Audit:
    since: dt.datetime
    messages: dict[str, Message] = field(default_factory=dict)
    auth_by_pid: dict[str, tuple[str, str]] = field(default_factory=dict)  # pid -> (client address, authid)
    pop_logins: list[tuple[dt.datetime, str, str]] = field(default_factory=list)
    earliest: dt.datetime | None = None  # the oldest line read, before `since` too: how far back the logs go

    def feed(self, lines: Iterable[str], now: dt.datetime) -> None:
        for line in lines:
            m = LINE.match(line.rstrip("\n"))
            if not m:
                continue
            try:
                when = parse_ts(m["ts"], now)
            except ValueError:
                continue
            if self.earliest is None or when < self.earliest:
                self.earliest = when
            if when < self.since:
                continue
            msg, pid = m["msg"], m["pid"]
            if (a := AUTH.match(msg)):
                self.auth_by_pid[pid] = (a["ip"].removeprefix("IPv6:"), a["authid"])
            elif (f := FROM.match(msg)) and (tail := FROM_TAIL.search(msg)):
                relay = RELAY_IP.search(tail["relay"])
                ip = relay["ip"] if relay else ""  # no address: submitted on this host (relay=USER@localhost)
                authenticated = bool(tail["proto"] and AUTHENTICATED.match(tail["proto"]))
                auth_ip, authid = self.auth_by_pid.get(pid, ("", ""))
                self.messages[f["qid"]] = Message(when, ip, authenticated,
                                                  authid if authenticated and auth_ip == ip else "")
            elif (t := TO.match(msg)):
                if t["mailer"] not in LOCAL_MAILERS and t["qid"] in self.messages:
                    self.messages[t["qid"]].relayed = True
            elif (p := POP_LOGIN.search(msg)) or (p := GRANT.search(msg)):
                self.pop_logins.append((when, p["ip"], p["user"]))

    def pop_user(self, ip: str, when: dt.datetime) -> str:
        users = [u for t, i, u in self.pop_logins if i == ip and t <= when]
        return users[-1] if users else "?"

    def report(self, local_addresses: set[str]) -> list[dict]:
        rows: dict[tuple[str, str, str], dict] = {}
        for msg in sorted(self.messages.values(), key=lambda m: m.when):
            if not msg.relayed:
                continue
            if msg.authenticated:
                method, user = "smtp-auth", msg.authid or "?"
            elif _is_local(msg.ip, local_addresses):
                method, user = "local", "-"
            else:
                method, user = "pop-before-smtp", self.pop_user(msg.ip, msg.when)
            row = rows.setdefault((method, user, msg.ip), {"method": method, "user": user, "client": msg.ip,
                                                           "count": 0, "last_seen": ""})
            row["count"] += 1
            row["last_seen"] = msg.when.isoformat()
        return sorted(rows.values(), key=lambda r: (r["method"], r["user"], r["client"]))


def _is_local(ip: str, local_addresses: set[str]) -> bool:
    if not ip:
        return True
    try:
        return ipaddress.ip_address(ip).is_loopback or ip in local_addresses
    except ValueError:
        return False


def journal_head(now: dt.datetime) -> dt.datetime | None:
    """When the journal's oldest entry was written (of any program: journald keeps or drops them all alike, by
    size or age, and a volatile journal starts at boot), None without one. Only its first line is read."""
    try:
        proc = subprocess.Popen(["journalctl", "--no-pager", "-q", "-o", "short-iso"], stdout=subprocess.PIPE,
                                stderr=subprocess.DEVNULL, text=True)
    except OSError:
        return None
    try:
        first = proc.stdout.readline() if proc.stdout else ""
    finally:
        proc.kill()
        proc.wait()
    try:
        return parse_ts(first.split(" ", 1)[0], now) if first.strip() else None
    except ValueError:
        return None


def read_lines(since: dt.datetime, files: list[str], skipped: list[str] | None = None,
               source: dict | None = None) -> Iterable[str]:
    """The log's lines; a file that cannot be read to its end (a truncated .gz, a damaged one) is named in
    `skipped` with the reason, and the lines read before the damage still count. `source` gets what was read:
    "journal" (and "head", the journal's oldest entry) or "files"."""
    skipped = [] if skipped is None else skipped
    source = {} if source is None else source
    if not files and shutil.which("journalctl"):
        run = subprocess.run(["journalctl", "--no-pager", "-q", "-o", "short-iso", "--since",
                              since.astimezone(dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC"),
                              "-t", "sm-mta", "-t", "sendmail", "-t", "dovecot", "-t", "pop-before-smtp"],
                             capture_output=True, text=True)
        if run.returncode == 0 and run.stdout.strip():
            source.update(kind="journal", head=journal_head(dt.datetime.now(dt.timezone.utc)))
            yield from run.stdout.splitlines()
            return
    source.update(kind="files")
    for path in files or sorted(glob.glob("/var/log/mail.log*"), reverse=True):
        opener = gzip.open if path.endswith(".gz") else open
        try:
            with opener(path, "rt", errors="replace") as fh:
                yield from fh
        except (OSError, EOFError, zlib.error) as exc:
            skipped.append(f"{path}: {exc or type(exc).__name__}")
            print(f"relay-audit: cannot read all of {path}: {exc or type(exc).__name__}", file=sys.stderr)


def local_addresses() -> set[str]:
    try:
        out = subprocess.run(["hostname", "-I"], capture_output=True, text=True).stdout
    except OSError:
        out = ""
    return set(out.split())


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="relay-audit", description=__doc__.split("\n\n")[0])
    p.add_argument("--days", type=float, default=30, help="look back this many days (default 30)")
    p.add_argument("--since", help="ISO time to start from instead of --days")
    p.add_argument("--log", action="append", default=[], help="read this log file instead of the journal")
    args = p.parse_args(argv)
    now = dt.datetime.now(dt.timezone.utc)
    try:
        since = parse_ts(args.since, now) if args.since else now - dt.timedelta(days=args.days)
    except ValueError:
        print(f"relay-audit: error: --since {args.since!r} is not an ISO time (2026-01-31T00:00:00+00:00)",
              file=sys.stderr)
        return 2
    audit = Audit(since)
    skipped: list[str] = []
    source: dict = {}
    audit.feed(read_lines(since, args.log, skipped, source), now)
    rows = audit.report(local_addresses())
    users = {r["user"] for r in rows if r["method"] == "pop-before-smtp" and r["user"] != "?"}
    print(json.dumps({"host": socket.getfqdn(), "since": since.isoformat(), "relays": rows,
                      "pop_before_smtp_users": sorted(u for u in users if LOCAL_PART.match(u)),
                      "invalid_users": sorted(u for u in users if not LOCAL_PART.match(u)),
                      "skipped_logs": skipped, **log_span(since, now, source, audit.earliest)}))
    return 0


def log_span(since: dt.datetime, now: dt.datetime, source: dict, earliest: dt.datetime | None) -> dict:
    """How far back the evidence reaches: from `since`, or from the oldest log entry there is when the logs begin
    later (a rotated or volatile journal, log files that were rotated away). A gate that needs N quiet days needs
    log_span_days >= N: no POP-before-SMTP line in a day of logs proves nothing about the two weeks before."""
    oldest = source.get("head") if source.get("kind") == "journal" else earliest
    start = max(since, oldest) if oldest else None
    return {"log_source": source.get("kind", "none"),
            "log_from": start.isoformat(timespec="seconds") if start else None,
            "log_span_days": round((now - start).total_seconds() / 86400, 2) if start else 0.0,
            "log_shorter_than_asked": start is None or start > since,
            "log_note": "" if start == since else
            (f"{socket.getfqdn()}: the mail logs reach back only {(now - start).total_seconds() / 86400:.2f} days"
             f" (from {start.isoformat(timespec='seconds')}), not to {since.isoformat(timespec='seconds')}: no"
             " POP-before-SMTP relay there says nothing about the time before" if start else
             f"{socket.getfqdn()}: no mail log was found to read")}


if __name__ == "__main__":
    sys.exit(main())
