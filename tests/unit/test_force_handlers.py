"""A restart that a changed file notified must still run when a later task fails on that host: otherwise the next
run finds the file right, notifies nothing, and the daemon keeps the old setting for good (Ansible drops the
notified handlers of a failed host unless the play sets force_handlers)."""

from __future__ import annotations

from pathlib import Path

import yaml

from sendmail_fleet import repo_root

PLAYBOOKS = repo_root() / "playbooks"
# What a play runs that changes a mail host's files and notifies handlers: the mail_host role (site.yml), the
# rollout's switch (which includes mail_host's variant tasks). The fleet report and the audit only read.
CHANGES_HOSTS = {("mail_host", "main"), ("rollout", "switch")}


def roles_run(play: dict) -> set[tuple[str, str]]:
    """(role, tasks file) of every role the play runs, from roles: or from an include_role/import_role task."""
    found = {((r if isinstance(r, str) else r["role"]).split(".")[-1], "main") for r in play.get("roles", [])}
    for task in play.get("tasks", []):
        for key in ("ansible.builtin.include_role", "ansible.builtin.import_role", "include_role", "import_role"):
            if spec := task.get(key):
                found.add((spec["name"].split(".")[-1], spec.get("tasks_from", "main")))
    return found


def plays() -> list[tuple[Path, dict]]:
    return [(book, play) for book in sorted(PLAYBOOKS.glob("*.yml")) for play in yaml.safe_load(book.read_text())]


def test_every_play_that_changes_mail_hosts_runs_notified_restarts_on_a_host_that_failed_later():
    changing = [(book.name, play["name"]) for book, play in plays() if roles_run(play) & CHANGES_HOSTS]
    assert ("site.yml", "Mail servers") in changing
    assert ("rollout-auth-only.yml", "Rollout | Switch (canary first, then batches)") in changing
    without = [(book.name, play["name"]) for book, play in plays()
               if roles_run(play) & CHANGES_HOSTS and play.get("force_handlers") is not True]
    assert without == []


def test_the_readme_example_play_sets_force_handlers_too():
    readme = (repo_root() / "README.md").read_text()
    example = readme.split("- hosts: mailservers", 1)[1].split("```", 1)[0]
    assert "force_handlers: true" in example
