"""`audit_user_rows`: the audit's per-mailbox evidence (relay_audit.py's "users") of every host as rows a person
reads at a glance: one per mailbox, times to the minute, counts beside the last time, programs by name.

The audit role's report shows them as a table (text and HTML); the JSON keeps the helper's full values.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

DOCUMENTATION = r"""
name: audit_user_rows
short_description: The audit's per-mailbox evidence as table rows
options:
  _input:
    description: The audit_result of each host (host, users).
    type: list
    elements: dict
    required: true
"""

EXAMPLES = r"""
rows: "{{ hosts_results | sendmail_fleet.mail.audit_user_rows }}"
"""

RETURN = r"""
_value:
  description: host, user, state, pop_before_smtp, refused_in_grace, smtp_auth, exception, programs per mailbox.
  type: list
  elements: dict
"""

COLUMNS = ("host", "user", "state", "pop_before_smtp", "refused_in_grace", "smtp_auth", "programs")
PROGRAM_WIDTH = 40


def _host(result: Mapping[str, Any]) -> str:
    """The inventory's name for the host (the report adds it as name), else the host's own FQDN."""
    return str(result.get("name") or result.get("host") or "?")


def minute(iso: str) -> str:
    """2026-11-25T09:05:01+00:00 -> 2026-11-25 09:05 (the helper writes UTC)."""
    return iso[:16].replace("T", " ") if iso else ""


def _counted(count: int, last: str) -> str:
    return f"{count}x, last {minute(last)}" if count else "-"


def _programs(u: Mapping[str, Any]) -> str:
    named = [s.capitalize() for s in u.get("help_sections") or []]
    others = [p for p in u.get("programs") or [] if not any(s in p.lower() for s in u.get("help_sections") or [])]
    text = ", ".join(named + [p if len(p) <= PROGRAM_WIDTH else p[:PROGRAM_WIDTH - 3] + "..." for p in others])
    return text or "-"


def audit_user_rows(results: Sequence[Mapping[str, Any]]) -> list[dict[str, str]]:
    rows = []
    for result in results:
        for u in result.get("users") or []:
            auth = (f"{minute(u['first_auth'])} .. {minute(u['last_auth'])} ({u['auth_messages']})"
                    if u.get("auth_messages") else "-")
            rows.append({"host": _host(result), "user": u["user"], "state": u["state"],
                         "pop_before_smtp": _counted(u.get("pop_relays", 0), u.get("last_pop_relay", "")),
                         "refused_in_grace": _counted(u.get("grace_refusals", 0), u.get("last_grace_refusal", "")),
                         "smtp_auth": auth, "exception": u.get("exception") or "-", "programs": _programs(u)})
    return sorted(rows, key=lambda r: (r["host"], r["user"]))


def audit_users(results: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Every host's per-mailbox evidence in one list, each with its host (the report's JSON)."""
    return [{"host": _host(r), **u} for r in results for u in r.get("users") or []]


class FilterModule:
    def filters(self) -> dict:
        return {"audit_user_rows": audit_user_rows, "audit_users": audit_users}
