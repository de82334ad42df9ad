"""`html_report`: rows as a static HTML page (no server, no script, readable on a phone), cells coloured by result.

The one HTML formatter of the project: the rollout and audit reports use it as the filter
`sendmail_fleet.mail.html_report`, and `maillab demo` loads this same file for its matrix of hosts and checks.
"""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence
from typing import Any

DOCUMENTATION = r"""
name: html_report
short_description: Rows as a static HTML report, each cell coloured by its result
description:
  - Turns a list of dicts into one HTML page with a title, a summary line, one table (or one table per value of
    I(group_by)) and notes. The page has no script and no external file, and scrolls sideways on a small screen.
  - A cell whose column is in I(status) is coloured by what its value maps to (C(ok), C(fail), C(warn), C(info));
    a value the map lacks takes the map's C(*) entry, else no colour.
options:
  _input:
    description: The rows (dicts).
    type: list
    required: true
  columns:
    description: Keys to show, in order.
    type: list
    elements: str
    required: true
  headers:
    description: Header cells; defaults to the upper-cased column names.
    type: list
    elements: str
  title:
    description: The page's title and heading.
    type: str
    default: Report
  summary:
    description: One line under the heading (what the report says in a sentence).
    type: str
    default: ""
  status:
    description: Column name to a map of cell value to C(ok), C(fail), C(warn) or C(info).
    type: dict
    default: {}
  group_by:
    description: A key whose values split the rows into one table each, in the order they first appear.
    type: str
  group_label:
    description: The heading of each group's table, with C({}) for the group's value.
    type: str
    default: "{}"
  notes:
    description: Lines shown under the tables.
    type: list
    elements: str
    default: []
"""

EXAMPLES = r"""
- name: The report as HTML
  ansible.builtin.copy:
    dest: reports/rollout.html
    content: "{{ rows | sendmail_fleet.mail.html_report(['host', 'result'], title='Rollout',
                 status={'result': {'switched': 'ok', '*': 'fail'}}) }}"
"""

RETURN = r"""
_value:
  description: The whole HTML document.
  type: str
"""

STATUSES = ("ok", "fail", "warn", "info")

CSS = """
:root { color-scheme: light; font-family: system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; }
body { margin: 0; padding: 1rem; background: #f6f7f9; color: #1c1e21; }
h1 { font-size: 1.35rem; margin: 0 0 .25rem; }
h2 { font-size: 1.05rem; margin: 1.25rem 0 .4rem; }
p.summary { margin: 0 0 .75rem; font-size: 1rem; }
p.summary.fail { color: #a4161a; font-weight: 600; }
p.summary.ok { color: #1b6e2a; font-weight: 600; }
p.summary.warn { color: #7a5a00; font-weight: 600; }
.scroll { overflow-x: auto; -webkit-overflow-scrolling: touch; background: #fff; border: 1px solid #d0d4da;
          border-radius: 6px; }
table { border-collapse: collapse; font-size: .9rem; min-width: 100%; }
th, td { padding: .35rem .55rem; border-bottom: 1px solid #e3e6ea; text-align: left; white-space: nowrap;
         vertical-align: top; }
th { position: sticky; top: 0; background: #eef0f3; font-weight: 600; white-space: normal; min-width: 3.5rem;
     vertical-align: bottom; }
td:first-child, th:first-child { position: sticky; left: 0; background: #fff; font-weight: 600; }
th:first-child { background: #eef0f3; }
td.ok { background: #d8f3dc; color: #1b4332; }
td.fail { background: #ffd6d6; color: #7a0c0c; font-weight: 600; }
td.warn { background: #fff1c2; color: #664d03; }
td.info { background: #e2ecff; color: #1d3a7a; }
td.wrap { white-space: normal; min-width: 16rem; }
ul.notes { padding-left: 1.2rem; font-size: .9rem; }
footer { margin-top: 1rem; font-size: .8rem; color: #5f6670; }
@media (max-width: 600px) { body { padding: .5rem; } table { font-size: .8rem; } }
"""


def cell(text: Any, status: str = "") -> dict[str, str]:
    """A table cell: its text and, optionally, one of STATUSES."""
    if status and status not in STATUSES:
        raise ValueError(f"cell status {status!r}: choose one of {', '.join(STATUSES)}")
    return {"text": "" if text is None else str(text), "status": status}


def _td(c: Mapping[str, str] | Any, wrap: bool) -> str:
    c = c if isinstance(c, Mapping) else cell(c)
    classes = " ".join(x for x in (c.get("status", ""), "wrap" if wrap else "") if x)
    attr = f' class="{classes}"' if classes else ""
    title = f' title="{html.escape(c["title"])}"' if c.get("title") else ""
    return f"<td{attr}{title}>{html.escape(c['text'])}</td>"


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]], wrap: Sequence[int] = ()) -> str:
    """One table; each row a list of cells (plain values or cell() dicts); columns in `wrap` may break lines."""
    head = "".join(f"<th scope=\"col\">{html.escape(str(h))}</th>" for h in headers)
    body = "\n".join("<tr>" + "".join(_td(c, i in wrap) for i, c in enumerate(r)) + "</tr>" for r in rows)
    return f'<div class="scroll"><table>\n<thead><tr>{head}</tr></thead>\n<tbody>\n{body}\n</tbody></table></div>'


def page(title: str, sections: Sequence[tuple[str, str]], summary: str = "", summary_status: str = "",
         notes: Sequence[str] = (), footer: str = "") -> str:
    """A whole document: heading, summary, then each (heading, table html) section, notes and a footer."""
    parts = [f"<h1>{html.escape(title)}</h1>"]
    if summary:
        cls = f"summary {summary_status}".strip()
        parts.append(f'<p class="{cls}">{html.escape(summary)}</p>')
    for heading, body in sections:
        if heading:
            parts.append(f"<h2>{html.escape(heading)}</h2>")
        parts.append(body)
    if notes:
        parts.append('<ul class="notes">' + "".join(f"<li>{html.escape(n)}</li>" for n in notes) + "</ul>")
    if footer:
        parts.append(f"<footer>{html.escape(footer)}</footer>")
    return ("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
            "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
            f"<title>{html.escape(title)}</title>\n<style>{CSS}</style>\n</head>\n<body>\n"
            + "\n".join(parts) + "\n</body>\n</html>\n")


def html_report(rows: Sequence[Mapping[str, Any]], columns: Sequence[str], headers: Sequence[str] | None = None,
                title: str = "Report", summary: str = "", status: Mapping[str, Mapping[str, str]] | None = None,
                group_by: str | None = None, group_label: str = "{}", notes: Sequence[str] = (),
                footer: str = "") -> str:
    status = status or {}
    head = list(headers or [c.upper() for c in columns])
    if len(head) != len(columns):
        raise ValueError(f"html_report: {len(columns)} columns but {len(head)} headers")

    def row(r: Mapping[str, Any]) -> list[dict[str, str]]:
        out = []
        for col in columns:
            value = r.get(col)
            text = "" if value is None else str(value)
            colours = status.get(col, {})
            out.append(cell(text, colours.get(text, colours.get("*", ""))))
        return out

    groups: dict[str, list[Mapping[str, Any]]] = {}
    for r in rows:
        groups.setdefault(str(r.get(group_by, "")) if group_by else "", []).append(r)
    # Long free text (details, messages) may wrap: the last column when it is the widest.
    wrap = [len(columns) - 1] if columns and any(len(str(r.get(columns[-1], ""))) > 40 for r in rows) else []
    sections = [(group_label.format(g) if group_by else "", table(head, [row(r) for r in rs], wrap))
                for g, rs in groups.items()]
    if not rows:
        sections = [("", "<p>No rows.</p>")]
    seen = {c["status"] for r in rows for c in row(r)}
    # The summary takes the worst colour of the page: red for a failure, amber for a warning, else green.
    mood = next((m for m in ("fail", "warn") if m in seen), "ok" if rows else "")
    return page(title, sections, summary, mood, notes, footer)


class FilterModule:
    def filters(self) -> dict:
        return {"html_report": html_report}
