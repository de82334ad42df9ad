"""`make demo` on a new machine: scripts/bootstrap.sh --engine installs Docker's engine beside the venv and pip, through
`python3 -m sendmail_fleet.engine install`, where maillab would install it (root, no dockerd); never otherwise.

The bootstrap runs for real in this checkout (its .venv is made, pip has nothing to do) with a python3 that records
the engine's call instead of running apt, and an `id` that says root."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import pytest

from sendmail_fleet import repo_root

FAKE_PY = """#!/bin/sh
if [ "$1" = -m ] && [ "$2" = sendmail_fleet.engine ]; then
  echo "$PYTHONPATH $*" >> "{record}"
  exit {status}
fi
exec "{python}" "$@"
"""


def _bootstrap(tmp_path: Path, *args: str, dockerd: bool = False, status: int = 0) -> tuple[subprocess.CompletedProcess,
                                                                                         list[str]]:
    shims, record = tmp_path / "bin", tmp_path / "calls"
    shims.mkdir(exist_ok=True)
    py = shims / "python3"
    py.write_text(FAKE_PY.format(record=record, status=status, python=sys.executable))
    (shims / "id").write_text("#!/bin/sh\necho 0\n")
    (shims / "apt-get").write_text("#!/bin/sh\nexit 1\n")  # no network: the fail2ban fetch, if due, just fails
    if dockerd:
        (shims / "dockerd").write_text("#!/bin/sh\nexit 0\n")
    for f in shims.iterdir():
        f.chmod(0o755)
    # /usr/sbin (where Debian's dockerd lives) is left out of PATH: the shims say whether there is one.
    env = dict(os.environ, PATH=f"{shims}:/usr/bin:/bin", PYTHON=str(py))
    run = subprocess.run(["scripts/bootstrap.sh", *args], cwd=repo_root(), env=env, capture_output=True, text=True,
                         timeout=120)
    return run, record.read_text().splitlines() if record.exists() else []


@pytest.fixture(autouse=True)
def _settled_checkout():
    stamp = repo_root() / ".venv" / ".sendmail-fleet-installed"
    want = hashlib.sha256((repo_root() / "pyproject.toml").read_bytes()).hexdigest()
    if not stamp.exists() or stamp.read_text().strip() != want:
        pytest.fail("run through scripts/bootstrap.sh (make unit): its .venv must be up to date, or pip would run")


def test_engine_flag_as_root_without_dockerd_installs_the_engine_with_the_standard_library_and_runs_the_command(
        tmp_path):
    run, calls = _bootstrap(tmp_path, "--engine", "sh", "-c", "echo ran")
    assert run.returncode == 0, run.stderr
    assert calls == ["src -m sendmail_fleet.engine install"]
    assert "installing Docker's engine from Debian's packages beside pip" in run.stderr
    assert run.stdout.strip() == "ran"


def test_an_installed_dockerd_or_no_flag_means_no_engine_install(tmp_path):
    run, calls = _bootstrap(tmp_path, "--engine", "true", dockerd=True)
    assert run.returncode == 0, run.stderr
    assert calls == []
    run, calls = _bootstrap(tmp_path, "true")
    assert run.returncode == 0, run.stderr
    assert calls == []


def test_a_failed_engine_install_is_a_warning_and_the_command_still_runs(tmp_path):
    run, calls = _bootstrap(tmp_path, "--engine", "sh", "-c", "echo ran", status=1)
    assert run.returncode == 0, run.stderr
    assert calls == ["src -m sendmail_fleet.engine install"]
    assert "installing Docker's engine failed" in run.stderr and "maillab tries again" in run.stderr
    assert run.stdout.strip() == "ran"


def test_bootstrap_without_a_command_sets_up_and_succeeds(tmp_path):
    # `scripts/bootstrap.sh` alone (the README's set-up line) ended with exit status 1 before: `[ $# -gt 0 ] && exec`.
    run, calls = _bootstrap(tmp_path)
    assert run.returncode == 0, run.stderr
    assert calls == []
