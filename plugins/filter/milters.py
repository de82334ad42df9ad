"""`milters_for`: the milters sendmail asks in one variant, from sendmail_milters: a milter that names features is
asked only in variants with one of them (the sending limit, with smtp_auth: a variant without SMTP-Auth has no
mailbox to count), every other milter in every variant; in the order given."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

DOCUMENTATION = r"""
name: milters_for
short_description: The milters of sendmail_milters that one variant asks (by the features each milter needs)
options:
  _input:
    description: sendmail_milters (name, socket, flags, timeouts, features).
    type: list
    elements: dict
    required: true
  features:
    description: The variant's features.
    type: list
    elements: str
    required: true
"""

# milter_listen: "{{ 'inet:8891@127.0.0.1' | sendmail_fleet.mail.milter_listen }}" -> {host: 127.0.0.1, port: 8891}

EXAMPLES = r"""
milters: "{{ sendmail_milters | sendmail_fleet.mail.milters_for(['smtp_auth', 'procmail_lda']) }}"
"""

RETURN = r"""
_value:
  description: The milters this variant asks, in the order given.
  type: list
  elements: dict
"""


def milter_listen(socket: str) -> dict[str, Any]:
    """A milter's socket as wait_for's arguments: host and port of inet:PORT@ADDRESS, or the path of local:/PATH."""
    if socket.startswith("local:"):
        return {"path": socket[len("local:"):]}
    port, _, host = socket.split(":", 1)[1].partition("@")
    return {"host": host, "port": int(port)}


def milters_for(milters: Iterable[Mapping[str, Any]], features: Iterable[str]) -> list[Mapping[str, Any]]:
    have = set(features)
    return [m for m in milters if not m.get("features") or have & set(m["features"])]


class FilterModule:
    def filters(self) -> dict:
        return {"milters_for": milters_for, "milter_listen": milter_listen}
