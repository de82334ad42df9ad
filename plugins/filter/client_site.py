"""`client_site`: one mail host's variables as the client_setup role's site (what its mail programs are told);
`client_names`: the web names a list of sites is served on (the one rule, read by client_setup and mail_host).

The mail_host role passes `[inventory_hostname] + mail_host_client_setup_for | map('extract', hostvars)
| map('sendmail_fleet.mail.client_site')` to client_setup_sites, so a host can publish its own settings and those
of other hosts (one host serving a whole fleet's settings) from the same rules.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

DOCUMENTATION = r"""
name: client_site
short_description: A mail host's variables as a client_setup site
description:
  - Reads mail_domain, mail_fqdn (else the host's FQDN fact), sendmail_effective_features (set by the sendmail
    role's init in the same play; for a host not in the play, its inventory's sendmail_variant, sendmail_features
    or sendmail_setup_date by the role's own rule, the variant_table filter's resolve_variant) and sendmail_smtps;
    no account, name or password is read (the settings answer every address of the domain alike).
  - Fails naming the host when it has no mail domain or no known variant.
options:
  _input:
    description: One host's variables (hostvars[HOST]).
    type: dict
    required: true
  variants:
    description: The variant table (sendmail_variants) for a host not in the play whose own vars do not hold one.
    type: dict
"""

EXAMPLES = r"""
client_setup_sites: >-
  {{ ['vps1', 'vps2'] | map('extract', hostvars) | map('sendmail_fleet.mail.client_site', sendmail_variants) | list }}
"""

RETURN = r"""
_value:
  description: domain, server, smtp_auth, pop_before_smtp, smtps.
  type: dict
"""


class SiteError(ValueError):
    pass


def _resolve():  # noqa: ANN202 - the sibling filter's function
    """variant_table's resolve_variant: the same rule the sendmail role applies (Ansible loads each filter file on
    its own, so the sibling is loaded by path)."""
    import importlib.util
    from pathlib import Path

    spec = importlib.util.spec_from_file_location("sendmail_fleet_variant_table", Path(__file__).with_name(
        "variant_table.py"))
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.resolve_variant


def client_site(hv: Mapping[str, Any], variants: Mapping[str, Any] | None = None) -> dict[str, Any]:
    host = hv.get("inventory_hostname", "?")
    domain = str(hv.get("mail_domain") or "")
    if not domain:
        raise SiteError(f"{host}: no mail_domain, so there are no mail settings to publish for it")
    features = hv.get("sendmail_effective_features")
    if features is None:  # not in this play (site.yml --limit to the publishing host): the inventory's variant
        table = hv.get("sendmail_variants") or variants or {}
        resolved = _resolve()(table, hv.get("sendmail_variant"), hv.get("sendmail_features"),
                              hv.get("sendmail_setup_date"))
        if not resolved["features"]:
            raise SiteError(f"{host}: its inventory names no known variant (sendmail_variant, sendmail_features or "
                            f"sendmail_setup_date; {resolved['variant'] or 'none given'}), so its settings cannot "
                            "be published")
        features = resolved["features"]
    facts = hv.get("ansible_facts") or {}
    smtp_auth = "smtp_auth" in features
    return {
        "domain": domain.lower(),
        "server": str(hv.get("mail_fqdn") or facts.get("fqdn") or host),
        "smtp_auth": smtp_auth,
        "pop_before_smtp": "pop_before_smtp" in features,
        "smtps": smtp_auth and bool(hv.get("sendmail_smtps", True)),
    }


def mail_sender(hv: Mapping[str, Any], spf_all: str = "~all", dmarc_policy: str = "none", dmarc_rua: str = "",
                addresses: list[str] | None = None) -> dict[str, Any]:
    """What a mail host's zone snippet tells receivers (the settings helper's --sender): the addresses it sends
    from (given, else its default IPv4 and IPv6 facts, else its ansible_host when that is an address), its DKIM
    public keys for its mail domain (dkim_public_keys, set by the dkim role in this play) and the DMARC policy. The
    helper checks every value before it goes into a zone."""
    import ipaddress

    facts = hv.get("ansible_facts") or {}
    domain = str(hv.get("mail_domain") or "").lower()
    found = [str((facts.get(f"default_{v}") or {}).get("address") or "") for v in ("ipv4", "ipv6")]
    if not any(found):
        found = [str(hv.get("ansible_host") or "")]
    # The host's own inventory settings first (hostvars hold them), else what the publishing host passes.
    addresses = list(hv.get("mail_host_spf_addresses") or addresses or [])
    spf_all = str(hv.get("mail_host_spf_all") or spf_all)
    dmarc_policy = str(hv.get("mail_host_dmarc_policy") or dmarc_policy)
    dmarc_rua = str(hv.get("mail_host_dmarc_rua") or dmarc_rua)
    usable = []
    for a in (addresses or found):
        try:
            usable.append(str(ipaddress.ip_address(a)))
        except ValueError:
            continue
    keys = [{"selector": k["selector"], "key": k["key"]} for k in hv.get("dkim_public_keys") or []
            if str(k.get("domain", "")).lower() == domain]
    return {"addresses": usable, "dkim": keys, "spf_all": spf_all, "dmarc_policy": dmarc_policy,
            "dmarc_rua": dmarc_rua}


def client_names(sites: list[Mapping[str, Any]], serve_domain: bool = False) -> list[str]:
    """The web names the sites' settings are served on: autoconfig.DOMAIN (autoconfig, the help page, profiles),
    autodiscover.DOMAIN (Outlook) and, with serve_domain, DOMAIN itself (its /.well-known/autoconfig)."""
    domains = [str(s["domain"]).lower() for s in sites]
    return [f"{prefix}{d}" for d in domains for prefix in ("autoconfig.", "autodiscover.")] + \
        (domains if serve_domain else [])


def zone_files(results: list[dict[str, Any]], folder: str) -> list[dict[str, Any]]:
    """The files module's entries for the zone snippets the helper printed (a looped command's results, item.domain
    each): FOLDER/DOMAIN.zone; a domain whose helper run failed gets none."""
    return [{"path": f"{folder.rstrip('/')}/{r['item']['domain'].lower()}.zone", "content": f"{r['stdout']}\n",
             "mode": "0644"} for r in results if r.get("rc") == 0]


class FilterModule:
    def filters(self) -> dict:
        return {"client_site": client_site, "client_names": client_names, "zone_files": zone_files,
                "mail_sender": mail_sender}
