"""The fleet report's deliverability check (roles/mail_host/files/deliverability.py): forward-confirmed reverse DNS
and the HELO name, the published DKIM key against the signing one, SPF and DMARC present and parseable; and its
standard-library DNS client against a DNS server on loopback (UDP, TCP for a truncated answer, hostile answers)."""

from __future__ import annotations

import socket
import struct
import threading

import pytest

from sendmail_fleet.host import load

dl = load("deliverability")
KEY = "MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEA" + "k" * 300
ADDR = "192.0.2.21"
REV = "21.2.0.192.in-addr.arpa"


def txt(text: str) -> bytes:
    raw = text.encode()
    return b"".join(bytes([len(raw[i:i + 255])]) + raw[i:i + 255] for i in range(0, len(raw), 255))


def zone(changes: dict | None = None) -> dict:
    records = {
        (REV, dl.PTR): [b"mail.vps1.test"], ("mail.vps1.test", dl.A): [socket.inet_aton(ADDR)],
        ("fleet1._domainkey.vps1.test", dl.TXT): [txt(f"v=DKIM1; k=rsa; p={KEY}")],
        ("vps1.test", dl.TXT): [txt(f"v=spf1 ip4:{ADDR} -all"), txt("google-site-verification=x")],
        ("_dmarc.vps1.test", dl.TXT): [txt("v=DMARC1; p=none; adkim=r; aspf=r")],
    }
    records.update(changes or {})
    return records


def run(records: dict, key: str = KEY, helo: str = "mail.vps1.test") -> list[str]:
    return dl.check("vps1.test", helo, [ADDR], {"fleet1": "/k"}, lambda n, t: records.get((n, t), []),
                    key_of=lambda _f: key)["problems"]


def test_a_host_as_receivers_want_it_has_no_problem():
    assert run(zone()) == []


def test_a_missing_ptr_record_a_ptr_that_does_not_resolve_back_and_another_helo_name_are_each_named():
    assert run(zone({(REV, dl.PTR): []})) == [f"{ADDR} has no PTR record (reverse DNS): set it to mail.vps1.test"]
    assert run(zone({("mail.vps1.test", dl.A): [socket.inet_aton("192.0.2.99")]})) == [
        f"{ADDR}'s PTR name mail.vps1.test does not resolve back to it"]
    assert run(zone(), helo="vps1.example") == [f"the HELO name vps1.example is not {ADDR}'s PTR name (mail.vps1.test)"]


def test_a_published_key_that_is_not_the_signing_key_or_no_key_is_named():
    assert run(zone(), key="MIIB" + "z" * 300) == [
        "the DKIM key published at fleet1._domainkey.vps1.test is not the key that signs"]
    assert run(zone({("fleet1._domainkey.vps1.test", dl.TXT): []})) == [
        "no DKIM key is published at fleet1._domainkey.vps1.test"]


@pytest.mark.parametrize("records, problem", [
    ([], "vps1.test has 0 SPF records (receivers need exactly one)"),
    ([txt("v=spf1 -all"), txt("v=spf1 ip4:192.0.2.21 -all")], "vps1.test has 2 SPF records"),
    ([txt("v=spf1 ip4:192.0.2.21 +any")], "the SPF record of vps1.test does not parse: +any"),
    ([txt("v=spf1 ip4:198.51.100.0/24 -all")], "the SPF record of vps1.test does not list 192.0.2.21"),
])
def test_spf_must_be_one_record_that_parses_and_lists_the_sending_addresses(records, problem):
    assert [p for p in run(zone({("vps1.test", dl.TXT): records})) if p.startswith(problem)]


def test_spf_through_a_or_mx_or_include_is_left_to_receivers_and_dmarc_needs_one_record_with_a_policy():
    assert run(zone({("vps1.test", dl.TXT): [txt("v=spf1 mx include:relay.test -all")]})) == []
    assert run(zone({("_dmarc.vps1.test", dl.TXT): []})) == [
        "_dmarc.vps1.test has 0 DMARC records (receivers need exactly one)"]
    assert run(zone({("_dmarc.vps1.test", dl.TXT): [txt("v=DMARC1; p=maybe")]})) == [
        "the DMARC record of vps1.test has no valid policy (p=none, quarantine or reject)"]


# -- the DNS client, against a DNS server on loopback ---------------------------------------------------------
def answer(query: bytes, records: list[tuple[int, bytes]], flags: int = 0x8180) -> bytes:
    qid = struct.unpack("!H", query[:2])[0]
    end = query.index(b"\0", 12) + 5
    head = struct.pack("!HHHHHH", qid, flags, 1, len(records), 0, 0) + query[12:end]
    return head + b"".join(b"\xc0\x0c" + struct.pack("!HHIH", t, 1, 60, len(d)) + d for t, d in records)


class Server:
    """A DNS server on 127.0.0.1 (UDP and TCP, one port) answering every query with `reply(query, tcp)`."""

    def __init__(self, reply) -> None:
        self.reply = reply
        self.udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.udp.bind(("127.0.0.1", 0))
        self.port = self.udp.getsockname()[1]
        self.tcp = socket.socket()
        self.tcp.bind(("127.0.0.1", self.port))
        self.tcp.listen()
        threading.Thread(target=self._udp, daemon=True).start()
        threading.Thread(target=self._tcp, daemon=True).start()

    def _udp(self) -> None:
        while True:
            data, peer = self.udp.recvfrom(4096)
            self.udp.sendto(self.reply(data, False), peer)

    def _tcp(self) -> None:
        while True:
            conn, _ = self.tcp.accept()
            with conn:
                size = struct.unpack("!H", conn.recv(2))[0]
                out = self.reply(conn.recv(size), True)
                conn.sendall(struct.pack("!H", len(out)) + out)


@pytest.fixture
def dns():
    """Start a loopback DNS server with a reply function; its port."""
    return lambda reply: Server(reply).port


def test_a_long_txt_record_comes_by_tcp_when_the_udp_answer_is_truncated(dns):
    long_key = txt("v=DKIM1; k=rsa; p=" + "A" * 700)
    port = dns(lambda q, tcp: answer(q, [(dl.TXT, long_key)]) if tcp else answer(q, [], flags=0x8380))
    found = dl.resolve("127.0.0.1", "fleet1._domainkey.vps1.test", dl.TXT, port=port)
    assert [dl.txt_strings(r) for r in found] == ["v=DKIM1; k=rsa; p=" + "A" * 700]


def test_nxdomain_is_no_record_and_a_server_failure_is_an_error(dns):
    port = dns(lambda q, tcp: answer(q, [], flags=0x8183))
    assert dl.resolve("127.0.0.1", "none.vps1.test", dl.TXT, port=port) == []
    port = dns(lambda q, tcp: answer(q, [], flags=0x8182))
    with pytest.raises(dl.DnsError, match="error 2"):
        dl.resolve("127.0.0.1", "vps1.test", dl.TXT, port=port)


def test_a_hostile_answer_with_a_name_pointer_loop_is_refused_not_followed(dns):
    def loop(q, tcp):
        qid = struct.unpack("!H", q[:2])[0]
        return struct.pack("!HHHHHH", qid, 0x8180, 0, 1, 0, 0) + b"\xc0\x0c"  # the name points at itself
    port = dns(loop)
    with pytest.raises(dl.DnsError):
        dl.resolve("127.0.0.1", "vps1.test", dl.TXT, port=port)


def test_an_answer_to_another_query_id_is_refused(dns):
    port = dns(lambda q, tcp: answer(bytes([q[0] ^ 1]) + q[1:], []))
    with pytest.raises(dl.DnsError, match="another query"):
        dl.resolve("127.0.0.1", "vps1.test", dl.TXT, port=port)


def test_the_command_line_reports_an_unreachable_resolver_as_a_problem_not_a_crash(capsys, monkeypatch):
    monkeypatch.setattr(dl, "resolve", lambda *a, **k: (_ for _ in ()).throw(dl.DnsError("no answer")))
    assert dl.main(["--domain", "vps1.test", "--helo", "mail.vps1.test", "--address", ADDR]) == 0
    assert '"deliverability not checked: no answer"' in capsys.readouterr().out


def test_a_ptr_name_with_control_characters_reaches_the_report_only_as_question_marks(dns):
    port = dns(lambda q, tcp: answer(q, [(dl.PTR, b"\x0bmail\x1b[31mx\n\x04test\x00")]))
    names = dl.resolve("127.0.0.1", REV, dl.PTR, port=port)
    assert names == [b"mail??31mx?.test"]
