"""mail_host_scope variant (the rollout's batches) leaves out parts of the host: only parts that no variant changes.

A part left out must not read the variant, directly or through what mail_host passes it; otherwise a batch would
leave that part as the old variant had it, and the next site.yml would change it."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from sendmail_fleet import repo_root

ROLES = repo_root() / "roles"
# The variables a host's variant is read from (its name, set-up date and features, and what mail_host derives).
VARIANT_NAMES = re.compile(r"\b(sendmail_variant|sendmail_features|sendmail_effective_features|sendmail_setup_date|"
                           r"__mail_host_pop_phase|relay_phase|sendmail_promises)\b")
EVERY_PART = "__mail_host_every_part"


def imports() -> list[dict]:
    return [t for t in yaml.safe_load((ROLES / "mail_host" / "tasks" / "main.yml").read_text())
            if "ansible.builtin.import_role" in t]


def left_out(task: dict) -> bool:
    when = task.get("when", [])
    return EVERY_PART in (when if isinstance(when, list) else [when])


def changing_tasks(path: Path) -> str:
    """A task file without its assert tasks: a check of the settings reads them but changes nothing on the host."""
    tasks = yaml.safe_load(path.read_text()) or []
    return yaml.safe_dump([t for t in tasks if "ansible.builtin.assert" not in t])


def role_text(role: str, tasks_from: str | None) -> str:
    """What the role runs when imported so: its entry's task file (all task files for main, which includes the
    others) with the templates it names, or every template, default and var for main."""
    folder = ROLES / role
    if tasks_from:
        entry = changing_tasks(folder / "tasks" / (tasks_from if tasks_from.endswith(".yml") else f"{tasks_from}.yml"))
        templates = [folder / "templates" / name for name in re.findall(r"([\w./-]+\.j2)", entry)]
        return "\n".join([entry, *(t.read_text() for t in templates if t.is_file())])
    parts = [p for sub in ("templates", "defaults", "vars") for p in (folder / sub).rglob("*") if p.is_file()]
    return "\n".join([*(changing_tasks(p) for p in (folder / "tasks").glob("*.yml")),
                      *(p.read_text(errors="replace") for p in parts)])


def test_the_variant_scope_leaves_out_parts_and_keeps_the_ones_a_variant_changes():
    out = {t["ansible.builtin.import_role"]["name"] + ":" + t["ansible.builtin.import_role"].get("tasks_from", "main")
           for t in imports() if left_out(t)}
    kept = {t["ansible.builtin.import_role"]["name"] for t in imports() if not left_out(t)}
    assert out, "the variant scope leaves nothing out"
    assert {"sasl", "sendmail", "pop_before_smtp", "client_setup", "procmail", "dkim"} <= kept


def test_no_part_the_variant_scope_leaves_out_reads_the_variant():
    for task in filter(left_out, imports()):
        spec = task["ansible.builtin.import_role"]
        passed = yaml.safe_dump(task.get("vars") or {})
        found = VARIANT_NAMES.findall(passed) + VARIANT_NAMES.findall(role_text(spec["name"], spec.get("tasks_from")))
        assert not found, f"{spec['name']} is left out of a variant switch but reads {sorted(set(found))}"


def test_the_check_catches_a_part_that_reads_the_variant(tmp_path: Path):
    """The check above can fail: procmail's state follows the variant's procmail_lda, so it must stay in."""
    procmail = next(t for t in imports() if t["ansible.builtin.import_role"]["name"] == "procmail")
    assert not left_out(procmail)
    assert VARIANT_NAMES.search(yaml.safe_dump(procmail["vars"]))


def test_the_rollout_switches_and_puts_back_with_the_variant_scope():
    for step in ("switch_host.yml", "switch_keep.yml"):
        text = (ROLES / "rollout" / "tasks" / step).read_text()
        assert text.count("name: mail_host") == text.count("mail_host_scope: variant") == 1, step
