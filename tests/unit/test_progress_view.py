"""Progress instead of the stream: the progress callback (plugins/callback/progress.py) on real ansible-playbook
runs against the controller itself, the view that reads its events (sendmail_fleet.progress.RunView) and the
runner that keeps Ansible's whole output in a log (sendmail_fleet.playbook.run_followed)."""

from __future__ import annotations

import io
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from sendmail_fleet import playbook as ansible_playbook
from sendmail_fleet.progress import Progress, RunView

SECRET = "s3cr3t-pa55word-never-printed"

PLAYBOOK = f"""
- hosts: all
  gather_facts: false
  tasks:
    - name: Setup | Warm up
      ansible.builtin.command: "true"
      changed_when: false
    - name: Setup | Ignored failure
      ansible.builtin.command: "false"
      ignore_errors: true
    - name: Build | Compile the staged sendmail.mc
      ansible.builtin.command:
        argv: [sh, -c, 'echo "m4 refused the .mc: no_such_feature" >&2; exit 3']
      when: inventory_hostname == 'broken'
      changed_when: false
    - name: Secret | A step that fails with a password in it
      ansible.builtin.command:
        argv: [sh, -c, 'echo {SECRET}; exit 1']
      no_log: true
      when: inventory_hostname == 'secretive'
    - name: Finish | Last step
      ansible.builtin.debug: {{msg: done}}
"""


def inventory(tmp: Path, hosts: list[str]) -> Path:
    inv = tmp / "hosts.ini"
    inv.write_text("".join(f"{h} ansible_connection=local ansible_python_interpreter={sys.executable}\n"
                           for h in hosts))
    return inv


def followed(tmp: Path, hosts: list[str], tty: bool = False, raw: bool = False):
    (tmp / "pb.yml").write_text(PLAYBOOK)
    out = io.StringIO()
    run = ansible_playbook.run_followed(inventory(tmp, hosts), tmp / "pb.yml", log=tmp / "run.log",
                                        progress=Progress(stream=out, tty=tty), raw=raw, accelerated=False)
    return run, out.getvalue()


@pytest.fixture(scope="module")
def failing(tmp_path_factory):
    return followed(tmp_path_factory.mktemp("failing"), ["good", "broken", "secretive"])


def test_a_good_run_prints_one_line_per_phase_and_keeps_the_whole_output_in_the_log(tmp_path):
    run, printed = followed(tmp_path, ["one", "two"])
    assert run.returncode == 0
    lines = printed.splitlines()
    assert [line.split("]", 1)[1].split()[0] for line in lines] == ["play"], printed  # no roles: one phase
    assert "2 hosts" in lines[0]
    log = run.log.read_text()
    assert "TASK [Finish | Last step]" in log and "PLAY RECAP" in log  # the stream went to the log, not the screen
    assert "PLAY RECAP" not in printed
    assert run.view.failed_hosts() == []
    assert run.view.summary() == "2 hosts, 2 changes, 0 failed"  # the ignored failure of `false` counts as a change


def test_the_failure_names_the_host_its_task_its_message_and_the_log(failing):
    run, _ = failing
    assert run.returncode != 0
    text = run.failure("provisioning")
    assert "  broken: task [Build | Compile the staged sendmail.mc]" in text
    assert "m4 refused the .mc: no_such_feature" in text
    assert text.splitlines()[-1] == f"  full Ansible output: {run.log}"
    assert "good:" not in text  # a host that did not fail is not named
    assert "Ignored failure" not in text  # an ignored failure is no failure


def test_a_no_log_failure_is_named_but_its_data_is_never_shown(failing):
    run, printed = failing
    text = run.failure("provisioning")
    assert "  secretive: task [Secret | A step that fails with a password in it]" in text
    assert "no_log" in text  # Ansible's own "output hidden" text stands for the message
    events = run.log.with_suffix(".events.jsonl").read_text()
    for where in (text, printed, events, run.log.read_text()):
        assert SECRET not in where


def test_the_events_file_is_json_lines_ending_with_the_recap(failing):
    run, _ = failing
    events = [json.loads(line) for line in run.log.with_suffix(".events.jsonl").read_text().splitlines()]
    assert events[0]["e"] == "play" and events[-1]["e"] == "stats"
    assert set(events[-1]["hosts"]) == {"good", "broken", "secretive"}
    assert events[-1]["hosts"]["broken"]["failures"] == 1 and events[-1]["hosts"]["good"]["failures"] == 0
    times = [e["t"] for e in events]
    assert times == sorted(times)


def test_on_a_terminal_the_live_line_is_redrawn_in_place(tmp_path):
    _, printed = followed(tmp_path, ["one"], tty=True)
    assert "\r\x1b[K" in printed  # the live line was drawn and erased before the next line
    assert "hosts done with the current task" in printed


def test_raw_shows_ansibles_stream_as_well_and_still_logs_it(tmp_path, capfd):
    run, _ = followed(tmp_path, ["one"], raw=True)
    shown = capfd.readouterr().out
    assert "TASK [Finish | Last step]" in shown and "TASK [Finish | Last step]" in run.log.read_text()


def events(*items: tuple) -> list[dict]:
    kinds = {"task": ("name", "role"), "start": ("host", "task"), "result": ("host", "status", "role", "task", "msg")}
    out = []
    for t, (kind, *values) in enumerate(items):
        out.append({"e": kind, "t": float(t), **dict(zip(kinds.get(kind, ()), values, strict=False))})
    return out


def test_the_view_ends_a_phase_when_another_role_starts_and_names_the_slowest_host():
    view = RunView()
    printed: list[str] = []
    for e in events(("task", "Packages", "mail_host"), ("start", "vps2", "Packages"), ("start", "vps1", "Packages"),
                    ("result", "vps1", "changed"), ("result", "vps2", "ok"),
                    ("task", "Certificate", "tls"), ("start", "vps1", "Certificate")):
        printed += view.feed(e)
    assert len(printed) == 1
    assert printed[0].split()[:3] == ["mail_host", "2", "hosts"]
    assert "slowest vps2" in printed[0] and "changed on 1" in printed[0]
    assert view.live().startswith("1/2 hosts done with the current task · tls: Certificate · tls: vps1 busy")


def test_the_recap_decides_who_failed_a_rescued_failure_is_not_named():
    view = RunView()
    deploy = "sendmail : Deploy"  # as Ansible names a role's task to callbacks
    for e in events(("task", deploy, "sendmail"), ("start", "vps1", deploy), ("start", "vps2", deploy),
                    ("result", "vps1", "failed", "sendmail", deploy, "restart failed"),
                    ("result", "vps2", "failed", "sendmail", deploy, "will be rescued")):
        view.feed(e)
    assert {f.host for f in view.failed_hosts()} == {"vps1", "vps2"}  # before the recap: every failure seen
    lines = view.feed({"e": "stats", "t": 9.0, "hosts": {"vps1": {"failures": 1}, "vps2": {"failures": 0,
                                                                                           "rescued": 1}}})
    assert "FAILED on vps1, vps2" in lines[0]
    assert [(f.host, f.task, f.message) for f in view.failed_hosts()] == [("vps1", "sendmail : Deploy",
                                                                           "restart failed")]


def descendants(pid: int) -> set[int]:
    """The processes started by `pid` and by its children, transitively (from /proc: each one's parent)."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            parent = int(stat.read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(parent, []).append(int(stat.parent.name))
    found, todo = set(), [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            if child not in found:
                found.add(child)
                todo.append(child)
    return found


def cmdline(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return b""  # it has ended


def running(pids: set[int]) -> set[int]:
    """Those of `pids` still running (a zombie has ended)."""
    alive = set()
    for pid in pids:
        try:
            if Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z":
                alive.add(pid)
        except (OSError, IndexError):
            pass
    return alive


def test_when_maillab_is_terminated_the_playbook_it_runs_is_stopped_too(tmp_path):
    (tmp_path / "pb.yml").write_text("- hosts: all\n  gather_facts: false\n  tasks:\n"
                                     "    - name: Long | Wait\n      ansible.builtin.command: sleep 120\n")
    script = (
        "import signal, sys\n"
        "from pathlib import Path\n"
        "from sendmail_fleet.cli import _terminated\n"
        "from sendmail_fleet import playbook\n"
        "from sendmail_fleet.progress import Progress\n"
        "signal.signal(signal.SIGTERM, _terminated)\n"
        f"t = Path({str(tmp_path)!r})\n"
        "playbook.run_followed(t / 'hosts.ini', t / 'pb.yml', log=t / 'run.log', progress=Progress(tty=False),"
        " accelerated=False)\n")
    inventory(tmp_path, ["one"])
    runner = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    tree: set[int] = set()
    try:
        # The playbook's task runs: its `sleep 120` is among the runner's own descendants (ansible-playbook, its
        # worker, the module).
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            tree |= descendants(runner.pid)
            if any(cmdline(p) == b"sleep\x00120\x00" for p in running(tree)):
                break
            time.sleep(0.1)
        else:
            pytest.fail("the playbook never started its task")
        runner.send_signal(signal.SIGTERM)
        assert runner.wait(timeout=30) == 128 + signal.SIGTERM
        deadline = time.monotonic() + 10  # the playbook's processes end after the runner's own exit
        while running(tree) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert running(tree) == set(), "processes of the playbook outlived maillab"
    finally:  # whatever failed above: end what this test started, by pid, and nothing else
        if runner.poll() is None:
            runner.kill()
            runner.wait()
        for pid in running(tree):
            os.kill(pid, signal.SIGKILL)


def test_a_phase_line_names_its_longest_task_when_it_took_long():
    view = RunView()
    lines: list[str] = []
    for e in [{"e": "task", "t": 0.0, "name": "mail_host : Mail host | A supported platform", "role": "mail_host"},
              {"e": "start", "t": 0.1, "host": "vps1"}, {"e": "result", "t": 0.5, "host": "vps1", "status": "ok"},
              {"e": "task", "t": 0.6, "name": "mail_host : Mail host | Packages of every role this host needs",
               "role": "mail_host"},
              {"e": "start", "t": 0.7, "host": "vps1"}, {"e": "result", "t": 8.6, "host": "vps1", "status": "ok"},
              {"e": "task", "t": 8.7, "name": "tls : TLS | Certificate", "role": "tls"}]:
        lines += view.feed(e)
    assert lines == ["  mail_host                1 host     8.7s  longest: Packages of every role this host needs 8.1s"]


def test_a_step_takes_two_lines_without_a_terminal_and_one_on_a_terminal():
    for tty, lines in ((False, 2), (True, 1)):
        out = io.StringIO()
        progress = Progress(stream=out, tty=tty)
        with progress.step("building image maillab-dns"):
            pass
        text = out.getvalue()
        assert text.count("\n") == lines, repr(text)
        # what stays on the screen after the last erase of the live line
        assert text.split("\r\x1b[K")[-1].endswith("] building image maillab-dns: done in 0.0s\n"), repr(text)


class _SlowStream(io.StringIO):
    """A stream whose every write lets other threads run in the middle of it, as a pipe to a busy reader does."""

    def write(self, text: str) -> int:
        for ch in text:
            super().write(ch)
            time.sleep(0)
        return len(text)

    def isatty(self) -> bool:
        return False


def test_lines_said_by_many_threads_at_once_each_stay_one_whole_line():
    stream = _SlowStream()
    progress = Progress(stream=stream)

    def report(n: int) -> None:
        for k in range(40):
            progress.say(f"vps{n} check {k} as promised")

    threads = [threading.Thread(target=report, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    lines = stream.getvalue().splitlines()
    assert len(lines) == 8 * 40
    assert all(re.fullmatch(r"\[ *\d+\.\ds\] vps\d check \d+ as promised", line) for line in lines), \
        [line for line in lines if not re.fullmatch(r"\[ *\d+\.\ds\] vps\d check \d+ as promised", line)][:3]
