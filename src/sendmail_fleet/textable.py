"""Aligned text tables (status, demo): the collection's own `text_table` filter plugin, loaded from where the
collection keeps it, so the project has one table formatter."""

from __future__ import annotations

import importlib.util
from collections.abc import Callable, Sequence
from typing import Any

from . import repo_root


def _load() -> Callable[..., list[str]]:
    path = repo_root() / "plugins" / "filter" / "text_table.py"
    spec = importlib.util.spec_from_file_location("sendmail_fleet_text_table", path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load {path}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.align


_align = _load()


def align(rows: Sequence[Sequence[Any]], sep: str = "  ", rule: str | None = None) -> list[str]:
    """Left-align every column; with `rule`, a line of dashes joined by it goes under the header row."""
    return _align(rows, sep, rule)
