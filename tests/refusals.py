"""Which refused submissions a switch to SMTP-Auth only promised, and which it did not: the rollout test fails on
any of the second kind (a user whose mail was refused while the fleet moved).

A switch promises exactly one refusal: once a host's variant has no POP-before-SMTP, a relay by POP-before-SMTP
gets 550 5.7.1 (its promise for "POP login relay"). Anything else a client meets during the rollout is not
promised: a refused SMTP-Auth submission, a POP-before-SMTP relay refused by a host whose variant still has it
(one that was rolled back, or not switched yet), a submission that still failed after its retries.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

SMTP_AUTH, POP_BEFORE_SMTP = "smtp-auth", "pop-before-smtp"


@dataclass(frozen=True)
class Refusal:
    host: str
    method: str  # how the client sent: SMTP_AUTH or POP_BEFORE_SMTP
    code: int | None  # the reply that refused it (None: no reply, it gave up after its retries)
    text: str
    variant_after: str  # the host's live variant, read right after the refusal


def unpromised(refusals: Iterable[Refusal], promise: Callable[[str, str], str]) -> list[Refusal]:
    """The refusals the switch did not promise (`promise(variant, check)` reads what a variant promises)."""
    return [r for r in refusals
            if not (r.method == POP_BEFORE_SMTP and r.code == 550 and "5.7.1" in r.text
                    and promise(r.variant_after, "POP login relay") == "550")]
