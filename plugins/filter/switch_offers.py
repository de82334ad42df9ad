"""`switch_offers`: what sendmail must offer on each port for a set of features, as the switch helper verifies it
after every restart (roles/sendmail/files/sendmail_switch.py, SPEC "offers"); `switch_offers_by_variant`: the same
for every variant of the table, so that a config the helper puts back is verified against its own variant.

Per port: STARTTLS (or TLS first on 465), and the AUTH mechanisms offered after it ([] none; None not checked).
  25   STARTTLS where TLS is on; no AUTH without SMTP-Auth; with SMTP-Auth the mechanisms, unless an MSA on 587
       takes submissions (then 25 is not checked for AUTH)
  587  where the MSA listens: STARTTLS, the mechanisms with SMTP-Auth, none without
  465  implicit TLS, the mechanisms: only with SMTP-Auth, TLS and sendmail_smtps
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

DOCUMENTATION = r"""
name: switch_offers
short_description: What sendmail must offer on each port for a variant's features (the switch helper's verify)
options:
  _input:
    description: The variant's features (smtp_auth, pop_before_smtp, procmail_lda).
    type: list
    elements: str
    required: true
  msa:
    description: sendmail_msa (the submission port 587 listens).
    type: bool
  tls:
    description: sendmail_tls.
    type: bool
  smtps:
    description: sendmail_smtps (465 where SMTP-Auth and TLS are on).
    type: bool
  mechanisms:
    description: sendmail_auth_mechanisms.
    type: list
    elements: str
"""

EXAMPLES = r"""
offers: "{{ sendmail_effective_features | sendmail_fleet.mail.switch_offers(true, true, true, ['LOGIN', 'PLAIN']) }}"
by_variant: "{{ sendmail_variants | sendmail_fleet.mail.switch_offers_by_variant(true, true, true, ['PLAIN']) }}"
"""

RETURN = r"""
_value:
  description: "{PORT: {starttls, auth} or {implicit_tls, auth}} (ports as strings, as JSON keys are)."
  type: dict
"""


def switch_offers(features: Iterable[str], msa: bool = True, tls: bool = True, smtps: bool = True,
                  mechanisms: Iterable[str] = ("LOGIN", "PLAIN")) -> dict[str, dict[str, Any]]:
    auth = "smtp_auth" in set(features)
    mechs = list(mechanisms)
    offers: dict[str, dict[str, Any]] = {
        "25": {"starttls": bool(tls), "auth": ([] if not auth else (None if msa else mechs))}}
    if msa:
        offers["587"] = {"starttls": bool(tls), "auth": mechs if auth else []}
    if smtps and tls and auth:
        offers["465"] = {"implicit_tls": True, "auth": mechs}
    return offers


def switch_offers_by_variant(variants: Mapping[str, Mapping[str, Any]], msa: bool = True, tls: bool = True,
                             smtps: bool = True, mechanisms: Iterable[str] = ("LOGIN", "PLAIN")) -> dict[str, dict]:
    mechs = list(mechanisms)
    return {name: switch_offers(v.get("features") or [], msa, tls, smtps, mechs) for name, v in variants.items()}


class FilterModule:
    def filters(self) -> dict:
        return {"switch_offers": switch_offers, "switch_offers_by_variant": switch_offers_by_variant}
