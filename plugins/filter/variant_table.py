"""The variant table's rules (sendmail_variants), in one place for the sendmail role, the rollout and the lab.

`variants_problems`: what is wrong with the table, one sentence per variant.
`resolve_variant`: the variant and features an inventory asks for (sendmail_variant, sendmail_features or
sendmail_setup_date), the one rule the sendmail role applies and a host that publishes another host's mail settings
applies to that host's inventory.
`variant_features`: every feature a variant may have (the role's __sendmail_features_all reads it).
`relay_phase`: where a set of features stands on the way off POP-before-SMTP: "pop-before-smtp" (a POP3 login opens
relay), "grace" (a POP3 login gets a temporary refusal that names the help page; excepted mailboxes and networks
still relay), "auth-only" (SMTP-Auth alone). The rollout moves hosts forward along it, and site.yml never moves a
host back from where the rollout put it without the explicit override.
`record_refusal`: why a run must leave a host alone given the rollout's record on it ('' when it may go on): a
damaged record, or an inventory that asks for an earlier phase than the record without the explicit override.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

DOCUMENTATION = r"""
name: variants_problems
short_description: What is wrong with the sendmail variant table (features, auth-only and grace targets)
options:
  _input:
    description: sendmail_variants (name -> features, auth_only, grace).
    type: dict
    required: true
"""

EXAMPLES = r"""
problems: "{{ sendmail_variants | sendmail_fleet.mail.variants_problems }}"
phase: "{{ sendmail_effective_features | sendmail_fleet.mail.relay_phase }}"
"""

RETURN = r"""
_value:
  description: One sentence per problem; empty when the table is sound.
  type: list
  elements: str
"""

FEATURES = ("smtp_auth", "pop_before_smtp", "pop_before_smtp_grace", "procmail_lda")
PHASES = ("pop-before-smtp", "grace", "auth-only")
# The provider's rule: servers set up before this date run the legacy variant, the others the modern one.
LEGACY_CUTOFF = "2003-01-16"
LEGACY_VARIANT = "pop-before-smtp"
MODERN_VARIANT = "default"


def variant_features(_: Any = None) -> list[str]:
    return list(FEATURES)


def setup_date_rule(_: Any = None) -> dict[str, str]:
    """The set-up date rule as data, for messages (the role) and the lab."""
    return {"cutoff": LEGACY_CUTOFF, "legacy": LEGACY_VARIANT, "modern": MODERN_VARIANT}


def resolve_variant(variants: Mapping[str, Mapping[str, Any]], variant: str | None = "",
                    features: Iterable[str] | None = None, setup_date: str | None = "") -> dict[str, Any]:
    """{variant, features}: features given win (named by the variant with exactly those, else "custom"); else the
    variant given; else the set-up date's (before LEGACY_CUTOFF the legacy variant). An unknown name resolves to no
    features (the role's check names it); nothing given resolves to variant "" ."""
    given = sorted(set(features or []))
    if given:
        name = next((n for n, v in variants.items() if sorted((v or {}).get("features") or []) == given), "custom")
        return {"variant": name, "features": given}
    date = str(setup_date or "")
    name = str(variant or "") or ((LEGACY_VARIANT if date < LEGACY_CUTOFF else MODERN_VARIANT) if date else "")
    return {"variant": name, "features": sorted((variants.get(name) or {}).get("features") or [])}


def relay_phase(features: Iterable[str]) -> str:
    f = set(features)
    if "pop_before_smtp" in f:
        return "pop-before-smtp"
    return "grace" if "pop_before_smtp_grace" in f else "auth-only"


def phase_rank(phase: str) -> int:
    """How far along the way off POP-before-SMTP a phase is (0, 1, 2)."""
    return PHASES.index(phase)


def record_refusal(record: Any, variants: Mapping[str, Mapping[str, Any]], wanted: str,
                   wanted_features: Iterable[str], allow_again: bool, host: str, path: str,
                   variant_given: str = "", setup_date_given: str = "") -> str:
    """The sentence that stops a run on host, or '' when it may go on. record: the rollout's record on the host (a
    JSON object; {} or no variant: none); wanted / wanted_features: what the inventory resolves to (resolve_variant,
    from variant_given or setup_date_given); allow_again: sendmail_allow_pop_before_smtp_again. What the inventory
    asks for may stand where the rollout put the host or further along, never before it unless allow_again."""
    if not isinstance(record, Mapping):
        return (f"{host}: the rollout's record {path} is not a JSON object ({str(record)[:120]}). Nothing was "
                "changed. Put back what the rollout wrote there (variant, before, switched_at), or empty the file if "
                "the rollout never moved this host.")
    recorded = record.get("variant")
    if recorded is None or allow_again:
        return ""
    wanted_features = list(wanted_features)
    recorded_phase = relay_phase((variants.get(str(recorded)) or {}).get("features") or [])
    wanted_phase = relay_phase(wanted_features)
    if phase_rank(wanted_phase) >= phase_rank(recorded_phase):
        return ""
    again = "POP-before-SMTP again" if "pop_before_smtp" in wanted_features else "grace again"
    return (f"{host}: the rollout moved this host to {recorded} ({recorded_phase}) on {record.get('switched_at', '?')} "
            f"(recorded in {path}), but the inventory asks for {wanted} (sendmail_variant={variant_given or '-'}, "
            f"sendmail_setup_date={setup_date_given or '-'}), which is back in the {wanted_phase} phase ({again}). "
            f"Nothing was changed. Set sendmail_variant: {recorded} for this host (the rollout writes it with "
            "rollout_write_inventory=true), or set sendmail_allow_pop_before_smtp_again: true for it to go back on "
            "purpose.")


def features_problems(features: Iterable[str]) -> list[str]:
    """What is wrong with one set of features (a variant's, or an inventory's sendmail_features)."""
    f = set(features)
    why: list[str] = []
    unknown = sorted(f - set(FEATURES))
    if unknown:
        why.append(f"unknown features {', '.join(unknown)} (choose from {', '.join(FEATURES)})")
    if not f & {"smtp_auth", "pop_before_smtp"}:
        why.append("no relay method (smtp_auth or pop_before_smtp)")
    if {"pop_before_smtp", "pop_before_smtp_grace"} <= f:
        why.append("pop_before_smtp and pop_before_smtp_grace at once (the grace phase replaces the first)")
    if "pop_before_smtp_grace" in f and "smtp_auth" not in f:
        why.append("pop_before_smtp_grace without smtp_auth (the grace phase sends users to SMTP-Auth)")
    return why


def variants_problems(variants: Mapping[str, Mapping[str, Any]]) -> list[str]:
    problems: list[str] = []
    for name, v in variants.items():
        why = features_problems((v or {}).get("features") or [])
        for field, phase in (("auth_only", "auth-only"), ("grace", "grace")):
            target = (v or {}).get(field)
            if target is None and field == "grace":
                continue
            target_features = set((variants.get(target) or {}).get("features") or []) if target in variants else None
            if target_features is None:
                why.append(f"{field} {target!r} is not a variant of the table")
            elif "smtp_auth" not in target_features or relay_phase(target_features) != phase:
                why.append(f"{field} {target!r} is not {'an' if phase == 'auth-only' else 'a'} {phase} variant with "
                           "smtp_auth")
        if why:
            problems.append(f"sendmail_variants[{name}]: {'; '.join(why)}")
    return problems


class FilterModule:
    def filters(self) -> dict:
        return {"variants_problems": variants_problems, "features_problems": features_problems,
                "relay_phase": relay_phase, "phase_rank": phase_rank, "resolve_variant": resolve_variant,
                "variant_features": variant_features, "setup_date_rule": setup_date_rule,
                "record_refusal": record_refusal}
