"""The one place that runs ansible-playbook for the lab: `maillab provision`, `maillab demo`, the lab tests and
the benchmarks all come through here, with the repository's ansible.cfg and this virtualenv's Ansible."""

from __future__ import annotations

import importlib.util
import itertools
import json
import os
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from . import repo_root
from .collection import plugin_dir
from .progress import LIVE_INTERVAL, Progress, RunView

# Mitogen (the optional `fast` extra) runs each host's modules in one long-lived Python instead of a new one per
# task: the lab's second site.yml run took half the time with it (benchmarks/results/provision_after.md). The roles
# need only plain ansible-core; SENDMAIL_FLEET_ACCELERATOR=none runs without Mitogen even where it is installed.
ACCELERATOR_ENV = "SENDMAIL_FLEET_ACCELERATOR"
ACCELERATORS = ("mitogen", "none")
MITOGEN_STRATEGY = "mitogen_linear_unpinned"
# With this set to a file, every run through here appends one JSON line to it: the playbook's name, its --limit,
# seconds and exit status; never any other argument (an -e may carry a password). The lab tests set it and sum
# it up at the end: how much of a test session went to playbook runs.
RUN_LOG_ENV = "SENDMAIL_FLEET_RUN_LOG"


def note_run(playbook: str | Path, args: tuple[str, ...], seconds: float, returncode: int | None) -> None:
    path = os.environ.get(RUN_LOG_ENV)
    if not path:
        return
    limit = next((b for a, b in itertools.pairwise(args) if a in ("-l", "--limit")), "")
    limit = limit or next((a.split("=", 1)[1] for a in args if a.startswith("--limit=")), "all")
    entry = {"playbook": Path(str(playbook)).name, "limit": limit, "seconds": round(seconds, 1), "rc": returncode}
    with open(path, "a", encoding="utf-8") as f:
        f.write(json.dumps(entry) + "\n")


def mitogen_strategies() -> Path | None:
    """Mitogen's strategy plugins, or None when it is not installed or turned off."""
    wanted = os.environ.get(ACCELERATOR_ENV, "mitogen")
    if wanted not in ACCELERATORS:
        raise SystemExit(f"{ACCELERATOR_ENV}={wanted!r}: must be one of {', '.join(ACCELERATORS)}")
    spec = importlib.util.find_spec("ansible_mitogen") if wanted == "mitogen" else None
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations))) / "plugins" / "strategy"


def ansible_env(accelerated: bool = True) -> dict[str, str]:
    """The environment for ansible-playbook: this checkout's ansible.cfg, this virtualenv's Ansible and, unless
    accelerated is False (plain ansible-core, for tests of SSH-level behaviour), Mitogen where it is installed."""
    env = dict(os.environ, ANSIBLE_CONFIG=str(repo_root() / "ansible.cfg"))
    env["PATH"] = os.path.dirname(sys.executable) + os.pathsep + env.get("PATH", "")
    if not accelerated:
        if env.get("ANSIBLE_STRATEGY", "").startswith("mitogen"):
            env["ANSIBLE_STRATEGY"] = "linear"
        return env
    strategies = mitogen_strategies()
    if strategies is not None and "ANSIBLE_STRATEGY" not in os.environ:
        # The collection's mitogen_linear_unpinned (plugins/strategy/): Mitogen's mitogen_linear without the CPU
        # pinning that puts all of Ansible's own work on one of two cores; Mitogen's own stays available.
        env["ANSIBLE_STRATEGY_PLUGINS"] = os.pathsep.join([str(plugin_dir("strategy")), str(strategies)])
        env["ANSIBLE_STRATEGY"] = MITOGEN_STRATEGY
    return env


def accelerator() -> str:
    """What the lab's playbooks run with: "mitogen" or "none" (plain ansible-core)."""
    return "mitogen" if ansible_env().get("ANSIBLE_STRATEGY", "").startswith("mitogen") else "none"


def argv(inventory: Path, playbook: str | Path, *args: str) -> list[str]:
    """A playbook name is looked up in playbooks/; a path is used as it is."""
    path = Path(playbook) if os.sep in str(playbook) else repo_root() / "playbooks" / str(playbook)
    return ["ansible-playbook", "-i", str(inventory), str(path), *args]


def run(inventory: Path, playbook: str | Path, *args: str, capture: bool = False,
        env: dict[str, str] | None = None, timeout: float | None = None,
        accelerated: bool = True) -> subprocess.CompletedProcess:
    """Run a playbook; with capture, stdout holds everything Ansible printed (its errors included); with
    accelerated False on plain ansible-core."""
    out = dict(stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) if capture else {}
    t0 = time.monotonic()
    proc = subprocess.run(argv(inventory, playbook, *args), env={**ansible_env(accelerated), **(env or {})},
                          cwd=repo_root(), timeout=timeout, check=False, **out)
    note_run(playbook, args, time.monotonic() - t0, proc.returncode)
    return proc


PROGRESS_CALLBACK = "sendmail_fleet.mail.progress"
KEEP_LOGS = 30  # logs of earlier runs kept in the log folder (the newest)
HEARTBEAT = 60.0  # without a terminal: a line when a phase has run this long without one


@dataclass
class Followed:
    """A run followed by its progress events: its exit status, where its full output is, what the view saw."""
    returncode: int
    log: Path
    view: RunView

    def failure(self, what: str) -> str:
        """The failure told in one place: each failed host with its task and message, then the log's path."""
        lines = [f"{what} failed (ansible-playbook exited {self.returncode})"]
        failed = self.view.failed_hosts()
        for f in failed:
            lines.append(f"  {f.host}: task [{f.task}]")
            lines += [f"    {line}" for line in f.message.strip().splitlines()[-8:]]
        if not failed:
            tail = [line for line in self.log.read_text(errors="replace").splitlines() if line.strip()][-6:]
            lines.append("  no host failed a task; the last lines Ansible printed:")
            lines += [f"    {line}" for line in tail]
        lines.append(f"  full Ansible output: {self.log}")
        return "\n".join(lines)


def log_path(log_dir: Path, playbook: str | Path) -> Path:
    """A new log file for this run (log_dir/NAME-YYYYmmdd-HHMMSS.log); the oldest beyond KEEP_LOGS are removed."""
    log_dir.mkdir(parents=True, exist_ok=True)
    stem = Path(str(playbook)).stem
    old = sorted(log_dir.glob(f"{stem}-*.log"))
    for stale in old[: max(0, len(old) - KEEP_LOGS + 1)]:
        stale.unlink(missing_ok=True)
        stale.with_suffix(".events.jsonl").unlink(missing_ok=True)
    base = log_dir / f"{stem}-{time.strftime('%Y%m%d-%H%M%S')}"
    path, n = base.with_suffix(".log"), 1
    while path.exists():
        n += 1
        path = Path(f"{base}-{n}.log")
    return path


def _callbacks(env: dict[str, str]) -> str:
    enabled = [c for c in env.get("ANSIBLE_CALLBACKS_ENABLED", "").split(",") if c.strip()]
    return ",".join([*enabled, PROGRESS_CALLBACK] if PROGRESS_CALLBACK not in enabled else enabled)


def run_followed(inventory: Path, playbook: str | Path, *args: str, log: Path, progress: Progress,
                 raw: bool = False, accelerated: bool = True) -> Followed:
    """Run a playbook with its whole output in `log` and its progress on `progress`: a line per finished phase,
    a live line on a terminal (or a line a minute when a phase takes long without one). With raw, Ansible's own
    stream is printed as well, as it comes."""
    events = log.with_suffix(".events.jsonl")
    events.write_text("")
    env = ansible_env(accelerated)
    env.update(ANSIBLE_CALLBACKS_ENABLED=_callbacks(env), SENDMAIL_FLEET_EVENTS=str(events))
    view = RunView()
    t0 = time.monotonic()
    with open(log, "w", encoding="utf-8") as out, open(events, "rb") as feed:
        proc = subprocess.Popen(argv(inventory, playbook, *args), env=env, cwd=repo_root(), stdin=subprocess.DEVNULL,
                                stdout=subprocess.PIPE if raw else out, stderr=subprocess.STDOUT, text=True)
        try:
            _follow(proc, out, feed, view, progress, raw)
        finally:  # interrupted or killed: the playbook does not run on behind us
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
            progress.end_live()
            note_run(playbook, args, time.monotonic() - t0, proc.returncode)
    return Followed(proc.returncode, log, view)


def _follow(proc: subprocess.Popen, out: IO[str], feed: IO[bytes], view: RunView, progress: Progress,
            raw: bool) -> None:
    """Until the playbook ends: its events into the view, the view's lines and live line onto progress (and with
    raw, Ansible's stream copied to the screen as well as to `out`)."""
    copier = threading.Thread(target=_tee, args=(proc.stdout, out), daemon=True) if raw else None
    if copier:
        copier.start()
    said, pending = time.monotonic(), b""
    while True:
        done = proc.poll() is not None
        pending += feed.read()
        *lines, pending = pending.split(b"\n")  # whole lines only: a line may be half written
        for line in filter(None, lines):
            for text in view.feed(json.loads(line)):
                progress.say(text)
                said = time.monotonic()
        if done:
            break
        if not progress.tty and not raw and time.monotonic() - said >= HEARTBEAT:
            progress.say(f"  ... {view.live()}")
            said = time.monotonic()
        progress.live(view.live())
        time.sleep(LIVE_INTERVAL / 2)
    if copier:
        copier.join()


def _tee(stream: IO[str], out: IO[str]) -> None:
    for line in stream:
        out.write(line)
        sys.stdout.write(line)
    sys.stdout.flush()
