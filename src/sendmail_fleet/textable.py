"""Aligned text tables (status, demo): the collection's own `text_table` filter plugin, so the project has one
table formatter."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from .collection import filter_plugin


def align(rows: Sequence[Sequence[Any]], sep: str = "  ", rule: str | None = None) -> list[str]:
    """Left-align every column; with `rule`, a line of dashes joined by it goes under the header row."""
    return filter_plugin("text_table").align(rows, sep, rule)
