"""What every check must show a mail client for a variant, derived from what the variant's features mean, written
without reading the promises table (sendmail_promises): the second, independent statement that a wrong cell of the
table disagrees with. The unit tests compare every cell with it; the lab tests compare what clients really saw.

The features and what they mean to a client:
  smtp_auth        PLAIN and LOGIN (the mechanisms saslauthd can check) are offered after STARTTLS on 587 and over
                   implicit TLS on 465, and a good password relays (235); MAIL without AUTH on those ports gets 530;
                   a wrong password and an unknown user get the same 535; with saslauthd down, AUTH gets 454; a
                   mailbox past its sending limit gets 451 (temporary: its mail program keeps the message).
  no smtp_auth     no mechanism is offered, AUTH gets 503 (not offered), nothing listens on 465, and 587 takes MAIL
                   but refuses the relay (550).
  pop_before_smtp  a good POP3 login opens relay from that client's address (250) for the window, then it closes;
                   on 587 too where no SMTP-Auth is required there (the legacy variant).
  pop_before_smtp_grace  the grace phase: a good POP3 login gets a temporary refusal (450) on 25 and on 587, for the
                   window, unless the mailbox is excepted (then it relays, 250); after the window, the usual 550.
  procmail_lda     procmail delivers, so a user's ~/.procmailrc recipe files the message in its folder.
Every variant: local mail is delivered (250), an unknown user and unauthenticated relay are refused (550), a failed
POP3 login and a client that never logged in open nothing (550); mail a client relays leaves signed for its domain
and a DKIM verifier passes it, however it was relayed. "-" where the check needs a feature the variant lacks.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

MECHANISMS = "LOGIN PLAIN"


def expected(features: Iterable[str], check: str) -> str:
    """The reply (or outcome) `check` must show for a variant with these features. KeyError for a check this
    oracle does not know: a new check needs its meaning written here too."""
    f = set(features)
    auth, pop, procmail = "smtp_auth" in f, "pop_before_smtp" in f, "procmail_lda" in f
    grace = "pop_before_smtp_grace" in f
    return {
        "local mail": "250",
        "unknown user": "550",
        "relay, no auth": "550",
        "587 no auth": "530" if auth else "550",
        "AUTH offer": MECHANISMS if auth else "none",
        "AUTH PLAIN relay": "235" if auth else "503",
        "AUTH LOGIN relay": "235" if auth else "503",
        "465 no auth": "530" if auth else "closed",
        "465 AUTH relay": "235" if auth else "closed",
        "bad/unknown AUTH": "535/535" if auth else "-",
        "bad POP login": "550",
        "POP login relay": "250" if pop else "450" if grace else "550",
        "POP login 587": "450" if grace else "530" if auth else "250" if pop else "550",
        "excepted POP relay": "250" if grace else "-",
        "client2 relay": "550",
        "window expiry": "550" if pop or grace else "-",
        "procmail recipe": "folder" if procmail else "inbox",
        "saslauthd down": "454" if auth else "-",
        "DKIM signed": "pass",
        "sending limit": "451" if auth else "-",
    }[check]


def disagreements(promises: Mapping[str, Mapping[str, Any]], variants: Mapping[str, Mapping[str, Any]]) -> list[str]:
    """Every cell of the promises table that is not what its variant's features mean."""
    out = []
    for name, row in promises.items():
        features = variants[name]["features"]
        for check, value in row.items():
            want = expected(features, check)
            if str(value) != want:
                out.append(f"{name} / {check}: the table says {value}, the features ({', '.join(sorted(features))}) "
                           f"mean {want}")
    return out
