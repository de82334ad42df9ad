#!/usr/bin/python
"""Ansible module sendmail_config: make the live sendmail config the one given, in one task on the host."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from typing import Any

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.sendmail_fleet.mail.plugins.module_utils.atomic import write_atomic

DOCUMENTATION = r"""
module: sendmail_config
short_description: Build, check, install, restart, verify and roll back sendmail.cf in one step
description:
  - Compares the rendered sendmail.mc with the live /etc/mail/sendmail.mc (shown with --diff) and asks the
    host-side switch helper (roles/sendmail/files/sendmail_switch.py) whether the live sendmail.cf is what the
    live .mc compiles to, whether the daemon started after it was installed and whether a switch died half-way.
  - When anything differs, stages the .mc, compiles it with m4 and checks the .cf with sendmail itself (the
    helper's build), then installs, restarts and verifies it as one transaction that outlives the connection
    (the helper's detached apply); on a failed verify the previous pair comes back, restarted and verified.
  - When only the daemon is older than the live .cf or than a file it reads only as it starts (the spec's
    start_files, the SASL config and the certificate among them, written by a run that lost its controller before
    its restart handler ran), restarts and verifies it (the helper's detached restart).
  - In check mode nothing is written or restarted; the task reports changed, with the drift as sentences.
options:
  helper: {description: Path of the switch helper on the host., type: path, required: true}
  spec: {description: The helper's SPEC (mail_dir, state_dir, greet, offers, timeout)., type: dict, required: true}
  mc: {description: The sendmail.mc to run (rendered on the controller)., type: str, required: true}
  fqdn: {description: The host's name; the checked .cf must route postmaster@ it to a local mailer., type: str,
         required: true}
  variant: {description: The variant's name, for messages., type: str, required: true}
  restart_stale: {description: Restart a daemon that started before the live .cf was installed or before one of
                  the spec's start_files changed., type: bool, default: true}
"""

RETURN = r"""
built: {description: A new .cf was compiled, checked and switched to., type: bool}
restarted: {description: sendmail was restarted (by the switch or for a stale daemon) and verified., type: bool}
check: {description: The helper's check of the live config before this task acted., type: dict}
drift: {description: What differed between what ran and what the live .mc builds, as sentences., type: list}
switch: {description: The helper's result of the switch or restart (result, steps, seconds, detail)., type: dict}
"""

Run = Callable[[list[str]], tuple[int, str, str]]


class Failed(Exception):
    """The task fails with this message; result holds what is known so far."""

    def __init__(self, msg: str, result: dict[str, Any]) -> None:
        super().__init__(msg)
        self.result = result


def _read(path: str) -> str | None:
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            return f.read()
    except FileNotFoundError:
        return None


def _write(path: str, text: str) -> None:
    write_atomic(path, text.encode("utf-8"), 0o644, make_folder=True)


def _json(text: str) -> dict[str, Any]:
    try:
        out = json.loads(text or "{}")
    except ValueError:
        return {}
    return out if isinstance(out, dict) else {}


def converge(p: dict[str, Any], run: Run, check_mode: bool, want_diff: bool) -> dict[str, Any]:
    """The whole task: what it found, what it did; raise Failed when the config did not go live."""
    spec = p["spec"]
    spec_text = json.dumps(spec, sort_keys=True)
    # the role's spec always names both folders (vars/main.yml, __sendmail_switch_spec)
    live_mc_path = os.path.join(spec["mail_dir"], "sendmail.mc")
    staged_mc, staged_cf = (os.path.join(spec["state_dir"], "staging", n) for n in ("sendmail.mc", "sendmail.cf"))
    live_mc = _read(live_mc_path)
    mc_changed = live_mc != p["mc"]
    result: dict[str, Any] = {"changed": False, "built": False, "restarted": False, "check": {}, "drift": [],
                              "switch": {}}
    if mc_changed and want_diff:
        result["diff"] = {"before": live_mc or "", "after": p["mc"], "before_header": live_mc_path,
                          "after_header": f"{live_mc_path} ({p['variant']})"}
    if os.path.exists(p["helper"]):
        rc, out, err = run([p["helper"], "check", spec_text])
        if rc != 0:
            raise Failed(f"the switch helper could not check the live config: {(err or out).strip()[:300]}", result)
        result["check"] = state = _json(out)
        result["drift"] = list(state.get("drift", []))
    elif not check_mode:
        raise Failed(f"no switch helper at {p['helper']}: the role copies it before this task", result)
    else:  # check mode on a new host: the helper is not there yet, and nothing is live to compare
        state = {}
    unfinished = state.get("unfinished")
    needs_build = (mc_changed or not state.get("cf_exists", False) or not state.get("cf_matches_mc", False)
                   or (isinstance(unfinished, dict) and not unfinished.get("running")))
    # What the running daemon has not read yet: a .cf installed after it started, or a file it reads only at start.
    stale = ((["the live sendmail.cf was installed"] if state.get("daemon_older_than_cf") else [])
             + ([f"{', '.join(state['changed_since_start'])} changed"] if state.get("changed_since_start") else []))
    needs_restart = p["restart_stale"] and bool(stale) and not needs_build
    if check_mode:
        result["changed"] = mc_changed or bool(result["drift"])
        result["msg"] = "; ".join((["sendmail.mc differs (--diff shows how)"] if mc_changed else [])
                                  + result["drift"]) or f"the live config is what {p['variant']} builds"
        return result
    if needs_build:
        _write(staged_mc, p["mc"])
        rc, out, err = run([p["helper"], "build", p["fqdn"], staged_mc, staged_cf])
        if rc != 0:
            detail = (err or _json(out).get("detail", out)).strip()[:800]
            raise Failed(f"sendmail variant {p['variant']} did not build: {detail}", result)
        rc, out, err = run([p["helper"], "detached", "apply", spec_text])
        result["switch"] = switch = _json(out)
        result.update(changed=True, built=True, restarted=rc == 0 or switch.get("result") == "rolled-back")
        if rc != 0:
            raise Failed(
                f"sendmail variant {p['variant']} failed after install ({switch.get('detail', '?')}). "
                + ("The previous config is back and sendmail is running on it."
                   if switch.get("result") == "rolled-back"
                   else f"SENDMAIL MAY BE DOWN: {switch.get('result') or err.strip()[:300]}"), result)
        result["msg"] = f"switched to {p['variant']}: {', '.join(switch.get('steps', []))}"
    elif needs_restart:
        rc, out, err = run([p["helper"], "detached", "restart", spec_text])
        result["switch"] = switch = _json(out)
        result.update(changed=True, restarted=rc == 0)
        if rc != 0:
            raise Failed(f"sendmail did not come back as {p['variant']} promises after a restart: "
                         f"{switch.get('detail') or err.strip()[:300]}", result)
        result["msg"] = f"restarted: the daemon had started before {' and '.join(stale)}"
    else:
        result["msg"] = f"the live config is what {p['variant']} builds, and the daemon runs it"
    return result


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "helper": {"type": "path", "required": True},
            "spec": {"type": "dict", "required": True},
            "mc": {"type": "str", "required": True},
            "fqdn": {"type": "str", "required": True},
            "variant": {"type": "str", "required": True},
            "restart_stale": {"type": "bool", "default": True},
        },
        supports_check_mode=True,
    )

    def run(argv: list[str]) -> tuple[int, str, str]:
        # The helper's own commands: no module compiles a .mc or runs a transaction that outlives the connection.
        return module.run_command(argv, check_rc=False)

    try:
        result = converge(module.params, run, module.check_mode, module._diff)
    except Failed as e:
        module.fail_json(msg=str(e), **e.result)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
