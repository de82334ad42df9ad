"""A benchmark reads its command line before it touches anything: most take the lab down first, so `--help` or a
mistyped option must print usage and stop, not start a run (benchmarks/rollout.py once took `--help` for "the
default sizes" and removed the lab under a running test session)."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

from sendmail_fleet import repo_root

BENCHMARKS = repo_root() / "benchmarks"
SCRIPTS = sorted(p for p in BENCHMARKS.glob("*.py") if 'if __name__ == "__main__":' in p.read_text())


def calls_before_the_arguments(path: Path) -> list[str]:
    """What main() calls before it has read its command line (through common.arguments or parse_args), other
    than building the parser itself; ["(never)"] when it does not read it at all."""
    tree = ast.parse(path.read_text())
    main = next(n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == "main")
    before: list[str] = []
    for statement in main.body:
        names = [ast.unparse(c.func) for c in ast.walk(statement) if isinstance(c, ast.Call)]
        if any(n == "arguments" or n.endswith(".parse_args") for n in names):
            return before
        before += [n for n in names if not n.endswith(("ArgumentParser", ".add_argument", ".splitlines"))]
    return ["(never)"]


def test_there_are_benchmark_scripts_to_check():
    assert len(SCRIPTS) >= 10


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.name)
def test_each_benchmark_reads_its_command_line_first_and_help_prints_usage_without_running(script: Path):
    # Checked before running it: a script that does not read its arguments first would start with --help.
    assert calls_before_the_arguments(script) == [], f"{script.name}: main() calls these before reading its arguments"
    # demo.py runs on a fresh machine with the host's python3 (no .venv yet); the others with this virtualenv's.
    run = subprocess.run([sys.executable, str(script), "--help"], capture_output=True, text=True, timeout=60,
                         cwd=repo_root())
    assert run.returncode == 0, run.stderr[-2000:]
    assert run.stdout.startswith(f"usage: {script.name}"), run.stdout[:500]


def test_an_unknown_option_ends_a_benchmark_with_its_usage_before_it_touches_the_lab():
    assert calls_before_the_arguments(BENCHMARKS / "rollout.py") == []  # else the run below would really start
    run = subprocess.run([sys.executable, str(BENCHMARKS / "rollout.py"), "8", "--repat=3"], capture_output=True,
                         text=True, timeout=60, cwd=repo_root())
    assert run.returncode == 2
    assert "unrecognized arguments: --repat=3" in run.stderr
    assert "lab" not in run.stdout  # nothing started: no progress line
