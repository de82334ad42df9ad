"""`maillab`: the lab's command line."""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import subprocess
import sys
from collections.abc import Callable, Sequence
from typing import NoReturn

from . import playbook
from .engine import EngineError
from .lab import LabError, Paths, container, down, publish_dns, save_topology, saved_topology, status, up
from .progress import Progress
from .textable import align
from .topology import DEFAULT_SUBNET, DEFAULT_VPS, MAX_VPS, RELEASES, Topology, TopologyError, parse_release
from .variants import variant_names

COMMANDS = ("up", "down", "status", "ssh", "provision", "demo")


class Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        if "invalid choice" in message and "COMMAND" in message:
            bad = message.split("invalid choice: ")[1].split(" ")[0]
            message = f"unknown command {bad}: choose one of {', '.join(COMMANDS)} (see maillab --help)"
        print(f"{self.prog}: error: {message}", file=sys.stderr)
        raise SystemExit(2)


def _vps_count(text: str) -> int:
    try:
        n = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"--vps takes a whole number from 1 to {MAX_VPS}, not {text!r}") from None
    if not 1 <= n <= MAX_VPS:
        raise argparse.ArgumentTypeError(f"--vps {n} is out of range: choose 1 to {MAX_VPS}")
    return n


def parser() -> Parser:
    p = Parser(prog="maillab", description="The sendmail-fleet lab: a Docker fleet of VPSes that sends real mail.")
    p.add_argument("-v", "--verbose", action="store_true",
                   help="print everything as it comes: image build steps, Ansible's own stream, each mail check")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND", parser_class=Parser)
    u = sub.add_parser("up", help="build what is missing, start or repair the lab")
    u.add_argument("--vps", type=_vps_count,
                   help=f"number of VPS containers (1-{MAX_VPS}; default {DEFAULT_VPS} or as last up)")
    u.add_argument("--subnet", help=f"the lab network's IPv4 subnet (default {DEFAULT_SUBNET} or MAILLAB_SUBNET)")
    u.add_argument("--variant", action="append", default=[], metavar="N=VARIANT",
                   help="give VPS N a variant (repeatable); by default they cycle through the five "
                        "set-up variants, and VPS 11 and 12 run the grace phase")
    u.add_argument("--release", action="append", default=[], metavar="N=RELEASE",
                   help="give VPS N a Debian release: " + ", ".join(f"{c} or {v}" for c, v in RELEASES.items())
                   + " (repeatable); by default VPS 1-5 run 13, VPS 6-10 run 12")
    sub.add_parser("down", help="remove every container, network and volume the lab made")
    s = sub.add_parser("status", help="what runs where")
    s.add_argument("--json", action="store_true", help="print one JSON object")
    sh = sub.add_parser("ssh", help="open a shell (or run a command) on a lab host over SSH")
    sh.add_argument("name", help="vps1, mx, ... (or the container name)")
    sh.add_argument("cmd", nargs=argparse.REMAINDER)
    pr = sub.add_parser("provision", help="run playbooks/site.yml against the lab inventory")
    pr.add_argument("ansible_args", nargs=argparse.REMAINDER, help="extra ansible-playbook arguments")
    d = sub.add_parser("demo", help="the main job: lab up, provisioned, real mail through every variant, a table")
    d.add_argument("--vps", type=_vps_count)
    d.add_argument("--json", metavar="FILE", help="also write the results as JSON to FILE")
    d.add_argument("--skip-provision", action="store_true", help="reuse an already provisioned lab")
    d.add_argument("--only", action="append", default=[], metavar="VPS",
                   help="provision and check only this VPS (repeatable), for example a new one; the others are left alone")
    for sp in (u, d):
        sp.add_argument("-v", "--verbose", action="store_true", default=argparse.SUPPRESS,
                        help="print everything as it comes (as maillab -v)")
    return p


def _variant(name: str) -> str:
    if name not in variant_names():
        raise TopologyError(f"VARIANT is one of {', '.join(variant_names())}")
    return name


def _numbered(flag: str, items: list[str], value: Callable[[str], str]) -> dict[int, str]:
    """`--variant`/`--release` N=VALUE items as {N: value}; a bad one names the option and the choices."""
    out: dict[int, str] = {}
    for item in items:
        n, _, name = item.partition("=")
        try:
            if not n.isdigit():
                raise TopologyError("N is a VPS number")
            out[int(n)] = value(name)
        except TopologyError as exc:
            raise TopologyError(f"{flag} {item!r}: write N={flag[2:].upper()}; {exc}") from None
    return out


def _topology(args: argparse.Namespace, paths: Paths) -> Topology:
    """The lab `up` should make: the saved one, with what this command line changes (choices given before stay)."""
    return saved_topology(paths).changed(getattr(args, "vps", None),
                                         getattr(args, "subnet", None) or os.environ.get("MAILLAB_SUBNET"),
                                         _numbered("--variant", getattr(args, "variant", []) or [], _variant),
                                         _numbered("--release", getattr(args, "release", []) or [], parse_release))


def _table(data: dict) -> str:
    rows = [("NAME", "ROLE", "ADDRESS", "DOMAIN", "DEBIAN", "VARIANT", "STATE")]
    for c in data["containers"]:
        debian = f"{c['debian']} ({c['release']})" if c.get("release") else "-"
        rows.append((c["name"], c["role"], c["address"], c.get("domain") or "-", debian, c.get("variant") or "-",
                     c.get("state", "?")))
    lines = align(rows)
    lines.append("")
    lines.append(f"accounts: {len(data['accounts'])} (maillab status --json lists them with passwords)")
    return "\n".join(lines)


def provision(paths: Paths, extra: Sequence[str], progress: Progress, name: str = "site.yml") -> None:
    """Run a playbook on the lab: a line per phase (Ansible's whole output in a log under .lab/logs, its path
    printed first); with -v, or an ansible-playbook -v/-vvv or --diff among `extra` (output asked for),
    Ansible's stream as well. A failure raises LabError naming each failed host, its task and message, and
    the log."""
    if not paths.inventory.exists():
        raise LabError("no lab inventory: run `maillab up` first")
    raw = progress.verbose or any(re.fullmatch(r"-v+|--verbose|-D|--diff", a) for a in extra)
    log = playbook.log_path(paths.state / "logs", name)
    hosts = len(saved_topology(paths).mail_hosts)
    progress.say(f"full Ansible output: {log}")
    with progress.step(f"provisioning with playbooks/{name} ({hosts} lab hosts{', limited' if _limited(extra) else ''})"):
        run = playbook.run_followed(paths.inventory, name, *extra, log=log, progress=progress, raw=raw)
        if run.returncode != 0:
            raise LabError(run.failure("provisioning"))
        progress.say(f"provisioned: {run.view.summary()}")
    publish_dns(saved_topology(paths), progress)  # the DKIM keys the run made, as an admin publishes the snippets


def _limited(extra: Sequence[str]) -> bool:
    return any(a in ("-l", "--limit") or a.startswith("--limit=") for a in extra)


def run(argv: Sequence[str] | None = None) -> int:
    p = parser()
    args, extra = p.parse_known_args(argv)
    if extra and args.command != "provision":
        p.error(f"unrecognized arguments: {' '.join(extra)}")
    if args.command == "provision":
        args.ansible_args = [*extra, *args.ansible_args]
    paths = Paths.default()
    progress = Progress(verbose=args.verbose)
    if args.command == "up":
        topo = _topology(args, paths)
        up(topo, paths, progress)
        save_topology(paths, topo)
        print(_table(status(topo)))
        return 0
    if args.command == "down":
        n = down(paths, progress)
        print(f"lab removed ({n} objects)")
        return 0
    if args.command == "status":
        data = status(saved_topology(paths))
        print(json.dumps(data, indent=2) if args.json else _table(data))
        return 0
    if args.command == "ssh":
        topo = saved_topology(paths)
        try:
            node = topo.get(args.name)
        except KeyError:
            raise LabError(f"no lab host {args.name!r}: choose one of "
                           f"{', '.join(n.short for n in topo.mail_hosts)}") from None
        container(node.name)
        ssh = ["ssh", "-i", str(paths.key), "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
               "-o", "LogLevel=ERROR", f"root@{node.address}", *args.cmd]
        return subprocess.run(ssh).returncode
    if args.command == "provision":
        provision(paths, args.ansible_args, progress)
        return 0
    if args.command == "demo":
        from .demo import demo
        return demo(paths, progress, provision, args.vps, args.json, args.skip_provision, args.only)
    raise AssertionError(args.command)


def _terminated(signum: int, frame: object) -> NoReturn:
    """SIGTERM ends maillab through its clean-up (a playbook it runs is stopped too), as Ctrl-C does."""
    raise SystemExit(128 + signum)


def main(argv: Sequence[str] | None = None) -> None:
    signal.signal(signal.SIGTERM, _terminated)
    try:
        code = run(argv)
    except (LabError, EngineError, TopologyError) as exc:
        print(f"maillab: error: {exc}", file=sys.stderr)
        code = 1
    except KeyboardInterrupt:
        code = 130
    raise SystemExit(code)
