"""The playbook run log (SENDMAIL_FLEET_RUN_LOG) the lab tests sum up: a line per run, never an argument's value."""

from __future__ import annotations

import json

from sendmail_fleet import playbook as ansible_playbook


def test_each_run_is_one_line_with_its_limit_and_never_an_extra_vars_value(tmp_path, monkeypatch):
    log = tmp_path / "runs.jsonl"
    monkeypatch.setenv(ansible_playbook.RUN_LOG_ENV, str(log))
    ansible_playbook.note_run("/x/playbooks/site.yml", ("-e", '{"mail_users_accounts": [{"password": "s3cret"}]}',
                                                        "-l", "vps3"), 41.26, 0)
    ansible_playbook.note_run("rollout-auth-only.yml", ("--limit=vps1,vps2", "-e", "rollout_probe_password=hush"),
                              9.0, 2)
    ansible_playbook.note_run("site.yml", (), 100.0, 0)
    text = log.read_text()
    assert "s3cret" not in text and "hush" not in text
    assert [json.loads(line) for line in text.splitlines()] == [
        {"playbook": "site.yml", "limit": "vps3", "seconds": 41.3, "rc": 0},
        {"playbook": "rollout-auth-only.yml", "limit": "vps1,vps2", "seconds": 9.0, "rc": 2},
        {"playbook": "site.yml", "limit": "all", "seconds": 100.0, "rc": 0}]


def test_without_the_variable_nothing_is_written(tmp_path, monkeypatch):
    monkeypatch.delenv(ansible_playbook.RUN_LOG_ENV, raising=False)
    monkeypatch.chdir(tmp_path)
    ansible_playbook.note_run("site.yml", ("-l", "vps1"), 1.0, 0)
    assert list(tmp_path.iterdir()) == []
