"""`text_table`: rows as an aligned text table, for results a person reads at a glance.

The one table formatter of the project: the rollout and audit reports use it as the filter
`sendmail_fleet.mail.text_table`, and `maillab status` and `maillab demo` load this same file.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

DOCUMENTATION = r"""
name: text_table
short_description: Rows as an aligned text table
description:
  - Turns a list of dicts (with I(columns)) or a list of lists into lines of left-aligned columns, a line of dashes
    under the header, trailing blanks trimmed. Join the lines with a newline to print them whole.
options:
  _input:
    description: The rows.
    type: list
    required: true
  columns:
    description: Keys to show, in order (for dict rows); omit for list rows, whose first row is the header.
    type: list
    elements: str
  headers:
    description: Header cells for dict rows; defaults to the upper-cased column names.
    type: list
    elements: str
  sep:
    description: What stands between two columns.
    type: str
    default: "  "
  rule:
    description: What joins the dashes under the header.
    type: str
    default: "  "
"""

EXAMPLES = r"""
- name: A report
  ansible.builtin.debug:
    msg: "{{ rows | sendmail_fleet.mail.text_table(['host', 'result']) | join('\n') }}"
"""

RETURN = r"""
_value:
  description: The table's lines.
  type: list
  elements: str
"""


def align(rows: Sequence[Sequence[Any]], sep: str = "  ", rule: str | None = None) -> list[str]:
    """Left-align every column of `rows` (the first is the header); with `rule`, dashes go under the header."""
    cells = [[" ".join(str(v).split("\n")).replace("\r", " ") for v in row] for row in rows]  # a row stays one line
    widths = [max(len(r[i]) for r in cells) for i in range(len(cells[0]))]
    lines = [sep.join(v.ljust(w) for v, w in zip(r, widths, strict=True)).rstrip() for r in cells]
    if rule is not None:
        lines.insert(1, rule.join("-" * w for w in widths))
    return lines


def text_table(rows: Sequence[Any], columns: Sequence[str] | None = None, headers: Sequence[str] | None = None,
               sep: str = "  ", rule: str = "  ") -> list[str]:
    if columns is None:
        return align(rows, sep, rule)
    head = list(headers or [c.upper() for c in columns])
    body = [[("" if (r.get(c) if isinstance(r, Mapping) else None) is None else r.get(c)) for c in columns]
            for r in rows]
    return align([head, *body], sep, rule)


class FilterModule:
    def filters(self) -> dict:
        return {"text_table": text_table}
