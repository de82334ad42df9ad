"""The task_profile callback (plugins/callback/task_profile.py) on a real ansible-playbook run against the
controller itself, and the analysis of its JSON (sendmail_fleet.profile)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from sendmail_fleet import playbook as ansible_playbook
from sendmail_fleet.profile import Profile, Result, Task, by_kind, kind, per_task_overhead, report, segments, top

PLAYBOOK = """
- hosts: localhost
  gather_facts: false
  tasks:
    - name: Sleep a little
      ansible.builtin.command: sleep 0.4
      changed_when: false
    - name: Skipped
      ansible.builtin.debug: {msg: never}
      when: false
    - name: Remember
      ansible.builtin.set_fact: {x: 1}
    - name: Change something
      ansible.builtin.command: "true"
      notify: A handler
  handlers:
    - name: A handler
      ansible.builtin.debug: {msg: handled}
"""


@pytest.fixture(scope="module")
def profiled(tmp_path_factory) -> Profile:
    tmp = tmp_path_factory.mktemp("profile")
    (tmp / "pb.yml").write_text(PLAYBOOK)
    out = tmp / "profile.json"
    env = {**ansible_playbook.ansible_env(), "ANSIBLE_CALLBACKS_ENABLED": "sendmail_fleet.mail.task_profile",
           "SENDMAIL_FLEET_PROFILE": str(out)}
    run = subprocess.run(["ansible-playbook", "-i", "localhost,", "-c", "local", "-e",
                          f"ansible_python_interpreter={sys.executable}", str(tmp / "pb.yml")],
                         env=env, capture_output=True, text=True, check=False, cwd=tmp)
    assert run.returncode == 0, run.stdout + run.stderr
    return Profile.load(out)


def test_the_callback_records_every_task_and_handler_with_each_hosts_result(profiled):
    names = [t.name for t in profiled.tasks]
    assert names == ["Sleep a little", "Skipped", "Remember", "Change something", "A handler"]
    sleep, skipped, _, changed, handler = profiled.tasks
    assert sleep.wall >= 0.4 and sleep.results[0].status == "ok" and not sleep.results[0].changed
    assert skipped.results[0].status == "skipped"
    assert changed.results[0].changed and handler.handler
    assert profiled.wall >= sum(t.wall for t in profiled.tasks)


def test_the_callback_writes_nothing_unless_enabled(tmp_path):
    (tmp_path / "pb.yml").write_text(PLAYBOOK)
    run = subprocess.run(["ansible-playbook", "-i", "localhost,", "-c", "local", "-e",
                          f"ansible_python_interpreter={sys.executable}", str(tmp_path / "pb.yml")],
                         env={**ansible_playbook.ansible_env(), "SENDMAIL_FLEET_PROFILE": str(tmp_path / "p.json")},
                         capture_output=True, text=True, check=False, cwd=tmp_path)
    assert run.returncode == 0 and not (tmp_path / "p.json").exists()


def task(name: str, action: str, walls: dict[str, float], role: str = "", handler: bool = False,
         changed: bool = False, start: float = 0.0) -> Task:
    # Ansible names a role's task "role : name"
    return Task("site", f"{role} : {name}" if role else name, role, action, handler, start,
                tuple(Result(h, "ok", changed, start, start + w) for h, w in walls.items()))


SYNTHETIC = Profile(60.0, (
    task("Install | Debian | sendmail", "ansible.builtin.apt", {"vps1": 30, "vps2": 20}, role="sendmail"),
    task("Build | Compile with m4 x", "ansible.builtin.command", {"vps1": 1, "vps2": 2}, role="sendmail"),
    task("Deploy | Install, restart and verify", "ansible.builtin.command", {"vps1": 5}, role="sendmail"),
    task("Restart dovecot", "ansible.builtin.service", {"vps1": 3}, role="pop3", handler=True),
    task("Service | dovecot", "ansible.builtin.service", {"vps1": 2}, role="pop3"),
    task("Gathering Facts", "ansible.builtin.gather_facts", {"vps1": 4}),
    task("Init | Check", "ansible.builtin.assert", {"vps1": 0.1, "vps2": 0.2}, role="sendmail"),
    task("Config | local-host-names", "ansible.builtin.copy", {"vps1": 0.5}, role="sendmail"),
    task("Install | Debian | sendmail", "ansible.builtin.apt", {"vps3": 10}, role="sendmail"),
))


def test_each_task_is_counted_once_under_its_kind_of_work():
    kinds = {k: (n, w) for k, n, w in by_kind(SYNTHETIC)}
    assert kinds["packages (apt: index, download, dpkg)"] == (2, 40)
    assert kinds["m4 builds and sendmail checks"] == (1, 2)
    assert kinds["sendmail switch and restarts (host-side transaction, handlers)"] == (2, 8)
    assert kinds["services (start, enable, reload)"] == (1, 2)
    assert kinds["facts"] == (1, 4)
    assert kinds["controller-side only (set_fact, assert, debug, include)"][0] == 1
    assert sum(n for n, _ in kinds.values()) == len(SYNTHETIC.tasks)
    assert kind(SYNTHETIC.tasks[7]).startswith("other modules")


def test_the_costliest_tasks_sum_their_runs_and_name_the_slowest_host():
    first = top(SYNTHETIC, 3)[0]
    assert first == ("sendmail : Install | Debian | sendmail", 2, 40, 30)
    assert per_task_overhead(SYNTHETIC) == pytest.approx(0.2)


def test_the_report_is_markdown_with_aligned_tables():
    lines = report(SYNTHETIC, "first run")
    assert lines[0] == "### first run" and "```" in lines
    header = next(line for line in lines if line.startswith("KIND OF WORK"))
    assert header.split() == ["KIND", "OF", "WORK", "TASKS", "WALL", "S", "SHARE"]
    assert any(line.startswith("sendmail : Install | Debian | sendmail") for line in lines)


def test_a_profile_file_round_trips(tmp_path: Path):
    raw = {"started": 0, "wall": 1.5, "tasks": [{"play": "p", "name": "n", "role": "", "action": "ansible.builtin.copy",
                                                "handler": False, "start": 0.1,
                                                "results": [{"host": "h", "status": "ok", "changed": True,
                                                             "start": 0.1, "end": 0.6}]}]}
    (tmp_path / "p.json").write_text(json.dumps(raw))
    prof = Profile.load(tmp_path / "p.json")
    assert prof.wall == 1.5 and prof.tasks[0].wall == pytest.approx(0.5)


def test_a_run_cut_at_named_tasks_gives_each_stretch_its_time_and_the_hosts_that_ran_a_task():
    def at(name: str, start: float, ran: dict[str, str]) -> Task:
        return Task("rollout", name, "", "ansible.builtin.set_fact", False, start,
                    tuple(Result(h, status, False, start, start + 0.1) for h, status in ran.items()))
    run = Profile(30.0, (
        at("Gathering Facts", 0.5, {"vps1": "ok", "vps2": "ok"}),
        at("batch", 4.0, {"vps1": "ok"}),
        at("Switch this host", 4.5, {"vps1": "ok"}),
        at("batch", 12.0, {"vps2": "ok"}),
        at("Switch this host", 12.5, {"vps2": "skipped"}),
        at("Report", 28.0, {"localhost": "ok"}),
    ))
    parts = segments(run, lambda t: {"batch": "batch", "Report": "report"}.get(t.name))
    assert [(p.name, p.start, p.seconds, len(p.tasks)) for p in parts] == [
        ("start", 0.0, 4.0, 1), ("batch", 4.0, 8.0, 2), ("batch", 12.0, 16.0, 2), ("report", 28.0, 2.0, 1)]
    assert sum(p.seconds for p in parts) == run.wall
    assert parts[1].hosts_that_ran("Switch this host") == {"vps1"}
    assert parts[2].hosts_that_ran("Switch this host") == set()
    assert segments(run, lambda t: "all" if t.start == 0.5 else None)[0].name == "all"  # no "start" before it
