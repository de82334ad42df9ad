"""The grace phase's exceptions (pop_before_smtp_exceptions) as the host helper's EXCEPTIONS file.

`exceptions_problems`: one sentence per entry the helper could not use (each names the entry and the allowed form);
`exceptions_text`: the file the pop_before_smtp role writes. Both read the entries with the helper's own parser
(roles/pop_before_smtp/files/pop_before_smtp.py, Exception_), so the inventory, the file and the helper's
`exceptions grant` accept exactly the same mailboxes, networks and dates.
"""

from __future__ import annotations

import datetime
import importlib.util
from collections.abc import Mapping, Sequence
from functools import cache
from pathlib import Path
from types import ModuleType
from typing import Any

DOCUMENTATION = r"""
name: exceptions_problems
short_description: What is wrong with pop_before_smtp_exceptions
options:
  _input:
    description: A list of {mailbox, until} or {network, until} (until a date, YYYY-MM-DD, the last day it counts).
    type: list
    elements: dict
    required: true
"""

EXAMPLES = r"""
problems: "{{ pop_before_smtp_exceptions | sendmail_fleet.mail.exceptions_problems }}"
content: "{{ pop_before_smtp_exceptions | sendmail_fleet.mail.exceptions_text }}"
"""

RETURN = r"""
_value:
  description: One sentence per unusable entry (exceptions_problems); the file's text (exceptions_text).
  type: raw
"""

FORM = "{mailbox: NAME, until: YYYY-MM-DD} or {network: CIDR, until: YYYY-MM-DD}"


@cache
def _helper() -> ModuleType:
    path = Path(__file__).parents[2] / "roles" / "pop_before_smtp" / "files" / "pop_before_smtp.py"
    spec = importlib.util.spec_from_file_location("sendmail_fleet_pop_before_smtp", path)
    assert spec is not None and spec.loader is not None, path
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _until(value: Any) -> str:
    # YAML reads an unquoted 2027-01-31 as a date
    return value.isoformat() if isinstance(value, datetime.date) else str(value)


def _parse(entry: Any) -> Any:
    if not isinstance(entry, Mapping):
        raise ValueError(f"is not a mapping ({FORM})")
    extra = sorted(set(entry) - {"mailbox", "network", "until", "comment"})
    kinds = [k for k in ("mailbox", "network") if k in entry]
    if extra or len(kinds) != 1 or "until" not in entry:
        raise ValueError(f"needs exactly one of mailbox or network, and until ({FORM})"
                         + (f"; unknown keys: {', '.join(map(str, extra))}" if extra else ""))
    return _helper().Exception_(kinds[0], str(entry[kinds[0]]), _until(entry["until"]))


def exceptions_problems(entries: Sequence[Any] | None) -> list[str]:
    problems: list[str] = []
    seen: dict[tuple[str, str], int] = {}
    for i, entry in enumerate(entries or []):
        try:
            ex = _parse(entry)
        except ValueError as exc:
            problems.append(f"pop_before_smtp_exceptions[{i}] = {entry!r}: {exc}")
            continue
        key = (ex.kind, str(ex.network) if ex.network is not None else ex.value)
        if key in seen:
            problems.append(f"pop_before_smtp_exceptions[{i}]: {ex.kind} {ex.value} is listed already "
                            f"(entry {seen[key]}); one entry per mailbox or network")
        seen.setdefault(key, i)
    return problems


def exceptions_text(entries: Sequence[Any] | None) -> str:
    problems = exceptions_problems(entries)
    if problems:
        raise ValueError("; ".join(problems))
    return _helper().EXCEPTIONS_HEADER + "".join(_parse(e).line() for e in entries or [])


class FilterModule:
    def filters(self) -> dict:
        return {"exceptions_problems": exceptions_problems, "exceptions_text": exceptions_text}
