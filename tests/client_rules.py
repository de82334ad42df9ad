"""What mail programs accept, as the rules their parsers apply: a test asserts that the settings the server
publishes pass them, and returns the settings found, which the lab tests then hand to real mail programs."""

from __future__ import annotations

import plistlib
import xml.etree.ElementTree as ET
from dataclasses import dataclass

# Thunderbird's autoconfig parser (comm-central mailnews/.../readFromXML.sys.mjs): these values, else it drops
# the server.
SOCKET_TYPES = {"plain", "SSL", "STARTTLS"}
INCOMING_AUTH = {"password-cleartext", "plain", "password-encrypted", "secure", "GSSAPI", "NTLM", "OAuth2",
                 "TLS-client-cert", "none"}
OUTGOING_AUTH = INCOMING_AUTH | {"client-IP-address", "smtp-after-pop"}
R2006A = "{http://schemas.microsoft.com/exchange/autodiscover/outlook/responseschema/2006a}"


@dataclass(frozen=True)
class Server:
    kind: str  # incoming | outgoing
    type: str  # pop3 | smtp
    hostname: str
    port: int
    socket: str
    auth: str
    username: str


def thunderbird_config(xml: bytes, domain: str) -> list[Server]:
    """clientConfig 1.1 as Thunderbird reads it; AssertionError says which rule it breaks."""
    root = ET.fromstring(xml)
    assert root.tag == "clientConfig" and root.get("version") == "1.1", (root.tag, root.attrib)
    providers = root.findall("emailProvider")
    assert len(providers) == 1 and providers[0].get("id"), "one emailProvider with an id"
    provider = providers[0]
    assert domain in [d.text for d in provider.findall("domain")], "the provider names the domain"
    servers = []
    for kind in ("incoming", "outgoing"):
        for s in provider.findall(f"{kind}Server"):
            fields = {tag: (s.findtext(tag) or "").strip() for tag in ("hostname", "port", "socketType",
                                                                       "authentication", "username")}
            assert fields["hostname"] and fields["port"].isdigit(), fields
            assert fields["socketType"] in SOCKET_TYPES, fields
            assert fields["authentication"] in (INCOMING_AUTH if kind == "incoming" else OUTGOING_AUTH), fields
            servers.append(Server(kind, s.get("type", ""), fields["hostname"], int(fields["port"]),
                                  fields["socketType"], fields["authentication"], fields["username"]))
    assert any(s.kind == "incoming" for s in servers) and any(s.kind == "outgoing" for s in servers)
    return servers


def outlook_protocols(xml: bytes) -> dict[str, dict[str, str]]:
    """A POX Autodiscover 2006a response: {Type: {field: value}} for each Protocol."""
    root = ET.fromstring(xml)
    assert root.tag == "{http://schemas.microsoft.com/exchange/autodiscover/responseschema/2006}Autodiscover"
    account = root.find(f"{R2006A}Response/{R2006A}Account")
    assert account is not None and account.findtext(f"{R2006A}Action") == "settings"
    assert account.findtext(f"{R2006A}AccountType") == "email"
    return {p.findtext(f"{R2006A}Type"): {c.tag.replace(R2006A, ""): c.text or "" for c in p}
            for p in account.findall(f"{R2006A}Protocol")}


MOBILECONFIG_KEYS = {"EmailAccountType", "EmailAddress", "IncomingMailServerHostName",
                     "IncomingMailServerPortNumber", "IncomingMailServerUseSSL", "IncomingMailServerUsername",
                     "IncomingMailServerAuthentication", "OutgoingMailServerHostName", "OutgoingMailServerPortNumber",
                     "OutgoingMailServerUseSSL", "OutgoingMailServerAuthentication", "PayloadType", "PayloadUUID",
                     "PayloadIdentifier", "PayloadVersion"}


def apple_account(data: bytes) -> dict:
    """The one com.apple.mail.managed payload of a profile, checked for the keys Apple's Mail needs and for no
    password."""
    profile = plistlib.loads(data)
    assert profile["PayloadType"] == "Configuration" and profile["PayloadVersion"] == 1
    assert profile["PayloadUUID"] and profile["PayloadIdentifier"]
    (account,) = profile["PayloadContent"]
    assert account["PayloadType"] == "com.apple.mail.managed" and account["EmailAccountType"] == "EmailTypePOP"
    assert set(account) >= MOBILECONFIG_KEYS, MOBILECONFIG_KEYS - set(account)
    assert not {k for k in account if "Password" in k and k != "OutgoingPasswordSameAsIncomingPassword"}, account
    return account
