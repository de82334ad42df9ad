"""`readiness`: whether the audit's evidence lets a host take the rollout's step to SMTP-Auth only, and if not, one
sentence that says why and what to do (the rollout's readiness gate; rules here, not in Jinja, with unit tests).

Held: the mail logs reach back fewer than rollout_quiet_days days (no line in a day of logs says nothing about the two
weeks before); or in those days a user relayed by POP-before-SMTP, a user was refused in the grace phase, or an
exception counted (its last day falls in them or later).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

DOCUMENTATION = r"""
name: readiness
short_description: The rollout's readiness gate over one host's audit result
options:
  _input:
    description: The host's audit_result (relays, users, exceptions, log_span_days, log_from, log_source).
    type: dict
    required: true
  quiet_days:
    description: rollout_quiet_days.
    type: float
    required: true
  host:
    description: The host's inventory name, for the sentence.
    type: str
    required: true
  now:
    description: Epoch seconds (default now).
    type: float
"""

EXAMPLES = r"""
gate: "{{ audit_result | sendmail_fleet.mail.readiness(rollout_quiet_days, inventory_hostname) }}"
"""

RETURN = r"""
_value:
  description: held (bool), and detail, one sentence that starts with "held" and names every reason, or "".
  type: dict
"""

LOGS = ("keep the logs longer (a persistent journal, journald's MaxRetentionSec or SystemMaxUse, mail.log rotation; "
        "audit_days or audit_since must reach back that far too)")


def readiness(audit: Mapping[str, Any], quiet_days: Any, host: str, now: float | None = None) -> dict[str, Any]:
    days = float(quiet_days)
    shown = f"{days:g}"
    when = dt.datetime.now(dt.timezone.utc) if now is None else dt.datetime.fromtimestamp(now, dt.timezone.utc)
    cutoff = (when - dt.timedelta(days=days)).strftime("%Y-%m-%dT%H:%M:%S")
    why: list[str] = []
    todo: list[str] = []
    span = float(audit.get("log_span_days") or 0)
    if span < days:
        why.append(f"the mail logs on {host} reach back only {audit.get('log_span_days') or 0} days (from "
                   f"{audit.get('log_from') or 'no log at all'}, {audit.get('log_source') or 'none'}), fewer than "
                   f"rollout_quiet_days ({shown}), so they cannot show that nobody relays by POP-before-SMTP")
        todo.append(LOGS + ", wait")
    recent = [r for r in audit.get("relays") or []
              if r.get("method") == "pop-before-smtp" and str(r.get("last_seen") or "") >= cutoff]
    refused = [u for u in audit.get("users") or [] if str(u.get("last_grace_refusal") or "") >= cutoff]
    counted = [e for e in audit.get("exceptions") or [] if str(e.get("until") or "") >= cutoff[:10]]
    if recent:
        why.append(f"in the last {shown} days relayed by POP-before-SMTP: "
                   + ", ".join(f"{r['user']} from {r['client']} (last {r['last_seen']})" for r in recent))
    if refused:
        why.append(f"in the last {shown} days refused in grace (needs help): "
                   + ", ".join(f"{u['user']} (last refused {u['last_grace_refusal']})" for u in refused))
    if counted:
        why.append(f"exceptions in the last {shown} days: "
                   + ", ".join(f"{e['kind']} {e['value']} until {e['until']}" for e in counted))
    if recent or refused:
        todo.insert(0, "tell them (rollout_notify mails them how to set up SMTP-Auth) and wait")
    if counted:
        todo.append("wait for the exceptions to end (or revoke them)")
    if not why:
        return {"held": False, "detail": ""}
    return {"held": True, "detail": f"held: {'; '.join(why)}; {', '.join(todo)}, or set rollout_force to switch anyway"}


class FilterModule:
    def filters(self) -> dict:
        return {"readiness": readiness}
