"""A second site.yml run (one that changes nothing) of two commits on the same provisioned lab, alternating, so the
machine's noise falls on both alike: does a refactoring make the everyday run slower?

Each commit is checked out into its own git worktree (with its own .collections link, so its plugins are the ones
Ansible loads) and runs the lab's inventory from there. A run that changes anything, or fails, ends the benchmark:
then the two commits do not configure the hosts alike and their times say nothing.
Run: .venv/bin/python benchmarks/second_run.py BEFORE AFTER [ROUNDS] [LABEL] [mitogen] [--settle]
(results: second_run_LABEL.md)
Plain ansible-core over SSH by default (what `ansible-playbook` does with the project's ansible.cfg); `mitogen` runs
with the collection's Mitogen strategy, as `maillab provision` does. --settle: for two commits that deploy a file
differently (a helper's code), each measured run comes after an unmeasured run of the same commit, which puts its
own files back; the measured run must still change nothing.
"""

from __future__ import annotations

import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import arguments, cpu_used, write  # noqa: E402

from sendmail_fleet import repo_root  # noqa: E402
from sendmail_fleet.collection import plugin_dir  # noqa: E402
from sendmail_fleet.lab import Paths  # noqa: E402
from sendmail_fleet.playbook import ansible_env  # noqa: E402


def worktree(ref: str, where: Path) -> Path:
    tree = where / ref
    subprocess.run(["git", "-C", str(repo_root()), "worktree", "add", "--detach", str(tree), ref], check=True,
                   capture_output=True)
    link = tree / ".collections" / "ansible_collections" / "sendmail_fleet"
    link.mkdir(parents=True)
    (link / "mail").symlink_to(tree)
    return tree


def run(tree: Path, inventory: Path, warm_up: bool = False, mitogen: bool = False) -> tuple[float, float]:
    """One site.yml run from the tree: (wall seconds, the controller's CPU seconds)."""
    playbook = repo_root() / ".venv" / "bin" / "ansible-playbook"
    t0 = time.monotonic()
    env = {"PATH": f"{playbook.parent}:/usr/bin:/bin", "HOME": "/root"}
    if mitogen:  # the collection's Mitogen strategy, as maillab provision runs it: the tree's own strategy file
        env.update({k: v for k, v in ansible_env().items() if k in ("ANSIBLE_STRATEGY", "ANSIBLE_STRATEGY_PLUGINS")})
        if str(plugin_dir("strategy")) not in env["ANSIBLE_STRATEGY_PLUGINS"]:
            raise SystemExit(f"the strategy path {env['ANSIBLE_STRATEGY_PLUGINS']} does not name this checkout's")
        env["ANSIBLE_STRATEGY_PLUGINS"] = env["ANSIBLE_STRATEGY_PLUGINS"].replace(
            str(plugin_dir("strategy")), str(tree / "plugins" / "strategy"))
    env["ANSIBLE_CONFIG"] = str(tree / "ansible.cfg")
    with cpu_used() as cpu:  # the controller's: ansible-playbook and the processes it waited for
        done = subprocess.run([str(playbook), "-i", str(inventory), "playbooks/site.yml"], cwd=tree,
                              capture_output=True, text=True, env=env)
    took = time.monotonic() - t0
    changed = [int(n) for n in re.findall(r"changed=(\d+)", done.stdout)]
    if done.returncode != 0 or (any(changed) and not warm_up):
        raise SystemExit(f"{tree.name}: exit {done.returncode}, changed {changed}:\n{done.stdout[-3000:]}")
    return took, cpu[0].controller


def main() -> None:
    args = arguments(__doc__, lambda p: (
        p.add_argument("before", help="git ref of the tree measured first"),
        p.add_argument("after", help="git ref of the tree measured against it"),
        p.add_argument("rounds", nargs="?", type=int, default=3, help="runs of each tree, alternating"),
        p.add_argument("label", nargs="?", default="refactor", help="names the results file (second_run_LABEL.md)"),
        p.add_argument("accelerator", nargs="?", choices=["mitogen"], help="mitogen: run with Mitogen"),
        p.add_argument("--settle", action="store_true",
                       help="an unmeasured run of the same commit before each measured one")))
    before, after, rounds, label = args.before, args.after, args.rounds, args.label
    mitogen = args.accelerator == "mitogen"
    inventory = Paths.default().inventory
    times: dict[str, list[float]] = {before: [], after: []}
    cpus: dict[str, list[float]] = {before: [], after: []}
    with tempfile.TemporaryDirectory(prefix="second-run-") as tmp:
        trees = {ref: worktree(ref, Path(tmp)) for ref in (before, after)}
        try:
            for tree in trees.values():  # warm-up: SSH masters, page cache, each tree's reports/ on the controller
                run(tree, inventory, warm_up=True, mitogen=mitogen)
            for i in range(rounds):
                for ref in ((before, after) if i % 2 == 0 else (after, before)):
                    if args.settle:
                        run(trees[ref], inventory, warm_up=True, mitogen=mitogen)
                    took, cpu = run(trees[ref], inventory, mitogen=mitogen)
                    times[ref].append(took)
                    cpus[ref].append(cpu)
                    print(f"round {i + 1}: {ref} {took:.1f} s, controller CPU {cpu:.1f} s", flush=True)
        finally:
            for tree in trees.values():
                subprocess.run(["git", "-C", str(repo_root()), "worktree", "remove", "--force", str(tree)],
                               capture_output=True)
    med = {ref: statistics.median(v) for ref, v in times.items()}
    med_cpu = {ref: statistics.median(v) for ref, v in cpus.items()}
    write(f"second_run_{label}", f"Second site.yml run (changes nothing), {before} against {after}, same lab", [
        f"The lab as it runs ({inventory}), each commit from its own worktree, {rounds} rounds alternating "
        "(the first round before first), after a warm-up run of each (which writes its own reports/ on the controller)"
        + (", and each measured run after an unmeasured run of the same commit (the two deploy some file differently)"
           if args.settle else "") + ". "
        "Every measured run changed nothing. "
        + ("With the collection's Mitogen strategy, as `maillab provision` runs." if mitogen else
           "Plain ansible-core over SSH (no Mitogen: the slowest way the roles run; `maillab provision` runs with "
           "Mitogen, about 2.5x faster on this lab)."), "",
        "Controller CPU: user and system seconds of the ansible-playbook process and every process it started and "
        "waited for (its workers, Mitogen's), from getrusage; the hosts' own work is not in it.", "",
        "| commit | runs (s) | median (s) | controller CPU (s) | median CPU (s) |", "|---|---|---|---|---|",
        *(f"| {ref} | {', '.join(f'{t:.1f}' for t in v)} | {med[ref]:.1f} | "
          f"{', '.join(f'{c:.1f}' for c in cpus[ref])} | {med_cpu[ref]:.1f} |" for ref, v in times.items()), "",
        f"after / before (medians): wall {med[after] / med[before]:.2f}, controller CPU "
        f"{med_cpu[after] / med_cpu[before]:.2f}",
    ])


if __name__ == "__main__":
    main()
