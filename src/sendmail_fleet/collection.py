"""The one seam between the lab and the collection: where the collection's files are (its roles and plugins), and
how the lab's Python loads them, so the lab, its tests and the roles share one implementation of each formatter,
module, strategy, host helper and table. Nothing else in the package builds a path into roles/ or plugins/."""

from __future__ import annotations

import importlib.util
import sys
from functools import cache
from pathlib import Path
from types import ModuleType
from typing import Any

import yaml

from . import repo_root


def root() -> Path:
    """The collection's own folder (the checkout: galaxy.yml, roles/, plugins/)."""
    return repo_root()


def role_path(role: str, *parts: str) -> Path:
    """A file of a role: role_path("sendmail", "files", "sendmail_switch.py")."""
    return root() / "roles" / role / Path(*parts)


def plugin_dir(kind: str) -> Path:
    """plugins/KIND (filter, modules, strategy, callback, ...)."""
    return root() / "plugins" / kind


@cache
def role_defaults(role: str) -> dict[str, Any]:
    """A role's public defaults (defaults/main.yml) as data: the tables the lab reads (sendmail_variants, ...)."""
    return yaml.safe_load(role_path(role, "defaults", "main.yml").read_text()) or {}


def load_module(path: Path, name: str) -> ModuleType:
    """Import a Python file of the collection as module `name` (registered, so dataclasses find their module)."""
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


@cache
def plugin(kind: str, name: str) -> ModuleType:
    """plugins/KIND/NAME.py as a module: kind is the collection's folder (filter, modules, strategy). A module's
    `ansible_collections.sendmail_fleet.mail.plugins.module_utils` imports resolve through the checkout's
    .collections link (scripts/bootstrap.sh makes it), as they do under Ansible."""
    collections = str(root() / ".collections")
    if collections not in sys.path:
        sys.path.append(collections)
    return load_module(plugin_dir(kind) / f"{name}.py", f"sendmail_fleet_{kind}_{name}")


def filter_plugin(name: str) -> ModuleType:
    return plugin("filter", name)
