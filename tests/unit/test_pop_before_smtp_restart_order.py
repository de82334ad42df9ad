"""dovecot calls the POP3 post-login script at every login until it restarts without the hook: the script may go
only after that restart, in the role's own task order, not in handlers whose order depends on how a play loads
the role (the rollout includes mail_host at run time, and there the script went one flush before dovecot's
restart: POP3 logins ended after PASS)."""

from __future__ import annotations

import jinja2
import yaml

from sendmail_fleet import repo_root

ROLE = repo_root() / "roles" / "pop_before_smtp"
SCRIPT = "/usr/local/lib/pop-before-smtp-postlogin"


def block(state: str) -> list[dict]:
    tasks = yaml.safe_load((ROLE / "tasks" / "main.yml").read_text())
    return next(t["block"] for t in tasks if t.get("when") == f"pop_before_smtp_state == '{state}'")


def position(tasks: list[dict], found) -> int:
    hits = [i for i, t in enumerate(tasks) if found(t)]
    assert len(hits) == 1, [t.get("name") for t in tasks]
    return hits[0]


def restarts(task: dict) -> bool:
    return (task.get("ansible.builtin.import_tasks") or {}).get("file") == "restart.yml"


def writes(path: str):
    def found(task: dict) -> bool:
        files = (task.get("sendmail_fleet.mail.files") or {}).get("files", [])
        return any(f.get("path") == path for f in files) or (task.get("ansible.builtin.file") or {}).get("path") == path
    return found


def test_on_removal_dovecot_restarts_after_the_hook_goes_and_before_the_post_login_script_goes():
    tasks = block("absent")
    hook_gone = position(tasks, writes("/etc/dovecot/conf.d/95-pop-before-smtp.conf"))
    restart = position(tasks, restarts)
    script_gone = position(tasks, lambda t: (t.get("ansible.builtin.file") or {}).get("path") == SCRIPT)
    assert hook_gone < restart < script_gone
    assert tasks[script_gone]["ansible.builtin.file"]["state"] == "absent"


def stops(unit: str):
    def found(task: dict) -> bool:
        service = task.get("ansible.builtin.systemd_service") or {}
        return service.get("state") == "stopped" and unit in task.get("loop", [service.get("name")])
    return found


def test_on_removal_nothing_that_writes_the_relay_map_still_runs_when_the_map_goes():
    """An expiry run or a POP3 login's helper, running when the files went, wrote the map and the state file again
    (a lab run: the next site.yml had them to remove). The timer and its service stop (stopping the service ends a
    run in progress), and dovecot restarts without the hook (ending its processes), before the helper and the maps
    go."""
    tasks = block("absent")
    timer, service = (position(tasks, stops(u)) for u in ("pop-before-smtp-expire.timer",
                                                           "pop-before-smtp-expire.service"))
    hook_gone, restart = position(tasks, writes("/etc/dovecot/conf.d/95-pop-before-smtp.conf")), position(tasks, restarts)
    for path in ("/usr/local/sbin/pop-before-smtp", "{{ pop_before_smtp_map }}", "{{ pop_before_smtp_map }}.db",
                 "{{ pop_before_smtp_state_file }}", "{{ pop_before_smtp_grace_map }}.db",
                 "/etc/systemd/system/pop-before-smtp-expire.timer"):
        gone = position(tasks, writes(path))
        assert max(timer, service) < hook_gone < restart < gone, path
    assert "__pbs_removed" not in tasks[restart]["when"]  # the restart follows the hook, not the maps


def restarts_when(tasks: list[dict], hook_removed_now: bool, script_still_there: bool) -> bool:
    """The removal's restart condition, evaluated as Ansible would for one host."""
    condition = jinja2.Environment().compile_expression(tasks[position(tasks, restarts)]["when"])
    return bool(condition(__pbs_hook_removed={"changed": hook_removed_now},
                          __pbs_script_left={"stat": {"exists": script_still_there}}))


def test_on_removal_dovecot_restarts_when_an_earlier_removal_stopped_between_the_hook_and_the_restart():
    """A run that lost its controller after removing the hook and before dovecot's restart leaves a dovecot that
    still calls the post-login script. The next run finds the hook gone already: it must restart all the same,
    because the script is still there, before the script goes."""
    tasks = block("absent")
    looked = position(tasks, lambda t: (t.get("ansible.builtin.stat") or {}).get("path") == SCRIPT)
    script_gone = position(tasks, lambda t: (t.get("ansible.builtin.file") or {}).get("path") == SCRIPT)
    assert looked < position(tasks, restarts) < script_gone
    assert tasks[looked]["register"] == "__pbs_script_left"
    assert restarts_when(tasks, hook_removed_now=False, script_still_there=True)
    assert restarts_when(tasks, hook_removed_now=True, script_still_there=True)
    assert restarts_when(tasks, hook_removed_now=True, script_still_there=False)  # the script removed by hand
    assert not restarts_when(tasks, hook_removed_now=False, script_still_there=False)  # removed before: no restart


def test_on_install_the_script_is_there_before_the_hook_that_calls_it_and_dovecot_restarts_after_the_hook():
    tasks = block("present")
    script = position(tasks, writes(SCRIPT))
    hook = position(tasks, writes("/etc/dovecot/conf.d/95-pop-before-smtp.conf"))
    assert script < hook < position(tasks, restarts)


def test_the_restart_reads_the_changed_units_first_and_leaves_a_stopped_service_stopped():
    steps = yaml.safe_load((ROLE / "tasks" / "restart.yml").read_text())
    assert steps[0]["ansible.builtin.systemd_service"] == {"daemon_reload": True}
    assert steps[1]["ansible.builtin.command"]["argv"][:2] == ["systemctl", "try-restart"]
    assert steps[1]["loop"] == "{{ pop_before_smtp_reload_services }}"


def test_no_handler_of_the_role_touches_the_script_or_dovecot():
    handlers = ROLE / "handlers" / "main.yml"
    text = handlers.read_text() if handlers.exists() else ""
    assert SCRIPT not in text and "dovecot" not in text
