"""Waiting for delivered mail polls on the host in one exec (a grep every 0.2 s under `timeout`), not one exec per
poll: the command MailLab.wait_for_mail sends is run here in a local shell, as the host's would run it."""

from __future__ import annotations

import subprocess
import threading
import time
from pathlib import Path

from sendmail_fleet.mailcheck import MailLab
from sendmail_fleet.topology import build

TOPO = build(12)


def lab_running_locally(commands: list[str]) -> MailLab:
    lab = MailLab(TOPO, client=None)  # type: ignore[arg-type]  # no engine: `sh` runs here

    def sh(node, cmd: str) -> tuple[int, str]:
        commands.append(cmd)
        run = subprocess.run(["sh", "-c", cmd], capture_output=True, text=True)
        return run.returncode, run.stdout + run.stderr

    lab.sh = sh  # type: ignore[method-assign]
    return lab


def test_mail_that_arrives_while_waiting_is_found_in_one_exec(tmp_path: Path):
    box, commands = tmp_path / "carol", []
    box.write_text("From someone\nSubject: other\n\n")
    later = threading.Timer(0.7, lambda: box.write_text(box.read_text() + "From x\nSubject: tok-1234abcd\n\n"))
    later.start()
    t0 = time.monotonic()
    assert lab_running_locally(commands).wait_for_mail(TOPO.get("mx"), str(box), "tok-1234abcd", timeout=10)
    assert 0.6 < time.monotonic() - t0 < 5
    assert len(commands) == 1


def test_mail_that_never_comes_is_false_at_the_deadline(tmp_path: Path):
    box, commands = tmp_path / "missing-mailbox", []
    t0 = time.monotonic()
    assert not lab_running_locally(commands).wait_for_mail(TOPO.get("mx"), str(box), "tok-1", timeout=1)
    assert 0.9 < time.monotonic() - t0 < 4
    assert len(commands) == 1


def test_a_token_is_searched_as_fixed_text_and_never_run(tmp_path: Path):
    box, marker, commands = tmp_path / "carol", tmp_path / "ran", []
    hostile = f"-x $(touch {marker}); touch {marker} '\"; .*"
    box.write_text(f"Subject: {hostile}\n")
    assert lab_running_locally(commands).wait_for_mail(TOPO.get("mx"), str(box), hostile, timeout=3)
    assert not lab_running_locally(commands).wait_for_mail(TOPO.get("mx"), str(box), ".*x", timeout=1)
    assert not marker.exists()


def test_one_look_at_a_mailbox_searches_a_hostile_token_as_text_and_never_runs_it(tmp_path: Path):
    box, marker, commands = tmp_path / "carol", tmp_path / "ran", []
    hostile = f"-x $(touch {marker}); touch {marker} '\"; .*"
    box.write_text(f"Subject: {hostile}\n")
    lab = lab_running_locally(commands)
    assert lab.has_mail(TOPO.get("mx"), str(box), hostile)
    assert not lab.has_mail(TOPO.get("mx"), str(box), ".*x")
    assert not marker.exists()
