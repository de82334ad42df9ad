"""Mail programs set themselves up: from a client container, with every certificate verified, the client finds the
settings the way the programs do (SRV records in the lab DNS, Thunderbird's autoconfig at both URLs, Outlook's
Autodiscover POST, an Apple profile), checks them against the rules those programs' parsers apply, then hands
what it found to real mail programs (msmtp sends, fetchmail fetches) and follows the mail to the mailbox.

Variant families, a host each: legacy POP-before-SMTP, both ways, SMTP-Auth only on Debian 13 and on 12; and a host
whose settings the mx publishes (the fleet-wide set-up, topology.SETTINGS_FROM_MX)."""

from __future__ import annotations

import json
import re
import time
import urllib.parse

import pytest

from sendmail_fleet import browser, repo_root
from sendmail_fleet.lab import _put_file
from sendmail_fleet.mailcheck import MailLab, message, token
from sendmail_fleet.topology import SETTINGS_FROM_MX

from ..client_rules import Server, apple_account, outlook_protocols, thunderbird_config
from .conftest import DEBIAN_12, DEBIAN_13, TOPOLOGY, VPS, changed_tasks, curl, lab_host, playbook, recap, sha
from .conftest import client_sh as sh

LEGACY, BOTH = lab_host("pop-before-smtp", DEBIAN_13), lab_host("default", DEBIAN_13)
AUTH13, AUTH12 = lab_host("default-auth-only", DEBIAN_13), lab_host("default-auth-only", DEBIAN_12)
FROM_MX = next(n.short for n in VPS if TOPOLOGY.settings_host(n).role == "mx")  # the mx publishes its settings
CUSTOMER_SITE = lab_host("default-procmail-lda-auth-only", DEBIAN_13)  # a VPS with a customer's own nginx site
FAMILIES = {LEGACY: "legacy", BOTH: "both", AUTH13: "auth-only", AUTH12: "auth-only"}


def domain(short: str) -> str:
    return TOPOLOGY.get(short).domain
ZONES = repo_root() / "reports" / "dns"
R2006 = "http://schemas.microsoft.com/exchange/autodiscover/outlook/requestschema/2006"
R2006A = "http://schemas.microsoft.com/exchange/autodiscover/outlook/responseschema/2006a"


def autodiscover_body(address: str) -> str:
    return (f'<?xml version="1.0" encoding="utf-8"?><Autodiscover xmlns="{R2006}"><Request>'
            f"<EMailAddress>{address}</EMailAddress><AcceptableResponseSchema>{R2006A}</AcceptableResponseSchema>"
            "</Request></Autodiscover>")


def post(lab: MailLab, url: str, body: str) -> tuple[int, str, str]:
    _put_file(lab.container("client1"), "/tmp/request.xml", body.encode())
    return curl(lab, url, "-X", "POST", "-H", "Content-Type: text/xml", "--data-binary", "@/tmp/request.xml")


@pytest.fixture(scope="module")
def found(maillab: MailLab) -> dict[str, list[Server]]:
    """What Thunderbird finds for alice of each family's VPS, at autoconfig.DOMAIN."""
    out = {}
    for short in [*FAMILIES, FROM_MX]:
        node = maillab.topo.get(short)
        status, ctype, body = curl(maillab, f"https://autoconfig.{node.domain}/mail/config-v1.1.xml"
                                            f"?emailaddress={urllib.parse.quote(node.accounts[0].address)}")
        assert (status, ctype.split(";")[0]) == (200, "text/xml"), (short, status, body[:300])
        out[short] = thunderbird_config(body.encode(), node.domain)
    return out


@pytest.mark.parametrize("short", [*FAMILIES, FROM_MX])
def test_the_srv_and_txt_records_the_lab_dns_answers_are_the_zone_snippet_the_role_wrote(maillab, short):
    """SRV (where mail programs find the server) and TXT (SPF, DKIM, DMARC: what receivers check), each record of the
    snippet as the lab DNS answers it."""
    node = maillab.topo.get(short)
    lines = [line for line in (ZONES / f"{node.domain}.zone").read_text().splitlines() if not line.startswith(";")]
    zone = [line.split() for line in lines]
    assert {r[0] for r in zone} >= {f"_submission._tcp.{node.domain}.", f"_pop3s._tcp.{node.domain}.",
                                    f"{node.domain}.", f"_dmarc.{node.domain}."}
    assert {r[3] for r in zone} == {"SRV", "TXT"}
    for line, (name, _ttl, _in, rtype, *data) in zip(lines, zone, strict=True):
        _, answer = sh(maillab, f"dig +short {rtype} {name} @{maillab.topo.dns.address}")
        if rtype == "TXT":  # a long record is several strings; what counts is their concatenation
            strings = "".join(re.findall(r'"([^"]*)"', line.split(" IN TXT ", 1)[1]))
            assert strings in ["".join(re.findall(r'"([^"]*)"', a)) for a in answer.splitlines()], (name, answer)
        elif data[-1] == ".":
            # "not offered" (RFC 2782: a target of "." means the service is decidedly not available; its port
            # means nothing, and dnsmasq answers such a record with port 1)
            assert answer.split()[-1] == ".", (name, answer)
        else:
            assert answer.split() == data, (name, answer, data)


@pytest.mark.parametrize("short", list(FAMILIES))
def test_thunderbird_finds_the_same_settings_at_the_domains_own_well_known_url(maillab, found, short):
    node = maillab.topo.get(short)
    status, _, body = curl(maillab, f"https://{node.domain}/.well-known/autoconfig/mail/config-v1.1.xml"
                                    f"?emailaddress={node.accounts[0].address}")
    assert status == 200 and thunderbird_config(body.encode(), node.domain) == found[short]


@pytest.mark.parametrize("short", [*FAMILIES, FROM_MX])
def test_the_settings_say_what_the_variant_offers_and_never_pop_before_smtp_on_an_auth_only_host(maillab, found,
                                                                                                 short):
    node = maillab.topo.get(short)
    incoming = [(s.type, s.port, s.socket) for s in found[short] if s.kind == "incoming"]
    outgoing = [(s.port, s.socket, s.auth) for s in found[short] if s.kind == "outgoing"]
    assert incoming == [("pop3", 995, "SSL"), ("pop3", 110, "STARTTLS")]
    assert {s.hostname for s in found[short]} == {node.fqdn}
    if FAMILIES.get(short) == "legacy":
        assert outgoing == [(587, "STARTTLS", "smtp-after-pop")]
    else:
        assert outgoing == [(465, "SSL", "password-cleartext"), (587, "STARTTLS", "password-cleartext")]


def test_the_mx_publishes_the_settings_of_the_hosts_it_serves_and_they_run_no_web_server(maillab, found):
    served_by_mx = [n for n in maillab.topo.by_role("vps") if maillab.topo.settings_host(n).role == "mx"]
    assert len(served_by_mx) == len([n for n in SETTINGS_FROM_MX if n <= len(VPS)]) > 0
    for node in served_by_mx:
        _, addresses = sh(maillab, f"dig +short autoconfig.{node.domain} @{maillab.topo.dns.address}")
        assert addresses.split() == [maillab.topo.get("mx").address]
        code, _ = maillab.sh(node, "ss -ltnH '( sport = :443 or sport = :80 )' | grep -q LISTEN")
        assert code != 0, f"{node.short} listens on 80 or 443 though the mx publishes its settings"


@pytest.mark.parametrize("short", [*FAMILIES, FROM_MX])
def test_outlook_autodiscover_answers_pop3_and_smtp_for_a_mailbox_address(maillab, short):
    node = maillab.topo.get(short)
    status, ctype, body = post(maillab, f"https://autodiscover.{node.domain}/autodiscover/autodiscover.xml",
                               autodiscover_body(node.accounts[1].address))
    assert status == 200 and ctype.startswith("text/xml"), body[:300]
    protos = outlook_protocols(body.encode())
    assert protos["POP3"]["Server"] == node.fqdn and protos["POP3"]["LoginName"] == node.accounts[1].user
    legacy = FAMILIES.get(short) == "legacy"
    assert (protos["SMTP"]["AuthRequired"], protos["SMTP"]["SMTPLast"]) == (("off", "on") if legacy else ("on", "off"))


@pytest.mark.parametrize(("body", "want"), [("this is not xml", 400), ("<Autodiscover/>", 400),
                                            (autodiscover_body("not-an-address"), 400),
                                            (autodiscover_body(f"alice@{domain(BOTH)}"), 404)])
def test_a_malformed_autodiscover_request_gets_400_and_another_domains_address_404(maillab, body, want):
    status, _, answer = post(maillab, f"https://autodiscover.{domain(AUTH13)}/autodiscover/autodiscover.xml", body)
    assert status == want and TOPOLOGY.get(BOTH).fqdn not in answer, answer[:300]


@pytest.mark.parametrize("short", list(FAMILIES))
def test_the_apple_profile_is_served_as_a_profile_with_no_password_in_it(maillab, short):
    node = maillab.topo.get(short)
    acct = node.accounts[0]
    status, ctype, body = curl(maillab, f"https://autoconfig.{node.domain}/profile?emailaddress={acct.address}")
    assert (status, ctype) == (200, "application/x-apple-aspen-config")
    account = apple_account(body.encode())
    assert (account["EmailAddress"], account["IncomingMailServerUsername"]) == (acct.address, acct.user)
    assert account["IncomingMailServerHostName"] == node.fqdn and acct.password not in body
    legacy = FAMILIES[short] == "legacy"
    assert account["OutgoingMailServerAuthentication"] == ("EmailAuthNone" if legacy else "EmailAuthPassword")


def test_another_domains_address_gets_404_and_a_name_not_served_here_gets_no_tls_at_all(maillab):
    assert curl(maillab, f"https://autoconfig.{domain(AUTH13)}/profile?emailaddress=alice@{domain(BOTH)}")[0] == 404
    served = maillab.topo.get(AUTH13)
    # A name this host does not serve, or its bare address, even for a client that ignores the certificate: nginx
    # refuses the TLS handshake (nothing else listens on 443 here, and the role's site is never the default).
    for url, extra in (("https://autoconfig.nosuch.test/mail/config-v1.1.xml",
                        f"--resolve autoconfig.nosuch.test:443:{served.address}"),
                       (f"https://{served.address}/mail/config-v1.1.xml", "")):
        code, out = sh(maillab, f"curl -sS -k --max-time 10 {extra} '{url}'")
        assert code == 35 and served.fqdn not in out, (url, code, out)  # 35: the TLS handshake failed


# Nothing tells which mailboxes exist (they are the SMTP-Auth logins): a made-up address of a served domain gets
# what a mailbox's address gets, the address filled in, from every way a mail program asks.
def _asked(lab: MailLab, node, address: str) -> list[tuple[int, str, str]]:
    q = urllib.parse.urlencode({"emailaddress": address})
    return [curl(lab, f"https://autoconfig.{node.domain}/mail/config-v1.1.xml?{q}"),
            curl(lab, f"https://autoconfig.{node.domain}/profile?{q}"),
            post(lab, f"https://autodiscover.{node.domain}/autodiscover/autodiscover.xml", autodiscover_body(address))]


def _masked(body: str, address: str) -> str:
    """The body with what follows from the address replaced: the address, its local part (the login) and the
    Apple profile's identifiers (UUIDs made from the address, so one address always gets the same profile)."""
    body = re.sub(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", "UUID", body)
    return body.replace(address, "ADDRESS").replace(address.split("@")[0], "LOGIN")


@pytest.mark.parametrize("short", [AUTH13, FROM_MX])
def test_a_mailbox_and_a_made_up_address_get_the_same_status_and_body_up_to_the_address(maillab, short):
    node = maillab.topo.get(short)
    real, made_up = node.accounts[0].address, f"nosuchuser@{node.domain}"
    for (status, ctype, body), (fake_status, fake_ctype, fake_body) in zip(
            _asked(maillab, node, real), _asked(maillab, node, made_up), strict=True):
        assert (fake_status, fake_ctype) == (status, ctype) and status == 200, (status, fake_status, fake_body[:200])
        assert _masked(fake_body, made_up) == _masked(body, real)


def test_a_burst_of_requests_from_one_client_is_refused_with_429_and_the_client_is_served_again_after(maillab):
    """client2 is limited like any stranger (client1, the tests' mail programs, is exempt in the lab)."""
    url = f"https://autoconfig.{domain(AUTH13)}/mail/config-v1.1.xml?emailaddress=alice%40{domain(AUTH13)}"
    burst = f"seq 60 | xargs -P 12 -I{{}} curl -s -o /dev/null -w '%{{http_code}}\\n' --max-time 10 '{url}'"
    code, out = sh(maillab, burst, "client2")
    statuses = out.split()
    assert code == 0 and len(statuses) == 60 and set(statuses) <= {"200", "429"}, out[-500:]
    assert statuses.count("429") >= 20 and statuses.count("200") >= 20, statuses  # the burst allowance, then 429s
    code, out = sh(maillab, burst, "client1")
    assert out.split() == ["200"] * 60, out[-500:]  # an exempt address is not counted
    deadline = time.monotonic() + 10  # the limit refills at client_setup_rate a second
    while (out := sh(maillab, f"curl -s -o /dev/null -w '%{{http_code}}' '{url}'", "client2")[1]) != "200":
        assert time.monotonic() < deadline, f"client2 still gets {out}"
        time.sleep(0.2)


def msmtp_rc(server: Server, address: str, user: str, password: str) -> str:
    lines = ["defaults", "tls_trust_file /etc/ssl/certs/ca-certificates.crt", "account found",
             f"host {server.hostname}", f"port {server.port}", f"from {address}", "tls on",
             f"tls_starttls {'on' if server.socket == 'STARTTLS' else 'off'}"]
    if server.auth == "password-cleartext":
        lines += ["auth on", f"user {user}", f"password {password}"]
    else:
        lines += ["auth off"]
    return "\n".join(lines) + "\naccount default : found\n"


def fetchmail(lab: MailLab, server: Server, user: str, password: str) -> tuple[int, str]:
    """fetchmail with what was found (POP3 over SSL/TLS, the certificate checked), keeping the mail on the
    server, every message delivered into /tmp/fetched."""
    ssl = "ssl" if server.socket == "SSL" else "sslproto TLS1.2+"
    rc = (f"poll {server.hostname} protocol pop3 port {server.port} timeout 20\n"
          f"  user '{user}' password '{password}' {ssl} sslcertck keep\n"
          "  mda \"/bin/sh -c 'cat >> /tmp/fetched'\"\n")
    _put_file(lab.container("client1"), "/root/.fetchmailrc", rc.encode(), 0o600)
    return sh(lab, "rm -f /tmp/fetched; fetchmail --nosyslog -s -f /root/.fetchmailrc; echo rc=$?; "
                   "cat /tmp/fetched 2>/dev/null")


@pytest.mark.parametrize("short", list(FAMILIES))
def test_fetchmail_and_msmtp_set_up_from_what_was_found_fetch_and_send_real_mail(maillab, found, short):
    node, mx = maillab.topo.get(short), maillab.topo.get("mx")
    acct, carol = node.accounts[0], mx.accounts[0]
    incoming = next(s for s in found[short] if s.kind == "incoming")
    # fetch: a message waiting in alice's mailbox comes down by POP3
    waiting = token()
    assert maillab.smtp("client1", node, port=25, mail_from=carol.address, rcpt=[acct.address],
                        data=message(waiting)).raw["ok"]
    assert maillab.wait_for_mail(node, f"/var/mail/{acct.user}", waiting)
    _, fetched = fetchmail(maillab, incoming, acct.user, acct.password)
    assert waiting in fetched, fetched[-1500:]
    # send: the first outgoing server found, as a mail program uses it (after that POP3 login on a legacy host)
    outgoing = next(s for s in found[short] if s.kind == "outgoing")
    _put_file(maillab.container("client1"), "/root/.msmtprc", msmtp_rc(outgoing, acct.address, acct.user,
                                                                      acct.password).encode(), 0o600)
    sent = token()
    _put_file(maillab.container("client1"), "/tmp/mail.txt",
              f"From: {acct.address}\nTo: {carol.address}\n{message(sent)}".encode())
    code, out = sh(maillab, f"msmtp -C /root/.msmtprc -a found {carol.address} < /tmp/mail.txt")
    assert code == 0, (outgoing, out)
    assert maillab.wait_for_mail(mx, f"/var/mail/{carol.user}", sent), (short, outgoing)


def test_the_help_page_shows_each_familys_settings_and_renders_on_a_phone(maillab, tmp_path):
    for short, family in FAMILIES.items():
        node = maillab.topo.get(short)
        status, ctype, body = curl(maillab, f"https://autoconfig.{node.domain}/")
        assert status == 200 and ctype.startswith("text/html")
        page = tmp_path / f"help-{short}.html"
        page.write_text(body)
        dom = browser.dom(page)
        assert node.fqdn in dom and 'action="/profile"' in dom and "<script" not in dom
        assert ("check your mail (POP3) first" in dom) == (family == "legacy")
        assert ("465 with SSL/TLS" in dom) == (family != "legacy")
        shot = browser.png(browser.screenshot(page, tmp_path / f"help-{short}.png", browser.PHONE))
        assert (shot.width, shot.height) == browser.PHONE and shot.ink > 0.01


def test_the_audit_notice_links_to_the_help_page(maillab, paths):
    node = maillab.topo.get(LEGACY)
    alice = node.accounts[0]
    # alice relays by POP-before-SMTP from client1 (the notice goes to users the audit finds doing that)
    assert maillab.pop3("client1", node, alice.user, alice.password)["ok"]
    try:
        tok = token()
        carol = maillab.topo.get("mx").accounts[0]
        assert maillab.smtp("client1", node, port=25, mail_from=alice.address, rcpt=[carol.address],
                            data=message(tok)).raw["ok"]
        assert maillab.wait_for_mail(maillab.topo.get("mx"), f"/var/mail/{carol.user}", tok)
        run = playbook(paths, "-e", f"target={LEGACY}", "-e", "audit_notify=true", "-e", "audit_days=1",
                       "-e", f"audit_report_file={paths.state}/audit-notice.json", name="audit-pop-before-smtp.yml")
        assert run.returncode == 0, run.stdout[-3000:]
        assert maillab.wait_for_mail(node, f"/var/mail/{alice.user}", f"https://autoconfig.{node.domain}/")
    finally:
        relay_revoked(maillab, node, maillab.topo.get("client1").address)


def relay_revoked(lab: MailLab, node, address: str) -> None:
    """The address's POP-before-SMTP window on the host ended at once by the admin's `pop-before-smtp revoke`: it is
    gone from the list and a relay from it is refused again."""
    code, out = lab.sh(node, f"pop-before-smtp revoke {address}")
    assert code == 0, out
    _, entries = lab.sh(node, "pop-before-smtp list --json")
    assert address not in {e["address"] for e in json.loads(entries)}, entries
    carol = lab.topo.get("mx").accounts[0]
    relay = lab.smtp("client1", node, port=25, mail_from=node.accounts[0].address, rcpt=[carol.address])
    assert relay.code("rcpt") == 550, relay.summary()


ROLE_NGINX_FILES = "grep -RlF 'sendmail-fleet (client_setup role)' /etc/nginx"  # -R: the links in sites-enabled/ too


def strangers_answers(lab: MailLab, node) -> dict[str, str]:
    """What a stranger gets from the host's web server by its bare address and by a name no site has, over HTTP and
    HTTPS (no certificate checked; no SNI for the address): status, curl's exit code and the body."""
    out = {}
    for how, url, resolve in (("http, address", f"http://{node.address}/", ""),
                              ("http, unknown name", "http://unknown.example/", f"unknown.example:80:{node.address}"),
                              ("https, address", f"https://{node.address}/", ""),
                              ("https, unknown name", "https://unknown.example/", f"unknown.example:443:{node.address}")):
        extra = f"--resolve {resolve}" if resolve else ""
        _, out[how] = sh(lab, f"rm -f /tmp/b; curl -sk --max-time 10 -o /tmp/b -w '%{{http_code}}' {extra} '{url}'; "
                              "echo \" exit $?\"; cat /tmp/b 2>/dev/null")
    return out


def test_a_customer_site_stays_the_default_for_every_other_name_on_80_and_443(maillab, paths):
    """A customer's own site, with Debian's default site removed and no default_server anywhere: nginx makes the first
    server it reads for a port the default. Requests by address or for a name no site has must get what they got
    before the role's files were there (the role's files are moved aside and back to see that). The test restarts
    nginx for its own changes: a reload returns before the old workers have gone."""
    node = maillab.topo.get(CUSTOMER_SITE)
    site = ("server { listen 80; listen [::]:80; listen 443 ssl; listen [::]:443 ssl; server_name www.shop.test;\n"
            "  ssl_certificate /etc/ssl/shop.pem; ssl_certificate_key /etc/ssl/shop.key; root /var/www/shop; }\n")
    setup = ("mkdir -p /var/www/shop /root/customer-aside && echo 'the customer shop' > /var/www/shop/index.html"
             " && openssl req -x509 -newkey rsa:2048 -nodes -subj /CN=www.shop.test -days 30 -keyout /etc/ssl/shop.key"
             " -out /etc/ssl/shop.pem 2>/dev/null && mv /etc/nginx/sites-enabled/default /root/customer-aside/")
    code, out = maillab.sh(node, setup)
    assert code == 0, out
    try:
        _put_file(maillab.client.containers.get(node.name), "/etc/nginx/sites-enabled/shop", site.encode())
        code, out = maillab.sh(node, f"files=$({ROLE_NGINX_FILES}) && tar -cf /root/role-nginx.tar $files && rm $files"
                                     " && nginx -t -q && systemctl restart nginx")
        assert code == 0, out
        before = strangers_answers(maillab, node)
        assert all("the customer shop" in a for a in before.values()), before  # the premise: the shop is the default
        code, out = maillab.sh(node, "tar -xf /root/role-nginx.tar -C / && rm /root/role-nginx.tar && nginx -t -q"
                                     " && systemctl restart nginx")
        assert code == 0, out
        run = playbook(paths, "-l", CUSTOMER_SITE)
        assert run.returncode == 0, run.stdout[-3000:]
        assert strangers_answers(maillab, node) == before
        code, out = sh(maillab, f"curl -sS --max-time 10 -H 'Host: www.shop.test' http://{node.address}/")
        assert out.strip() == "the customer shop", out
        assert curl(maillab, f"https://autoconfig.{node.domain}/mail/config-v1.1.xml")[0] == 200
        assert recap(playbook(paths, "-l", CUSTOMER_SITE).stdout)[CUSTOMER_SITE]["changed"] == 0
    finally:  # the VPS as it was, whatever failed above
        maillab.sh(node, "[ ! -e /root/role-nginx.tar ] || { tar -xf /root/role-nginx.tar -C / && rm /root/role-nginx.tar; }"
                         "; rm -f /etc/nginx/sites-enabled/shop; [ ! -L /root/customer-aside/default ] || mv "
                         "/root/customer-aside/default /etc/nginx/sites-enabled/; rmdir /root/customer-aside"
                         "; systemctl reload nginx")


def test_a_vps_with_its_own_nginx_default_site_keeps_serving_it_unchanged(maillab, paths):
    node = maillab.topo.get(CUSTOMER_SITE)
    # The customer's site, as an admin left it: Debian's default site with their page, and a site of their own.
    site = "server { listen 80; server_name www.shop.test; root /var/www/shop; }\n"
    maillab.sh(node, "mkdir -p /var/www/shop && echo 'the customer shop' > /var/www/shop/index.html"
                     " && echo 'the customer default page' > /var/www/html/index.html")
    _put_file(maillab.client.containers.get(node.name), "/etc/nginx/sites-enabled/shop", site.encode())
    maillab.sh(node, "systemctl reload nginx")
    before = {f: sha(node, f) for f in ("/etc/nginx/sites-enabled/default", "/etc/nginx/sites-enabled/shop",
                                        "/var/www/html/index.html", "/etc/nginx/nginx.conf")}
    run = playbook(paths, "-l", CUSTOMER_SITE)
    assert run.returncode == 0 and recap(run.stdout)[CUSTOMER_SITE]["changed"] == 0, changed_tasks(run.stdout)
    assert {f: sha(node, f) for f in before} == before
    for host, want in (("www.shop.test", "the customer shop"), ("anything.example", "the customer default page")):
        code, out = sh(maillab, f"curl -sS --max-time 10 -H 'Host: {host}' http://{node.address}/")
        assert code == 0 and out.strip() == want, (host, out)
    assert curl(maillab, f"https://autoconfig.{node.domain}/mail/config-v1.1.xml")[0] == 200
    maillab.sh(node, "rm -f /etc/nginx/sites-enabled/shop && systemctl reload nginx")  # the VPS as it was


def test_bad_client_setup_input_fails_before_anything_changes(maillab, paths):
    node = maillab.topo.get(AUTH13)
    before = sha(node, "/etc/sendmail-fleet/mail-settings.json")
    run = playbook(paths, "-l", AUTH13, "-e", json.dumps({"mail_host_client_setup_for": [LEGACY, "nosuch-vps"]}))
    assert run.returncode != 0
    assert f"{AUTH13}: mail_host_client_setup_for names nosuch-vps, not in the inventory. Nothing was changed." in \
        " ".join(run.stdout.split()), run.stdout[-3000:]
    assert recap(run.stdout)[AUTH13]["changed"] == 0
    assert sha(node, "/etc/sendmail-fleet/mail-settings.json") == before


def test_site_limited_to_the_mx_which_publishes_other_hosts_settings_works_alone_and_changes_nothing(maillab, paths):
    """The mx publishes the settings of hosts outside the play: it works out their variants from the inventory by
    the sendmail role's own rule, as when site.yml provisioned them."""
    mx = maillab.topo.by_role("mx")[0]
    before = sha(mx, "/etc/sendmail-fleet/mail-settings.json")
    run = playbook(paths, "-l", mx.short)
    assert run.returncode == 0, run.stdout[-3000:]
    assert recap(run.stdout)[mx.short]["changed"] == 0, changed_tasks(run.stdout)
    assert sha(mx, "/etc/sendmail-fleet/mail-settings.json") == before
