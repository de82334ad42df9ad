"""Aligned text tables for results a person reads at a glance (status, demo)."""

from __future__ import annotations

from typing import Sequence


def align(rows: Sequence[Sequence[str]], sep: str = "  ", rule: str | None = None) -> list[str]:
    """Left-align every column; with `rule`, a line of dashes joined by it goes under the header row."""
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = [sep.join(v.ljust(w) for v, w in zip(r, widths)).rstrip() for r in rows]
    if rule is not None:
        lines.insert(1, rule.join("-" * w for w in widths))
    return lines
