"""`dkim_plan`: the DKIM keys a host holds (each mail domain x the signing selector and the published ones), the
selectors whose `until` date has passed, and what is wrong with the settings; `dkim_public_keys`: the host's listing
of its key files (NAME.private and the base64 of its public key, one per line) as the public keys of the plan's
keys and the files no key of the plan names (to be removed: no key outlives its removal from the settings).
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping, Sequence
from typing import Any

DOCUMENTATION = r"""
name: dkim_plan
short_description: The DKIM keys a host holds, from its domains and selectors
options:
  _input: {description: The mail domains to sign for., type: list, elements: str, required: true}
  selector: {description: The selector that signs., type: str, required: true}
  publish: {description: "Further selectors: {selector, until (YYYY-MM-DD, optional)}.", type: list, elements: dict}
  folder: {description: Where the key files are (DOMAIN.SELECTOR.private)., type: str, required: true}
  today: {description: The date to compare `until` with (YYYY-MM-DD)., type: str, required: true}
"""

EXAMPLES = r"""
plan: "{{ ['example.com'] | sendmail_fleet.mail.dkim_plan('fleet1', [], '/etc/sendmail-fleet/dkim', '2026-12-04') }}"
"""

RETURN = r"""
_value:
  description: "keys: [{domain, selector, path, signs}], retired: selectors past their until date, problems,
    key_files: the files module's entries for the keys' owner and mode."
  type: dict
"""

def _records():  # noqa: ANN202 - the settings helper, the one home of what a DKIM selector and key may be
    """roles/client_setup/files/mail_settings.py, which checks the same values before they go into a zone (Ansible
    loads each filter file on its own, so the helper is loaded by path, as client_site loads its sibling). Loaded
    at the first call, not at import: Ansible imports every filter file of the collection, in each task's worker,
    whenever a task uses any of its filters, and this import alone took 21 ms."""
    import importlib.util
    import sys
    from pathlib import Path

    if "sendmail_fleet_mail_settings" in sys.modules:
        return sys.modules["sendmail_fleet_mail_settings"]
    path = Path(__file__).resolve().parents[2] / "roles" / "client_setup" / "files" / "mail_settings.py"
    spec = importlib.util.spec_from_file_location("sendmail_fleet_mail_settings", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


DOMAIN = re.compile(r"^(?=.{1,253}$)(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z][a-z0-9-]{0,61}[a-z0-9]$")


def _date(text: str) -> dt.date | None:
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        return None


def dkim_plan(domains: Sequence[str], selector: str, publish: Sequence[Mapping[str, Any]] | None, folder: str,
              today: str) -> dict[str, Any]:
    problems: list[str] = []
    domains = [str(d).lower().rstrip(".") for d in domains]
    problems += [f"dkim_domains: {d!r} is not a domain name" for d in domains if not DOMAIN.match(d)]
    if not domains:
        problems.append("dkim_domains is empty: name the mail domains to sign for")
    label = _records().SELECTOR  # what a selector may be
    if not label.match(str(selector)):
        problems.append(f"dkim_selector: {selector!r} is not a DNS label (a-z, 0-9, -)")
    now = _date(today)
    held, retired = [str(selector)], []
    for i, entry in enumerate(publish or []):
        name, until = str(entry.get("selector", "")), str(entry.get("until") or "")
        if not label.match(name):
            problems.append(f"dkim_publish_selectors[{i}].selector: {name!r} is not a DNS label (a-z, 0-9, -)")
        elif name in held:
            problems.append(f"dkim_publish_selectors[{i}].selector: {name} is listed twice or is dkim_selector")
        elif until and _date(until) is None:
            problems.append(f"dkim_publish_selectors[{i}].until: {until!r} is not a date (YYYY-MM-DD)")
        elif until and now is not None and _date(until) < now:  # type: ignore[operator]
            retired.append(name)
        else:
            held.append(name)
    keys = [{"domain": d, "selector": s, "path": f"{folder.rstrip('/')}/{d}.{s}.private", "signs": s == selector}
            for d in domains for s in held]
    # The files module's entries that hold each existing key's owner and mode (root's, the signer's group reads).
    key_files = [{"path": k["path"], "state": "file", "owner": "root", "group": "opendkim", "mode": "0640"}
                 for k in keys]
    return {"keys": keys, "retired": retired, "problems": problems, "key_files": key_files}


def dkim_public_keys(listing: str, plan: Mapping[str, Any]) -> dict[str, Any]:
    """keys: [{domain, selector, key}] of the plan's keys found in the listing; extra: file names no key names."""
    found: dict[str, str] = {}
    for line in listing.splitlines():
        name, _, key = line.strip().partition(" ")
        if name.endswith(".private"):
            found[name] = key.strip()
    wanted = {k["path"].rsplit("/", 1)[-1]: k for k in plan["keys"]}
    public_key = _records().PUBLIC_KEY
    keys = [{"domain": k["domain"], "selector": k["selector"], "key": found[name]}
            for name, k in wanted.items() if public_key.match(found.get(name, ""))]
    return {"keys": keys, "extra": sorted(set(found) - set(wanted))}


class FilterModule:
    def filters(self) -> dict:
        return {"dkim_plan": dkim_plan, "dkim_public_keys": dkim_public_keys}
