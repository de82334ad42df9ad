"""Mail that receivers accept: each variant's mail leaves signed with DKIM and an independent verifier (dkimpy, Debian's
python3-dkim, on the mx, asking the lab DNS) passes it, and fails it once its body changes; SPF (Debian's python3-spf)
passes the VPS's own address and fails another; the zone snippets' SPF and DMARC records parse and align with the
signing domain; no private key appears in Ansible's output at -vvv.

Mail by SMTP-Auth on every variant that has it, and by POP-before-SMTP where that is how the variant relays (OpenDKIM
signs it by the mark sendmail sets for a client the relay map lets relay), on Debian 13 and 12. The fleet report's
deliverability check flags a missing PTR record, a HELO name that is not the PTR name and a published key that does
not sign, each made in the lab DNS for the test."""

from __future__ import annotations

import json
import re
import time

import pytest

from sendmail_fleet import repo_root
from sendmail_fleet.lab import _put_file, _wait_port, publish_dns
from sendmail_fleet.mailcheck import MailLab, message, token
from sendmail_fleet.progress import Progress
from sendmail_fleet.topology import LAB_SPF_ALL
from sendmail_fleet.variants import all_variants

from .conftest import DEBIAN_12, DEBIAN_13, TOPOLOGY, VPS, lab_host, playbook

ZONES = repo_root() / "reports" / "dns"
MX = TOPOLOGY.by_role("mx")[0]
CLIENT = TOPOLOGY.get("client1")

# Run on the mx: the message carrying the token in carol's mailbox, checked by dkimpy as it is and with its body
# changed; the signature's tags; SPF for an address, sender and HELO name.
VERIFY = r"""
import json, mailbox, sys
import dkim, spf
tok, out = sys.argv[1], {}
for m in mailbox.mbox("/var/mail/carol"):
    if tok in m.as_string():
        raw = m.as_bytes()
        sig = (m.get_all("DKIM-Signature") or [""])[0]
        out = {"signed": bool(sig), "tags": dict(p.strip().split("=", 1) for p in "".join(sig.split()).split(";") if "=" in p),
               "pass": bool(sig) and dkim.verify(raw), "changed_body_pass": bool(sig) and dkim.verify(raw.replace(
                   ("body " + tok).encode(), b"body changed by someone on the way"))}
print(json.dumps(out))
"""
SPF = r"""
import json, sys
import spf
print(json.dumps(spf.check2(i=sys.argv[1], s=sys.argv[2], h=sys.argv[3])))
"""


@pytest.fixture(scope="module")
def verifier(maillab: MailLab) -> MailLab:
    """dkimpy and pyspf on the mx (Debian's packages, from the mirror the lab uses): the receiving side's tools."""
    code, out = maillab.sh(MX, "DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "
                               "python3-dkim python3-spf python3-dnspython 2>&1 | tail -3")
    assert code == 0, out
    return maillab


def on_mx(lab: MailLab, script: str, *args: str) -> dict | list:
    res = lab.container(MX.name).exec_run(["python3", "-c", script, *args])
    assert res.exit_code == 0, res.output.decode(errors="replace")[-2000:]
    return json.loads(res.output.decode().strip().splitlines()[-1])


def send(lab: MailLab, short: str, how: str) -> str:
    """alice's message to carol at the mx, by SMTP-Auth on 587 or by POP-before-SMTP on 25; its token."""
    vps = TOPOLOGY.get(short)
    alice, carol = vps.accounts[0], MX.accounts[0]
    tok = token()
    data = f"From: {alice.address}\r\nTo: {carol.address}\r\n" + message(tok, "dkim")
    if how == "auth":
        res = lab.smtp("client1", vps, port=587, starttls=True, auth=["PLAIN", alice.user, alice.password],
                       mail_from=alice.address, rcpt=[carol.address], data=data)
    else:
        assert lab.pop3("client1", vps, alice.user, alice.password)["ok"], "POP3 login failed"
        res = lab.smtp("client1", vps, port=25, mail_from=alice.address, rcpt=[carol.address], data=data)
    assert res.code("data") == 250, res.summary()
    assert lab.wait_for_mail(MX, "/var/mail/carol", tok), f"accepted by {short} but not delivered on the mx"
    return tok


CASES = [(n.short, "auth" if all_variants()[n.variant].smtp_auth else "pop") for n in VPS
         if all_variants()[n.variant].smtp_auth or all_variants()[n.variant].pop_before_smtp]


@pytest.mark.parametrize("short, how", CASES, ids=[f"{s}-{TOPOLOGY.get(s).variant}-{h}" for s, h in CASES])
def test_mail_leaves_signed_and_an_independent_verifier_passes_it_and_fails_it_with_its_body_changed(
        verifier, short, how):
    vps = TOPOLOGY.get(short)
    found = on_mx(verifier, VERIFY, send(verifier, short, how))
    assert found, "the message is not in carol's mailbox"
    assert found["signed"], f"{short} ({vps.variant}, by {how}): no DKIM-Signature"
    assert (found["tags"]["d"], found["tags"]["a"]) == (vps.domain, "rsa-sha256")  # aligned with From: (DMARC)
    assert found["pass"] is True, found
    assert found["changed_body_pass"] is False, "a changed body still verified"


@pytest.mark.parametrize("release", [DEBIAN_13, DEBIAN_12])
def test_spf_passes_the_vps_address_and_fails_another(verifier, release):
    vps = TOPOLOGY.get(lab_host("default", release))
    sender, helo = vps.accounts[0].address, vps.fqdn
    assert on_mx(verifier, SPF, vps.address, sender, helo)[0] == "pass"
    assert on_mx(verifier, SPF, CLIENT.address, sender, helo)[0] == "fail"  # the lab's records end in -all
    assert on_mx(verifier, SPF, vps.address, f"postmaster@{vps.fqdn}", helo)[0] == "pass"  # bounces: the HELO name


def tags(text: str) -> dict[str, str]:
    return {k.strip(): v.strip() for k, _, v in (p.partition("=") for p in text.split(";") if p.strip())}


def txt(zone: str, name: str) -> list[str]:
    """The TXT records of a name in a zone snippet, each one's strings joined."""
    found = []
    for line in zone.splitlines():
        if line.startswith(f"{name}. ") and " IN TXT " in line:
            found.append("".join(re.findall(r'"([^"]*)"', line.split(" IN TXT ", 1)[1])))
    return found


@pytest.mark.parametrize("release", [DEBIAN_13, DEBIAN_12])
def test_the_zone_snippets_spf_and_dmarc_parse_and_align_with_the_signing_domain_and_key(verifier, release):
    vps = TOPOLOGY.get(lab_host("default-auth-only", release))
    zone = (ZONES / f"{vps.domain}.zone").read_text()
    spf = txt(zone, vps.domain)
    assert spf == [f"v=spf1 ip4:{vps.address} {LAB_SPF_ALL}"] and txt(zone, vps.fqdn) == spf
    dmarc = txt(zone, f"_dmarc.{vps.domain}")
    assert len(dmarc) == 1 and tags(dmarc[0])["v"] == "DMARC1" and tags(dmarc[0])["p"] == "none"
    assert tags(dmarc[0])["adkim"] == "r" and tags(dmarc[0])["aspf"] == "r"
    keys = [line for line in zone.splitlines() if "._domainkey." in line]
    assert len(keys) == 1, keys
    selector = keys[0].split("._domainkey.")[0]
    record = tags(txt(zone, f"{selector}._domainkey.{vps.domain}")[0])
    assert (record["v"], record["k"]) == ("DKIM1", "rsa")
    # The key the snippet publishes is the host's own: derived there from its private key.
    code, out = verifier.sh(vps, f"openssl pkey -in /etc/sendmail-fleet/dkim/{vps.domain}.{selector}.private "
                                 "-pubout -outform DER | base64 -w0")
    assert code == 0 and out.strip() == record["p"]


def test_no_private_key_appears_in_anything_ansible_prints_at_vvv(maillab, paths, provisioned):
    short = lab_host("default", DEBIAN_12)
    vps = TOPOLOGY.get(short)
    code, key = maillab.sh(vps, "grep -v -- ----- /etc/sendmail-fleet/dkim/*.private | tr -d '\\n'")
    assert code == 0 and len(key) > 1000
    run = playbook(paths, "-vvv", "-l", short, "--tags", "dkim,client_setup")
    assert run.returncode == 0, run.stdout[-4000:]
    chunks = [key[i:i + 40] for i in range(0, len(key) - 40, 200)]  # any 40 characters of it would do
    assert not [c for c in chunks if c in run.stdout], "a piece of the private key is in the output"


# -- the fleet report's deliverability check, with the lab DNS changed for the test --------------------------------
@pytest.fixture
def lab_dns(maillab: MailLab):
    """Change the lab DNS's config for a test (a function of its text), and put the lab's own back afterwards."""
    dns = maillab.container(TOPOLOGY.dns.name)

    def change(edit) -> None:
        conf = dns.exec_run(["cat", "/etc/maillab/dnsmasq.conf"]).output.decode()
        changed = edit(conf)
        assert changed != conf, "the edit changed nothing"
        _put_file(dns, "/etc/maillab/dnsmasq.conf", changed.encode())
        dns.restart(timeout=2)
        assert _wait_port(TOPOLOGY.dns.address, 53, time.monotonic() + 20)

    yield change
    publish_dns(TOPOLOGY, Progress())  # the lab's records, with every host's keys


def test_the_fleet_report_flags_a_missing_ptr_another_helo_name_and_a_published_key_that_does_not_sign(
        lab_dns, paths, tmp_path, provisioned):
    no_ptr, other_ptr = TOPOLOGY.get(lab_host("default", DEBIAN_13)), TOPOLOGY.get(lab_host("default", DEBIAN_12))
    wrong_key = TOPOLOGY.get(lab_host("default-auth-only", DEBIAN_12))
    hosts = [no_ptr, other_ptr, wrong_key]
    report = tmp_path / "fleet.json"

    def rows() -> tuple[int, dict[str, list[str]]]:
        run = playbook(paths, "-e", f"target={','.join(h.short for h in hosts)}", "-e",
                       f"mail_host_report_file={report}", name="fleet-report.yml")
        return run.returncode, {r["host"]: r["deliverability"] for r in json.loads(report.read_text())["hosts"]}

    code, before = rows()
    assert before == {h.short: [] for h in hosts}, before  # the lab as provisioned: nothing to say

    def forward_only(conf: str, address: str) -> str:
        """Every name of the address keeps its A record (address=), none gives it a PTR record (host-record does)."""
        def names(m: re.Match) -> str:
            return "\n".join(f"address=/{name}/{address}" for name in m.group(1).split(","))
        return re.sub(rf"^host-record=(.+),{re.escape(address)}$", names, conf, flags=re.M)

    def edit(conf: str) -> str:
        # no PTR at all; a PTR name that is not the HELO name; the key of another domain where this one's is
        conf = forward_only(conf, no_ptr.address)
        conf = forward_only(conf, other_ptr.address) + f"host-record=web.{other_ptr.domain},{other_ptr.address}\n"
        theirs = re.search(rf"^txt-record=[a-z0-9-]+\._domainkey\.{re.escape(no_ptr.domain)},(.*)$", conf, re.M)
        assert theirs, "no DKIM record in the lab DNS"
        return re.sub(rf"^(txt-record=[a-z0-9-]+\._domainkey\.{re.escape(wrong_key.domain)},).*$",
                      lambda m: m.group(1) + theirs.group(1), conf, flags=re.M)

    lab_dns(edit)
    code, after = rows()
    assert code != 0, "the fleet report must fail on what receivers would refuse"
    assert after[no_ptr.short] == [f"{no_ptr.address} has no PTR record (reverse DNS): set it to {no_ptr.fqdn}"]
    assert after[other_ptr.short] == [
        f"the HELO name {other_ptr.fqdn} is not {other_ptr.address}'s PTR name (web.{other_ptr.domain})"]
    assert len(after[wrong_key.short]) == 1 and after[wrong_key.short][0].startswith(
        "the DKIM key published at ") and after[wrong_key.short][0].endswith("is not the key that signs")
