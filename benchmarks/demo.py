"""`make demo` from a new clone, timed as a new user meets it, with the phases it printed.

Run it with the host's python3 (standard library only: on a fresh machine there is no .venv yet):
    python3 benchmarks/demo.py LABEL              clones HEAD into a temporary folder, runs `make demo` there
    python3 benchmarks/demo.py LABEL --from FILE  the same table from the saved output of such a run
                                                  (FILE's first line: "# started <unix time> state: <text>")
It writes benchmarks/results/demo_LABEL.md (the whole output goes to .lab/demo_LABEL.out, not committed).
It takes its clone's lab down and removes nothing else: for "a fresh machine" take away the Docker engine,
its images and the apt cache first (the results file records what was there: engine answering, lab images).
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
RESULTS = REPO / "benchmarks" / "results"
# A phase line of maillab: "[  12.6s] apt-get install docker.io: done in 12.6s" (and "...: done in 169.4s").
DONE = re.compile(r"^\[\s*(?P<at>[0-9.]+)s\] (?P<what>.+?): done in (?P<took>[0-9.]+)s$")
PASSED = re.compile(r"^(?P<n>\d+) passed, (?P<failed>\d+) failed")
# maillab names the apt mirror it read from the host; a results file names none.
MIRROR = re.compile(r"(root file system from )\S+")


def machine_state() -> str:
    """What a run starts from: does a Docker engine answer, and how many of the lab's images are there."""
    docker = shutil.which("docker")
    if not docker:
        return "no docker client"
    info = subprocess.run([docker, "info", "--format", "{{.ServerVersion}}"], capture_output=True, text=True,
                          timeout=30)
    if info.returncode != 0:
        return "no Docker engine answering (no images)"
    images = subprocess.run([docker, "images", "--format", "{{.Repository}}"], capture_output=True, text=True,
                            timeout=30).stdout.split()
    lab = [i for i in images if i.startswith("maillab-")]
    return f"Docker engine {info.stdout.strip()} answering, {len(lab)} lab images present"


def run_demo() -> tuple[str, list[str]]:
    """`make demo` in a new clone of HEAD; its output lines, and the state the machine was in before."""
    state = machine_state()
    with tempfile.TemporaryDirectory(prefix="demo-clone-") as tmp:
        clone = Path(tmp) / "sendmail-fleet"
        subprocess.run(["git", "clone", "-q", str(REPO), str(clone)], check=True)
        started = time.time()
        lines = [f"# started {started:.1f} state: {state}"]
        with subprocess.Popen(["make", "demo"], cwd=clone, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                              text=True) as proc:
            assert proc.stdout is not None
            for line in proc.stdout:
                print(line, end="", flush=True)
                lines.append(line.rstrip("\n"))
        lines.append(f"# ended {time.time():.1f} exit {proc.returncode}")
        subprocess.run(["make", "down"], cwd=clone, capture_output=True)  # the clone's lab goes with the clone
    return state, lines


def table(lines: list[str]) -> list[str]:
    """The results file's body: total wall time, exit status, mail checks, and every phase with its duration."""
    head = re.match(r"# started (?P<t>[0-9.]+) state: (?P<state>.*)$", lines[0])
    tail = re.match(r"# ended (?P<t>[0-9.]+) exit (?P<rc>-?\d+)$", lines[-1])
    if not head or not tail:
        raise SystemExit("not the output of benchmarks/demo.py: its first and last lines are missing")
    total = float(tail["t"]) - float(head["t"])
    passed = next((m for m in map(PASSED.match, lines) if m), None)
    out = [f"Started from: {head['state']}.", "",
           "| measure | value |", "|---|---|",
           f"| `make demo`, new clone, wall time (set-up of .venv included) | {total:.1f} s ({total / 60:.1f} min) |",
           f"| exit status | {tail['rc']} |",
           f"| mail checks | {passed['n'] + ' passed, ' + passed['failed'] + ' failed' if passed else 'no table'} |",
           "", "Phases (maillab's own lines; its clock starts once .venv exists):", "",
           "| at s | phase | took s |", "|---|---|---|"]
    for m in filter(None, map(DONE.match, lines)):
        what = MIRROR.sub(r"\1the host's apt mirror", m["what"])
        out.append(f"| {float(m['at']):.1f} | {what} | {float(m['took']):.1f} |")
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("label")
    ap.add_argument("--from", dest="source", type=Path, help="the saved output of an earlier run")
    args = ap.parse_args()
    if args.source:
        lines = args.source.read_text().splitlines()
    else:
        _, lines = run_demo()
        saved = REPO / ".lab" / f"demo_{args.label}.out"  # not committed: it names the apt mirror
        saved.parent.mkdir(exist_ok=True)
        saved.write_text("\n".join(lines) + "\n")
    when = dt.datetime.fromtimestamp(float(lines[0].split()[2]), dt.timezone.utc)
    text = [f"# `make demo` from a new clone ({args.label})", "",
            f"Measured {when:%Y-%m-%d %H:%M} UTC on {platform.node() or 'host'}: {os.cpu_count()} cores, "
            f"Python {platform.python_version()} (the host's).", "", *table(lines)]
    path = RESULTS / f"demo_{args.label}.md"
    path.write_text("\n".join(text) + "\n")
    print("\n".join(text))
    if lines[-1].split()[-1] != "0":
        sys.exit(1)


if __name__ == "__main__":
    main()
