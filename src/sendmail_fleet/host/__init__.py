"""The standard-library helpers the roles install on a VPS (or run on the controller), loaded from where the
roles keep them: each lives once, as a real file in its role's `files/`, so the Ansible collection ships it."""

from __future__ import annotations

import importlib.util
import sys
from functools import cache
from pathlib import Path
from types import ModuleType

from .. import repo_root

HELPERS: dict[str, Path] = {
    "pop_before_smtp": repo_root() / "roles" / "pop_before_smtp" / "files" / "pop_before_smtp.py",
    "relay_audit": repo_root() / "roles" / "audit" / "files" / "relay_audit.py",
    "mailprobe": repo_root() / "roles" / "rollout" / "files" / "mailprobe.py",
    "sendmail_switch": repo_root() / "roles" / "sendmail" / "files" / "sendmail_switch.py",
    "mail_settings": repo_root() / "roles" / "client_setup" / "files" / "mail_settings.py",
    "acme_probe": repo_root() / "roles" / "client_setup" / "files" / "acme_probe.py",
}


@cache
def load(name: str) -> ModuleType:
    """Import one helper by name (as `sendmail_fleet_helper_NAME`), so tests call its functions directly."""
    path = HELPERS[name]
    spec = importlib.util.spec_from_file_location(f"sendmail_fleet_helper_{name}", path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load helper {name} from {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up by name
    spec.loader.exec_module(module)
    return module
