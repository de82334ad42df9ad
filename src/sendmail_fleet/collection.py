"""The collection's own plugin files (plugins/filter/*.py), loaded from where the collection keeps them, so the
lab's Python and the roles share one implementation of each formatter."""

from __future__ import annotations

import importlib.util
from functools import cache
from types import ModuleType

from . import repo_root


@cache
def filter_plugin(name: str) -> ModuleType:
    path = repo_root() / "plugins" / "filter" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(f"sendmail_fleet_{name}", path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load {path}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
