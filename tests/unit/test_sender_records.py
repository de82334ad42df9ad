"""The TXT records a mail domain publishes for receivers (roles/client_setup/files/mail_settings.py): SPF for the
domain and the server's HELO name, each DKIM key, DMARC; what a stranger-controlled value cannot put in a zone."""

from __future__ import annotations

import base64
import json

import pytest

from sendmail_fleet.host import load

ms = load("mail_settings")

SITE = ms.Site(domain="vps1.test", server="mail.vps1.test", names=(), provider="vps1.test", smtp_auth=True,
               pop_before_smtp=False, smtps=True, help_url="")
KEY = base64.b64encode(bytes(range(256)) + bytes(38)).decode()  # as long as a 2048-bit key's DER (294 bytes)


def tags(text: str) -> dict[str, str]:
    """A DKIM or DMARC record's tag=value list (RFC 6376 3.2, RFC 7489 6.4)."""
    return {k.strip(): v.strip() for k, _, v in (part.partition("=") for part in text.split(";") if part.strip())}


def test_spf_names_each_sending_address_and_ends_with_the_chosen_all():
    sender = ms.Sender(("192.0.2.25", "2001:db8::25"), spf_all="-all")
    assert ms.spf_record(sender) == "v=spf1 ip4:192.0.2.25 ip6:2001:db8::25 -all"
    assert ms.spf_record(ms.Sender(("192.0.2.25",))) == "v=spf1 ip4:192.0.2.25 ~all"
    assert ms.spf_record(ms.Sender(())) == "v=spf1 -all"  # no known address: nothing may send as the domain


def test_records_cover_the_domain_the_helo_name_dkim_and_dmarc_aligned_with_the_signing_domain():
    sender = ms.Sender(("192.0.2.25",), (("fleet1", KEY),), dmarc_rua="dmarc@vps1.test")
    records = dict(ms.txt_records(SITE, sender))
    assert set(records) == {"vps1.test", "mail.vps1.test", "fleet1._domainkey.vps1.test", "_dmarc.vps1.test"}
    assert records["vps1.test"] == records["mail.vps1.test"] == "v=spf1 ip4:192.0.2.25 ~all"
    dkim = tags(records["fleet1._domainkey.vps1.test"])
    assert (dkim["v"], dkim["k"], dkim["p"]) == ("DKIM1", "rsa", KEY)
    dmarc = tags(records["_dmarc.vps1.test"])
    assert dmarc == {"v": "DMARC1", "p": "none", "adkim": "r", "aspf": "r", "rua": "mailto:dmarc@vps1.test"}


def test_a_long_dkim_record_is_split_into_strings_of_at_most_255_bytes_that_join_back():
    zone = ms.zone(SITE, ms.Sender(("192.0.2.25",), (("fleet1", KEY),)))
    line = next(x for x in zone.splitlines() if x.startswith("fleet1._domainkey.vps1.test. 3600 IN TXT "))
    strings = json.loads("[" + line.split(" IN TXT ", 1)[1].replace('" "', '", "') + "]")
    assert len(strings) == 2 and all(len(s) <= 255 for s in strings)
    assert "".join(strings) == f"v=DKIM1; k=rsa; p={KEY}"
    assert "_submission._tcp.vps1.test. 3600 IN SRV 0 1 587 mail.vps1.test." in zone.splitlines()


def test_a_zone_without_a_known_key_says_where_to_run_and_still_has_spf_and_dmarc():
    zone = ms.zone(SITE, ms.Sender(("192.0.2.25",)))
    assert "run site.yml on mail.vps1.test" in zone and "_domainkey" not in zone
    assert '_dmarc.vps1.test. 3600 IN TXT "v=DMARC1; p=none; adkim=r; aspf=r"' in zone.splitlines()


@pytest.mark.parametrize("raw, field", [
    ({"addresses": ["192.0.2.1 include:evil.test"]}, "sender.addresses"),
    ({"addresses": [], "dkim": [{"selector": 'a"b', "key": KEY}]}, "sender.dkim"),
    ({"addresses": [], "dkim": [{"selector": "fleet1", "key": 'AAAA" "x=y'}]}, "sender.dkim"),
    ({"addresses": [], "spf_all": "+all"}, "sender.spf_all"),
    ({"addresses": [], "dmarc_policy": "none; rua=mailto:x@evil.test"}, "sender.dmarc_policy"),
    ({"addresses": [], "dmarc_rua": "a@b.test; ruf=mailto:x@evil.test"}, "sender.dmarc_rua"),
    ("not an object", "sender"),
])
def test_values_that_would_write_other_records_are_refused_naming_the_field(raw, field):
    with pytest.raises(ms.DataError, match=f"^{field}"):
        ms.Sender.parse(raw)


def test_the_command_line_adds_the_records_and_refuses_bad_sender_json(tmp_path, capsys):
    data = tmp_path / "sites.json"
    data.write_text(json.dumps({"sites": [{"domain": "vps1.test", "server": "mail.vps1.test", "names": ["autoconfig.vps1.test"],
                                           "smtp_auth": True, "pop_before_smtp": False}]}))
    sender = json.dumps({"addresses": ["192.0.2.25"], "dkim": [{"selector": "fleet1", "key": KEY}]})
    assert ms.main(["zone", "vps1.test", "--data", str(data), "--sender", sender]) == 0
    out = capsys.readouterr().out
    assert 'vps1.test. 3600 IN TXT "v=spf1 ip4:192.0.2.25 ~all"' in out.splitlines()
    assert ms.main(["zone", "vps1.test", "--data", str(data), "--sender", "{not json"]) == 2
    assert "--sender" in capsys.readouterr().err
