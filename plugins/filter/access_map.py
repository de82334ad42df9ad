"""sendmail's /etc/mail/access as the sendmail role reads and rewrites it.

`access_relay_grants`: the keys of /etc/mail/access that grant relay (their value is RELAY), other than the host's
own loopback (local submission relays through 127.0.0.1) and the keys the admin keeps. sendmail reads keys and values
without regard to case (makemap folds keys, rules match RELAY as any case), so neither does this; a value is a grant
when its first word is RELAY.

`access_rebuilt`: the file with the role's limit lines (GreetPause:, ClientRate:, ClientConn: for the default and the
exempt addresses) replaced by the given ones under the role's comment, and the given relay grants removed; every
other line is kept as it is.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

DOCUMENTATION = r"""
name: access_relay_grants
short_description: The relay grants of sendmail's access file (RELAY values, any case), loopback and kept ones aside
options:
  _input:
    description: The text of /etc/mail/access.
    type: str
    required: true
  keep:
    description: Keys to leave alone (sendmail_relay_grants_keep), compared without regard to case.
    type: list
    elements: str
"""

EXAMPLES = r"""
grants: "{{ access_text | sendmail_fleet.mail.access_relay_grants(sendmail_relay_grants_keep) }}"
text: "{{ access_text | sendmail_fleet.mail.access_rebuilt(limit_lines, exempt, grants, comment) }}"
"""

RETURN = r"""
_value:
  description: The keys as written in the file, in file order, each once.
  type: list
  elements: str
"""

# Keys that grant relay to the host itself: local submission (submit.cf) relays through 127.0.0.1.
LOOPBACK = re.compile(r"^(connect:)?(127(\.[0-9.]*)?|localhost(\.localdomain)?|ipv6:::1|ipv6:0:0:0:0:0:0:0:1)$",
                      re.IGNORECASE)
LIMIT_TAGS = ("greetpause", "clientrate", "clientconn")


def _entry(line: str) -> tuple[str, str] | None:
    """(key, value) of a map line; None for a comment or a blank line."""
    if not line.strip() or line.lstrip().startswith("#"):
        return None
    parts = line.split(None, 1)
    return parts[0], (parts[1].strip() if len(parts) > 1 else "")


def _is_relay(value: str) -> bool:
    """A value whose first word is RELAY, in any case ("RELAY", "relay", "RELAY # the office")."""
    words = value.split(None, 1)
    return bool(words) and words[0].upper() == "RELAY"


def access_relay_grants(text: str, keep: Iterable[str] = ()) -> list[str]:
    kept = {k.lower() for k in keep}
    grants: list[str] = []
    seen: set[str] = set()
    for line in (text or "").splitlines():
        entry = _entry(line)
        if entry is None or not _is_relay(entry[1]):
            continue
        key = entry[0]
        if LOOPBACK.match(key) or key.lower() in kept or key.lower() in seen:
            continue
        seen.add(key.lower())
        grants.append(key)
    return grants


def _managed(key: str, exempt: set[str]) -> bool:
    tag, sep, rest = key.partition(":")
    return bool(sep) and tag.lower() in LIMIT_TAGS and (rest == "" or rest.lower() in exempt)


def access_rebuilt(text: str, limit_lines: Iterable[str], exempt: Iterable[str] = (),
                   removed_grants: Iterable[str] = (), comment: str = "") -> str:
    exempt_keys = {e.lower() for e in exempt}
    removed = {g.lower() for g in removed_grants}
    out: list[str] = []
    for line in (text or "").splitlines():
        if comment and line == comment:
            continue
        entry = _entry(line)
        if entry is not None:
            key, value = entry
            if _managed(key, exempt_keys) or (key.lower() in removed and _is_relay(value)):
                continue
        out.append(line)
    return "\n".join(out + ([comment] if comment else []) + list(limit_lines)) + "\n"


class FilterModule:
    def filters(self) -> dict:
        return {"access_relay_grants": access_relay_grants, "access_rebuilt": access_rebuilt}
