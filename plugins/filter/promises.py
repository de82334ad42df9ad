"""`promises_problems`: what is wrong with sendmail_promises (the table of what each variant promises a mail client),
checked against the variant table before anyone relies on it.

A "-" means one thing only: the variant lacks the feature the check is about, so the check does not apply. It must
stand exactly there: a "-" where the variant has the feature would switch a check off silently, and a reply where it
has not promises something the variant cannot do. PROMISE_NEEDS names the checks that apply only with a feature;
every other check applies to every variant and must never be "-".
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

DOCUMENTATION = r"""
name: promises_problems
short_description: What is wrong with the promises table (every variant, every check, "-" exactly where it must be)
options:
  _input:
    description: sendmail_promises (variant -> check -> reply).
    type: dict
    required: true
  variants:
    description: sendmail_variants (variant -> features, auth_only).
    type: dict
    required: true
"""

EXAMPLES = r"""
problems: "{{ sendmail_promises | sendmail_fleet.mail.promises_problems(sendmail_variants) }}"
"""

RETURN = r"""
_value:
  description: One sentence per problem; empty when the table is sound.
  type: list
  elements: str
"""

NOT_APPLICABLE = "-"
# The checks that apply only where the variant has one of these features.
PROMISE_NEEDS: dict[str, tuple[str, ...]] = {
    "bad/unknown AUTH": ("smtp_auth",),
    "saslauthd down": ("smtp_auth",),
    "sending limit": ("smtp_auth",),
    "window expiry": ("pop_before_smtp", "pop_before_smtp_grace"),
    "excepted POP relay": ("pop_before_smtp_grace",),
}


def applies(check: str, features: set[str] | frozenset[str]) -> bool:
    """Whether the check applies to a variant with these features."""
    need = PROMISE_NEEDS.get(check)
    return need is None or bool(set(need) & set(features))


def promises_problems(promises: Mapping[str, Mapping[str, Any]],
                      variants: Mapping[str, Mapping[str, Any]]) -> list[str]:
    problems: list[str] = []
    missing = [name for name in variants if name not in promises]
    if missing:
        problems.append(f"sendmail_promises has no row for {', '.join(missing)}")
    rows = {name: row for name, row in promises.items() if name in variants}
    extra = [name for name in promises if name not in variants]
    if extra:
        problems.append(f"sendmail_promises has rows for {', '.join(extra)}, which sendmail_variants does not name")
    if not rows:
        return problems
    first_name, first = next(iter(rows.items()))
    for name, row in rows.items():
        if set(row) != set(first):
            problems.append(f"sendmail_promises[{name}] has other checks than [{first_name}]: "
                            f"{', '.join(sorted(set(row) ^ set(first)))}")
        features = set(variants[name].get("features") or [])
        for check, value in row.items():
            dash = str(value) == NOT_APPLICABLE
            if dash and applies(check, features):
                need = PROMISE_NEEDS.get(check)
                problems.append(f"sendmail_promises[{name}][{check}] is '-', but "
                                + (f"{name} has {' or '.join(need)}" if need else "the check applies to every variant"))
            elif not dash and not applies(check, features):
                problems.append(f"sendmail_promises[{name}][{check}] promises {value}, but {name} has no "
                                f"{' or '.join(PROMISE_NEEDS[check])}: it must be '-'")
    return problems


class FilterModule:
    def filters(self) -> dict:
        return {"promises_problems": promises_problems}
