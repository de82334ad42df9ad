"""`platform_problems`: whether a host's facts name a platform the collection supports (data: the mail_host role's
__mail_host_platforms, distribution -> major version -> codename, with systemd), as one sentence, empty when it does.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

DOCUMENTATION = r"""
name: platform_problems
short_description: What keeps a host's platform from being supported ("" when nothing does)
options:
  _input:
    description: The host's facts (ansible_facts).
    type: dict
    required: true
  platforms:
    description: Distribution name to a map of major version to codename.
    type: dict
    required: true
"""

EXAMPLES = r"""
problem: "{{ ansible_facts | sendmail_fleet.mail.platform_problems(__mail_host_platforms) }}"
"""

RETURN = r"""
_value:
  description: One sentence naming the platform and the supported ones, or "".
  type: str
"""


def supported(platforms: Mapping[str, Mapping[Any, str]]) -> str:
    return "; ".join(f"{name} " + " and ".join(f"{v} ({c})" for v, c in versions.items())
                     for name, versions in platforms.items())


def platform_problems(facts: Mapping[str, Any], platforms: Mapping[str, Mapping[Any, str]]) -> str:
    name = str(facts.get("distribution") or "")
    major = str(facts.get("distribution_major_version") or "")
    manager = str(facts.get("service_mgr") or "")
    versions = {str(k): v for k, v in (platforms.get(name) or {}).items()}
    if major in versions and manager == "systemd":
        return ""
    return (f"runs {name or 'an unknown system'} {facts.get('distribution_version') or major or ''} with "
            f"{manager or 'an unknown'} as its service manager; sendmail-fleet supports {supported(platforms)} with "
            "systemd")


class FilterModule:
    def filters(self) -> dict:
        return {"platform_problems": platform_problems}
