"""The host-side switch transaction (roles/sendmail/files/sendmail_switch.py), against files in a temporary
folder and a stand-in for the running daemon. The lab tests prove it on real hosts (and with the controller
killed half-way)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import pytest

from sendmail_fleet.host import load

sw = load("sendmail_switch")

OLD_MC = "VERSIONID(`sendmail-fleet default')dnl\nold mc\n"
CF_HEAD = "#####\n##### built by {who} on {when}\n##### in {where}\n#####\n"


def cf(body: str, who: str = "root@a", when: str = "Mon", where: str = "/") -> str:
    return CF_HEAD.format(who=who, when=when, where=where) + body


@dataclass
class FakeSystem:
    """The daemon: a restart "loads" the live .cf; verify fails while the loaded .cf says BROKEN, and when the
    offers it is given ask for AUTH on a port while the loaded .cf says NOAUTH (a variant without SMTP-Auth)."""

    spec: object
    fail_restart_on: str = "no such text"
    restarts: int = 0
    loaded: list[str] = field(default_factory=list)
    verified_with: list[dict] = field(default_factory=list)

    def restart(self) -> None:
        self.restarts += 1
        text = (self.spec.mail_dir / "sendmail.cf").read_text()
        if self.fail_restart_on in text:
            raise sw.SwitchError("systemctl start sendmail exited 1")
        self.loaded.append(text)

    def verify(self, offers: dict | None = None) -> None:
        offers = self.spec.offers if offers is None else offers
        self.verified_with.append(offers)
        if "BROKEN" in self.loaded[-1]:
            raise sw.SwitchError("127.0.0.1:25 gave no 220 greeting: Connection refused")
        wants_auth = [p for p, o in offers.items() if o.get("auth")]
        if wants_auth and "NOAUTH" in self.loaded[-1]:
            raise sw.SwitchError(f"port {wants_auth[0]} offers AUTH none after STARTTLS, the variant promises LOGIN PLAIN")


@pytest.fixture
def spec(tmp_path: Path):
    live, state = tmp_path / "etc-mail", tmp_path / "state"
    (state / "staging").mkdir(parents=True)
    live.mkdir()
    (live / "sendmail.mc").write_text("VERSIONID(`sendmail-fleet default')dnl\nold mc\n")
    (live / "sendmail.cf").write_text(cf("O LogLevel=9\n"))
    (state / "staging" / "sendmail.mc").write_text("new mc\n")
    (state / "staging" / "sendmail.cf").write_text(cf("O LogLevel=10\n"))
    return sw.Spec(mail_dir=live, state_dir=state)


def live(spec) -> tuple[str, str]:
    return (spec.mail_dir / "sendmail.mc").read_text(), (spec.mail_dir / "sendmail.cf").read_text()


def test_a_good_config_is_installed_restarted_and_verified_and_the_old_one_kept(spec):
    system = FakeSystem(spec)
    code, out = sw.apply(spec, system)
    assert (code, out["result"]) == (0, "switched")
    assert out["steps"] == ["backed up", "installed", "restarted", "verified"]
    assert live(spec) == ("new mc\n", cf("O LogLevel=10\n"))
    assert (spec.backup / "sendmail.mc").read_text() == OLD_MC
    assert not spec.journal.exists()


def test_a_config_that_fails_verification_is_rolled_back_and_the_old_one_verified(spec):
    (spec.staging / "sendmail.cf").write_text(cf("BROKEN\n"))
    system = FakeSystem(spec)
    code, out = sw.apply(spec, system)
    assert (code, out["result"]) == (3, "rolled-back")
    assert "no 220 greeting" in out["detail"]
    assert live(spec) == (OLD_MC, cf("O LogLevel=9\n"))
    assert system.restarts == 2 and "LogLevel=9" in system.loaded[-1]
    assert not spec.journal.exists()


AUTH_ONLY = {25: {"starttls": True, "auth": None}, 587: {"starttls": True, "auth": ["LOGIN", "PLAIN"]},
             465: {"implicit_tls": True, "auth": ["LOGIN", "PLAIN"]}}
LEGACY = {25: {"starttls": True, "auth": []}, 587: {"starttls": True, "auth": []}}


def test_a_config_put_back_after_a_failed_switch_is_verified_against_its_own_variant_not_the_one_that_failed(spec):
    """pop-before-smtp (no SMTP-Auth) to default-auth-only, which fails: the legacy config that comes back offers no
    AUTH, as its variant promises; judged by the auth-only promises it would look broken (rollback-failed)."""
    (spec.mail_dir / "sendmail.mc").write_text("VERSIONID(`sendmail-fleet pop-before-smtp')dnl\n")
    (spec.mail_dir / "sendmail.cf").write_text(cf("NOAUTH legacy\n"))
    (spec.staging / "sendmail.mc").write_text("VERSIONID(`sendmail-fleet default-auth-only')dnl\n")
    (spec.staging / "sendmail.cf").write_text(cf("BROKEN auth-only\n"))
    spec.offers, spec.offers_by_variant = AUTH_ONLY, {"pop-before-smtp": LEGACY, "default-auth-only": AUTH_ONLY}
    system = FakeSystem(spec)
    code, out = sw.apply(spec, system)
    assert (code, out["result"], out["restored"]) == (3, "rolled-back", "pop-before-smtp"), out
    assert system.verified_with == [AUTH_ONLY, LEGACY]
    assert out["steps"][-1] == "previous config (pop-before-smtp) back, verified as pop-before-smtp promises"
    assert "NOAUTH legacy" in live(spec)[1]


def test_a_config_put_back_that_names_no_known_variant_gets_its_greetings_verified_and_says_so(spec):
    (spec.mail_dir / "sendmail.mc").write_text("dnl an admin's own sendmail.mc\n")
    (spec.mail_dir / "sendmail.cf").write_text(cf("NOAUTH hand-made\n"))
    (spec.staging / "sendmail.cf").write_text(cf("BROKEN\n"))
    spec.offers, spec.offers_by_variant = AUTH_ONLY, {"default-auth-only": AUTH_ONLY}
    system = FakeSystem(spec)
    code, out = sw.apply(spec, system)
    assert (code, out["result"]) == (3, "rolled-back") and system.verified_with[-1] == {}
    assert "its greetings verified (?: no variant this role knows)" in out["steps"][-1]


def test_the_spec_carries_every_variants_offers_with_ports_as_numbers():
    spec = sw.Spec.parse(json.dumps({"offers": {"25": {"auth": []}},
                                     "offers_by_variant": {"default": {"587": {"auth": ["PLAIN"]}}}}))
    assert spec.offers == {25: {"auth": []}} and spec.offers_by_variant == {"default": {587: {"auth": ["PLAIN"]}}}


def test_a_failed_rollback_is_reported_and_leaves_the_journal_for_the_next_run(spec):
    (spec.staging / "sendmail.cf").write_text(cf("BROKEN\n"))
    system = FakeSystem(spec, fail_restart_on="LogLevel=9")
    code, out = sw.apply(spec, system)
    assert (code, out["result"]) == (1, "rollback-failed")
    assert json.loads(spec.journal.read_text())["state"] == "rolling-back"


def test_after_a_switch_that_died_half_way_the_next_apply_keeps_the_good_backup(spec):
    # The first switch installed the new pair and died before verifying (its process is gone).
    sw.apply(spec, FakeSystem(spec))  # backup = old, live = new
    spec.journal.write_text(json.dumps({"state": "restarting", "backup": True, "pid": 2**22 + 1}))
    (spec.mail_dir / "sendmail.cf").write_text(cf("BROKEN half-switched\n"))
    (spec.staging / "sendmail.cf").write_text(cf("BROKEN\n"))
    code, out = sw.apply(spec, FakeSystem(spec))
    assert code == 3
    assert out["steps"][0].startswith("an unfinished switch (restarting) left its backup")
    assert live(spec) == (OLD_MC, cf("O LogLevel=9\n")), "the backup of the half-switched pair was not taken"


def test_a_backup_that_cannot_be_made_stops_the_switch_before_the_live_files_change(spec):
    spec.backup.write_text("a file where the backup folder should be")
    code, out = sw.apply(spec, FakeSystem(spec))
    assert (code, out["result"]) == (1, "failed")
    assert "backup failed" in out["detail"] and "nothing was changed" in out["detail"]
    assert live(spec) == (OLD_MC, cf("O LogLevel=9\n"))
    assert not spec.journal.exists()


def test_without_a_staged_pair_nothing_changes(spec):
    (spec.staging / "sendmail.cf").unlink()
    code, out = sw.apply(spec, FakeSystem(spec))
    assert code == 1 and "no staged sendmail.cf" in out["detail"]
    assert live(spec)[0] == OLD_MC


def test_a_restart_reports_a_daemon_that_does_not_come_back(spec):
    (spec.mail_dir / "sendmail.cf").write_text(cf("BROKEN\n"))
    code, out = sw.restart(spec, FakeSystem(spec))
    assert (code, out["result"]) == (1, "failed") and "greeting" in out["detail"]


# A stand-in daemon: names itself (comm) as given, writes its pid file, and on SIGHUP does what `mode` says:
# "reexec" is sendmail's restart (a new daemon process writes the pid file, the old one ends), "die" exits
# (sendmail started without a full path), "ignore" notes the signal in a file and carries on.
STANDIN = """
import os, pathlib, signal, sys, time
pidfile, comm, mode, noted = sys.argv[1:5]
pathlib.Path('/proc/self/comm').write_text(comm)
def hup(*_):
    if mode == 'reexec':
        if os.fork():
            os._exit(0)
        time.sleep(0.2)
        pathlib.Path(pidfile).write_text(f'{os.getpid()}\\n/usr/sbin/sendmail-mta -bd\\n')
    elif mode == 'die':
        os._exit(75)
    else:
        pathlib.Path(noted).write_text('HUP')
signal.signal(signal.SIGHUP, hup)
pathlib.Path(pidfile).write_text(f'{os.getpid()}\\n/usr/sbin/sendmail-mta -bd\\n')
while True:
    time.sleep(0.05)
"""


@pytest.fixture
def daemon(tmp_path: Path):
    pidfiles: list[Path] = []
    procs: list[subprocess.Popen] = []

    def start(comm: str, mode: str) -> tuple[Path, Path, subprocess.Popen]:
        pidfile, noted = tmp_path / f"{comm}-{mode}.pid", tmp_path / f"{comm}-{mode}.noted"
        proc = subprocess.Popen([sys.executable, "-c", STANDIN, str(pidfile), comm, mode, str(noted)])
        procs.append(proc)
        pidfiles.append(pidfile)
        deadline = time.monotonic() + 10
        while not pidfile.exists() or not pidfile.read_text().endswith("-bd\n"):
            assert time.monotonic() < deadline, "the stand-in daemon did not start"
            time.sleep(0.02)
        os.utime(pidfile, ns=(0, 0))  # an old pid file: a new one is told apart by its mtime
        return pidfile, noted, proc

    yield start
    for proc in procs:
        proc.kill()
        proc.wait()
    for pidfile in pidfiles:  # the daemon a restart forked off
        try:
            os.kill(int(pidfile.read_text().split()[0]), 9)
        except (OSError, ValueError):
            pass


def test_sighup_restarts_a_sendmail_daemon_which_writes_its_pid_file_again(daemon):
    pidfile, _, proc = daemon("sendmail-mta", "reexec")
    assert sw.reexec(str(pidfile), timeout=10) is True
    new_pid = int(pidfile.read_text().split()[0])
    assert new_pid != proc.pid and sw._is_sendmail(new_pid)
    assert proc.wait(timeout=10) == 0, "the old daemon process ends"


def test_a_daemon_that_dies_on_sighup_means_the_long_way_stop_and_start(daemon):
    pidfile, _, proc = daemon("sendmail-mta", "die")
    assert sw.reexec(str(pidfile), timeout=1) is False
    assert proc.wait(timeout=10) == 75


def test_a_pid_file_naming_another_program_is_never_signalled(daemon):
    pidfile, noted, proc = daemon("postgres", "ignore")
    assert sw.reexec(str(pidfile), timeout=1) is False
    assert proc.poll() is None and not noted.exists()


def test_a_daemon_that_does_not_write_its_pid_file_again_in_time_means_the_long_way(daemon):
    pidfile, noted, proc = daemon("sendmail-mta", "ignore")
    assert sw.reexec(str(pidfile), timeout=1) is False
    assert noted.read_text() == "HUP" and proc.poll() is None


def test_without_a_pid_file_or_with_a_stale_one_there_is_nothing_to_signal(tmp_path: Path):
    assert sw.reexec(str(tmp_path / "none.pid"), timeout=1) is False
    stale = tmp_path / "stale.pid"
    stale.write_text(f"{2**22 + 1}\n")
    assert sw.reexec(str(stale), timeout=1) is False


def test_two_builds_of_one_mc_compare_equal_whoever_built_them_and_when():
    a = cf("O LogLevel=10\nR$* $#local\n", who="root@x", when="Mon Jan 1")
    b = cf("O LogLevel=10\nR$* $#local\n", who="admin@y", when="Fri Nov 27", where="/etc/mail")
    assert sw.normalized_cf(a) == sw.normalized_cf(b)
    c = cf("O LogLevel=9\nR$* $#local\n")
    assert sw.normalized_cf(a) != sw.normalized_cf(c)
    assert sw.first_difference(c, a) == "live: 'O LogLevel=9' / compiled: 'O LogLevel=10'"


def test_check_flags_a_hand_edited_cf_and_names_the_line(spec):
    (spec.mail_dir / "sendmail.cf").write_text(cf("O LogLevel=10\nO MaxDaemonChildren=0\n"))
    out = sw.check(spec, pidfile="/nonexistent", compile_=lambda mc: cf("O LogLevel=10\nO MaxDaemonChildren=40\n"))
    assert out["cf_exists"] and not out["cf_matches_mc"]
    assert "MaxDaemonChildren=0" in out["difference"]
    assert out["daemon_started"] is None and not out["daemon_older_than_cf"]
    assert out["drift"] == [f"the live sendmail.cf is not what sendmail.mc compiles to ({out['difference']})"]


def test_drift_says_each_difference_in_a_sentence_and_nothing_when_all_is_as_built():
    assert sw.drift({"cf_matches_mc": True, "unfinished": None, "daemon_older_than_cf": False}) == []
    assert sw.drift({"cf_matches_mc": True, "unfinished": {"state": "restarting", "running": True}}) == [], \
        "a switch still at work is not drift"
    assert sw.drift({"cf_matches_mc": False, "difference": "", "unfinished": {"state": "installing", "running": False},
                     "daemon_older_than_cf": True}) == [
        "the live sendmail.cf is not what sendmail.mc compiles to (?)", "a switch did not finish (installing)",
        "the running daemon started before the live sendmail.cf was installed"]


def test_check_accepts_a_cf_built_from_its_mc(spec):
    out = sw.check(spec, pidfile="/nonexistent", compile_=lambda mc: cf("O LogLevel=9\n", who="other@host"))
    assert out["cf_matches_mc"] and out["difference"] == "" and out["unfinished"] is None
    assert out["live"] == "default", "the variant the live .mc was rendered for"
    assert out["drift"] == []


def test_check_reports_a_missing_cf_and_an_m4_failure(spec):
    def m4_fails(mc: Path) -> str:
        raise sw.SwitchError("m4 sendmail.mc failed: m4:sendmail.mc:3: cannot open `nothere.m4'")

    assert "cannot open" in sw.check(spec, pidfile="/nonexistent", compile_=m4_fails)["difference"]
    (spec.mail_dir / "sendmail.cf").unlink()
    out = sw.check(spec, pidfile="/nonexistent")
    assert not out["cf_exists"] and "missing" in out["difference"]


def test_check_sees_a_daemon_started_before_the_cf_was_installed(spec, tmp_path: Path):
    pidfile = tmp_path / "sendmail.pid"
    pidfile.write_text(f"{os.getpid()}\n/usr/sbin/sendmail-mta -bd\n")  # this test process plays the daemon
    started = time.time() - 3600
    os.utime(pidfile, (started, started))  # the daemon wrote its pid file as it started
    assert sw.daemon_started(str(pidfile)) == started
    same = lambda mc: cf("O LogLevel=9\n")  # noqa: E731
    os.utime(spec.mail_dir / "sendmail.cf", (started - 60, started - 60))
    assert not sw.check(spec, pidfile=str(pidfile), compile_=same)["daemon_older_than_cf"]
    os.utime(spec.mail_dir / "sendmail.cf", (started + 60, started + 60))
    assert sw.check(spec, pidfile=str(pidfile), compile_=same)["daemon_older_than_cf"]


def test_check_names_each_start_file_written_after_the_daemon_started_and_ignores_older_and_missing_ones(
        spec, tmp_path: Path):
    """The SASL config or the certificate written by a run whose restart handler never ran (the controller was
    lost): the daemon still runs on what was there before, and check says which file it has not read."""
    pidfile = tmp_path / "sendmail.pid"
    pidfile.write_text(f"{os.getpid()}\n/usr/sbin/sendmail-mta -bd\n")  # this test process plays the daemon
    started = time.time() - 3600
    os.utime(pidfile, (started, started))
    os.utime(spec.mail_dir / "sendmail.cf", (started - 60, started - 60))
    sasl, cert, gone = tmp_path / "Sendmail.conf", tmp_path / "cert.pem", tmp_path / "relay-domains"
    for f, when in ((sasl, started + 30), (cert, started - 30)):
        f.write_text("x\n")
        os.utime(f, (when, when))
    spec.start_files = [sasl, cert, gone]
    same = lambda mc: cf("O LogLevel=9\n")  # noqa: E731
    out = sw.check(spec, pidfile=str(pidfile), compile_=same)
    assert out["changed_since_start"] == [str(sasl)] and not out["daemon_older_than_cf"]
    assert out["drift"] == [f"the running daemon started before {sasl} changed (sendmail reads them only as it starts)"]
    os.utime(cert, (started + 40, started + 40))
    assert sw.check(spec, pidfile=str(pidfile), compile_=same)["changed_since_start"] == [str(sasl), str(cert)]
    assert sw.check(spec, pidfile="/nonexistent", compile_=same)["changed_since_start"] == [], \
        "no daemon runs: its next start reads every file"


def test_the_spec_names_the_start_files():
    raw = json.dumps({"mail_dir": "/etc/mail", "start_files": ["/etc/sasl2/Sendmail.conf"]})
    assert sw.Spec.parse(raw).start_files == [Path("/etc/sasl2/Sendmail.conf")]
    assert sw.Spec.parse("{}").start_files == []


def test_a_pid_file_left_by_a_daemon_that_is_gone_means_no_daemon(tmp_path: Path):
    pidfile = tmp_path / "sendmail.pid"
    pidfile.write_text("4194000\n")
    assert sw.daemon_started(str(pidfile)) is None


def test_check_reports_a_switch_whose_process_is_gone_as_unfinished(spec):
    spec.journal.write_text(json.dumps({"state": "installing", "backup": True, "pid": 2**22 + 1}))
    out = sw.check(spec, pidfile="/nonexistent", compile_=lambda mc: "")
    assert out["unfinished"] == {"state": "installing", "running": False}
    spec.journal.write_text(json.dumps({"state": "restarting", "backup": True, "pid": os.getpid()}))
    assert sw.check(spec, pidfile="/nonexistent", compile_=lambda mc: "")["unfinished"]["running"] is True


def test_the_spec_is_read_with_its_defaults_and_bad_usage_exits_2(capsys):
    spec = sw.Spec.parse('{"offers": {"587": {"starttls": true, "auth": ["PLAIN"]}}}')
    assert spec.mail_dir == Path("/etc/mail") and spec.greet == [("127.0.0.1", 25)]
    assert spec.offers == {587: {"starttls": True, "auth": ["PLAIN"]}}
    assert sw.main(["sendmail-switch", "apply", "{not json"]) == 2
    assert sw.main(["sendmail-switch", "frobnicate"]) == 2
    assert "bad arguments" in capsys.readouterr().err


# `build`: m4 and sendmail are stand-ins (shell scripts first on PATH) that behave as the real ones do on the
# inputs below: m4 complains on stderr but exits 0 for an unknown FEATURE; sendmail -bt exits 70 on a .cf it
# cannot load and names the mailer /parse picks.
FAKE_M4 = """#!/bin/sh
if grep -q no_such_feature "$1"; then echo "m4: no_such_feature: not found" >&2; fi
sed 's/^mc:/cf:/' "$1"
"""
FAKE_SENDMAIL = """#!/bin/sh
cf="$2"
if grep -q BROKEN "$cf"; then echo "$cf: line 1: unknown configuration line" >&2; exit 70; fi
read line
case "$line" in /parse*) if grep -q NOLOCAL "$cf"; then echo "mailer esmtp"; else echo "mailer local, user x"; fi;; esac
exit 0
"""


@pytest.fixture
def tools(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name, text in (("m4", FAKE_M4), ("sendmail", FAKE_SENDMAIL)):
        (bin_dir / name).write_text(text)
        (bin_dir / name).chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setattr(sw, "MAIL_DIR", tmp_path)
    return tmp_path


def pair(folder: Path, name: str, mc_text: str) -> tuple[Path, Path]:
    mc = folder / f"{name}.mc"
    mc.write_text(mc_text)
    return mc, folder / f"{name}.cf"


def test_build_installs_a_cf_only_after_m4_and_sendmail_accept_it(tools: Path):
    mc, cf = pair(tools, "default", "mc: good\n")
    sw.build(mc, cf, "mail.example.test")
    assert cf.read_text() == "cf: good\n" and not cf.with_name("default.cf.new").exists()


@pytest.mark.parametrize("text, message", [
    ("mc: FEATURE(`no_such_feature')\n", "m4 refused"),
    ("mc: BROKEN\n", "sendmail rejected the compiled default.cf (exit 70)"),
    ("mc: NOLOCAL\n", "sendmail rejected the compiled default.cf (exit 0)"),
], ids=["m4 complains", "sendmail cannot load it", "local mail not delivered locally"])
def test_a_refused_build_leaves_the_old_cf_and_no_new_file(tools: Path, text: str, message: str):
    mc, cf = pair(tools, "default", text)
    cf.write_text("cf: old\n")
    with pytest.raises(sw.SwitchError, match=re.escape(message)) as e:
        sw.build(mc, cf, "mail.example.test")
    assert "the live sendmail.cf is untouched" in str(e.value)
    assert cf.read_text() == "cf: old\n" and not cf.with_name("default.cf.new").exists()


def test_build_stale_rebuilds_only_missing_or_older_cfs_and_stops_at_the_first_failure(tools: Path, capsys):
    fresh_mc, fresh_cf = pair(tools, "fresh", "mc: fresh\n")
    fresh_cf.write_text("cf: kept\n")
    os.utime(fresh_mc, (time.time() - 60, time.time() - 60))
    missing_mc, missing_cf = pair(tools, "missing", "mc: missing\n")
    code, out = sw.build_all(["mail.example.test", "--stale", str(fresh_mc), str(fresh_cf),
                              str(missing_mc), str(missing_cf)])
    assert (code, out) == (0, {"result": "built", "built": [str(missing_cf)]})
    assert fresh_cf.read_text() == "cf: kept\n"
    assert sw.build_all(["mail.example.test", "--stale", str(fresh_mc), str(fresh_cf)]) == (
        0, {"result": "fresh", "built": []})

    broken_mc, broken_cf = pair(tools, "broken", "mc: BROKEN\n")
    assert sw.main(["sendmail-switch", "build", "mail.example.test", str(broken_mc), str(broken_cf),
                    str(fresh_mc), str(fresh_cf)]) == 1
    captured = capsys.readouterr()
    assert json.loads(captured.out)["built"] == [] and "sendmail rejected the compiled broken.cf" in captured.err
    assert fresh_cf.read_text() == "cf: kept\n"  # not reached: the first failure ends the run
    assert sw.main(["sendmail-switch", "build", "mail.example.test", str(broken_mc)]) == 2


def test_check_reads_the_rollout_record_first_where_it_is_then_where_it_was(spec, tmp_path: Path):
    fact, before = tmp_path / "facts.d" / "sendmail_fleet_rollout.fact", tmp_path / "rollout.json"
    spec.records = [fact, before]
    check = partial(sw.check, spec, pidfile="/nonexistent", compile_=lambda mc: cf("O LogLevel=9\n", who="other@host"))
    assert (check()["recorded"], check()["record_problem"]) == ("", ""), "no record anywhere: none"
    before.write_text('{"variant": "default-grace", "before": "default"}')
    assert check()["recorded"] == "default-grace", "a host site.yml has not moved the record of yet"
    fact.parent.mkdir()
    fact.write_text("")
    assert check()["recorded"] == "", "an empty record (what site.yml leaves on a host) is no record"
    fact.write_text('{"variant": "default-auth-only", "before": "default-grace", "switched_at": "2026-12-06"}\n')
    assert check()["recorded"] == "default-auth-only"


@pytest.mark.parametrize("damaged", ["{", "[1, 2]", '{"variant": 3}', "variant = x"])
def test_a_damaged_rollout_record_is_unknown_and_named_not_taken_for_none(spec, tmp_path: Path, damaged: str):
    record = tmp_path / "sendmail_fleet_rollout.fact"
    record.write_text(damaged)
    spec.records = [record]
    out = sw.check(spec, pidfile="/nonexistent", compile_=lambda mc: cf("O LogLevel=9\n", who="other@host"))
    assert out["recorded"] == "?"
    assert out["record_problem"] == f"the rollout's record {record} is not a JSON object with a variant"
    assert out["drift"] == [], "the live config itself is fine: the record's problem is reported beside it"
