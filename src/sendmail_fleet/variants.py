"""The sendmail variants as data, read from the sendmail role's own vars (one source of truth)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import yaml

from . import repo_root

FEATURES = ("smtp_auth", "pop_before_smtp", "procmail_lda")


@dataclass(frozen=True)
class Variant:
    name: str
    features: frozenset[str]

    @property
    def smtp_auth(self) -> bool:
        return "smtp_auth" in self.features

    @property
    def pop_before_smtp(self) -> bool:
        return "pop_before_smtp" in self.features

    @property
    def procmail_lda(self) -> bool:
        return "procmail_lda" in self.features


@lru_cache(maxsize=1)
def _role_vars(path: Path | None = None) -> dict:
    path = path or repo_root() / "roles" / "sendmail" / "vars" / "main.yml"
    return yaml.safe_load(path.read_text())


def all_variants() -> dict[str, Variant]:
    presets = _role_vars()["__sendmail_variant_presets"]
    return {name: Variant(name, frozenset(feats)) for name, feats in presets.items()}


def variant_names() -> list[str]:
    return list(all_variants())


def auth_only_of(name: str) -> str:
    return _role_vars()["__sendmail_auth_only_of"][name]


def variant_for_setup_date(date: dt.date) -> str:
    data = _role_vars()
    cutoff = dt.date.fromisoformat(data["__sendmail_legacy_cutoff"])
    return data["__sendmail_legacy_variant"] if date < cutoff else data["__sendmail_modern_variant"]
