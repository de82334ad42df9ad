"""The sendmail variants and what each promises a mail client, read from the sendmail role (one source of truth):
its public tables `sendmail_variants` and `sendmail_promises` (defaults/main.yml), with the variants and rows that a
lab's extra table adds (MAILLAB_VARIANTS: a YAML file with the same two keys, the way an inventory adds a variant;
the lab writes the whole tables into its inventory)."""

from __future__ import annotations

import datetime as dt
import os
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import yaml

from .collection import role_defaults

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


EXTRA_ENV = "MAILLAB_VARIANTS"


class TableError(ValueError):
    """The variant or promises table is not sound (the sendmail role's table check refuses it too)."""


@cache
def _tables(extra: str) -> dict[str, dict]:
    """sendmail_variants and sendmail_promises: the role's, with an extra table's entries added (they may not
    replace the role's own)."""
    role = role_defaults("sendmail")
    tables = {key: dict(role[key]) for key in ("sendmail_variants", "sendmail_promises")}
    if extra:
        try:
            added = yaml.safe_load(Path(extra).read_text()) or {}
        except (OSError, yaml.YAMLError) as exc:
            raise TableError(f"{EXTRA_ENV}={extra}: {exc}") from None
        if not isinstance(added, dict) or set(added) - set(tables):
            raise TableError(f"{EXTRA_ENV}={extra}: give sendmail_variants and sendmail_promises entries, nothing else")
        for key, table in tables.items():
            entries = added.get(key) or {}
            if not isinstance(entries, dict) or set(entries) & set(table):
                raise TableError(f"{EXTRA_ENV}={extra}: {key} must be a mapping of new variants "
                                 f"(the role has {', '.join(table)})")
            table.update(entries)
    return tables


def tables() -> dict[str, dict]:
    """The variant table and the promises table this lab uses (see the module's docstring)."""
    return _tables(os.environ.get(EXTRA_ENV, ""))


def extra_table() -> bool:
    """Whether this lab adds variants of its own to the role's table (then its inventory gives both tables)."""
    return bool(os.environ.get(EXTRA_ENV))


def extra_variants() -> list[str]:
    """The variants the lab's extra table adds, in its order (none without MAILLAB_VARIANTS)."""
    own = role_defaults("sendmail")["sendmail_variants"]
    return [name for name in tables()["sendmail_variants"] if name not in own]


def all_variants() -> dict[str, Variant]:
    return {name: Variant(name, frozenset(v["features"]), v["auth_only"])
            for name, v in tables()["sendmail_variants"].items()}


def variant_names() -> list[str]:
    return list(all_variants())


def auth_only_of(name: str) -> str:
    return all_variants()[name].auth_only


def _promises() -> dict:
    """sendmail_promises, once checked by the collection's promises_problems filter (the role's own check)."""
    return _checked_promises(os.environ.get(EXTRA_ENV, ""))


@cache
def _checked_promises(extra: str) -> dict:
    from .collection import filter_plugin

    table, variants = _tables(extra)["sendmail_promises"], _tables(extra)["sendmail_variants"]
    problems = filter_plugin("promises").promises_problems(table, variants)
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

    return filter_plugin("variant_table").resolve_variant(tables()["sendmail_variants"],
                                                          setup_date=date.isoformat())["variant"]
