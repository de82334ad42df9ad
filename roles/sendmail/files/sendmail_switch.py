#!/usr/bin/python3 -IS
"""Switch sendmail's config on the host as one transaction, and tell whether what runs is what was built.

  sendmail-switch apply SPEC     back up the live sendmail.mc/.cf, install the checked staged pair, restart,
                                 verify (greetings, STARTTLS, AUTH offered as the variant promises); on any
                                 failure put the backup back, restart and verify that.
  sendmail-switch restart SPEC   restart and verify (after a certificate or SASL change).
  sendmail-switch check SPEC     read-only: does the live .cf match what the live .mc compiles to, did the
                                 running daemon start after the .cf was installed and after each of the files
                                 it reads only as it starts (start_files), is a switch unfinished.
  sendmail-switch build FQDN [--stale] MC CF [MC CF ...]
                                 compile each MC with m4 into CF.new, check it with sendmail itself (it loads,
                                 it routes postmaster@FQDN to a local mailer) and only then rename it to CF;
                                 --stale: only the pairs whose CF is missing or older than its MC.
  sendmail-switch detached apply|restart SPEC
                                 run apply or restart as a systemd unit of its own, wait for it and print its
                                 result: the transaction finishes even if the SSH session or the controller dies.

SPEC is one JSON object (no secret is ever in it): {"mail_dir", "state_dir", "greet": [[host, port], ...],
"offers": {"PORT": {"starttls": bool, "implicit_tls": bool, "auth": [MECH, ...] | null}}, "timeout": seconds,
"offers_by_variant": {VARIANT: offers, ...}, "start_files": [PATH, ...]}. "auth" lists the mechanisms the port
must offer after STARTTLS, or after the handshake on an implicit_tls port such as 465 ([] for none; null: not
checked). "offers" is what the config being installed must offer; a config put back after a failed switch is
verified against the offers of the variant its sendmail.mc names (offers_by_variant; one it does not list: its
greetings only). "start_files" are the files besides the .cf that sendmail reads only as it starts (the .cf's
class files, Cyrus SASL's Sendmail.conf, the certificate and key): one written after the daemon started is not in
force until a restart.

A journal (STATE_DIR/switch.json) is written before the live files change and removed when the transaction
has ended: a switch that died half-way (host crash, killed unit) is reported by `check` as unfinished, and
the next `apply` keeps the backup that journal names instead of backing up a half-switched config.

Prints one JSON object. Exit status: 0 done, 1 failed (for apply: the rollback failed too), 2 bad usage,
3 the new config failed and the previous one is back and verified.
Standard library only: this runs on the VPS.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import smtplib
import socket
import ssl
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

FILES = ("sendmail.mc", "sendmail.cf")  # in install order: Debian's Makefile rebuilds a .cf older than its .mc
UNIT = "sendmail-fleet-switch"
PIDFILE = "/run/sendmail/mta/sendmail.pid"
# Lines m4 writes from the build's circumstances (who, where, when), not from the .mc.
_VOLATILE = re.compile(r"^##### (built by |in )")
# The variant the role wrote into the .mc it rendered (VERSIONID(`sendmail-fleet VARIANT')).
_VERSIONID = re.compile(r"^VERSIONID\(`sendmail-fleet ([^'\s]+)'\)", re.M)


class SwitchError(Exception):
    """One step of the transaction failed; the message says which and why."""


# What a step of the transaction can raise: each ends in a rollback or a reported failure, never a traceback.
_FAILURES = (SwitchError, OSError, smtplib.SMTPException, ssl.SSLError, subprocess.SubprocessError)


@dataclass
class Spec:
    mail_dir: Path
    state_dir: Path
    greet: list[tuple[str, int]] = field(default_factory=list)
    offers: dict[int, dict] = field(default_factory=dict)
    timeout: float = 30.0
    offers_by_variant: dict[str, dict[int, dict]] = field(default_factory=dict)
    records: list[Path] = field(default_factory=list)  # the rollout's record, then where it was before
    start_files: list[Path] = field(default_factory=list)  # read by the daemon only as it starts

    @classmethod
    def parse(cls, text: str) -> Spec:
        raw = json.loads(text)
        return cls(
            mail_dir=Path(raw.get("mail_dir", "/etc/mail")),
            state_dir=Path(raw.get("state_dir", "/var/lib/sendmail-fleet")),
            greet=[(str(h), int(p)) for h, p in raw.get("greet", [["127.0.0.1", 25]])],
            offers=_offers(raw.get("offers", {})),
            timeout=float(raw.get("timeout", 30)),
            offers_by_variant={str(v): _offers(o) for v, o in raw.get("offers_by_variant", {}).items()},
            records=[Path(p) for p in raw.get("records", [])],
            start_files=[Path(p) for p in raw.get("start_files", [])],
        )

    def offers_of(self, mc: Path) -> tuple[str, dict[int, dict] | None]:
        """The variant a sendmail.mc names and what that variant must offer (None: a variant not in the table)."""
        variant = variant_of(mc)
        return variant, self.offers_by_variant.get(variant)

    @property
    def journal(self) -> Path:
        return self.state_dir / "switch.json"

    @property
    def backup(self) -> Path:
        return self.state_dir / "previous"

    @property
    def staging(self) -> Path:
        return self.state_dir / "staging"


def _offers(raw: dict) -> dict[int, dict]:
    return {int(p): dict(o) for p, o in raw.items()}


def variant_of(mc: Path) -> str:
    """The variant a sendmail.mc was rendered for (its VERSIONID), "?" when it names none."""
    try:
        m = _VERSIONID.search(mc.read_text(errors="replace"))
    except OSError:
        return "?"
    return m.group(1) if m else "?"


# --- files ------------------------------------------------------------------------------------------------


def _write_atomic(dest: Path, data: bytes, mode: int = 0o644, group: str | None = None) -> None:
    """Write beside dest and rename over it: a reader (or a crash) sees the old file or the new, never half."""
    fd, tmp = tempfile.mkstemp(prefix=f".{dest.name}.", dir=dest.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, mode)
        if group is not None and os.geteuid() == 0:
            shutil.chown(tmp, "root", group)
        os.replace(tmp, dest)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _copy_pair(src: Path, dst: Path, group: str | None) -> None:
    for name in FILES:
        _write_atomic(dst / name, (src / name).read_bytes(), group=group)


def _group_of(path: Path) -> str | None:
    try:
        import grp

        return grp.getgrgid(path.stat().st_gid).gr_name
    except (KeyError, OSError):
        return None


def normalized_cf(text: str) -> list[str]:
    """A .cf's lines without those that record the build (user, host, date, folder): two builds of one .mc
    compare equal."""
    return [line for line in text.splitlines() if not _VOLATILE.match(line)]


def first_difference(a: str, b: str) -> str:
    """The first line where two .cf texts differ (after normalizing), for a message a person can act on."""
    la, lb = normalized_cf(a), normalized_cf(b)
    for x, y in zip(la, lb, strict=False):
        if x != y:
            return f"live: {x!r} / compiled: {y!r}"
    return f"live has {len(la)} lines, compiled {len(lb)}"


# --- the journal ------------------------------------------------------------------------------------------


def read_journal(spec: Spec) -> dict | None:
    try:
        return json.loads(spec.journal.read_text())
    except FileNotFoundError:
        return None
    except (OSError, ValueError):
        return {"state": "unreadable"}


def _journal(spec: Spec, **entry: object) -> None:
    spec.state_dir.mkdir(parents=True, exist_ok=True)
    _write_atomic(spec.journal, json.dumps({**entry, "pid": os.getpid(), "at": time.time()}).encode(), 0o600)


# --- the daemon -------------------------------------------------------------------------------------------


def daemon_started(pidfile: str = PIDFILE) -> float | None:
    """When the running sendmail daemon started (epoch seconds), None if none runs.

    The daemon writes its pid file as it starts: the file's mtime is on the same clock as the .cf's mtime, which
    the process start time in /proc is not (it counts from boot, and the boot time shifts when the clock is set)."""
    path = Path(pidfile)
    try:
        pid = int(path.read_text().split()[0])
        if not Path(f"/proc/{pid}").is_dir():
            return None
        return path.stat().st_mtime
    except (OSError, ValueError, IndexError):
        return None


def reexec(pidfile: str = PIDFILE, timeout: float = 10.0) -> bool:
    """sendmail's own restart: on SIGHUP the daemon closes its ports and execs itself again with the arguments it
    started with, reading the .cf anew; the new daemon forks off as before and writes the pid file (here in tens
    of milliseconds, against at least 4 s of fixed sleeps in Debian's init script). True once a sendmail daemon
    has written the pid file again; False where no sendmail daemon owns the pid file, or none came back in time
    (one started without a full path cannot exec itself): the caller then stops and starts it."""
    path = Path(pidfile)
    try:
        pid = int(path.read_text().split()[0])
        if not _is_sendmail(pid):
            return False  # no daemon, or a stale pid file naming another program's process: never signal that
        before = path.stat().st_mtime_ns
        os.kill(pid, signal.SIGHUP)
    except (OSError, ValueError, IndexError):
        return False
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if path.stat().st_mtime_ns != before and _is_sendmail(int(path.read_text().split()[0])):
                return True
        except (OSError, ValueError, IndexError):
            pass  # between the old daemon's end and the new one's pid file
        time.sleep(0.02)
    return False


def _is_sendmail(pid: int) -> bool:
    """A live (not zombie) process whose program is sendmail."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        return stat.rsplit(") ", 1)[1][:1] != "Z" and Path(f"/proc/{pid}/comm").read_text().startswith("sendmail")
    except (OSError, IndexError):
        return False


def _run(argv: list[str], ok: Iterable[int] = (0,)) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=120, check=False)
    if proc.returncode not in ok:
        raise SwitchError(f"{' '.join(argv)} exited {proc.returncode}: {(proc.stderr or proc.stdout).strip()[:300]}")
    return proc


def _port_open(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


def _greeting(host: str, port: int, deadline: float) -> str:
    """Wait (until deadline) for an SMTP greeting on host:port; return it or raise."""
    last = "no answer"
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((host, port), timeout=max(1.0, deadline - time.monotonic())) as s:
                s.settimeout(max(1.0, deadline - time.monotonic()))
                line = s.makefile("rb").readline().decode(errors="replace").strip()
            if line.startswith("220"):
                return line
            last = line or "connection closed before a greeting"
        except OSError as e:
            last = str(e)
        time.sleep(0.2)
    raise SwitchError(f"{host}:{port} gave no 220 greeting: {last}")


def _offer(port: int, implicit_tls: bool = False) -> dict:
    """What sendmail offers on a port: STARTTLS, and AUTH mechanisms after STARTTLS (on an implicit-TLS port such
    as 465: after the TLS handshake it starts with). Read-only: EHLO only."""
    ctx = ssl.create_default_context()
    ctx.check_hostname, ctx.verify_mode = False, ssl.CERT_NONE  # the offer is checked, not the certificate
    if implicit_tls:
        with smtplib.SMTP_SSL("127.0.0.1", port, timeout=15, context=ctx) as s:
            s.ehlo("localhost")
            return {"starttls": False, "tls": True, "auth": sorted(s.esmtp_features.get("auth", "").split())}
    with smtplib.SMTP("127.0.0.1", port, timeout=15) as s:
        s.ehlo("localhost")
        out: dict = {"starttls": s.has_extn("starttls"), "tls": False, "auth": None}
        if out["starttls"]:
            s.starttls(context=ctx)
            s.ehlo("localhost")
        out["auth"] = sorted(s.esmtp_features.get("auth", "").split()) if out["starttls"] else None
        return out


@dataclass
class System:
    """What the transaction does to the running system; tests replace it."""

    spec: Spec

    def restart(self) -> None:
        """The daemon on the live .cf: sendmail's own restart (SIGHUP) where systemd runs it, else (or where it
        does not come back) Debian's stop and start, whose init script sleeps 2 s in each."""
        active = subprocess.run(["systemctl", "is-active", "--quiet", "sendmail"], check=False).returncode == 0
        if active and reexec():
            return
        _run(["systemctl", "stop", "sendmail"])
        # Debian's init script can leave a daemon on the ports: end it, or the old .cf keeps answering.
        _run(["pkill", "-TERM", "-x", "sendmail-mta"], ok=(0, 1))
        deadline = time.monotonic() + 15
        while _port_open("127.0.0.1", 25):
            if time.monotonic() > deadline:
                raise SwitchError("port 25 is still in use after sendmail stopped: another program holds it "
                                  "(see `ss -ltnp`; a leftover exim4 or postfix daemon?)")
            time.sleep(0.1)
        _run(["systemctl", "start", "sendmail"])

    def verify(self, offers: dict[int, dict] | None = None) -> None:
        """Greetings on every listener, then what each port offers: `offers`, by default the spec's (the config
        being installed)."""
        deadline = time.monotonic() + self.spec.timeout
        for host, port in self.spec.greet:
            _greeting(host, port, deadline)
        for port, want in sorted((self.spec.offers if offers is None else offers).items()):
            got = _offer(port, bool(want.get("implicit_tls")))
            if want.get("starttls") and not got["starttls"]:
                raise SwitchError(f"port {port} offers no STARTTLS")
            if want.get("auth") is not None and got["auth"] is not None and got["auth"] != sorted(want["auth"]):
                raise SwitchError(f"port {port} offers AUTH {' '.join(got['auth']) or 'none'} after STARTTLS, "
                                  f"the variant promises {' '.join(sorted(want['auth'])) or 'none'}")


# --- the commands -----------------------------------------------------------------------------------------


def apply(spec: Spec, system: System) -> tuple[int, dict]:
    """Install the staged pair as one transaction; see the module's doc."""
    t0 = time.monotonic()
    steps: list[str] = []
    live, backup = spec.mail_dir, spec.backup
    for name in FILES:
        if not (spec.staging / name).is_file():
            return 1, {"result": "failed", "detail": f"no staged {name} in {spec.staging}: nothing was changed"}
    group = _group_of(live / "sendmail.cf") or "smmsp"
    unfinished = read_journal(spec)
    if unfinished and unfinished.get("state") in ("installing", "restarting", "rolling-back"):
        # A switch died half-way: the live pair may be the unverified new one; the backup it made is the good one.
        steps.append(f"an unfinished switch ({unfinished.get('state')}) left its backup: kept")
        has_backup = bool(unfinished.get("backup"))
    else:
        has_backup = all((live / n).is_file() for n in FILES)
        _journal(spec, state="backing-up", backup=False)
        if has_backup:
            try:
                backup.mkdir(parents=True, exist_ok=True)
                _copy_pair(live, backup, group)
            except OSError as e:
                spec.journal.unlink(missing_ok=True)
                return 1, {"result": "failed", "detail": f"backup failed ({e}): nothing was changed"}
            steps.append("backed up")
    _journal(spec, state="installing", backup=has_backup)
    try:
        _copy_pair(spec.staging, live, group)
        steps.append("installed")
        _journal(spec, state="restarting", backup=has_backup)
        system.restart()
        steps.append("restarted")
        system.verify()
        steps.append("verified")
    except _FAILURES as e:
        why = str(e) or type(e).__name__
        if not has_backup:
            spec.journal.unlink(missing_ok=True)
            return 1, {"result": "failed", "detail": f"{why}; there was no previous config to put back",
                       "steps": steps}
        _journal(spec, state="rolling-back", backup=True)
        # The config put back is verified against what its own variant promises, not the one that failed.
        variant, offers = spec.offers_of(backup / "sendmail.mc")
        verified = (f"previous config ({variant}) back, verified as {variant} promises" if offers is not None else
                    f"previous config back, its greetings verified ({variant}: no variant this role knows)")
        try:
            _copy_pair(backup, live, group)
            system.restart()
            system.verify(offers if offers is not None else {})
        except _FAILURES as e2:
            return 1, {"result": "rollback-failed", "detail": f"{why}; putting the previous config ({variant}) back "
                       f"failed: {e2}", "steps": steps}
        spec.journal.unlink(missing_ok=True)
        return 3, {"result": "rolled-back", "detail": why, "steps": [*steps, verified], "restored": variant,
                   "seconds": round(time.monotonic() - t0, 1)}
    spec.journal.unlink(missing_ok=True)
    return 0, {"result": "switched", "steps": steps, "seconds": round(time.monotonic() - t0, 1)}


def restart(spec: Spec, system: System) -> tuple[int, dict]:
    t0 = time.monotonic()
    try:
        system.restart()
        system.verify()
    except _FAILURES as e:
        return 1, {"result": "failed", "detail": str(e) or type(e).__name__}
    return 0, {"result": "restarted", "seconds": round(time.monotonic() - t0, 1)}


def compile_mc(mc: Path, cwd: Path | None = None) -> str:
    """What m4 makes of a .mc, run in cwd (default: the .mc's own folder, as Debian's Makefile runs it); raise on
    any m4 complaint: m4 exits 0 even on cf errors, so anything on its stderr fails the build."""
    proc = subprocess.run(["m4", str(mc)], cwd=cwd or mc.parent, capture_output=True, text=True, timeout=120,
                          check=False)
    if proc.returncode != 0 or proc.stderr.strip():
        raise SwitchError(f"m4 refused {mc} (exit {proc.returncode}): {proc.stderr.strip()[:600]}")
    return proc.stdout


def recorded(records: list[Path]) -> tuple[str, str]:
    """The variant the rollout recorded ('' for none) and, for a record that cannot be read, why: the first of
    records that exists is the record (an empty file says there is none)."""
    for path in records:
        try:
            text = path.read_text()
        except FileNotFoundError:
            continue
        except OSError as e:
            return "?", f"the rollout's record {path} cannot be read ({e.strerror})"
        if not text.strip():
            return "", ""
        try:
            record = json.loads(text)
        except ValueError:
            record = None
        if not isinstance(record, dict) or not isinstance(record.get("variant", ""), str):
            return "?", f"the rollout's record {path} is not a JSON object with a variant"
        return record.get("variant", ""), ""
    return "", ""


def drift(state: dict) -> list[str]:
    """What differs between what runs and what the live sendmail.mc builds, as sentences (none: nothing)."""
    out = []
    if not state.get("cf_matches_mc", True):
        out.append(f"the live sendmail.cf is not what sendmail.mc compiles to ({state.get('difference') or '?'})")
    unfinished = state.get("unfinished")
    if isinstance(unfinished, dict) and not unfinished.get("running"):
        out.append(f"a switch did not finish ({unfinished.get('state')})")
    if state.get("daemon_older_than_cf"):
        out.append("the running daemon started before the live sendmail.cf was installed")
    if state.get("changed_since_start"):
        out.append(f"the running daemon started before {', '.join(state['changed_since_start'])} changed "
                   "(sendmail reads them only as it starts)")
    return out


def changed_since(files: Iterable[Path], started: float | None) -> list[str]:
    """Those of `files` written after a daemon that started at `started` (none when no daemon runs: the next start
    reads them all). A file that is not there is not a change the daemon missed."""
    if started is None:
        return []
    out = []
    for f in files:
        try:
            if f.stat().st_mtime > started:
                out.append(str(f))
        except OSError:
            continue
    return out


def check(spec: Spec, pidfile: str = PIDFILE, compile_: Callable[[Path], str] = compile_mc) -> dict:
    """Read-only: the facts the role and the fleet report act on, and their drift (see drift())."""
    out = _check(spec, pidfile, compile_)
    return {**out, "drift": drift(out)}


def _check(spec: Spec, pidfile: str, compile_: Callable[[Path], str]) -> dict:
    mc, cf = spec.mail_dir / "sendmail.mc", spec.mail_dir / "sendmail.cf"
    out: dict = {"live": variant_of(mc), "cf_exists": cf.is_file(), "cf_matches_mc": False, "difference": "",
                 "daemon_started": daemon_started(pidfile), "cf_installed": None, "daemon_older_than_cf": False,
                 "unfinished": None}
    out["changed_since_start"] = changed_since(spec.start_files, out["daemon_started"])
    out["recorded"], out["record_problem"] = recorded(spec.records)
    journal = read_journal(spec)
    if journal is not None:
        pid = journal.get("pid")
        alive = isinstance(pid, int) and Path(f"/proc/{pid}").exists()
        out["unfinished"] = {"state": journal.get("state"), "running": alive}
    if not out["cf_exists"]:
        out["difference"] = f"{cf} is missing"
        return out
    out["cf_installed"] = cf.stat().st_mtime
    out["daemon_older_than_cf"] = bool(changed_since([cf], out["daemon_started"]))
    try:
        compiled, live = compile_(mc), cf.read_text(errors="replace")
    except (SwitchError, OSError) as e:
        out["difference"] = str(e)
        return out
    out["cf_matches_mc"] = normalized_cf(live) == normalized_cf(compiled)
    if not out["cf_matches_mc"]:
        out["difference"] = first_difference(live, compiled)
    return out


MAIL_DIR = Path("/etc/mail")  # m4 runs here, as Debian's Makefile runs it
UNTOUCHED = "Nothing was installed: the live sendmail.cf is untouched."
_LOCAL_MAILER = re.compile(r"mailer (local|procmail)")


def _sendmail_test(cf: Path, stdin: str, *flags: str) -> subprocess.CompletedProcess[str]:
    # Address test mode loads the whole .cf (exit 70 on a broken, empty or truncated file); the input ends with a
    # line, so test mode never waits for more.
    return subprocess.run(["sendmail", "-C", str(cf), "-bt", *flags], input=stdin + "\n", capture_output=True,
                          text=True, timeout=60, check=False)


def build(mc: Path, cf: Path, fqdn: str) -> None:
    """Compile mc into cf: the .cf appears (atomically) only when m4 said nothing and sendmail loads it and
    delivers local mail locally; raise SwitchError saying why otherwise."""
    try:
        compiled = compile_mc(mc, MAIL_DIR)
    except SwitchError as e:
        raise SwitchError(f"{e}. {UNTOUCHED}") from None
    new = cf.with_name(cf.name + ".new")
    _write_atomic(new, compiled.encode(), 0o644)
    smoke = _sendmail_test(new, "# smoke test", "-d0.1")
    route = _sendmail_test(new, f"/parse postmaster@{fqdn}") if smoke.returncode == 0 else None
    if route is None or not _LOCAL_MAILER.search(route.stdout):
        new.unlink(missing_ok=True)
        seen = f"{smoke.stderr} {route.stdout if route else ''}".strip()[:600]
        raise SwitchError(f"sendmail rejected the compiled {cf.name} (exit {smoke.returncode}): {seen}. {UNTOUCHED}")
    os.replace(new, cf)


def stale(mc: Path, cf: Path) -> bool:
    """cf is missing or older than its mc (a changed .mc, or a build that failed after the .mc changed)."""
    try:
        return cf.stat().st_mtime < mc.stat().st_mtime
    except FileNotFoundError:
        return True


def build_all(args: list[str]) -> tuple[int, dict]:
    """`build FQDN [--stale] MC CF ...`: every pair in turn; the first failure ends it (exit 1)."""
    only_stale = "--stale" in args
    args = [a for a in args if a != "--stale"]
    if len(args) < 3 or len(args) % 2 != 1:
        raise ValueError("build wants FQDN [--stale] MC CF [MC CF ...]")
    fqdn, files = args[0], [Path(a) for a in args[1:]]
    built: list[str] = []
    for mc, cf in zip(files[::2], files[1::2], strict=True):
        if only_stale and not stale(mc, cf):
            continue
        try:
            build(mc, cf, fqdn)
        except _FAILURES as e:
            return 1, {"result": "failed", "detail": str(e), "built": built}
        built.append(str(cf))
    return 0, {"result": "built" if built else "fresh", "built": built}


def detached(command: str, spec_text: str, argv0: str) -> tuple[int, dict]:
    """Run `command` as a systemd unit of its own (not part of the SSH session) and wait for its result.

    If a unit from an earlier run is still at work (its controller died), wait for it first."""
    spec = Spec.parse(spec_text)
    if shutil.which("systemd-run") is None or not Path("/run/systemd/system").is_dir():
        code, out = COMMANDS[command](spec, System(spec))
        return code, {**out, "detached": False}
    result = spec.state_dir / "switch-result.json"
    deadline = time.monotonic() + 600
    while subprocess.run(["systemctl", "is-active", "--quiet", f"{UNIT}.service"], check=False).returncode == 0:
        if time.monotonic() > deadline:
            return 1, {"result": "failed", "detail": f"{UNIT}.service from an earlier run is still active"}
        time.sleep(0.5)
    result.unlink(missing_ok=True)
    proc = subprocess.run(
        ["systemd-run", f"--unit={UNIT}", "--collect", "--wait", "--quiet", "--service-type=exec",
         "-p", "TimeoutStartSec=infinity", sys.executable, "-IS", argv0, command, spec_text, "--result", str(result)],
        capture_output=True, text=True, check=False)
    try:
        out = json.loads(result.read_text())
    except (OSError, ValueError):
        return 1, {"result": "failed", "detail": f"systemd-run exited {proc.returncode} without a result: "
                   f"{proc.stderr.strip()[:300]}"}
    return int(out.pop("exit", proc.returncode)), {**out, "detached": True}


COMMANDS: dict[str, Callable[[Spec, System], tuple[int, dict]]] = {"apply": apply, "restart": restart}


def main(argv: list[str]) -> int:
    args = list(argv[1:])
    result_file = None
    if "--result" in args:
        i = args.index("--result")
        result_file = args[i + 1]
        del args[i:i + 2]
    try:
        if len(args) == 3 and args[0] == "detached" and args[1] in COMMANDS:
            code, out = detached(args[1], args[2], os.path.abspath(argv[0]))
        elif len(args) == 2 and args[0] in COMMANDS:
            spec = Spec.parse(args[1])
            code, out = COMMANDS[args[0]](spec, System(spec))
        elif len(args) == 2 and args[0] == "check":
            code, out = 0, check(Spec.parse(args[1]))
        elif args and args[0] == "build":
            code, out = build_all(args[1:])
            if code:
                print(out["detail"], file=sys.stderr)
        else:
            print(__doc__, file=sys.stderr)
            return 2
    except (ValueError, KeyError, TypeError) as e:
        print(f"sendmail-switch: bad arguments: {e}", file=sys.stderr)
        return 2
    if result_file:
        _write_atomic(Path(result_file), json.dumps({**out, "exit": code}).encode(), 0o600)
    print(json.dumps(out))
    return code


if __name__ == "__main__":
    sys.exit(main(sys.argv))
