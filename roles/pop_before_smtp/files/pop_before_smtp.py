#!/usr/bin/python3 -IS
"""POP-before-SMTP relay map for sendmail's `drac` feature.

dovecot's POP3 post-login hook calls `record IP --user USER` after every successful login; a systemd
timer calls `expire`; an admin may `revoke IP` to end an address's window at once. Entries live in an
append-only text file (address, epoch seconds, user; per address the newest line decides its window, and each
mailbox's newest login from it is kept). A lock file serialises concurrent logins, expiry and revocation.

In grace mode (MODE=grace, the migration's grace phase) a POP3 login no longer opens relay by itself: only an
address where an excepted mailbox logged in, or one inside an excepted network, goes into the relay map; every
other logged-in address goes into the grace map (address -> mailbox), and sendmail answers its relay attempts
with a temporary 450 4.7.1 that names the help page. Exceptions (EXCEPTIONS: "mailbox NAME UNTIL" or "network CIDR
UNTIL" lines, UNTIL a date, inclusive, UTC) are read at every login and every expiry, so one ends on its date
with no other change; `exceptions` lists, grants and revokes them.

A login costs little however many clients are live: an address that already has a live entry only gets
a line appended (its key is in the map already); a new address is added to the hash map in place with
`makemap -o -r`, which locks the map the way sendmail's own lookups do. Expiry rewrites the entries file
and builds the whole map into a temporary file that is renamed into place, so sendmail never sees a
half-written map.

No address keeps relaying past its window, whatever fails: the map is always written before the entries
(a failed makemap grants nothing new), and expiry rebuilds the map whenever the keys in the live .db differ
from the live entries (after a crash between the two, or a hand edit). When the map cannot be rebuilt (disk
full, a read-only file system, makemap refused), it fails closed: the live .db is removed (sendmail declares
the map optional, so a missing map grants nothing), the failure is logged at err and noted for `status` (the
fleet report reads it) until a rebuild succeeds. Entries dated in the future are not live. Temporary files get unpredictable names and are created exclusively, never through a link; the
entries and the text copy of the map are readable by root only. User names are written with tabs, line
breaks and other control characters replaced, so no name can forge an entry.

Standard library only: this runs on the VPS.
"""

from __future__ import annotations

# dovecot runs `record` at every POP3 login, so start-up time is most of its cost: only cheap modules are
# imported here (argparse and json load only for the other commands); a login takes ~50 ms (see benchmarks/).
import fcntl
import ipaddress
import os
import pwd
import sys
import time

DEFAULTS = {
    "STATE": "/var/lib/pop-before-smtp/clients",
    "MAP": "/etc/mail/drac",
    "WINDOW": "1800",
    "MAKEMAP_USER": "smmta",
    "MAKEMAP": "/usr/sbin/makemap",
    "MODE": "grant",
    "GRACE_MAP": "/etc/mail/pop-before-smtp-grace",
    "EXCEPTIONS": "/etc/pop-before-smtp/exceptions",
}
GRANT, GRACE = "grant", "grace"
CONFIG = "/etc/default/pop-before-smtp"
# Seconds an entry may lie in the future (clock steps); anything later is a forged or broken entry: not live.
FUTURE_SLACK = 5.0
MAP_HEADER = "# written by pop-before-smtp: do not edit; `pop-before-smtp list` shows who may relay\n"
FAILED = "map-failed"  # beside the entries: why the map could not be rebuilt, while it cannot


class Entry:
    """One client address (normalised: dotted IPv4, or compressed IPv6), when it last logged in and who, and each
    mailbox's newest login from it (`logins`: several mailboxes behind one address, an office's NAT)."""

    __slots__ = ("address", "seen", "user", "logins")

    def __init__(self, address: str, seen: float, user: str, logins: dict[str, float] | None = None) -> None:
        self.address, self.seen, self.user = address, seen, user
        self.logins = {user: seen} if logins is None else logins

    def add(self, seen: float, user: str) -> None:
        if seen > self.logins.get(user, float("-inf")):
            self.logins[user] = seen
        if seen > self.seen:
            self.seen, self.user = seen, user


def normalise(text: str) -> str:
    """Canonical form of a client address; IPv4-mapped IPv6 becomes IPv4. Raises ValueError."""
    addr = ipaddress.ip_address(text.strip().strip("[]").removeprefix("IPv6:"))
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped:
        addr = addr.ipv4_mapped
    return str(addr)


def map_key(address: str) -> str:
    """The key sendmail looks up: IPv4 as is, IPv6 as `IPv6:` plus all eight groups, no zero padding."""
    addr = ipaddress.ip_address(address)
    if isinstance(addr, ipaddress.IPv4Address):
        return str(addr)
    groups = addr.exploded.split(":")
    return "IPv6:" + ":".join(format(int(g, 16), "x") for g in groups)


def parse_state(text: str) -> tuple[dict[str, Entry], int]:
    """Entries by address, and how many lines were unreadable (skipped, never fatal)."""
    entries: dict[str, Entry] = {}
    bad = 0
    for line in text.splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        parts = line.split("\t")
        try:
            address, seen = normalise(parts[0]), float(parts[1])
            user = parts[2] if len(parts) > 2 else ""
        except (ValueError, IndexError):
            bad += 1
            continue
        old = entries.get(address)
        if old is None:
            entries[address] = Entry(address, seen, user)
        else:
            old.add(seen, user)
    return entries, bad


def safe_user(user: str) -> str:
    """A user name as it may stand in the entries file: control characters (tab, line breaks ...) become '?'."""
    return "".join(c if c.isprintable() and c != "\t" else "?" for c in user)[:256]


def format_state(entries: dict[str, Entry]) -> str:
    """One line per address and mailbox (its newest login), oldest first: the address's newest line is last."""
    rows = sorted(entries.values(), key=lambda e: e.address)
    return "".join(f"{e.address}\t{seen:.3f}\t{safe_user(user)}\n" for e in rows
                   for user, seen in sorted(e.logins.items(), key=lambda kv: kv[1]))


def _live_time(now: float, seen: float, window: float) -> bool:
    return -FUTURE_SLACK <= now - seen < window


def live(entries: dict[str, Entry], now: float, window: float) -> dict[str, Entry]:
    """Entries inside the window (with only their mailboxes' logins inside it); one dated in the future (beyond
    FUTURE_SLACK) is never live."""
    out = {}
    for k, e in entries.items():
        logins = {u: t for u, t in e.logins.items() if _live_time(now, t, window)}
        if logins and _live_time(now, e.seen, window):
            out[k] = Entry(e.address, e.seen, e.user, logins)
    return out


# -- exceptions (grace mode) ------------------------------------------------------------------------------------

def _is_date(text: str) -> bool:
    """YYYY-MM-DD naming a day of the calendar (no import: a login reads the exceptions too)."""
    parts = text.split("-")
    if len(text) != 10 or len(parts) != 3 or not all(p.isdigit() for p in parts):
        return False
    year, month, day = (int(p) for p in parts)
    leap = year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)
    days = [31, 29 if leap else 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31]
    return 1 <= month <= 12 and 1 <= day <= days[month - 1]


class Exception_:
    """An exception to the grace phase: a mailbox, or a network (an office behind one address), that keeps relaying
    by POP-before-SMTP through `until` (a date, YYYY-MM-DD, inclusive, UTC)."""

    __slots__ = ("kind", "value", "until", "network")

    def __init__(self, kind: str, value: str, until: str) -> None:
        if kind not in ("mailbox", "network"):
            raise ValueError(f"{kind!r} is neither mailbox nor network")
        if not _is_date(until):
            raise ValueError(f"{until!r} is not a date (YYYY-MM-DD)")
        self.kind, self.value, self.until = kind, value, until
        self.network = ipaddress.ip_network(value, strict=False) if kind == "network" else None
        if kind == "mailbox" and (not value or safe_user(value) != value or " " in value):
            raise ValueError(f"{value!r} is not a mailbox name")

    def active(self, now: float) -> bool:
        return time.strftime("%Y-%m-%d", time.gmtime(now)) <= self.until

    def covers(self, user: str, address: str) -> bool:
        if self.network is not None:
            addr = ipaddress.ip_address(address)
            return addr.version == self.network.version and addr in self.network
        return user == self.value

    def line(self) -> str:
        return f"{self.kind} {self.value} {self.until}\n"


def parse_exceptions(text: str) -> tuple[list[Exception_], list[str]]:
    """The exceptions of an EXCEPTIONS file, and the lines it could not read (each with why)."""
    found, bad = [], []
    for line in text.splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        try:
            kind, value, until = line.split()
            found.append(Exception_(kind, value, until))
        except ValueError as exc:
            bad.append(f"{line.strip()!r}: {exc}")
    return found, bad


def excepted(entry: Entry, exceptions: list[Exception_], now: float) -> str | None:
    """The end date of the exception that covers one of the address's live logins, None when none does."""
    for ex in exceptions:
        if ex.active(now) and any(ex.covers(user, entry.address) for user in entry.logins):
            return ex.until
    return None


def categorize(entries: dict[str, Entry], exceptions: list[Exception_], now: float,
               mode: str) -> tuple[dict[str, Entry], dict[str, Entry]]:
    """The live entries split into those whose address may relay (the relay map) and those that get the grace
    phase's temporary refusal (the grace map). In grant mode every live entry relays."""
    if mode != GRACE:
        return entries, {}
    relay = {a: e for a, e in entries.items() if excepted(e, exceptions, now)}
    return relay, {a: e for a, e in entries.items() if a not in relay}


class _Lock:
    """An exclusive flock on a file, held for a `with` block."""

    def __init__(self, path: str) -> None:
        self.path = path

    def __enter__(self) -> None:
        self.fh = os.fdopen(os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_NOFOLLOW, 0o600), "a")
        fcntl.flock(self.fh, fcntl.LOCK_EX)

    def __exit__(self, *exc: object) -> None:
        fcntl.flock(self.fh, fcntl.LOCK_UN)
        self.fh.close()


def _read_text(path: str) -> str:
    """The file's text, or "" when it does not exist."""
    try:
        with open(path, errors="replace") as fh:
            return fh.read()
    except FileNotFoundError:
        return ""


def _beside(path: str) -> str:
    """An unpredictable temporary name in the same folder, so os.replace onto `path` is atomic."""
    folder, name = os.path.split(path)
    return os.path.join(folder, f".{name}.{os.urandom(8).hex()}")


def _append(path: str, text: str) -> None:
    """Append to a root-only file, never through a link."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_NOFOLLOW, 0o600)
    with os.fdopen(fd, "a") as fh:
        fh.write(text)


def _unlink(path: str) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


def _spawn(argv: list[str], stdin: str, user: str, stdout: str = "") -> tuple[int, str]:
    """Run argv with `stdin`, as `user` when given and we are root: (exit status, stderr). With `stdout`, the
    program's output goes to that new file (created here, exclusively, and readable by `user` as well).
    fork/exec by hand: importing subprocess costs a login more than running makemap does."""
    ids = None
    if os.geteuid() == 0 and user:
        # makemap run as root refuses sendmail's map folder (it is owned by TrustedUser).
        pw = pwd.getpwnam(user)
        ids = (pw.pw_uid, pw.pw_gid)
    out_fd = -1
    if stdout:
        out_fd = os.open(stdout, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    in_r, in_w = os.pipe()
    err_r, err_w = os.pipe()
    pid = os.fork()
    if pid == 0:  # child
        try:
            os.dup2(in_r, 0)
            os.dup2(err_w, 2)
            if out_fd >= 0:
                os.dup2(out_fd, 1)
                os.close(out_fd)
            for fd in (in_r, in_w, err_r, err_w):
                os.close(fd)
            if ids:
                os.setgroups([])
                os.setgid(ids[1])
                os.setuid(ids[0])
            os.execv(argv[0], argv)
        except BaseException as exc:  # noqa: BLE001 - report and leave the child, whatever happened
            os.write(2, f"cannot run {argv[0]}: {exc}".encode())
        os._exit(127)
    os.close(in_r)
    os.close(err_w)
    if out_fd >= 0:
        os.close(out_fd)
    fh = os.fdopen(in_w, "w")
    try:
        fh.write(stdin)
        fh.close()  # the flush can meet the closed pipe too; close() still releases the fd
    except BrokenPipeError:
        pass  # the program exited without reading all of it: its exit status says why
    with os.fdopen(err_r, errors="replace") as fh:
        err = fh.read()
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status), err


class RelayMap:
    def __init__(self, state: str | os.PathLike, map_path: str | os.PathLike, window: float,
                 makemap_user: str = "smmta", makemap: str = "/usr/sbin/makemap", mode: str = GRANT,
                 grace_map: str | os.PathLike = DEFAULTS["GRACE_MAP"],
                 exceptions: str | os.PathLike = DEFAULTS["EXCEPTIONS"]) -> None:
        if mode not in (GRANT, GRACE):
            raise ValueError(f"MODE={mode!r}: use {GRANT} or {GRACE}")
        self.state, self.map, self.window = os.fspath(state), os.fspath(map_path), window
        self.makemap_user, self.makemap, self.mode = makemap_user, makemap, mode
        self.grace_map, self.exceptions_file = os.fspath(grace_map), os.fspath(exceptions)
        self.outcome = ""  # what the last record() gave its address

    def locked(self) -> _Lock:
        os.makedirs(os.path.dirname(self.state) or ".", exist_ok=True)
        return _Lock(self.state + ".lock")

    def _read(self) -> str:
        return _read_text(self.state)

    def load(self) -> dict[str, Entry]:
        entries, bad = parse_state(self._read())
        if bad:
            print(f"pop-before-smtp: skipped {bad} unreadable line(s) in {self.state}", file=sys.stderr)
        return entries

    def exceptions(self) -> list[Exception_]:
        """The grace phase's exceptions; a line that cannot be read is said and grants nothing."""
        found, bad = parse_exceptions(_read_text(self.exceptions_file))
        for why in bad:
            print(f"pop-before-smtp: {self.exceptions_file}: skipped {why}", file=sys.stderr)
        return found

    def _newest(self, text: str, address: str) -> float | None:
        """When `address` last logged in, by a plain scan: no other line is parsed."""
        prefix, newest = address + "\t", None
        for line in text.splitlines():
            if line.startswith(prefix):
                try:
                    seen = float(line.split("\t")[1])
                except (IndexError, ValueError):
                    continue
                newest = seen if newest is None or seen > newest else newest
        return newest

    def _write_atomic(self, path: str, text: str) -> None:
        """A new file under an unpredictable name, created exclusively (never through a link), root only,
        renamed onto `path`."""
        tmp = _beside(path)
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
            # The helper's own group, not the folder's: /etc/mail is set-group-ID (smmsp) on Debian.
            os.fchown(fd, os.geteuid(), os.getegid())
            with os.fdopen(fd, "w") as fh:
                fh.write(text)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, path)
        except BaseException:
            _unlink(tmp)
            raise

    def _run_makemap(self, source: str, target: str, *flags: str) -> None:
        code, err = _spawn([self.makemap, *flags, "hash", target], source, self.makemap_user)
        if code != 0:
            raise RuntimeError(f"makemap failed (exit {code}): {err.strip()}")

    def _dump(self, path: str) -> dict[str, str] | None:
        """A live .db's keys (lower-cased, as makemap -u gives them) and values, or None when it cannot be read."""
        out = f"{path}.keys.{os.urandom(8).hex()}"
        code, err = _spawn(["/bin/sh", "-c", '"$0" -u hash "$1"', self.makemap, path], "", self.makemap_user,
                           stdout=out)
        try:
            text = _read_text(out)
        finally:
            _unlink(out)
        if code != 0:
            return None
        return dict((line.split("\t", 1) + [""])[:2] for line in text.splitlines() if line.strip())

    def map_keys(self) -> set[str] | None:
        """The keys in the live relay .db, or None when it cannot be read."""
        dumped = self._dump(self.map) if os.path.exists(f"{self.map}.db") else None
        return None if dumped is None else {k.lower() for k in dumped}

    def _build(self, path: str, source: str) -> None:
        """A whole .db, built under a temporary name and renamed into place; then its text copy (root only)."""
        tmp = _beside(path)
        try:
            self._run_makemap(source, tmp)
            os.replace(f"{tmp}.db", f"{path}.db")
        finally:
            _unlink(f"{tmp}.db")
        self._write_atomic(path, MAP_HEADER + source)

    def write_map(self, entries: dict[str, Entry]) -> None:
        """The relay map: every address of `entries` may relay."""
        self._build(self.map, "".join(f"{map_key(a)}\tOK\n" for a in sorted(entries)))

    def write_grace_map(self, entries: dict[str, Entry]) -> None:
        """The grace map: each address to the mailbox that last logged in from it (sendmail names it in its log)."""
        self._build(self.grace_map, "".join(f"{map_key(a)}\t{safe_user(entries[a].user).replace(' ', '_') or '-'}\n"
                                            for a in sorted(entries)))

    def add_to_map(self, entry: Entry) -> None:
        """One new key, in place: makemap -o (keep the rest) -r (replace a stale copy of the key)."""
        line = f"{map_key(entry.address)}\tOK\n"
        self._run_makemap(line, self.map, "-o", "-r")
        _append(self.map, line)  # the text copy stays a faithful listing of the map

    def save(self, entries: dict[str, Entry], now: float | None = None) -> None:
        """Maps first, entries second. When a map cannot be written, both fail closed (fail_closed) and the
        entries keep every address the old maps held, so the next rebuild that works decides again."""
        relay, grace = categorize(entries, self.exceptions(), time.time() if now is None else now, self.mode)
        try:
            self.write_map(relay)
            if self.mode == GRACE:
                self.write_grace_map(grace)
        except (OSError, RuntimeError) as exc:
            self.fail_closed(exc)
            raise
        self._write_atomic(self.state, format_state(entries))
        _unlink(self._failed_path)

    @property
    def _failed_path(self) -> str:
        return os.path.join(os.path.dirname(self.state) or ".", FAILED)

    def fail_closed(self, why: BaseException) -> None:
        """A map could not be rebuilt: remove the live .db files (relay and grace), so that no address relays on a
        grant that should have ended; log it at err and note it for `status`, even if the removal fails too (a
        read-only file system), which the note and the log then say."""
        try:
            _unlink(f"{self.map}.db")
            _unlink(f"{self.grace_map}.db")
            removed, detail = True, "removed: no address may relay by POP-before-SMTP until the map is rebuilt"
        except OSError as exc:
            removed, detail = False, f"COULD NOT BE REMOVED ({exc}): addresses it holds may keep relaying"
        _log(f"error: the relay map {self.map}.db could not be rebuilt ({why}); it is {detail}", err=True)
        import json  # only on this path: a login stays cheap
        note = json.dumps({"at": time.time(), "error": str(why)[:500], "map_removed": removed})
        try:
            self._write_atomic(self._failed_path, note + "\n")
        except OSError:
            pass  # the log above says it; a full or read-only disk may take this note too

    def status(self) -> dict[str, object]:
        """Whether the map is in service: ok, failed (fail_closed: at, error, map_removed) or missing (never
        built), and a sentence for a report when it is not ("problem", empty when ok)."""
        text = _read_text(self._failed_path)
        if text:
            import json
            try:
                note = json.loads(text)
            except ValueError:
                note = {"error": "unreadable note", "map_removed": not os.path.exists(f"{self.map}.db")}
            when = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(float(note.get("at") or 0)))
            outcome = ("no address relays by POP-before-SMTP until it is rebuilt" if note.get("map_removed")
                       else "and could NOT be removed: expired grants may still relay")
            return {"map": "failed", **note, "problem": f"the POP-before-SMTP relay map failed closed at {when} "
                                                        f"({note.get('error', '?')}): {outcome}"}
        if os.path.exists(f"{self.map}.db"):
            return {"map": "ok", "problem": ""}
        return {"map": "missing", "problem": "no POP-before-SMTP relay map: no address can relay by POP-before-SMTP"}

    def record(self, address: str, user: str = "", now: float | None = None) -> Entry:
        """A POP3 login: the address relays for the window (grant mode, or an exception), or gets the grace phase's
        temporary refusal; `outcome` says which ("relay", "relay until DATE" for an exception, or "grace")."""
        now = time.time() if now is None else now
        entry = Entry(normalise(address), now, safe_user(user))
        with self.locked():
            if self.mode == GRACE:
                self.outcome = self._record_grace(entry, now)
                return entry
            self.outcome = "relay"
            if not os.path.exists(f"{self.map}.db"):
                entries = live(self.load(), now, self.window)
                entries[entry.address] = entry
                self.save(entries, now)
                return entry
            newest = self._newest(self._read(), entry.address)
            if newest is None or not -FUTURE_SLACK <= now - newest < self.window:
                self.add_to_map(entry)  # before the entry is written: a failed makemap grants nothing
            _append(self.state, format_state({entry.address: entry}))
        return entry

    def _record_grace(self, entry: Entry, now: float) -> str:
        """Grace mode: the maps are rebuilt whenever the login changes what its address gets (new, or an excepted
        mailbox or network); a repeat login that changes nothing only appends its line."""
        entries = live(self.load(), now, self.window)
        exceptions = self.exceptions()
        before = entries.get(entry.address)
        got_before = None if before is None else (GRACE if excepted(before, exceptions, now) is None else "relay")
        merged = Entry(entry.address, entry.seen, entry.user, {**(before.logins if before else {}), entry.user: now})
        until = excepted(merged, exceptions, now)
        got = GRACE if until is None else "relay"
        current = before is not None and before.user == entry.user
        if got != got_before or not current or not os.path.exists(f"{self.grace_map}.db"):
            entries[entry.address] = merged
            self.save(entries, now)
        else:
            _append(self.state, format_state({entry.address: entry}))
        return got if until is None else f"relay until {until}"

    def expire(self, now: float | None = None) -> int:
        """Drop entries older than the window; rebuild the maps whenever they are not exactly what the live entries
        and the exceptions (one that has ended, one that was added) make them (a crash between map and entries, a
        hand edit); compact the entries file when it holds repeats."""
        now = time.time() if now is None else now
        with self.locked():
            text = self._read()
            entries, _ = parse_state(text)
            kept = live(entries, now, self.window)
            dropped = len(entries) - len(kept)
            lines = sum(1 for line in text.splitlines() if line.strip())
            relay, grace = categorize(kept, self.exceptions(), now, self.mode)
            stale = self.map_keys() != {map_key(a).lower() for a in relay}
            if self.mode == GRACE and not stale:
                dumped = self._dump(self.grace_map) if os.path.exists(f"{self.grace_map}.db") else None
                stale = dumped is None or set(dumped) != {map_key(a).lower() for a in grace}
            if dropped or stale:
                self.save(kept, now)
            elif lines > sum(len(e.logins) for e in kept.values()):
                self._write_atomic(self.state, format_state(kept))
        return dropped

    def revoke(self, address: str, now: float | None = None) -> bool:
        """Stop `address` relaying now, before its window ends (a client machine that was taken over, a user
        moved to SMTP-Auth): its entries are dropped and the maps rebuilt without it. True if it was live.
        A new POP3 login from the address opens a new window, as any login does."""
        now = time.time() if now is None else now
        target = normalise(address)
        with self.locked():
            kept = live(self.load(), now, self.window)
            was_live = kept.pop(target, None) is not None
            self.save(kept, now)
        return was_live

    def rebuild(self) -> int:
        now = time.time()
        with self.locked():
            entries = live(self.load(), now, self.window)
            self.save(entries, now)
        return len(entries)

    def set_exception(self, kind: str, value: str, until: str | None, now: float | None = None) -> bool:
        """Add or replace the exception for a mailbox or a network (until None: remove it), then rebuild the maps
        so that it counts at once. True when the file changed."""
        now = time.time() if now is None else now
        new = Exception_(kind, value, until) if until is not None else None
        with self.locked():
            kept, _ = parse_exceptions(_read_text(self.exceptions_file))
            others = [e for e in kept if not (e.kind == kind and e.value == value)]
            changed = len(others) != len(kept) or new is not None
            if changed:
                os.makedirs(os.path.dirname(self.exceptions_file) or ".", exist_ok=True)
                self._write_atomic(self.exceptions_file, EXCEPTIONS_HEADER
                                   + "".join(e.line() for e in [*others, *([new] if new else [])]))
                self.save(live(self.load(), now, self.window), now)
        return changed


EXCEPTIONS_HEADER = ("# pop-before-smtp exceptions: KIND VALUE UNTIL (mailbox NAME or network CIDR, until a date, "
                     "inclusive, UTC).\n# site.yml writes this file from pop_before_smtp_exceptions; "
                     "`pop-before-smtp exceptions` changes it on the host.\n")


def read_config(path: str) -> dict[str, str]:
    cfg = dict(DEFAULTS)
    for line in _read_text(path).splitlines():
        key, sep, value = line.partition("=")
        if sep and not key.strip().startswith("#"):
            cfg[key.strip()] = value.strip().strip('"')
    return cfg


def _log(message: str, err: bool = False) -> None:
    try:
        import syslog
        syslog.openlog("pop-before-smtp", 0, syslog.LOG_MAIL)
        syslog.syslog(syslog.LOG_ERR if err else syslog.LOG_INFO, message)
    except Exception:  # noqa: BLE001 - logging must never break a login
        pass


class _Args:
    """What the command line asked for (argparse's Namespace, without importing argparse)."""

    def __init__(self, cmd: str, address: str = "", user: str = "", config: str = CONFIG) -> None:
        self.cmd, self.address, self.user, self.config = cmd, address, user, config
        self.state: str | None = None
        self.map: str | None = None
        self.window: float | None = None
        self.json = False
        self.action = ""
        self.mailbox: str | None = None
        self.network: str | None = None
        self.until: str | None = None


def _hook_call(argv: list[str]) -> _Args | None:
    """dovecot's post-login hook always calls `record --user USER ADDRESS`: read that form directly."""
    if len(argv) == 4 and argv[0] == "record" and argv[1] == "--user" and not argv[3].startswith("-"):
        return _Args("record", address=argv[3], user=argv[2])
    return None


def parse_args(argv: list[str]) -> _Args:
    import argparse

    p = argparse.ArgumentParser(prog="pop-before-smtp", description=__doc__.split("\n\n")[0])
    p.add_argument("--config", default=CONFIG, help=f"KEY=VALUE settings file (default {CONFIG})")
    p.add_argument("--state", help="entries file")
    p.add_argument("--map", help="sendmail's map, without .db")
    p.add_argument("--window", type=float, help="seconds a login opens relay")
    sub = p.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("record", help="a client logged in to POP3: let it relay for the window")
    r.add_argument("address")
    r.add_argument("--user", default="")
    sub.add_parser("expire", help="drop entries older than the window")
    sub.add_parser("rebuild", help="rewrite the map from the entries")
    rv = sub.add_parser("revoke", help="stop an address relaying now, before its window ends")
    rv.add_argument("address")
    ls = sub.add_parser("list", help="show live entries")
    ls.add_argument("--json", action="store_true")
    st = sub.add_parser("status", help="is the map in service (ok), failed closed (failed) or never built (missing)")
    st.add_argument("--json", action="store_true")
    ex = sub.add_parser("exceptions", help="the grace phase's exceptions: list, grant or revoke one")
    ex.add_argument("action", choices=("list", "grant", "revoke"))
    who = ex.add_mutually_exclusive_group()
    who.add_argument("--mailbox", help="grant/revoke: a mailbox (login) name")
    who.add_argument("--network", help="grant/revoke: an address or network (CIDR), an office behind one address")
    ex.add_argument("--until", help="grant: the last day it counts (YYYY-MM-DD, UTC)")
    ex.add_argument("--json", action="store_true")
    args = _Args("")
    p.parse_args(argv, namespace=args)
    return args


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = _hook_call(argv) or parse_args(argv)
    cfg = read_config(args.config)
    try:
        rmap = RelayMap(args.state or cfg["STATE"], args.map or cfg["MAP"], args.window or float(cfg["WINDOW"]),
                        cfg["MAKEMAP_USER"], cfg["MAKEMAP"], cfg["MODE"], cfg["GRACE_MAP"], cfg["EXCEPTIONS"])
        if args.cmd == "record":
            entry = rmap.record(args.address, args.user)
            if rmap.outcome == GRACE:
                # The grace phase's refusal is logged by sendmail at each relay attempt (with the mailbox name).
                _log(f"grace: user={entry.user or '-'} logged in from {entry.address}: relay refused temporarily "
                     "(SMTP-Auth needed)")
            else:
                _log(f"relay granted to {entry.address} for user={entry.user or '-'} window={rmap.window:.0f}s"
                     + (f" (excepted {rmap.outcome.removeprefix('relay ')})" if rmap.outcome != "relay" else ""))
        elif args.cmd == "expire":
            dropped = rmap.expire()
            if dropped:
                _log(f"expired {dropped} address(es)")
        elif args.cmd == "revoke":
            address = normalise(args.address)
            if rmap.revoke(address):
                _log(f"relay revoked for {address}")
                print(f"{address} may no longer relay")
            else:
                print(f"{address} had no live entry: nothing to revoke")
        elif args.cmd == "rebuild":
            print(f"{rmap.rebuild()} live address(es) in {rmap.map}.db")
        elif args.cmd == "exceptions":
            return _exceptions(rmap, args)
        elif args.cmd == "status":
            state = rmap.status()
            if args.json:
                import json
                print(json.dumps(state))
            elif state["map"] == "failed":
                print(f"FAILED CLOSED: {state.get('error')}; the map is "
                      + ("removed, no address may relay" if state.get("map_removed") else "STILL THERE"))
            else:
                print(f"map {state['map']}: {rmap.map}.db")
        else:
            now = time.time()
            current = live(rmap.load(), now, rmap.window)
            relay, _ = categorize(current, rmap.exceptions(), now, rmap.mode)
            entries = sorted(current.values(), key=lambda e: e.seen)
            if args.json:
                import json
                print(json.dumps([{"address": e.address, "user": e.user, "seen": e.seen,
                                   "gets": "relay" if e.address in relay else GRACE,
                                   "expires_in": round(rmap.window - (now - e.seen))} for e in entries]))
            else:
                for e in entries:
                    gets = "relay" if e.address in relay else "grace: 450"
                    print(f"{e.address:39} {e.user or '-':16} {gets:10} expires in "
                          f"{rmap.window - (now - e.seen):5.0f}s")
    except ValueError as exc:
        print(f"pop-before-smtp: error: {exc}", file=sys.stderr)
        return 2
    except (OSError, RuntimeError) as exc:
        print(f"pop-before-smtp: error: {exc}", file=sys.stderr)
        return 1
    return 0


def _exceptions(rmap: RelayMap, args: _Args) -> int:
    """`exceptions list|grant|revoke`: the grace phase's exceptions on this host (site.yml writes the inventory's
    list again at its next run)."""
    if args.action == "list":
        now = time.time()
        found = rmap.exceptions()
        if args.json:
            import json
            print(json.dumps([{"kind": e.kind, "value": e.value, "until": e.until, "active": e.active(now)}
                              for e in found]))
        for e in found if not args.json else []:
            print(f"{e.kind:8} {e.value:39} until {e.until}{'' if e.active(now) else ' (ended)'}")
        return 0
    kind, value = ("mailbox", args.mailbox) if args.mailbox else ("network", args.network)
    if not value:
        raise ValueError("name a --mailbox or a --network")
    if args.action == "grant":
        if not args.until:
            raise ValueError("grant needs --until YYYY-MM-DD (the last day the exception counts)")
        rmap.set_exception(kind, value, args.until)
        _log(f"exception granted: {kind} {value} until {args.until}")
        print(f"{kind} {value} may relay by POP-before-SMTP until {args.until} (inclusive, UTC)")
    elif rmap.set_exception(kind, value, None):
        _log(f"exception revoked: {kind} {value}")
        print(f"{kind} {value}: exception revoked")
    else:
        print(f"{kind} {value} had no exception: nothing to revoke")
    return 0


if __name__ == "__main__":
    sys.exit(main())
