#!/usr/bin/env python3
"""sendmail-fleet's deliverability check (standard library): what receivers check of this host's mail, asked of the
DNS resolver the host itself uses. The fleet report runs it with the script module; it leaves nothing on the host.

  deliverability.py --domain DOMAIN --helo NAME [--address ADDRESS ...]
                    [--dkim SELECTOR=KEYFILE ...] [--nameserver ADDRESS]

Checks: each sending address has a PTR record whose name resolves back to it (forward-confirmed reverse DNS) and is
the HELO name; each DKIM key that signs is the one published at SELECTOR._domainkey.DOMAIN; the domain has one SPF
record that parses and lists the addresses, and one DMARC record that parses. Prints JSON {"checks", "problems"};
problems are data (exit 0), a resolver that does not answer is a problem too.
"""

from __future__ import annotations

import argparse
import base64
import ipaddress
import json
import random
import re
import socket
import struct
import subprocess
import sys
from collections.abc import Callable

A, PTR, TXT, AAAA = 1, 12, 16, 28
NXDOMAIN = 3


class DnsError(RuntimeError):
    pass


def encode_name(name: str) -> bytes:
    out = b""
    for label in name.rstrip(".").split("."):
        raw = label.encode("idna") if label else b""
        if not 0 < len(raw) < 64:
            raise DnsError(f"not a DNS name: {name!r}")
        out += bytes([len(raw)]) + raw
    return out + b"\0"


def query_packet(name: str, rtype: int, qid: int) -> bytes:
    return struct.pack("!HHHHHH", qid, 0x0100, 1, 0, 0, 0) + encode_name(name) + struct.pack("!HH", rtype, 1)


def read_name(msg: bytes, pos: int) -> tuple[str, int]:
    """A (possibly compressed) name at pos: (name, position after it). Bounded: a hostile answer cannot loop."""
    labels, end, jumps = [], None, 0
    while True:
        if pos >= len(msg):
            raise DnsError("truncated name")
        length = msg[pos]
        if length & 0xC0 == 0xC0:
            if pos + 1 >= len(msg) or jumps > 20:
                raise DnsError("bad name pointer")
            end = pos + 2 if end is None else end
            pos, jumps = ((length & 0x3F) << 8) | msg[pos + 1], jumps + 1
            continue
        if length == 0:
            return ".".join(labels), (pos + 1 if end is None else end)
        # A name from the DNS goes into the report: anything but a host name's characters shows as "?".
        labels.append(re.sub(r"[^A-Za-z0-9_*-]", "?", msg[pos + 1:pos + 1 + length].decode("ascii", "replace")))
        pos += 1 + length


def parse_answer(msg: bytes, qid: int, rtype: int) -> tuple[int, list[bytes], bool]:
    """(rcode, the rdata of each answer record of rtype, truncated)."""
    if len(msg) < 12:
        raise DnsError("short answer")
    rid, flags, qd, an = struct.unpack("!HHHH", msg[:8])
    if rid != qid:
        raise DnsError("answer to another query")
    pos = 12
    for _ in range(qd):
        pos = read_name(msg, pos)[1] + 4
    found = []
    for _ in range(an):
        pos = read_name(msg, pos)[1]
        if pos + 10 > len(msg):
            raise DnsError("truncated record")
        t, _cls, _ttl, size = struct.unpack("!HHIH", msg[pos:pos + 10])
        data_at = pos + 10
        if data_at + size > len(msg):
            raise DnsError("truncated record data")
        if t == rtype:
            found.append(msg[data_at:data_at + size] if t != PTR else read_name(msg, data_at)[0].encode())
        pos = data_at + size
    return flags & 0x000F, found, bool(flags & 0x0200)


def nameserver() -> str:
    try:
        with open("/etc/resolv.conf", encoding="utf-8") as fh:
            for line in fh:
                parts = line.split()
                if len(parts) >= 2 and parts[0] == "nameserver":
                    return parts[1]
    except OSError:
        pass
    return "127.0.0.1"


def resolve(server: str, name: str, rtype: int, timeout: float = 3.0, port: int = 53) -> list[bytes]:
    """The rdata of name's records of rtype ([] for none or NXDOMAIN); UDP, then TCP when the answer is truncated."""
    qid = random.randrange(1 << 16)
    packet = query_packet(name, rtype, qid)
    family = socket.AF_INET6 if ":" in server else socket.AF_INET
    for _attempt in range(2):
        with socket.socket(family, socket.SOCK_DGRAM) as s:
            s.settimeout(timeout)
            try:
                s.sendto(packet, (server, port))
                msg = s.recv(65535)
            except OSError:
                continue
        rcode, found, truncated = parse_answer(msg, qid, rtype)
        if truncated:
            with socket.create_connection((server, port), timeout=timeout) as t:
                t.sendall(struct.pack("!H", len(packet)) + packet)
                size = struct.unpack("!H", _read(t, 2))[0]
                rcode, found, _ = parse_answer(_read(t, size), qid, rtype)
        if rcode not in (0, NXDOMAIN):
            raise DnsError(f"the resolver {server} answered {name} with error {rcode}")
        return found
    raise DnsError(f"the resolver {server} did not answer for {name}")


def _read(sock: socket.socket, n: int) -> bytes:
    data = b""
    while len(data) < n:
        chunk = sock.recv(n - len(data))
        if not chunk:
            raise DnsError("the TCP answer ended early")
        data += chunk
    return data


def txt_strings(rdata: bytes) -> str:
    """A TXT record's character-strings, joined."""
    out, pos = b"", 0
    while pos < len(rdata):
        n = rdata[pos]
        out += rdata[pos + 1:pos + 1 + n]
        pos += 1 + n
    return out.decode("utf-8", "replace")


def tags(text: str) -> dict[str, str]:
    return {k.strip(): v.strip() for k, _, v in (p.partition("=") for p in text.split(";") if p.strip())}


SPF_TERM = re.compile(r"^(?:[+?~-]?(?:all|include:\S+|a(?::\S+)?(?:/\d+)?|mx(?::\S+)?(?:/\d+)?|ptr(?::\S+)?|"
                      r"ip4:[0-9./]+|ip6:[0-9a-fA-F:./]+|exists:\S+)|redirect=\S+|exp=\S+|[A-Za-z][\w.-]*=\S*)$",
                      re.IGNORECASE)


def spf_problems(records: list[str], domain: str, addresses: list[str]) -> list[str]:
    spf = [r for r in records if r.lower().startswith("v=spf1 ") or r.lower() == "v=spf1"]
    if len(spf) != 1:
        return [f"{domain} has {len(spf)} SPF records (receivers need exactly one)"]
    terms = spf[0].split()[1:]
    bad = [t for t in terms if not SPF_TERM.match(t)]
    if bad:
        return [f"the SPF record of {domain} does not parse: {' '.join(bad)}"]
    nets = []
    for t in terms:
        if t.lower().startswith(("ip4:", "+ip4:", "ip6:", "+ip6:")):
            try:
                nets.append(ipaddress.ip_network(t.split(":", 1)[1], strict=False))
            except ValueError:
                return [f"the SPF record of {domain} does not parse: {t}"]
    if any(t.lower().lstrip("+").startswith(("a", "mx", "include:", "redirect=", "exists:", "ptr")) for t in terms):
        return []  # the other mechanisms name addresses through DNS: receivers evaluate those, this check does not
    missing = [a for a in addresses if not any(ipaddress.ip_address(a) in n for n in nets)]
    return [f"the SPF record of {domain} does not list {', '.join(missing)}"] if missing else []


def dmarc_problems(records: list[str], domain: str) -> list[str]:
    dmarc = [r for r in records if r.replace(" ", "").lower().startswith("v=dmarc1")]
    if len(dmarc) != 1:
        return [f"_dmarc.{domain} has {len(dmarc)} DMARC records (receivers need exactly one)"]
    found = tags(dmarc[0])
    if found.get("p", "").lower() not in ("none", "quarantine", "reject"):
        return [f"the DMARC record of {domain} has no valid policy (p=none, quarantine or reject)"]
    return []


def public_key(keyfile: str) -> str:
    """The base64 of the DER public key of a private key file (openssl derives it; nothing secret is printed)."""
    out = subprocess.run(["openssl", "pkey", "-in", keyfile, "-pubout", "-outform", "DER"], capture_output=True,
                         check=True, timeout=30).stdout
    return base64.b64encode(out).decode()


def own_addresses() -> list[str]:
    """The addresses this host sends from: the source address of its default route, IPv4 and IPv6 where it has
    one (a UDP socket's connect sends nothing; it only asks the kernel for the route)."""
    found = []
    for family, target in ((socket.AF_INET, "192.0.2.1"), (socket.AF_INET6, "2001:db8::1")):
        try:
            with socket.socket(family, socket.SOCK_DGRAM) as s:
                s.connect((target, 9))
                found.append(s.getsockname()[0])
        except OSError:
            continue
    return found


def check(domain: str, helo: str, addresses: list[str], dkim: dict[str, str],
          lookup: Callable[[str, int], list[bytes]], key_of: Callable[[str], str] = public_key) -> dict:
    problems: list[str] = []
    checks: dict[str, object] = {}
    helo = helo.lower().rstrip(".")
    for address in addresses:
        reverse = ipaddress.ip_address(address).reverse_pointer
        names = [n.decode().lower().rstrip(".") for n in lookup(reverse, PTR)]
        checks[f"ptr {address}"] = names
        if not names:
            problems.append(f"{address} has no PTR record (reverse DNS): set it to {helo}")
            continue
        rtype = AAAA if ipaddress.ip_address(address).version == 6 else A
        forward = [str(ipaddress.ip_address(r)) for n in names for r in lookup(n, rtype)]
        if address not in forward:
            problems.append(f"{address}'s PTR name {names[0]} does not resolve back to it")
        if helo not in names:
            problems.append(f"the HELO name {helo} is not {address}'s PTR name ({', '.join(names)})")
    for selector, keyfile in sorted(dkim.items()):
        name = f"{selector}._domainkey.{domain}"
        published = [tags(txt_strings(r)).get("p", "").replace(" ", "") for r in lookup(name, TXT)]
        if not published:
            problems.append(f"no DKIM key is published at {name}")
        elif key_of(keyfile) not in published:
            problems.append(f"the DKIM key published at {name} is not the key that signs")
        checks[f"dkim {selector}"] = bool(published)
    problems += spf_problems([txt_strings(r) for r in lookup(domain, TXT)], domain, addresses)
    problems += dmarc_problems([txt_strings(r) for r in lookup(f"_dmarc.{domain}", TXT)], domain)
    return {"checks": checks, "problems": problems}


def main(argv: list[str]) -> int:
    cli = argparse.ArgumentParser(prog="deliverability.py", description=__doc__.splitlines()[0])
    cli.add_argument("--domain", required=True)
    cli.add_argument("--helo", required=True)
    cli.add_argument("--address", action="append", default=[],
                     help="a sending address (repeat for more); none: the source addresses of the default routes")
    cli.add_argument("--dkim", action="append", default=[], metavar="SELECTOR=KEYFILE")
    cli.add_argument("--nameserver", default="")
    args = cli.parse_args(argv)
    server = args.nameserver or nameserver()
    try:
        result = check(args.domain.lower().rstrip("."), args.helo, args.address or own_addresses(),
                       dict(d.split("=", 1) for d in args.dkim if "=" in d),
                       lambda name, rtype: resolve(server, name, rtype))
    except (DnsError, OSError, subprocess.SubprocessError, ValueError) as exc:
        result = {"checks": {}, "problems": [f"deliverability not checked: {exc}"]}
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
