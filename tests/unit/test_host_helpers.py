"""Helpers that run on a VPS use only the standard library (the VPS has no project virtualenv)."""

import ast
import sys
from pathlib import Path

import pytest

from sendmail_fleet import host

HELPERS = sorted(p for p in Path(host.__file__).parent.glob("*.py") if p.name != "__init__.py")


@pytest.mark.parametrize("helper", HELPERS, ids=[p.stem for p in HELPERS])
def test_helper_uses_only_the_standard_library(helper):
    tree = ast.parse(helper.read_text())
    mods = {a.name.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    mods |= {n.module.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.level == 0}
    assert mods <= set(sys.stdlib_module_names) | {"__future__"}
