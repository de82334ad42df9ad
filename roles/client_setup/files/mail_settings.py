#!/usr/bin/env python3
"""sendmail-fleet's mail settings service: tells mail programs how to reach this mail server (standard library).

Served behind nginx (which holds the TLS certificate) on 127.0.0.1, from one JSON file the client_setup role
writes (`--data`). Per mail domain it answers, by the Host header:
  GET  autoconfig.DOMAIN/mail/config-v1.1.xml            Thunderbird's autoconfig (clientConfig 1.1)
  GET  DOMAIN/.well-known/autoconfig/mail/config-v1.1.xml  the same, where the domain's own name is served
  POST autodiscover.DOMAIN/autodiscover/autodiscover.xml   Outlook's Autodiscover (POX, 2006a response schema)
  GET  .../profile?emailaddress=ADDRESS                    an Apple configuration profile (no password in it)
  GET  autoconfig.DOMAIN/                                  the help page: the settings per mail program
Every address of a served domain gets the same answer, the address filled in (the login is its local part), so
nothing here tells which mailboxes exist; a name or an address of a domain not served here gets 404 (never
another domain's settings), a malformed address or request 400.

  mail_settings.py serve --data FILE [--listen 127.0.0.1:8790] [--idle-exit SECONDS]
                                               # or with the socket systemd passes (socket activation)
  mail_settings.py zone --data FILE DOMAIN [--sender JSON]
                                               # the domain's RFC 6186 SRV records, as a zone file snippet, and
                                               # with --sender its SPF, DKIM and DMARC records
  mail_settings.py check --data FILE           # the data file is valid (exit 0) or says what is wrong (exit 2)
"""

from __future__ import annotations

import argparse
import html
import json
import os
import plistlib
import re
import socket
import sys
import threading
import time
import uuid
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

AUTODISCOVER_REQUEST = "http://schemas.microsoft.com/exchange/autodiscover/outlook/requestschema/2006"
AUTODISCOVER_RESPONSE = "http://schemas.microsoft.com/exchange/autodiscover/responseschema/2006"
OUTLOOK_2006A = "http://schemas.microsoft.com/exchange/autodiscover/outlook/responseschema/2006a"
MOBILECONFIG_TYPE = "application/x-apple-aspen-config"
MAX_BODY = 16 * 1024  # an Autodiscover request is a few hundred bytes
ADDRESS = re.compile(r"^([A-Za-z0-9._%+-]{1,64})@([A-Za-z0-9.-]{1,253})$")


class DataError(ValueError):
    pass


class BadRequest(ValueError):
    pass


class OtherDomain(LookupError):
    """An address of a domain whose settings are not served under this name."""


@dataclass(frozen=True)
class Endpoint:
    """One way in or out: protocol (pop3, smtp), port, socket (SSL, STARTTLS) and authentication."""
    protocol: str
    port: int
    socket: str
    auth: str  # Thunderbird's word: password-cleartext, smtp-after-pop

    @property
    def needs_password(self) -> bool:
        return self.auth == "password-cleartext"


@dataclass(frozen=True)
class Site:
    """One mail domain's settings, as this server offers them."""
    domain: str
    server: str  # the mail server's name (its certificate names it)
    names: tuple[str, ...]  # the web names this service answers for the domain (autoconfig., autodiscover., ...)
    provider: str
    smtp_auth: bool  # relay by SMTP-Auth (a mailbox name and password)
    pop_before_smtp: bool  # relay for a while after a POP3 login from the same address
    smtps: bool  # submissions on 465 (implicit TLS)
    help_url: str

    @property
    def incoming(self) -> list[Endpoint]:
        return [Endpoint("pop3", 995, "SSL", "password-cleartext"),
                Endpoint("pop3", 110, "STARTTLS", "password-cleartext")]

    @property
    def outgoing(self) -> list[Endpoint]:
        """SMTP-Auth where the server has it (465 first, then 587); else what a legacy server offers: 587 with
        STARTTLS, relay allowed after checking mail by POP3 (Thunderbird's "smtp-after-pop")."""
        if self.smtp_auth:
            return ([Endpoint("smtp", 465, "SSL", "password-cleartext")] if self.smtps else []) + \
                [Endpoint("smtp", 587, "STARTTLS", "password-cleartext")]
        if self.pop_before_smtp:
            return [Endpoint("smtp", 587, "STARTTLS", "smtp-after-pop")]
        return []

    def login(self, address: str) -> str:
        """The login name of an address of this domain: its local part, whether or not such a mailbox exists (the
        answer must not tell). BadRequest for what is not an address, OtherDomain for another domain's."""
        m = ADDRESS.match(address.strip())
        if not m:
            raise BadRequest("not an e-mail address")
        if m.group(2).lower().rstrip(".") != self.domain:
            raise OtherDomain(m.group(2))
        return m.group(1)


def load(text: str) -> dict[str, Site]:
    """The data file as {web name: site}; DataError names what is wrong."""
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise DataError(f"not JSON: {exc}") from None
    sites: dict[str, Site] = {}
    for i, raw in enumerate(data.get("sites", []) if isinstance(data, dict) else []):
        where = f"sites[{i}]"
        try:
            site = Site(domain=str(raw["domain"]).lower(), server=str(raw["server"]),
                        names=tuple(str(n).lower() for n in raw["names"]),
                        provider=str(raw.get("provider") or raw["domain"]),
                        smtp_auth=bool(raw["smtp_auth"]), pop_before_smtp=bool(raw["pop_before_smtp"]),
                        smtps=bool(raw.get("smtps", raw["smtp_auth"])),
                        help_url=str(raw.get("help_url", "")))
        except (KeyError, TypeError) as exc:
            raise DataError(f"{where}: missing or bad {exc}") from None
        if not site.outgoing:
            raise DataError(f"{where} ({site.domain}): neither smtp_auth nor pop_before_smtp: no way to send")
        for name in site.names:
            if name in sites:
                raise DataError(f"{where} ({site.domain}): {name} is already served for {sites[name].domain}")
            sites[name] = site
    if not sites:
        raise DataError("no sites")
    return sites


# -- Thunderbird ------------------------------------------------------------------------------------------
def autoconfig(site: Site) -> bytes:
    """clientConfig version 1.1 (what Thunderbird's parser accepts): one emailProvider with its domain, the
    incoming POP3 servers and the outgoing SMTP servers, the user name being the mailbox name."""
    root = ET.Element("clientConfig", version="1.1")
    provider = ET.SubElement(root, "emailProvider", id=site.domain)
    ET.SubElement(provider, "domain").text = site.domain
    ET.SubElement(provider, "displayName").text = f"{site.provider} mail"
    ET.SubElement(provider, "displayShortName").text = site.provider
    for kind, endpoints in (("incomingServer", site.incoming), ("outgoingServer", site.outgoing)):
        for e in endpoints:
            server = ET.SubElement(provider, kind, type=e.protocol)
            for tag, text in (("hostname", site.server), ("port", str(e.port)), ("socketType", e.socket),
                              ("authentication", e.auth)):
                ET.SubElement(server, tag).text = text
            if e.needs_password or kind == "incomingServer":
                ET.SubElement(server, "username").text = "%EMAILLOCALPART%"
    if site.help_url:
        ET.SubElement(provider, "documentation", url=site.help_url).append(_descr("How to set up your mail program"))
    return _xml(root)


def _descr(text: str) -> ET.Element:
    d = ET.Element("descr", lang="en")
    d.text = text
    return d


def _xml(root: ET.Element) -> bytes:
    ET.indent(root)
    return b'<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="utf-8") + b"\n"


# -- Outlook ----------------------------------------------------------------------------------------------
def autodiscover_address(body: bytes) -> str:
    """The EMailAddress of a POX Autodiscover request; BadRequest when the body is not one."""
    try:
        root = ET.fromstring(body)
    except ET.ParseError as exc:
        raise BadRequest(f"not XML: {exc}") from None
    found = root.find(f"{{{AUTODISCOVER_REQUEST}}}Request/{{{AUTODISCOVER_REQUEST}}}EMailAddress")
    if found is None:  # some clients leave out the namespace
        found = root.find("Request/EMailAddress")
    if found is None or not (found.text or "").strip():
        raise BadRequest("no Request/EMailAddress")
    schema = root.find(f"{{{AUTODISCOVER_REQUEST}}}Request/{{{AUTODISCOVER_REQUEST}}}AcceptableResponseSchema")
    if schema is not None and (schema.text or "").strip() not in ("", OUTLOOK_2006A):
        raise BadRequest(f"only the {OUTLOOK_2006A} response schema is served")
    return found.text.strip()


def autodiscover(site: Site, login: str) -> bytes:
    """The 2006a response: POP3 and SMTP with the mailbox name as login. Without SMTP-Auth, SMTP asks for no
    login and says mail must be checked first (SMTPLast: POP-before-SMTP). Written as Microsoft's examples are,
    each schema the default namespace of its element (no prefixes: some clients match element names as text)."""
    root = ET.Element("Autodiscover", xmlns=AUTODISCOVER_RESPONSE)
    response = ET.SubElement(root, "Response", xmlns=OUTLOOK_2006A)
    account = ET.SubElement(response, "Account")
    for tag, text in (("AccountType", "email"), ("Action", "settings")):
        ET.SubElement(account, tag).text = text
    for e in (site.incoming[0], site.outgoing[0]):
        proto = ET.SubElement(account, "Protocol")
        fields = [("Type", e.protocol.upper()), ("Server", site.server), ("Port", str(e.port)),
                  ("DomainRequired", "off"), ("SPA", "off"), ("SSL", "on"),
                  ("Encryption", "SSL" if e.socket == "SSL" else "TLS"),
                  ("AuthRequired", "on" if e.needs_password else "off")]
        if e.needs_password:
            fields.insert(3, ("LoginName", login))
        if e.protocol == "smtp":
            fields += [("UsePOPAuth", "off"), ("SMTPLast", "off" if e.needs_password else "on")]
        for tag, text in fields:
            ET.SubElement(proto, tag).text = text
    return _xml(root)


# -- Apple ------------------------------------------------------------------------------------------------
def mobileconfig(site: Site, address: str, login: str) -> bytes:
    """A configuration profile with one POP account (com.apple.mail.managed); the device asks for the password.
    Its identifiers follow from the address, so the same address always gets the same profile."""
    inc, out = site.incoming[0], site.outgoing[0]
    ident = f"{'.'.join(reversed(site.domain.split('.')))}.mail.{login}"
    account = {
        "PayloadType": "com.apple.mail.managed", "PayloadVersion": 1,
        "PayloadIdentifier": f"{ident}.account", "PayloadUUID": str(uuid.uuid5(uuid.NAMESPACE_DNS, f"a.{address}")),
        "PayloadDisplayName": f"Mail {address}", "EmailAccountDescription": f"{site.provider} mail",
        "EmailAccountType": "EmailTypePOP", "EmailAddress": address,
        "IncomingMailServerHostName": site.server, "IncomingMailServerPortNumber": inc.port,
        "IncomingMailServerUseSSL": True, "IncomingMailServerAuthentication": "EmailAuthPassword",
        "IncomingMailServerUsername": login,
        "OutgoingMailServerHostName": site.server, "OutgoingMailServerPortNumber": out.port,
        "OutgoingMailServerUseSSL": True,
        "OutgoingMailServerAuthentication": "EmailAuthPassword" if out.needs_password else "EmailAuthNone",
    }
    if out.needs_password:
        account.update(OutgoingMailServerUsername=login, OutgoingPasswordSameAsIncomingPassword=True)
    profile = {
        "PayloadType": "Configuration", "PayloadVersion": 1, "PayloadIdentifier": ident,
        "PayloadUUID": str(uuid.uuid5(uuid.NAMESPACE_DNS, f"p.{address}")),
        "PayloadDisplayName": f"{site.provider} mail for {address}",
        "PayloadDescription": f"Sets up {address} (POP3 and SMTP on {site.server}). Your password is asked for "
                              "on the device; it is not in this profile.",
        "PayloadOrganization": site.provider, "PayloadRemovalDisallowed": False, "PayloadContent": [account],
    }
    return plistlib.dumps(profile, fmt=plistlib.FMT_XML, sort_keys=True)


# -- DNS --------------------------------------------------------------------------------------------------
def srv_records(site: Site) -> list[tuple[str, int, int, int, str]]:
    """RFC 6186 (and RFC 8314's submissions) SRV records: (service, priority, weight, port, target); a target
    of "." says the service is not offered (IMAP is never offered here, nor SMTP-Auth on a legacy server)."""
    out = {e.port: e for e in site.outgoing if e.needs_password}
    return [
        ("_submissions._tcp", 0, 1, 465, site.server) if 465 in out else ("_submissions._tcp", 0, 0, 0, "."),
        ("_submission._tcp", 0, 1, 587, site.server) if 587 in out else ("_submission._tcp", 0, 0, 0, "."),
        ("_pop3s._tcp", 0, 1, 995, site.server),
        ("_pop3._tcp", 10, 1, 110, site.server),
        ("_imaps._tcp", 0, 0, 0, "."),
        ("_imap._tcp", 0, 0, 0, "."),
    ]


SELECTOR = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$")
PUBLIC_KEY = re.compile(r"^[A-Za-z0-9+/]{40,}={0,2}$")
RUA = re.compile(r"^[A-Za-z0-9._%+-]{1,64}@[A-Za-z0-9.-]{1,253}$")
SPF_ALL = ("-all", "~all")
DMARC_POLICIES = ("none", "quarantine", "reject")


@dataclass(frozen=True)
class Sender:
    """What receivers check of the mail a domain's server sends: the addresses it sends from (SPF), its DKIM
    public keys by selector, and the domain's DMARC policy (with an optional address for aggregate reports)."""
    addresses: tuple[str, ...]
    dkim: tuple[tuple[str, str], ...] = ()  # (selector, base64 of the DER public key)
    spf_all: str = "~all"
    dmarc_policy: str = "none"
    dmarc_rua: str = ""

    @classmethod
    def parse(cls, raw: object) -> Sender:
        """From the JSON the role passes (--sender); DataError names the first wrong field: these strings end up
        in a zone file, so nothing but addresses, selectors, base64 and the listed words gets through."""
        import ipaddress

        if not isinstance(raw, dict):
            raise DataError("sender: not an object")
        try:
            addresses = tuple(str(ipaddress.ip_address(str(a))) for a in raw.get("addresses", []))
        except ValueError as exc:
            raise DataError(f"sender.addresses: {exc}") from None
        dkim = tuple((str(k.get("selector", "")), str(k.get("key", ""))) for k in raw.get("dkim", [])
                     if isinstance(k, dict))
        for selector, key in dkim:
            if not SELECTOR.match(selector) or not PUBLIC_KEY.match(key):
                raise DataError(f"sender.dkim: selector {selector!r} or its key is not valid (a DNS label, base64)")
        sender = cls(addresses, dkim, str(raw.get("spf_all", "~all")), str(raw.get("dmarc_policy", "none")),
                     str(raw.get("dmarc_rua", "")))
        if sender.spf_all not in SPF_ALL:
            raise DataError(f"sender.spf_all: {sender.spf_all!r}, not one of {', '.join(SPF_ALL)}")
        if sender.dmarc_policy not in DMARC_POLICIES:
            raise DataError(f"sender.dmarc_policy: {sender.dmarc_policy!r}, not one of {', '.join(DMARC_POLICIES)}")
        if sender.dmarc_rua and not RUA.match(sender.dmarc_rua):
            raise DataError(f"sender.dmarc_rua: {sender.dmarc_rua!r} is not an address")
        return sender


def spf_record(sender: Sender) -> str:
    """v=spf1 with the sending addresses (ip4:, ip6:) and -all or ~all; no address at all is -all alone."""
    import ipaddress

    mechs = [f"ip{ipaddress.ip_address(a).version}:{a}" for a in sender.addresses]
    return " ".join(["v=spf1", *mechs, sender.spf_all if mechs else "-all"])


def txt_records(site: Site, sender: Sender) -> list[tuple[str, str]]:
    """(name, text) of the TXT records receivers read: SPF for the mail domain and for the server's own name (its
    HELO name, which bounces are checked against), each DKIM key (SELECTOR._domainkey.DOMAIN) and DMARC
    (_dmarc.DOMAIN, relaxed alignment: the signing domain d= is the mail domain)."""
    spf = spf_record(sender)
    records = [(site.domain, spf)]
    if site.server.lower().rstrip(".") != site.domain:
        records.append((site.server.lower().rstrip("."), spf))
    records += [(f"{selector}._domainkey.{site.domain}", f"v=DKIM1; k=rsa; p={key}") for selector, key in sender.dkim]
    dmarc = f"v=DMARC1; p={sender.dmarc_policy}; adkim=r; aspf=r"
    records.append((f"_dmarc.{site.domain}", dmarc + (f"; rua=mailto:{sender.dmarc_rua}" if sender.dmarc_rua else "")))
    return records


def txt_strings(text: str) -> list[str]:
    """A TXT record's text as DNS character-strings of at most 255 bytes (a 2048-bit DKIM key needs two)."""
    return [text[i:i + 255] for i in range(0, len(text), 255)] or [""]


def zone(site: Site, sender: Sender | None = None) -> str:
    lines = [f"; {site.domain}: where mail programs find {site.server} (RFC 6186, RFC 8314). Written by",
             "; sendmail-fleet (client_setup role); paste into the domain's zone. A target of \".\" means: not offered."]
    for service, prio, weight, port, target in srv_records(site):
        fqdn = target if target == "." else target.rstrip(".") + "."
        lines.append(f"{service}.{site.domain}. 3600 IN SRV {prio} {weight} {port} {fqdn}")
    if sender is not None:
        lines.append(f"; What receivers check of mail from {site.domain}: SPF, DKIM (publish a new selector before "
                     "it signs), DMARC.")
        if not sender.dkim:
            lines.append(f"; No DKIM key known for {site.domain} in this run: run site.yml on {site.server} too.")
        for name, text in txt_records(site, sender):
            lines.append(f"{name}. 3600 IN TXT " + " ".join(f'"{part}"' for part in txt_strings(text)))
    return "\n".join(lines) + "\n"


# -- the help page ----------------------------------------------------------------------------------------
HELP_CSS = """
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; margin: 0; padding: 1rem;
       background: #f6f7f9; color: #1c1e21; line-height: 1.45; }
main { max-width: 44rem; margin: 0 auto; }
h1 { font-size: 1.4rem; margin: 0 0 .5rem; } h2 { font-size: 1.1rem; margin: 1.4rem 0 .4rem; }
section { background: #fff; border: 1px solid #d0d4da; border-radius: 8px; padding: .75rem 1rem; margin: .75rem 0; }
table { border-collapse: collapse; width: 100%; font-size: .95rem; }
th, td { text-align: left; padding: .3rem .4rem; border-bottom: 1px solid #e3e6ea; vertical-align: top; }
th { width: 40%; font-weight: 600; }
code { background: #eef0f3; padding: 0 .25rem; border-radius: 3px; overflow-wrap: anywhere; }
.note { background: #fff1c2; border-color: #e0c36a; }
form { display: flex; flex-wrap: wrap; gap: .5rem; } input { flex: 1 1 14rem; font-size: 1rem; padding: .4rem; }
button { font-size: 1rem; padding: .4rem .8rem; }
"""


def _rows(rows: list[tuple[str, str]], ids: tuple[str, ...] = ()) -> str:
    """Table rows; with ids, each row is a section a link can point at (the audit's notice links a user's program)."""
    attrs = [f' id="{i}"' for i in ids] + [""] * (len(rows) - len(ids))
    return "".join(f"<tr{a}><th>{html.escape(k)}</th><td>{v}</td></tr>" for a, (k, v) in zip(attrs, rows, strict=True))


# The ids of the help page's rows per mail program, in the order of its table (the audit's notice links them).
PROGRAM_SECTIONS = ("thunderbird", "outlook", "apple", "android")


def help_page(site: Site) -> bytes:
    inc, out = site.incoming, site.outgoing
    code = html.escape
    user = "your mailbox name (the part of your address before the @)"
    incoming = _rows([("Server type", "POP3"), ("Server", f"<code>{code(site.server)}</code>"),
                      ("Port and security", f"{inc[0].port} with SSL/TLS (or {inc[1].port} with STARTTLS)"),
                      ("User name", code(user)), ("Password", "your mailbox password (normal password)")])
    if out[0].needs_password:
        ports = " or ".join(f"{e.port} with {'SSL/TLS' if e.socket == 'SSL' else 'STARTTLS'}" for e in out)
        outgoing = _rows([("Server", f"<code>{code(site.server)}</code>"), ("Port and security", ports),
                          ("Authentication", "normal password: the same user name and password as for incoming "
                                             "mail")])
        how = ("Sending mail needs your mailbox name and password (SMTP-Auth), from anywhere."
               + (" Checking mail first (POP-before-SMTP) still works here, but set up SMTP-Auth: it is the way "
                  "that keeps working." if site.pop_before_smtp else ""))
    else:
        outgoing = _rows([("Server", f"<code>{code(site.server)}</code>"),
                          ("Port and security", f"{out[0].port} with STARTTLS"),
                          ("Authentication", "none: check your mail (POP3) first; sending is then allowed from "
                                             "your address for a while")])
        how = ("This server allows sending after you checked your mail (POP-before-SMTP); it does not offer "
               "SMTP-Auth yet.")
    programs = [
        ("Thunderbird", "Add your address in <em>Account Settings → Account Actions → Add Mail Account</em>: "
                        "Thunderbird finds these settings itself (choose POP3)."),
        ("Outlook", "Add the account with your address; Outlook finds the settings (Autodiscover). If it asks, "
                    "choose POP."),
        ("iPhone, iPad, Mac", "Download your profile below and open it; your device asks for the password."),
        ("Android, others", "Add a POP3 account with the settings below."),
    ]
    parts = [
        f"<h1>Mail settings for {code(site.domain)}</h1>",
        f"<p>{code(how)}</p>",
        f"<section><h2>Your mail program</h2><table>{_rows(programs, PROGRAM_SECTIONS)}</table></section>",
        f"<section><h2>Incoming mail</h2><table>{incoming}</table></section>",
        f"<section><h2>Outgoing mail</h2><table>{outgoing}</table></section>",
        "<section><h2>Apple profile</h2><form action=\"/profile\" method=\"get\">"
        "<label for=\"a\" hidden>Your e-mail address</label>"
        f"<input id=\"a\" name=\"emailaddress\" type=\"email\" required placeholder=\"you@{code(site.domain)}\">"
        "<button type=\"submit\">Download profile</button></form>"
        "<p>The profile holds no password.</p></section>",
    ]
    doc = ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
           "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
           f"<title>Mail settings for {code(site.domain)}</title><style>{HELP_CSS}</style></head>"
           f"<body><main>{''.join(parts)}</main></body></html>\n")
    return doc.encode()


# -- HTTP -------------------------------------------------------------------------------------------------
TEXT = "text/plain; charset=utf-8"


def answer(sites: dict[str, Site], method: str, host: str, target: str, body: bytes = b"") -> tuple[int, str, bytes]:
    """(status, content type, body) for one request; the web name decides the site, so no other domain's
    settings can come back. Whether a mailbox exists never changes the answer."""
    site = sites.get(host.split(":")[0].strip().lower().rstrip("."))
    if site is None:
        return 404, TEXT, b"no mail settings are published for this name\n"
    url = urlsplit(target)
    path, query = url.path.lower(), parse_qs(url.query)
    address = (query.get("emailaddress") or [""])[0]
    try:
        if method == "POST" and path == "/autodiscover/autodiscover.xml":
            address = autodiscover_address(body)
            return 200, "text/xml; charset=utf-8", autodiscover(site, site.login(address))
        if method not in ("GET", "HEAD"):
            return 405, TEXT, b"method not allowed\n"
        if path in ("/mail/config-v1.1.xml", "/.well-known/autoconfig/mail/config-v1.1.xml"):
            if address:
                site.login(address)  # only checked: the config names the login %EMAILLOCALPART%
            return 200, "text/xml; charset=utf-8", autoconfig(site)
        if path == "/profile":
            return 200, MOBILECONFIG_TYPE, mobileconfig(site, address.strip(), site.login(address))
    except BadRequest as exc:
        return 400, TEXT, f"bad request: {exc}\n".encode()
    except OtherDomain:
        return 404, TEXT, f"no mail settings for that address's domain here, only for {site.domain}\n".encode()
    if path in ("/", "/index.html"):
        return 200, "text/html; charset=utf-8", help_page(site)
    return 404, TEXT, b"not found\n"


class Handler(BaseHTTPRequestHandler):
    sites: dict[str, Site] = {}
    server_version = "sendmail-fleet-settings"
    sys_version = ""
    timeout = 10  # seconds a client may take to send its request (a slow client cannot hold a thread for long)

    def _reply(self, method: str, body: bytes = b"") -> None:
        status, ctype, payload = answer(self.sites, method, self.headers.get("Host", ""), self.path, body)
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(payload)))
        self.send_header("Cache-Control", "no-store" if ctype == MOBILECONFIG_TYPE else "max-age=300")
        self.send_header("X-Content-Type-Options", "nosniff")
        if ctype == MOBILECONFIG_TYPE:
            self.send_header("Content-Disposition", 'attachment; filename="mail.mobileconfig"')
        self.end_headers()
        if method != "HEAD":
            self.wfile.write(payload)

    def do_GET(self) -> None:  # noqa: N802 (http.server's names)
        self._reply("GET")

    def do_HEAD(self) -> None:  # noqa: N802
        self._reply("HEAD")

    def do_POST(self) -> None:  # noqa: N802
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            length = -1
        if not 0 <= length <= MAX_BODY:
            self.send_error(400 if length < 0 else 413)
            return
        self._reply("POST", self.rfile.read(length))

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        sys.stderr.write(f"{self.headers.get('Host', '-') if self.headers else '-'} {format % args}\n")


def main(argv: list[str]) -> int:
    cli = argparse.ArgumentParser(prog="mail_settings.py", description="sendmail-fleet's mail settings service")
    cli.add_argument("command", choices=("serve", "zone", "check"))
    cli.add_argument("domain", nargs="?", help="zone: the mail domain")
    cli.add_argument("--data", required=True, help="the JSON file the client_setup role writes")
    cli.add_argument("--sender", default="", help="zone: JSON of the domain's sending addresses, DKIM keys and DMARC "
                     "policy (addresses, dkim: [{selector, key}], spf_all, dmarc_policy, dmarc_rua): adds the TXT "
                     "records")
    cli.add_argument("--listen", default="127.0.0.1:8790", help="serve: ADDRESS:PORT (default 127.0.0.1:8790), "
                     "unless systemd passes a socket")
    cli.add_argument("--idle-exit", type=float, default=0.0, metavar="SECONDS",
                     help="serve: end after this many seconds without a request (0: never)")
    args = cli.parse_args(argv)
    try:
        with open(args.data, encoding="utf-8") as fh:
            sites = load(fh.read())
    except (OSError, DataError) as exc:
        print(f"mail_settings: {args.data}: {exc}", file=sys.stderr)
        return 2
    domains = sorted({s.domain for s in sites.values()})
    if args.command == "check":
        print(f"{len(domains)} domains ({', '.join(domains)}), {len(sites)} names")
        return 0
    if args.command == "zone":
        found = next((s for s in sites.values() if s.domain == (args.domain or "").lower()), None)
        if found is None:
            print(f"mail_settings: no site for the domain {args.domain!r}: choose one of {', '.join(domains)}",
                  file=sys.stderr)
            return 2
        try:
            sender = Sender.parse(json.loads(args.sender)) if args.sender else None
        except (ValueError, DataError) as exc:
            print(f"mail_settings: --sender: {exc}", file=sys.stderr)
            return 2
        sys.stdout.write(zone(found, sender))
        return 0
    Handler.sites = sites
    server = Server(listening_socket(args.listen), Handler)
    print(f"mail settings for {', '.join(domains)} on {server.server_address[0]}:{server.server_address[1]}"
          + (f", until {args.idle_exit:g} s without a request" if args.idle_exit else ""), file=sys.stderr, flush=True)
    try:
        server.serve(args.idle_exit)
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()  # waits for the requests still being answered
    return 0


class Server(ThreadingHTTPServer):
    """A ThreadingHTTPServer on a socket that is already listening (systemd's, or one opened here), which can end
    itself once no request came for a while: started by systemd's socket at the next request, it holds no memory
    between visits of mail programs."""

    daemon_threads = False  # server_close() waits for the requests being answered

    def __init__(self, sock: socket.socket, handler: type[BaseHTTPRequestHandler]) -> None:
        super().__init__(sock.getsockname()[:2], handler, bind_and_activate=False)
        self.socket.close()
        self.socket = sock
        self.last_request = 0.0
        self._busy = 0
        self._lock = threading.Lock()

    def process_request(self, request: socket.socket, client_address: tuple) -> None:  # type: ignore[override]
        with self._lock:
            self._busy += 1
        super().process_request(request, client_address)

    def shutdown_request(self, request: socket.socket) -> None:  # type: ignore[override]
        super().shutdown_request(request)
        with self._lock:
            self._busy -= 1
            self.last_request = time.monotonic()

    def idle_for(self) -> float:
        with self._lock:
            return 0.0 if self._busy else time.monotonic() - self.last_request

    def serve(self, idle_exit: float = 0.0) -> None:
        """Answer requests; with idle_exit, return once no request was open for that many seconds."""
        self.last_request = time.monotonic()
        self.timeout = min(idle_exit, 1.0) if idle_exit else None
        while not idle_exit or self.idle_for() < idle_exit:
            self.handle_request()


def listening_socket(listen: str) -> socket.socket:
    """The socket systemd passed (LISTEN_FDS, file descriptor 3), else a new one on ADDRESS:PORT."""
    if os.environ.get("LISTEN_PID") == str(os.getpid()) and int(os.environ.get("LISTEN_FDS", "0")) >= 1:
        return socket.socket(fileno=3)
    host, _, port = listen.rpartition(":")
    host = host.strip("[]") or "127.0.0.1"
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, int(port)))
    sock.listen(16)
    return sock


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
