"""The collection's own plugin files (plugins/KIND/NAME.py), loaded from where the collection keeps them, so the
lab's Python, its tests and the roles share one implementation of each formatter, module and strategy."""

from __future__ import annotations

import importlib.util
import sys
from functools import cache
from types import ModuleType

from . import repo_root


@cache
def plugin(kind: str, name: str) -> ModuleType:
    """plugins/KIND/NAME.py as a module: kind is the collection's folder (filter, modules, strategy). A module's
    `ansible_collections.sendmail_fleet.mail.plugins.module_utils` imports resolve through the checkout's
    .collections link (scripts/bootstrap.sh makes it), as they do under Ansible."""
    collections = str(repo_root() / ".collections")
    if collections not in sys.path:
        sys.path.append(collections)
    path = repo_root() / "plugins" / kind / f"{name}.py"
    spec = importlib.util.spec_from_file_location(f"sendmail_fleet_{kind}_{name}", path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load {path}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def filter_plugin(name: str) -> ModuleType:
    return plugin("filter", name)
