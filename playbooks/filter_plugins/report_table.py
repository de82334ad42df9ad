"""`text_table`: a list of dicts as an aligned text table, for reports a person reads at a glance."""

from __future__ import annotations


def text_table(rows: list[dict], columns: list[str], headers: list[str] | None = None) -> list[str]:
    headers = headers or [c.upper() for c in columns]
    cells = [headers] + [[str(r.get(c, "")) for c in columns] for r in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(columns))]
    lines = ["  ".join(v.ljust(w) for v, w in zip(row, widths)).rstrip() for row in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return lines


class FilterModule:
    def filters(self) -> dict:
        return {"text_table": text_table}
