#!/usr/bin/env python3
"""POP-before-SMTP relay map for sendmail's `drac` feature.

dovecot's POP3 post-login hook calls `record IP --user USER` after every successful login; a systemd
timer calls `expire`. Entries live in an append-only text file (address, epoch seconds, user; the newest
line for an address wins). A lock file serialises concurrent logins and expiry.

A login costs little however many clients are live: an address that already has a live entry only gets
a line appended (its key is in the map already); a new address is added to the hash map in place with
`makemap -o -r`, which locks the map the way sendmail's own lookups do. Expiry rewrites the entries file
and builds the whole map into a temporary file that is renamed into place, so sendmail never sees a
half-written map.

Standard library only: this runs on the VPS.
"""

from __future__ import annotations

import argparse
import fcntl
import ipaddress
import json
import os
import pwd
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

DEFAULTS = {
    "STATE": "/var/lib/pop-before-smtp/clients",
    "MAP": "/etc/mail/drac",
    "WINDOW": "1800",
    "MAKEMAP_USER": "smmta",
    "MAKEMAP": "/usr/sbin/makemap",
}
CONFIG = "/etc/default/pop-before-smtp"
MAP_HEADER = "# written by pop-before-smtp: do not edit; `pop-before-smtp list` shows who may relay\n"


@dataclass(frozen=True)
class Entry:
    address: str  # normalised: dotted IPv4, or compressed IPv6
    seen: float
    user: str


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


def format_state(entries: dict[str, Entry]) -> str:
    rows = sorted(entries.values(), key=lambda e: e.address)
    return "".join(f"{e.address}\t{e.seen:.3f}\t{e.user}\n" for e in rows)


def live(entries: dict[str, Entry], now: float, window: float) -> dict[str, Entry]:
    return {k: e for k, e in entries.items() if now - e.seen < window}


class RelayMap:
    def __init__(self, state: Path, map_path: Path, window: float, makemap_user: str = "smmta",
                 makemap: str = "makemap") -> None:
        self.state, self.map, self.window = state, map_path, window
        self.makemap_user, self.makemap = makemap_user, makemap

    @contextmanager
    def locked(self) -> Iterator[None]:
        self.state.parent.mkdir(parents=True, exist_ok=True)
        with open(self.state.with_name(self.state.name + ".lock"), "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def _read(self) -> str:
        try:
            return self.state.read_text(errors="replace")
        except FileNotFoundError:
            return ""

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

    def _write_atomic(self, path: Path, text: str) -> None:
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
        try:
            with os.fdopen(fd, "w") as fh:
                fh.write(text)
                fh.flush()
                os.fsync(fh.fileno())
            os.chmod(tmp, 0o644)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def _run_makemap(self, source: str, target: Path, *flags: str) -> None:
        kwargs: dict = {}
        if os.geteuid() == 0 and self.makemap_user:
            # makemap run as root refuses sendmail's map folder (it is owned by TrustedUser).
            pw = pwd.getpwnam(self.makemap_user)
            kwargs = {"user": pw.pw_uid, "group": pw.pw_gid, "extra_groups": []}
        run = subprocess.run([self.makemap, *flags, "hash", str(target)], input=source, text=True,
                             capture_output=True, **kwargs)
        if run.returncode != 0:
            raise RuntimeError(f"makemap failed (exit {run.returncode}): {run.stderr.strip()}")

    def write_map(self, entries: dict[str, Entry]) -> None:
        source = "".join(f"{map_key(e.address)}\tOK\n" for e in sorted(entries.values(), key=lambda e: e.address))
        self._write_atomic(self.map, MAP_HEADER + source)
        tmp = self.map.with_name(f".{self.map.name}.{os.getpid()}")
        try:
            self._run_makemap(source, tmp)
            os.replace(f"{tmp}.db", f"{self.map}.db")
        finally:
            Path(f"{tmp}.db").unlink(missing_ok=True)

    def add_to_map(self, entry: Entry) -> None:
        """One new key, in place: makemap -o (keep the rest) -r (replace a stale copy of the key)."""
        line = f"{map_key(entry.address)}\tOK\n"
        self._run_makemap(line, self.map, "-o", "-r")
        with open(self.map, "a") as fh:  # the text copy stays a faithful listing of the map
            fh.write(line)

    def save(self, entries: dict[str, Entry]) -> None:
        self._write_atomic(self.state, format_state(entries))
        self.write_map(entries)

    def record(self, address: str, user: str = "", now: float | None = None) -> Entry:
        now = time.time() if now is None else now
        entry = Entry(normalise(address), now, user)
        with self.locked():
            if not Path(f"{self.map}.db").exists():
                entries = live(self.load(), now, self.window)
                entries[entry.address] = entry
                self.save(entries)
                return entry
            newest = self._newest(self._read(), entry.address)
            if newest is None or now - newest >= self.window:
                self.add_to_map(entry)  # before the entry is written: a failed makemap grants nothing
            with open(self.state, "a") as fh:
                fh.write(format_state({entry.address: entry}))
        return entry

    def expire(self, now: float | None = None) -> int:
        """Drop entries older than the window; compact the entries file when it holds repeats."""
        now = time.time() if now is None else now
        with self.locked():
            text = self._read()
            entries, _ = parse_state(text)
            kept = live(entries, now, self.window)
            dropped = len(entries) - len(kept)
            lines = sum(1 for line in text.splitlines() if line.strip())
            if dropped or not Path(f"{self.map}.db").exists():
                self.save(kept)
            elif lines > len(kept):
                self._write_atomic(self.state, format_state(kept))
        return dropped

    def rebuild(self) -> int:
        with self.locked():
            entries = live(self.load(), time.time(), self.window)
            self.save(entries)
        return len(entries)


def read_config(path: str) -> dict[str, str]:
    cfg = dict(DEFAULTS)
    try:
        for line in Path(path).read_text().splitlines():
            key, sep, value = line.partition("=")
            if sep and not key.strip().startswith("#"):
                cfg[key.strip()] = value.strip().strip('"')
    except FileNotFoundError:
        pass
    return cfg


def _log(message: str) -> None:
    try:
        import syslog
        syslog.openlog("pop-before-smtp", 0, syslog.LOG_MAIL)
        syslog.syslog(syslog.LOG_INFO, message)
    except Exception:  # noqa: BLE001 - logging must never break a login
        pass


def main(argv: list[str] | None = None) -> int:
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
    ls = sub.add_parser("list", help="show live entries")
    ls.add_argument("--json", action="store_true")
    args = p.parse_args(argv)
    cfg = read_config(args.config)
    rmap = RelayMap(Path(args.state or cfg["STATE"]), Path(args.map or cfg["MAP"]),
                    args.window or float(cfg["WINDOW"]), cfg["MAKEMAP_USER"], cfg["MAKEMAP"])
    try:
        if args.cmd == "record":
            entry = rmap.record(args.address, args.user)
            _log(f"relay granted to {entry.address} for user={entry.user or '-'} window={rmap.window:.0f}s")
        elif args.cmd == "expire":
            dropped = rmap.expire()
            if dropped:
                _log(f"expired {dropped} address(es)")
        elif args.cmd == "rebuild":
            print(f"{rmap.rebuild()} live address(es) in {rmap.map}.db")
        else:
            now = time.time()
            entries = sorted(live(rmap.load(), now, rmap.window).values(), key=lambda e: e.seen)
            if args.json:
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
