"""What DKIM signing costs a provisioned lab VPS in memory: the sum of its processes' resident sizes with OpenDKIM
running and with it stopped, in the same run on every mail host, and OpenDKIM's own size after it signed a message.
OpenDKIM is the only resident process the dkim role adds (its keys and tables are files).

Needs a provisioned lab (`maillab up`, `maillab provision`). Run: .venv/bin/python benchmarks/dkim_memory.py
"""

from __future__ import annotations

import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import arguments, write  # noqa: E402
from memory import SUM_RSS, sh  # noqa: E402

from sendmail_fleet.lab import Paths, saved_topology  # noqa: E402
from sendmail_fleet.topology import RELEASES, Node  # noqa: E402

SIGNER_RSS = "ps -C opendkim -o rss= | awk '{s += $1} END {print s + 0}'"
SIGN_ONE = "printf 'Subject: memory\\n\\nbody\\n' | /usr/sbin/sendmail -f root@{domain} root"


def measure(node: Node) -> tuple[int, int, int]:
    """(KiB with OpenDKIM stopped, KiB with it running, both with no mail moving; OpenDKIM's own KiB after it signed
    a local message, which loads the key)."""
    sh(node, "systemctl stop opendkim")
    without = int(sh(node, SUM_RSS))
    sh(node, "systemctl start opendkim")
    with_ = int(sh(node, SUM_RSS))
    sh(node, SIGN_ONE.format(domain=node.domain))
    sh(node, "for i in $(seq 50); do mailq | grep -q 'empty' && break; sleep 0.2; done")  # delivered (signed)
    return without, with_, int(sh(node, SIGNER_RSS))


def main() -> None:
    arguments(__doc__)
    topo = saved_topology(Paths.default())
    rows = [(n, *measure(n)) for n in topo.mail_hosts]
    lines = ["| host | Debian | without OpenDKIM | with OpenDKIM | OpenDKIM itself |", "|---|---|---|---|---|"]
    for n, without, with_, signer in rows:
        lines.append(f"| {n.short} | {RELEASES.get(n.release or '', '?')} | {without / 1024:.1f} MiB | "
                     f"{with_ / 1024:.1f} MiB | {signer / 1024:.1f} MiB |")
    without_mean = statistics.mean(r[1] for r in rows) / 1024
    with_mean = statistics.mean(r[2] for r in rows) / 1024
    signer_mean = statistics.mean(r[3] for r in rows) / 1024
    lines += ["", f"Mean over {len(rows)} hosts: {without_mean:.1f} MiB without OpenDKIM, {with_mean:.1f} MiB with it "
              f"(+{with_mean - without_mean:.1f} MiB, {100 * (with_mean - without_mean) / without_mean:.0f}%); "
              f"OpenDKIM's own resident size {signer_mean:.1f} MiB after signing a message (it loads the key then). "
              "Both sums are taken with no mail moving; sending the message also starts sendmail's and, on procmail "
              "hosts, procmail's processes, which end with the delivery."]
    write("dkim_memory", "Memory of a provisioned lab VPS with and without the DKIM signer", lines)


if __name__ == "__main__":
    main()
