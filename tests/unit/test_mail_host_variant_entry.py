"""mail_host's entry point variant (the rollout's batches) runs only the parts of a host a change of variant touches.

main runs the checks and packages (prepare.yml), then the parts no variant changes, then variant_roles.yml; variant
runs prepare.yml and variant_roles.yml alone. A part only main runs must not read the variant, directly or through
what mail_host passes it; otherwise a batch would leave that part as the old variant had it, and the next site.yml
would change it."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from sendmail_fleet import repo_root

ROLES = repo_root() / "roles"
TASKS = ROLES / "mail_host" / "tasks"
# The variables a host's variant is read from (its name, set-up date and features, and what mail_host derives).
VARIANT_NAMES = re.compile(r"\b(sendmail_variant|sendmail_features|sendmail_effective_features|sendmail_setup_date|"
                           r"__mail_host_pop_phase|relay_phase|sendmail_promises)\b")


def tasks(name: str) -> list[dict]:
    return yaml.safe_load((TASKS / name).read_text())


def imports(name: str) -> list[dict]:
    """The roles a task file imports, with client_setup.yml (one import_role for both of client_setup's parts)
    resolved to the part it is imported for and the variables both it and its importer pass."""
    found = []
    for task in tasks(name):
        if task.get("ansible.builtin.import_tasks") == "client_setup.yml":
            (shared,) = tasks("client_setup.yml")
            part = task["vars"]["__mail_host_client_setup_part"]
            role = {**shared["ansible.builtin.import_role"], "tasks_from": part}
            found.append({**task, "ansible.builtin.import_role": role, "vars": {**task["vars"], **shared["vars"]}})
        elif "ansible.builtin.import_role" in task:
            found.append(task)
    return found


def imported_files(name: str) -> list[str]:
    return [t["ansible.builtin.import_tasks"] for t in tasks(name)
            if t.get("ansible.builtin.import_tasks", "client_setup.yml") != "client_setup.yml"]


def main_only() -> list[dict]:
    """The roles main imports itself: the parts the variant entry point leaves out."""
    return imports("main.yml")


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


def test_main_runs_every_part_and_the_variant_entry_point_only_the_ones_a_variant_changes():
    assert imported_files("main.yml") == ["prepare.yml", "variant_roles.yml"]
    assert imported_files("variant.yml") == ["prepare.yml", "variant_roles.yml"]
    assert imports("variant.yml") == []  # nothing of its own: the same files as main, in the same order
    out = {t["ansible.builtin.import_role"]["name"] for t in main_only()}
    kept = {t["ansible.builtin.import_role"]["name"] for t in imports("variant_roles.yml")}
    assert out == {"client_setup", "tls", "mail_users", "pop3", "fail2ban"}
    assert kept == {"sasl", "sendmail", "pop_before_smtp", "client_setup", "procmail", "dkim", "sending_limits"}
    spec = yaml.safe_load((ROLES / "mail_host" / "meta" / "argument_specs.yml").read_text())["argument_specs"]
    assert spec["variant"]["options"] == spec["main"]["options"]  # the same variables, checked the same way


def test_client_setups_two_parts_get_its_settings_from_one_place():
    parts = {t["ansible.builtin.import_role"]["tasks_from"]: t for t in main_only() + imports("variant_roles.yml")
             if t["ansible.builtin.import_role"]["name"] == "client_setup"}
    assert sorted(parts) == ["acme", "settings"]
    assert parts["acme"]["vars"] == {**parts["settings"]["vars"], "__mail_host_client_setup_part": "acme"}
    mail_host_tasks = "\n".join(p.read_text() for p in TASKS.glob("*.yml"))
    assert mail_host_tasks.count("client_setup_sites:") == 1  # written once, in client_setup.yml


def test_no_part_the_variant_entry_point_leaves_out_reads_the_variant():
    for task in main_only():
        spec = task["ansible.builtin.import_role"]
        passed = yaml.safe_dump(task.get("vars") or {}) + yaml.safe_dump(task.get("when") or "")
        found = VARIANT_NAMES.findall(passed) + VARIANT_NAMES.findall(role_text(spec["name"], spec.get("tasks_from")))
        assert not found, f"{spec['name']} is left out of a variant switch but reads {sorted(set(found))}"


def test_the_check_catches_a_part_that_reads_the_variant():
    """The check above can fail: procmail's state follows the variant's procmail_lda, so it must stay in."""
    procmail = next(t for t in imports("variant_roles.yml") if t["ansible.builtin.import_role"]["name"] == "procmail")
    assert VARIANT_NAMES.search(yaml.safe_dump(procmail["vars"]))


def test_the_rollout_switches_and_puts_back_through_the_variant_entry_point():
    for step in ("switch_host.yml", "switch_keep.yml"):
        text = (ROLES / "rollout" / "tasks" / step).read_text()
        assert text.count("name: mail_host") == len(re.findall(r"tasks_from: variant\b", text)) == 1, step
