"""The standard-library helpers the roles install on a VPS (or run on the controller), loaded from where the
roles keep them: each lives once, as a real file in its role's `files/`, so the Ansible collection ships it."""

from __future__ import annotations

from functools import cache
from pathlib import Path
from types import ModuleType

from ..collection import load_module, role_path

HELPERS: dict[str, Path] = {
    "pop_before_smtp": role_path("pop_before_smtp", "files", "pop_before_smtp.py"),
    "relay_audit": role_path("audit", "files", "relay_audit.py"),
    "mailprobe": role_path("rollout", "files", "mailprobe.py"),
    "sendmail_switch": role_path("sendmail", "files", "sendmail_switch.py"),
    "mail_settings": role_path("client_setup", "files", "mail_settings.py"),
    "acme_probe": role_path("client_setup", "files", "acme_probe.py"),
    "deliverability": role_path("mail_host", "files", "deliverability.py"),
    "sending_limits": role_path("sending_limits", "files", "sending_limit_milter.py"),
}


@cache
def load(name: str) -> ModuleType:
    """Import one helper by name (as `sendmail_fleet_helper_NAME`), so tests call its functions directly."""
    return load_module(HELPERS[name], f"sendmail_fleet_helper_{name}")
