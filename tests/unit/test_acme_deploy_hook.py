"""certbot's deploy hook (roles/tls/templates/acme-deploy-hook.sh.j2), rendered by Ansible's own templating and run
with sh against files and processes this test makes: every reload runs whatever the one before did, and sendmail's
SIGHUP reaches only a process that is sendmail."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest
import yaml
from ansible.parsing.dataloader import DataLoader
from ansible.template import Templar, trust_as_template

from sendmail_fleet import repo_root

ROLE = repo_root() / "roles" / "tls"
DEFAULT_COMMANDS = yaml.safe_load((ROLE / "defaults" / "main.yml").read_text())["tls_acme_reload_commands"]
SENDMAIL_PID = "/run/sendmail/mta/sendmail.pid"


def render(live: Path, tls_dir: Path, commands: list[str], stamp: Path | str = "") -> str:
    text = (ROLE / "templates" / "acme-deploy-hook.sh.j2").read_text()
    return Templar(loader=DataLoader(), variables={
        "ansible_managed": "managed", "tls_acme_cert_name": "sendmail-fleet", "__tls_acme_live": str(live),
        "tls_dir": str(tls_dir), "tls_acme_reload_commands": commands,
        "tls_reloaded_stamp": str(stamp)}).template(trust_as_template(text))


@pytest.fixture
def hook(tmp_path: Path):
    """run(commands) -> (exit status, stderr): the hook as certbot runs it, its certificate files copied."""
    live, tls_dir, bin_dir = tmp_path / "live", tmp_path / "tls", tmp_path / "bin"
    for d in (live, tls_dir, bin_dir):
        d.mkdir()
    for name in ("privkey.pem", "fullchain.pem", "chain.pem"):
        (live / name).write_text(f"{name}\n")
    # install -o root -g root needs root: a stand-in that leaves the owner out, so the test runs as any user.
    (bin_dir / "install").write_text('#!/bin/sh\nwhile [ "$1" = -o ] || [ "$1" = -g ]; do shift 2; done\n'
                                     'exec /usr/bin/install "$@"\n')
    (bin_dir / "install").chmod(0o755)

    def run(commands: list[str], stamp: Path | str = "") -> tuple[int, str]:
        script = tmp_path / "hook.sh"
        script.write_text(render(live, tls_dir, commands, stamp))
        proc = subprocess.run(["sh", str(script)], capture_output=True, text=True, timeout=30,
                              env={**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}",
                                   "RENEWED_LINEAGE": str(live)})
        assert (tls_dir / "key.pem").read_text() == "privkey.pem\n"  # the files went into place first
        return proc.returncode, proc.stderr
    return run


def test_every_reload_runs_even_when_one_before_it_fails_and_the_hook_says_which(hook, tmp_path):
    out = tmp_path / "ran"
    code, err = hook([f"echo first >> {out}", "false", f"echo third >> {out}"])
    assert out.read_text().split() == ["first", "third"]
    assert code == 1 and "failed: false" in err


def test_all_reloads_working_is_exit_0(hook, tmp_path):
    assert hook([f"echo one >> {tmp_path / 'x'}"]) == (0, "")


def test_the_stamp_is_touched_only_once_every_reload_worked(hook, tmp_path):
    """The pop3 role reads the stamp's time as when dovecot loaded the certificate: a failed reload must not
    move it (the next run then restarts dovecot, as the certificate is newer than what it loaded)."""
    stamp = tmp_path / "state" / "tls-reloaded"  # its folder made too
    assert hook(["true", "false"], stamp)[0] == 1 and not stamp.exists()
    before = time.time()
    assert hook(["true", "true"], stamp) == (0, "")
    assert stamp.exists() and stamp.stat().st_mtime >= before - 1
    assert hook(["true"])[0] == 0, "without a stamp configured nothing is touched"


def started(argv: list[str]) -> subprocess.Popen:
    proc = subprocess.Popen(argv)
    deadline = time.monotonic() + 10
    while not Path(f"/proc/{proc.pid}/comm").exists() or Path(f"/proc/{proc.pid}/comm").read_text().strip() \
            != Path(argv[0]).name[:15]:
        assert time.monotonic() < deadline, "the process did not start"
        time.sleep(0.05)
    return proc


def sendmail_line(pidfile: Path) -> str:
    line = next(c for c in DEFAULT_COMMANDS if SENDMAIL_PID in c)  # the role's own default, with this test's file
    return line.replace(SENDMAIL_PID, str(pidfile))


def test_a_stale_pid_file_naming_another_program_gets_that_program_no_signal(hook, tmp_path):
    other = started(["sleep", "60"])  # SIGHUP would end it
    try:
        pidfile = tmp_path / "sendmail.pid"
        pidfile.write_text(f"{other.pid}\n/usr/sbin/sendmail-mta -bd\n")
        code, err = hook([sendmail_line(pidfile), f"echo after >> {tmp_path / 'ran'}"])
        assert (code, err) == (0, "") and other.poll() is None, "a program that is not sendmail got SIGHUP"
        assert (tmp_path / "ran").read_text() == "after\n"
    finally:
        other.kill()
        other.wait()


def test_the_sendmail_daemon_named_in_the_pid_file_gets_its_sighup(hook, tmp_path):
    fake = tmp_path / "sendmail-mta"  # a process whose name is sendmail's: sleep under that name
    shutil.copy("/bin/sleep", fake)
    daemon = started([str(fake), "60"])
    try:
        pidfile = tmp_path / "sendmail.pid"
        pidfile.write_text(f"{daemon.pid}\n")
        assert hook([sendmail_line(pidfile)]) == (0, "")
        assert daemon.wait(timeout=10) == -1  # ended by SIGHUP (1), which it does not catch
    finally:
        if daemon.poll() is None:
            daemon.kill()
            daemon.wait()


def test_no_pid_file_or_an_empty_one_is_no_error(hook, tmp_path):
    empty = tmp_path / "empty.pid"
    empty.write_text("")
    assert hook([sendmail_line(tmp_path / "missing.pid"), sendmail_line(empty)]) == (0, "")
