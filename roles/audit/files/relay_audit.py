#!/usr/bin/env python3
"""Who relayed mail through this host, and how: SMTP-Auth or POP-before-SMTP; and where each mailbox stands.

Reads the mail log (the systemd journal through journalctl, else /var/log/mail.log*) and prints one
JSON object. A relayed message is one whose recipients went out through an SMTP mailer (joined by queue
id). It counts as SMTP-Auth when its own `from=` line says the session authenticated (`proto=ESMTPA` or
`ESMTPSA`), named by the session's `AUTH=server ... authid=` line (same process and client address, before
the message; a process id used again later never lends its name to another session); as local when it
came from this host itself; otherwise as POP-before-SMTP, and its user is the last POP3 login from that
client address before the message. A damaged log file is reported and skipped; user names that are not
valid local parts are reported apart and never get a notice.

Per mailbox (the members of the mail users' group, and every name the logs show) the evidence for the migration:
the last POP-before-SMTP relay, the grace phase's temporary refusals (sendmail logs each as
"QID: sendmail-fleet-grace:relay<MAILBOX><ADDRESS>" or "...:submission<...>"), the first and last SMTP-Auth
submission, the exception (the pop_before_smtp role's exceptions file) and a state: excepted until DATE, needs help
(refused in grace since its last SMTP-Auth), pop-before-smtp (still relays that way), migrated (sends by SMTP-Auth),
never sends. The mail programs the user's messages name (User-Agent, X-Mailer; sendmail logs them as
"QID: sendmail-fleet-program: TEXT" for clients that authenticated or relay by POP-before-SMTP) are listed, each
with the help page's section for it. Log text is the client's: it is read only from lines sendmail itself begins,
cut to printable characters and a bounded length.

Standard library only: this runs on the VPS (Ansible's script module sends it).
"""

from __future__ import annotations

import argparse
import datetime as dt
import glob
import grp
import gzip
import ipaddress
import json
import pwd
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
# sendmail's own lines for the grace phase's refusals and the programs (sendmail.mc of the sendmail role): anchored
# at the queue id, so a program name that holds such text cannot forge one.
GRACE = re.compile(r"^(?P<qid>\w+): sendmail-fleet-grace:(?P<where>relay|submission)<(?P<user>[^<>]*)>"
                   r"<(?:IPv6:)?(?P<ip>[0-9A-Fa-f:.]+)>$")
PROGRAM = re.compile(r"^(?P<qid>\w+): sendmail-fleet-program:(?P<text>.*)$")
PROGRAM_MAX = 120
# The help page's section per mail program (client_setup's mail_settings.help_page ids), by what the program's
# User-Agent or X-Mailer says; the first match wins.
HELP_SECTIONS = (("thunderbird", ("thunderbird", "icedove", "seamonkey")),
                 ("outlook", ("outlook", "microsoft")),
                 ("apple", ("iphone", "ipad", "apple", "mac os", "macos")),
                 ("android", ("android", "k-9", "k9mail", "fairemail", "aquamail")))
EXCEPTIONS = "/etc/pop-before-smtp/exceptions"


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
    programs: list[str] = field(default_factory=list)


def clean_program(text: str) -> str:
    """A program's name as the log has it, cut to printable ASCII and a bounded length."""
    kept = "".join(c for c in text if c.isascii() and c.isprintable()).strip()
    return kept[:PROGRAM_MAX]


def help_section(program: str) -> str:
    low = program.lower()
    return next((section for section, words in HELP_SECTIONS if any(w in low for w in words)), "")


def mailbox_of(name: str) -> str:
    """The mailbox a login name stands for: alice and alice@example.org are the same account on this host."""
    return name.split("@", 1)[0].lower() if name not in ("", "?", "-") else name


@dataclass
class Audit:
    since: dt.datetime
    messages: dict[str, Message] = field(default_factory=dict)
    auth_by_pid: dict[str, tuple[str, str]] = field(default_factory=dict)  # pid -> (client address, authid)
    pop_logins: list[tuple[dt.datetime, str, str]] = field(default_factory=list)
    refusals: list[tuple[dt.datetime, str, str, str]] = field(default_factory=list)  # (when, mailbox, ip, where)
    programs_by_qid: dict[str, list[str]] = field(default_factory=dict)
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
            elif (g := GRACE.match(msg)):
                self.refusals.append((when, mailbox_of(g["user"]), g["ip"], g["where"]))
            elif (pr := PROGRAM.match(msg)) and (name := clean_program(pr["text"])):
                known = self.programs_by_qid.setdefault(pr["qid"], [])
                if name not in known:
                    known.append(name)
            elif (t := TO.match(msg)):
                if t["mailer"] not in LOCAL_MAILERS and t["qid"] in self.messages:
                    self.messages[t["qid"]].relayed = True
            elif (p := POP_LOGIN.search(msg)) or (p := GRANT.search(msg)):
                self.pop_logins.append((when, p["ip"], p["user"]))

    def users(self, mailboxes: Iterable[str], exceptions: list[tuple[str, str, str]], today: str,
              local_addrs: set[str]) -> list[dict]:
        """Per mailbox, the evidence for its move to SMTP-Auth and its state (see the module's doc)."""
        table: dict[str, dict] = {}

        def row(user: str) -> dict:
            return table.setdefault(user, {
                "user": user, "state": "", "last_pop_relay": "", "pop_relays": 0, "last_pop_client": "",
                "last_grace_refusal": "", "grace_refusals": 0, "first_auth": "", "last_auth": "", "auth_messages": 0,
                "excepted_until": "", "exception": "", "programs": [], "help_sections": [], "notice": False})

        for name in mailboxes:
            row(mailbox_of(name))
        for qid, msg in sorted(self.messages.items(), key=lambda kv: kv[1].when):
            when = msg.when.isoformat()
            if msg.authenticated and msg.authid:
                r = row(mailbox_of(msg.authid))
                r["first_auth"] = r["first_auth"] or when
                r["last_auth"], r["auth_messages"] = when, r["auth_messages"] + 1
            elif msg.relayed and not _is_local(msg.ip, local_addrs):
                user = self.pop_user(msg.ip, msg.when)
                if user == "?":
                    continue
                r = row(mailbox_of(user))
                r["last_pop_relay"], r["last_pop_client"] = when, msg.ip
                r["pop_relays"] += 1
            else:
                continue
            for program in self.programs_by_qid.get(qid, []):
                if program not in r["programs"]:
                    r["programs"].append(program)
        for when, user, _ip, _where in sorted(self.refusals):
            r = row(user)
            r["last_grace_refusal"], r["grace_refusals"] = when.isoformat(), r["grace_refusals"] + 1
        for r in table.values():
            r["help_sections"] = sorted({s for s in map(help_section, r["programs"]) if s})
            live = [(until, f"{kind} {value}") for kind, value, until in exceptions
                    if until >= today and ((kind == "mailbox" and mailbox_of(value) == r["user"])
                                           or (kind == "network" and _in(r["last_pop_client"], value)))]
            if live:
                r["excepted_until"], r["exception"] = max(live)
            r["state"] = _state(r)
            # the notice goes to those who must act, and only to a name that is a valid address
            r["notice"] = r["state"] in ("pop-before-smtp", "needs help") and bool(LOCAL_PART.match(r["user"]))
        return sorted(table.values(), key=lambda r: r["user"])

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


def _state(r: dict) -> str:
    """excepted until DATE > needs help (a grace refusal since its last SMTP-Auth) > pop-before-smtp (relayed that
    way since its last SMTP-Auth) > migrated (sends by SMTP-Auth) > never sends (nothing sent in the period)."""
    if r["excepted_until"]:
        return f"excepted until {r['excepted_until']}"
    if r["last_grace_refusal"] and r["last_grace_refusal"] > r["last_auth"]:
        return "needs help"
    if r["last_pop_relay"] and r["last_pop_relay"] > r["last_auth"]:
        return "pop-before-smtp"
    return "migrated" if r["last_auth"] else "never sends"


def _in(ip: str, network: str) -> bool:
    try:
        return bool(ip) and ipaddress.ip_address(ip) in ipaddress.ip_network(network, strict=False)
    except (ValueError, TypeError):
        return False


def read_exceptions(path: str) -> list[tuple[str, str, str]]:
    """The grace phase's exceptions on this host (kind, value, last day), as the pop_before_smtp helper reads them;
    lines it would not read are left out here too."""
    found = []
    try:
        with open(path, encoding="utf-8", errors="replace") as fh:
            for line in fh:
                parts = line.split()
                if len(parts) == 3 and parts[0] in ("mailbox", "network") and re.fullmatch(r"\d{4}-\d\d-\d\d",
                                                                                          parts[2]):
                    found.append((parts[0], parts[1], parts[2]))
    except OSError:
        pass
    return found


def group_members(group: str) -> list[str]:
    """The mailbox accounts: the group's members and the users whose own group it is."""
    try:
        g = grp.getgrnam(group)
    except KeyError:
        return []
    return sorted(set(g.gr_mem) | {p.pw_name for p in pwd.getpwall() if p.pw_gid == g.gr_gid})


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
    p.add_argument("--group", default="mailusers", help="the mailbox accounts' group (default mailusers)")
    p.add_argument("--exceptions", default=EXCEPTIONS, help=f"the grace phase's exceptions (default {EXCEPTIONS})")
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
    local = local_addresses()
    rows = audit.report(local)
    exceptions = read_exceptions(args.exceptions)
    per_user = audit.users(group_members(args.group), exceptions, now.strftime("%Y-%m-%d"), local)
    users = {r["user"] for r in rows if r["method"] == "pop-before-smtp" and r["user"] != "?"}
    print(json.dumps({"host": socket.getfqdn(), "since": since.isoformat(), "relays": rows,
                      "pop_before_smtp_users": sorted(u for u in users if LOCAL_PART.match(u)),
                      "invalid_users": sorted(u for u in users if not LOCAL_PART.match(u)),
                      "users": per_user,
                      "exceptions": [{"kind": k, "value": v, "until": u, "active": u >= now.strftime("%Y-%m-%d")}
                                     for k, v, u in exceptions],
                      "skipped_logs": skipped, **log_span(since, now, source, audit.earliest)}))
    return 0


def log_span(since: dt.datetime, now: dt.datetime, source: dict, earliest: dt.datetime | None) -> dict:
    """How far back the evidence reaches: from `since`, or from the oldest log entry there is when the logs begin
    later (a rotated or volatile journal, log files that were rotated away). A gate that needs N quiet days needs
    log_span_days >= N: no POP-before-SMTP line in a day of logs proves nothing about the two weeks before."""
    oldest = source.get("head") if source.get("kind") == "journal" else earliest
    start = max(since, oldest) if oldest else None
    days = (now - start).total_seconds() / 86400 if start else 0.0
    return {"log_source": source.get("kind", "none"),
            "log_from": start.isoformat(timespec="seconds") if start else None,
            # to the second: rounded to 0.01 day (14 min), a young log read as 0 days and held a gate of seconds
            "log_span_days": round(days, 5),
            "log_shorter_than_asked": start is None or start > since,
            "log_note": "" if start == since else
            (f"{socket.getfqdn()}: the mail logs reach back only {days:.2f} days"
             f" (from {start.isoformat(timespec='seconds')}), not to {since.isoformat(timespec='seconds')}: no"
             " POP-before-SMTP relay there says nothing about the time before" if start else
             f"{socket.getfqdn()}: no mail log was found to read")}


if __name__ == "__main__":
    sys.exit(main())
