"""TLS as mail programs see it: every port serves TLS 1.2 or later with strong ciphers only (nmap's ssl-enum-ciphers
from Debian, from a client container), the clients verify the servers' certificates and names, and a real mail
program (swaks) submits on 465 with verification on."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from concurrent.futures import ThreadPoolExecutor

import pytest

from sendmail_fleet.mailcheck import MailLab, message, token
from sendmail_fleet.variants import all_variants

from .conftest import DEBIAN_12, DEBIAN_13, lab_host

TLS_PORTS = (25, 110, 465, 587, 995)
# One host per release with SMTP-Auth (465 open), and the legacy variant (465 closed).
AUTH_HOSTS = (lab_host("default-auth-only", DEBIAN_13), lab_host("default-auth-only", DEBIAN_12))
SCANNED = (*AUTH_HOSTS, lab_host("pop-before-smtp", DEBIAN_12))


def scan(lab: MailLab, short: str) -> dict[int, dict]:
    """nmap's ssl-enum-ciphers on the TLS ports (STARTTLS on 25, 587 and 110): per open port, the protocols
    offered, each with its ciphers, and the weakest grade nmap gives."""
    node = lab.topo.get(short)
    ports = ",".join(map(str, TLS_PORTS))
    res = lab.container("client1").exec_run(
        ["nmap", "-Pn", "-n", "-p", ports, "--script", "ssl-enum-ciphers", "-oX", "-", node.address])
    assert res.exit_code == 0, res.output.decode()[-2000:]
    found: dict[int, dict] = {}
    for port in ET.fromstring(res.output).iter("port"):
        state = port.find("state")
        if state is None or state.get("state") != "open":
            continue
        script = port.find("script[@id='ssl-enum-ciphers']")
        protocols: dict[str, list[str]] = {}
        least = None
        if script is not None:
            for table in script.findall("table"):
                names = table.findall("table[@key='ciphers']/table/elem[@key='name']")
                protocols[table.get("key", "")] = [n.text or "" for n in names]
            grade = script.find("elem[@key='least strength']")
            least = grade.text if grade is not None else None
        found[int(port.get("portid", "0"))] = {"protocols": protocols, "least": least}
    return found


@pytest.fixture(scope="module")
def scans(maillab: MailLab) -> dict[str, dict[int, dict]]:
    with ThreadPoolExecutor(len(SCANNED)) as pool:
        return dict(zip(SCANNED, pool.map(lambda s: scan(maillab, s), SCANNED), strict=True))


@pytest.mark.parametrize("short", SCANNED)
def test_the_scanner_finds_tls_1_2_or_later_only_and_no_weak_cipher_on_every_port(scans, maillab, short):
    node = maillab.topo.get(short)
    found = scans[short]
    want = set(TLS_PORTS) if all_variants()[node.variant].smtp_auth else set(TLS_PORTS) - {465}
    assert set(found) == want, f"{short} ({node.variant}) open TLS ports: {sorted(found)}"
    for port, seen in found.items():
        assert seen["protocols"], f"{short}:{port}: the scanner got no TLS session: {seen}"
        assert set(seen["protocols"]) <= {"TLSv1.2", "TLSv1.3"}, f"{short}:{port} offers {sorted(seen['protocols'])}"
        weak = [c for ciphers in seen["protocols"].values() for c in ciphers
                if any(w in c for w in ("_CBC_", "RC4", "3DES", "NULL", "EXPORT", "anon", "_MD5", "_SHA "))
                or c.endswith("_SHA")]
        assert weak == [] and seen["least"] == "A", f"{short}:{port} weak ciphers {weak}, least strength {seen['least']}"


def test_a_client_that_expects_another_name_refuses_the_certificate(maillab):
    vps = maillab.topo.get(AUTH_HOSTS[0])
    res = maillab.smtp("client1", vps, port=465, tls=True, server_name="not-this-host.example.test")
    assert not res.raw["ok"] and "CERTIFICATE_VERIFY_FAILED" in res.last["text"], res.summary()
    alice = vps.accounts[0]
    assert maillab.pop3("client1", vps, alice.user, alice.password, port=995)["ok"]  # the right name verifies


@pytest.mark.parametrize("short", AUTH_HOSTS)
def test_swaks_submits_on_465_with_certificate_verification_and_the_mail_arrives_at_mx(maillab, short):
    vps = maillab.topo.get(short)
    alice, carol = vps.accounts[0], maillab.topo.by_role("mx")[0].accounts[0]
    tok = token()
    # The password reaches swaks in its environment, never on a command line another process could read.
    res = maillab.container("client1").exec_run(
        ["swaks", "--server", vps.fqdn, "--port", "465", "--tls-on-connect", "--tls-verify",
         "--tls-ca-path", "/etc/ssl/certs/ca-certificates.crt", "--auth", "PLAIN", "--auth-user", alice.user,
         "--from", alice.address, "--to", carol.address, "--header", f"X-Maillab-Token: {tok}",
         "--body", message(tok)],
        environment={"SWAKS_OPT_auth_password": alice.password})
    out = res.output.decode(errors="replace")
    assert res.exit_code == 0, out[-2000:]
    assert "235 2.0.0" in out and alice.password not in out
    assert maillab.wait_for_mail(maillab.topo.by_role("mx")[0], "/var/mail/carol", tok), out[-1500:]
