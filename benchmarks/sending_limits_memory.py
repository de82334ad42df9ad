"""What issue 34 costs a provisioned lab VPS in memory: the sum of its processes' resident sizes with the DKIM signer
(OpenDKIM) and the sending-limit milter both stopped, then the milter alone started, then both, in the same run on
every host with SMTP-Auth; and the milter's own resident size after it counted a message sent by SMTP-Auth. The two
milters are the only resident processes the dkim and sending_limits roles add.

Needs a provisioned lab (`maillab up`, `maillab provision`). Run: .venv/bin/python benchmarks/sending_limits_memory.py
"""

from __future__ import annotations

import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import arguments, write  # noqa: E402
from memory import SUM_RSS, sh  # noqa: E402

from sendmail_fleet.lab import Paths, saved_topology  # noqa: E402
from sendmail_fleet.mailcheck import MailLab, message, token  # noqa: E402
from sendmail_fleet.topology import RELEASES, Node  # noqa: E402
from sendmail_fleet.variants import all_variants  # noqa: E402

UNIT = "sendmail-fleet-limits"
OWN_RSS = f"ps -o rss= -p $(systemctl show -P MainPID {UNIT})"


def measure(lab: MailLab, node: Node) -> tuple[int, int, int, int]:
    """KiB with both milters stopped, with the limit milter alone, with both (no mail moving); the limit milter's own
    KiB after it counted one message sent by SMTP-Auth."""
    sh(node, f"systemctl stop opendkim {UNIT}")
    neither = int(sh(node, SUM_RSS))
    sh(node, f"systemctl start {UNIT}")
    limit_only = int(sh(node, SUM_RSS))
    sh(node, "systemctl start opendkim")
    both = int(sh(node, SUM_RSS))
    alice, carol = node.accounts[0], lab.topo.by_role("mx")[0].accounts[0]
    res = lab.smtp("client1", node, port=587, starttls=True, auth=["PLAIN", alice.user, alice.password],
                   mail_from=alice.address, rcpt=[carol.address], data=message(token(), "memory"))
    if not res.raw["ok"]:
        raise SystemExit(f"{node.short}: the message by SMTP-Auth was refused: {res.summary()}")
    return neither, limit_only, both, int(sh(node, OWN_RSS))


def main() -> None:
    arguments(__doc__)
    topo = saved_topology(Paths.default())
    lab = MailLab(topo)
    nodes = [n for n in topo.by_role("vps") if "smtp_auth" in all_variants()[n.variant or ""].features]
    rows = [(n, *measure(lab, n)) for n in nodes]
    lines = ["| host | Debian | variant | neither milter | limit milter only | both milters | limit milter itself |",
             "|---|---|---|---|---|---|---|"]
    for n, neither, limit_only, both, own in rows:
        lines.append(f"| {n.short} | {RELEASES.get(n.release or '', '?')} | {n.variant} | {neither / 1024:.1f} MiB | "
                     f"{limit_only / 1024:.1f} MiB | {both / 1024:.1f} MiB | {own / 1024:.1f} MiB |")
    mean = [statistics.mean(r[i] for r in rows) / 1024 for i in (1, 2, 3, 4)]
    lines += ["", f"Mean over {len(rows)} hosts with SMTP-Auth: {mean[0]:.1f} MiB with neither milter, {mean[1]:.1f} "
              f"MiB with the sending-limit milter (+{mean[1] - mean[0]:.1f} MiB), {mean[2]:.1f} MiB with it and "
              f"OpenDKIM (+{mean[2] - mean[0]:.1f} MiB, {100 * (mean[2] - mean[0]) / mean[0]:.0f}%, issue 34's whole "
              f"cost). The milter's own resident size after counting a message: {mean[3]:.1f} MiB. The sums are taken "
              "with no mail moving."]
    write("sending_limits_memory", "Memory of a provisioned lab VPS with and without the sending-limit milter and "
          "the DKIM signer", lines)


if __name__ == "__main__":
    main()
