#!/usr/bin/python3 -IS
"""POP-before-SMTP relay map for sendmail's `drac` feature.

dovecot's POP3 post-login hook calls `record IP --user USER` after every successful login; a systemd
timer calls `expire`; an admin may `revoke IP` to end an address's window at once. Entries live in an
append-only text file (address, epoch seconds, user; the newest line for an address wins). A lock file
serialises concurrent logins, expiry and revocation.

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
}
CONFIG = "/etc/default/pop-before-smtp"
# Seconds an entry may lie in the future (clock steps); anything later is a forged or broken entry: not live.
FUTURE_SLACK = 5.0
MAP_HEADER = "# written by pop-before-smtp: do not edit; `pop-before-smtp list` shows who may relay\n"
FAILED = "map-failed"  # beside the entries: why the map could not be rebuilt, while it cannot


class Entry:
    """One client address (normalised: dotted IPv4, or compressed IPv6), when it logged in, and who."""

    __slots__ = ("address", "seen", "user")

    def __init__(self, address: str, seen: float, user: str) -> None:
        self.address, self.seen, self.user = address, seen, user


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
        if old is None or seen > old.seen:
            entries[address] = Entry(address, seen, user)
    return entries, bad


def safe_user(user: str) -> str:
    """A user name as it may stand in the entries file: control characters (tab, line breaks ...) become '?'."""
    return "".join(c if c.isprintable() and c != "\t" else "?" for c in user)[:256]


def format_state(entries: dict[str, Entry]) -> str:
    rows = sorted(entries.values(), key=lambda e: e.address)
    return "".join(f"{e.address}\t{e.seen:.3f}\t{safe_user(e.user)}\n" for e in rows)


def live(entries: dict[str, Entry], now: float, window: float) -> dict[str, Entry]:
    """Entries inside the window; one dated in the future (beyond FUTURE_SLACK) is never live."""
    return {k: e for k, e in entries.items() if -FUTURE_SLACK <= now - e.seen < window}


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
                 makemap_user: str = "smmta", makemap: str = "/usr/sbin/makemap") -> None:
        self.state, self.map, self.window = os.fspath(state), os.fspath(map_path), window
        self.makemap_user, self.makemap = makemap_user, makemap

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

    def map_keys(self) -> set[str] | None:
        """The keys in the live .db (makemap -u dumps it; keys come lower-cased), or None when it cannot be read."""
        out = f"{self.map}.keys.{os.urandom(8).hex()}"
        code, err = _spawn(["/bin/sh", "-c", '"$0" -u hash "$1"', self.makemap, self.map], "", self.makemap_user,
                           stdout=out)
        try:
            text = _read_text(out)
        finally:
            _unlink(out)
        if code != 0:
            return None
        return {line.split("\t", 1)[0].lower() for line in text.splitlines() if line.strip()}

    def write_map(self, entries: dict[str, Entry]) -> None:
        """The whole .db, built under a temporary name and renamed into place; then its text copy."""
        source = "".join(f"{map_key(e.address)}\tOK\n" for e in sorted(entries.values(), key=lambda e: e.address))
        tmp = _beside(self.map)
        try:
            self._run_makemap(source, tmp)
            os.replace(f"{tmp}.db", f"{self.map}.db")
        finally:
            _unlink(f"{tmp}.db")
        self._write_atomic(self.map, MAP_HEADER + source)

    def add_to_map(self, entry: Entry) -> None:
        """One new key, in place: makemap -o (keep the rest) -r (replace a stale copy of the key)."""
        line = f"{map_key(entry.address)}\tOK\n"
        self._run_makemap(line, self.map, "-o", "-r")
        _append(self.map, line)  # the text copy stays a faithful listing of the map

    def save(self, entries: dict[str, Entry]) -> None:
        """Map first, entries second. When the map cannot be written, it fails closed (fail_closed) and the
        entries keep every address the old map granted, so the next rebuild that works decides again."""
        try:
            self.write_map(entries)
        except (OSError, RuntimeError) as exc:
            self.fail_closed(exc)
            raise
        self._write_atomic(self.state, format_state(entries))
        _unlink(self._failed_path)

    @property
    def _failed_path(self) -> str:
        return os.path.join(os.path.dirname(self.state) or ".", FAILED)

    def fail_closed(self, why: BaseException) -> None:
        """The map could not be rebuilt: remove the live .db, so that no address relays on a grant that should
        have ended; log it at err and note it for `status`, even if the removal fails too (a read-only file
        system), which the note and the log then say."""
        try:
            _unlink(f"{self.map}.db")
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
        now = time.time() if now is None else now
        entry = Entry(normalise(address), now, safe_user(user))
        with self.locked():
            if not os.path.exists(f"{self.map}.db"):
                entries = live(self.load(), now, self.window)
                entries[entry.address] = entry
                self.save(entries)
                return entry
            newest = self._newest(self._read(), entry.address)
            if newest is None or not -FUTURE_SLACK <= now - newest < self.window:
                self.add_to_map(entry)  # before the entry is written: a failed makemap grants nothing
            _append(self.state, format_state({entry.address: entry}))
        return entry

    def expire(self, now: float | None = None) -> int:
        """Drop entries older than the window; rebuild the map whenever its keys are not exactly the live
        entries' (a crash between map and entries, a hand edit); compact the entries file when it holds repeats."""
        now = time.time() if now is None else now
        with self.locked():
            text = self._read()
            entries, _ = parse_state(text)
            kept = live(entries, now, self.window)
            dropped = len(entries) - len(kept)
            lines = sum(1 for line in text.splitlines() if line.strip())
            in_map = self.map_keys() if os.path.exists(f"{self.map}.db") else None
            if dropped or in_map != {map_key(a).lower() for a in kept}:
                self.save(kept)
            elif lines > len(kept):
                self._write_atomic(self.state, format_state(kept))
        return dropped

    def revoke(self, address: str, now: float | None = None) -> bool:
        """Stop `address` relaying now, before its window ends (a client machine that was taken over, a user
        moved to SMTP-Auth): its entries are dropped and the map rebuilt without it. True if it was live.
        A new POP3 login from the address opens a new window, as any login does."""
        now = time.time() if now is None else now
        target = normalise(address)
        with self.locked():
            kept = live(self.load(), now, self.window)
            was_live = kept.pop(target, None) is not None
            self.save(kept)
        return was_live

    def rebuild(self) -> int:
        with self.locked():
            entries = live(self.load(), time.time(), self.window)
            self.save(entries)
        return len(entries)


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
    args = _Args("")
    p.parse_args(argv, namespace=args)
    return args


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = _hook_call(argv) or parse_args(argv)
    cfg = read_config(args.config)
    rmap = RelayMap(args.state or cfg["STATE"], args.map or cfg["MAP"],
                    args.window or float(cfg["WINDOW"]), cfg["MAKEMAP_USER"], cfg["MAKEMAP"])
    try:
        if args.cmd == "record":
            entry = rmap.record(args.address, args.user)
            _log(f"relay granted to {entry.address} for user={entry.user or '-'} window={rmap.window:.0f}s")
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
            entries = sorted(live(rmap.load(), now, rmap.window).values(), key=lambda e: e.seen)
            if args.json:
                import json
                print(json.dumps([{"address": e.address, "user": e.user, "seen": e.seen,
                                   "expires_in": round(rmap.window - (now - e.seen))} for e in entries]))
            else:
                for e in entries:
                    print(f"{e.address:39} {e.user or '-':16} expires in {rmap.window - (now - e.seen):5.0f}s")
    except ValueError as exc:
        print(f"pop-before-smtp: error: {exc}", file=sys.stderr)
        return 2
    except (OSError, RuntimeError) as exc:
        print(f"pop-before-smtp: error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
