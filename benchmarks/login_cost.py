"""What a mailbox login costs at two sha512-crypt round counts (mail_users_password_rounds), on a provisioned lab.

On the first default-auth-only VPS, alice's shadow hash is set (usermod -p, the mail_users role's own salt) to the
hash of her password at each count in turn, rounds alternating; each round, inside client1 (so docker exec is not
counted): N SMTP sessions on 587 (STARTTLS, AUTH PLAIN, QUIT), N POP3 logins (STLS, USER/PASS, QUIT) and N SMTP
sessions with a wrong password (smtplib tries PLAIN, then LOGIN: two failed logins, each with pam_unix's fixed
delay). The whole machine's CPU seconds over each set are read from /proc/stat. Afterwards alice's hash is put back
as it was.
Run: .venv/bin/python benchmarks/login_cost.py [--rounds 656000 5000] [--logins 20] [--repeat 3]
"""

from __future__ import annotations

import json
import shlex
import statistics
import sys
from pathlib import Path

import docker

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import arguments, write  # noqa: E402

from sendmail_fleet.lab import Paths, saved_topology, shadow_hash  # noqa: E402

# Runs in client1: N logins of one kind, each timed; the machine's CPU seconds (all cores) over the set.
CLIENT_LOOP = r'''
import json, poplib, smtplib, ssl, sys, time
kind, server, user, password, n = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5])
ctx = ssl.create_default_context()  # verified: the lab's clients trust its CAs
def cpu():
    f = [float(x) for x in open("/proc/stat").readline().split()[1:9]]
    return (sum(f) - f[3] - f[4]) / 100.0  # busy jiffies (USER_HZ 100) as seconds
times, refused, c0 = [], 0, cpu()
for _ in range(n):
    t0 = time.monotonic()
    if kind == "pop3":
        p = poplib.POP3(server, 110, timeout=30); p.stls(context=ctx); p.user(user); p.pass_(password); p.quit()
    else:
        s = smtplib.SMTP(server, 587, timeout=30); s.ehlo("bench"); s.starttls(context=ctx); s.ehlo("bench")
        try:
            s.login(user, password)
        except smtplib.SMTPAuthenticationError:
            refused += 1
        s.quit()
    times.append(time.monotonic() - t0)
print(json.dumps({"times": times, "refused": refused, "cpu": cpu() - c0}))
'''
KINDS = (("smtp-auth", True), ("pop3", True), ("smtp-auth wrong password", False))


def options(parser) -> None:
    parser.add_argument("--rounds", type=int, nargs=2, default=[656000, 5000], metavar="N",
                        help="the two round counts to compare (default: the role's 656000 and the lab's 5000)")
    parser.add_argument("--logins", type=int, default=20, help="logins of each kind per round (default 20)")
    parser.add_argument("--repeat", type=int, default=3, help="rounds, the two counts alternating (default 3)")


def main() -> None:
    args = arguments(__doc__, options)
    topo = saved_topology(Paths.default())
    client = docker.from_env()
    vps = next(n for n in topo.by_role("vps") if n.variant == "default-auth-only")
    alice = vps.accounts[0]
    server, c1 = client.containers.get(vps.name), client.containers.get(topo.get("client1").name)
    res = server.exec_run(["getent", "shadow", alice.user])
    assert res.exit_code == 0, res.output
    original = res.output.decode().split(":")[1]
    hashes = {r: shadow_hash(alice.user, vps.short, alice.password, r) for r in args.rounds}
    seen: dict[tuple[int, str], list[dict]] = {}
    try:
        for rnd in range(args.repeat):
            for rounds in args.rounds if rnd % 2 == 0 else reversed(args.rounds):
                set_hash = f"usermod -p {shlex.quote(hashes[rounds])} {alice.user}"
                assert server.exec_run(["sh", "-c", set_hash]).exit_code == 0
                for kind, right in KINDS:
                    password = alice.password if right else "not-" + alice.password
                    out = c1.exec_run(["python3", "-c", CLIENT_LOOP, "pop3" if kind == "pop3" else "smtp",
                                       vps.fqdn, alice.user, password, str(args.logins)])
                    assert out.exit_code == 0, out.output.decode(errors="replace")[-2000:]
                    got = json.loads(out.output.decode().strip().splitlines()[-1])
                    assert got["refused"] == (0 if right else args.logins), (kind, rounds, got)
                    seen.setdefault((rounds, kind), []).append(got)
                    print(f"round {rnd + 1}, {rounds} rounds, {kind}: {statistics.median(got['times']) * 1000:.0f} ms")
    finally:
        server.exec_run(["sh", "-c", f"usermod -p {shlex.quote(original)} {alice.user}"])
    rows = ["| rounds | login | median per login (ms) | machine CPU per login (ms) | logins |", "|---|---|---|---|---|"]
    per: dict[tuple[int, str], tuple[float, float]] = {}
    for (rounds, kind), sets in seen.items():
        times = [t for s in sets for t in s["times"]]
        cpu = sum(s["cpu"] for s in sets) / len(times)
        per[(rounds, kind)] = (statistics.median(times), cpu)
        rows.append(f"| {rounds} | {kind} | {statistics.median(times) * 1000:.0f} | {cpu * 1000:.0f} | {len(times)} |")
    hi, lo = args.rounds
    rows += ["", f"{hi} / {lo} rounds, same run (medians per login; CPU of the whole machine, both cores):", ""]
    for kind, _ in KINDS:
        (t_hi, c_hi), (t_lo, c_lo) = per[(hi, kind)], per[(lo, kind)]
        rows.append(f"- {kind}: {t_hi * 1000:.0f} ms against {t_lo * 1000:.0f} ms ({t_hi / t_lo:.2f}x); "
                    f"CPU {c_hi * 1000:.0f} ms against {c_lo * 1000:.0f} ms")
    rows += ["", f"VPS {vps.short} ({vps.variant}, Debian {vps.release}), account {alice.user}; its hash was put back "
             "afterwards. A wrong-password session is two failed logins (smtplib tries PLAIN, then LOGIN), each with "
             "pam_unix's fixed delay after a failure."]
    write("login_cost", "What a mailbox login costs at two sha512-crypt round counts", rows)


if __name__ == "__main__":
    main()
