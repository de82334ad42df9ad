"""The sendmail variants and what each promises a mail client, read from the sendmail role (one source of truth):
the public table `sendmail_variants` (defaults/main.yml) and `sendmail_promises` (vars/main.yml)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from functools import cache

import yaml

from . import repo_root

NOT_APPLICABLE = "-"


@dataclass(frozen=True)
class Variant:
    name: str
    features: frozenset[str]
    auth_only: str

    @property
    def smtp_auth(self) -> bool:
        return "smtp_auth" in self.features

    @property
    def pop_before_smtp(self) -> bool:
        return "pop_before_smtp" in self.features

    @property
    def procmail_lda(self) -> bool:
        return "procmail_lda" in self.features

    @property
    def grace(self) -> bool:
        """The migration's grace phase: a POP3 login gets a temporary refusal naming the help page."""
        return "pop_before_smtp_grace" in self.features

    @property
    def phase(self) -> str:
        """pop-before-smtp, grace or auth-only (the collection's variant_table filter says which)."""
        from .collection import filter_plugin

        return filter_plugin("variant_table").relay_phase(self.features)


def features() -> tuple[str, ...]:
    """Every feature a variant may have (the collection's variant_table filter holds the list)."""
    from .collection import filter_plugin

    return tuple(filter_plugin("variant_table").FEATURES)


@cache
def _role_file(name: str) -> dict:
    return yaml.safe_load((repo_root() / "roles" / "sendmail" / name / "main.yml").read_text())


def all_variants() -> dict[str, Variant]:
    table = _role_file("defaults")["sendmail_variants"]
    return {name: Variant(name, frozenset(v["features"]), v["auth_only"]) for name, v in table.items()}


def variant_names() -> list[str]:
    return list(all_variants())


def auth_only_of(name: str) -> str:
    return all_variants()[name].auth_only


class TableError(ValueError):
    """The promises table is not sound (the sendmail role's table check refuses it too)."""


@cache
def _promises() -> dict:
    """sendmail_promises, once checked by the collection's promises_problems filter (the role's own check)."""
    from .collection import filter_plugin

    table = _role_file("vars")["sendmail_promises"]
    problems = filter_plugin("promises").promises_problems(table, _role_file("defaults")["sendmail_variants"])
    if problems:
        raise TableError("; ".join(problems))
    return table


def promise(variant: str, check: str) -> str:
    """What `variant` promises a client in `check` (a reply code, or an outcome such as "inbox"); "-" where the
    check does not apply to it (only where the variant lacks the feature the check is about: applies())."""
    return str(_promises()[variant][check])


def applies(variant: str, check: str) -> bool:
    """Whether the check applies to the variant, from its features (not from the table's word)."""
    from .collection import filter_plugin

    return filter_plugin("promises").applies(check, all_variants()[variant].features)


def checks() -> list[str]:
    """Every check the promises table names, in its order."""
    return list(_promises()[variant_names()[0]])


def variant_for_setup_date(date: dt.date) -> str:
    """The role's own rule (the collection's variant_table filter, resolve_variant)."""
    from .collection import filter_plugin

    return filter_plugin("variant_table").resolve_variant(_role_file("defaults")["sendmail_variants"],
                                                          setup_date=date.isoformat())["variant"]
