"""Find a Docker engine that answers, or install and start Debian's when this host allows it.

Only the standard library until an engine is asked for (the Docker SDK is imported in `connect`): the bootstrap runs
`python3 -m sendmail_fleet.engine install` beside pip, before .venv has the SDK.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

from .progress import Progress

if TYPE_CHECKING:
    import docker


class EngineError(RuntimeError):
    pass


def connect(timeout: int = 10) -> docker.DockerClient | None:
    from docker.errors import DockerException

    import docker

    try:
        client = docker.from_env(timeout=timeout)
        client.ping()
        return client
    except (DockerException, OSError):
        return None


def is_debian_like() -> bool:
    try:
        text = Path("/etc/os-release").read_text()
    except OSError:
        return False
    return any(f"{k}=debian" in text or f"{k}=ubuntu" in text or f'{k}="debian' in text
               for k in ("ID", "ID_LIKE"))


def apt_install(packages: list[str], progress: Progress) -> None:
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    with progress.step(f"apt-get install {' '.join(packages)}"):
        for argv in (["apt-get", "update", "-qq"], ["apt-get", "install", "-y", "-qq", *packages]):
            run = subprocess.run(argv, env=env, capture_output=True, text=True)
            if run.returncode != 0:
                raise EngineError(f"{' '.join(argv)} failed: {run.stderr.strip().splitlines()[-1:]}")


def base_source() -> str:
    """Where the base images come from, as the user chose it: MAILLAB_BASE_SOURCE, checked (auto by default)."""
    choice = os.environ.get("MAILLAB_BASE_SOURCE", "auto")
    if choice not in ("auto", "registry", "mirror"):
        raise EngineError(f"MAILLAB_BASE_SOURCE={choice!r}: choose auto, registry or mirror")
    return choice


def _base_image_tools() -> list[str]:
    """A machine with no engine has no images either, so the lab's base images will come from the apt mirror
    (mmdebstrap, images.py) unless MAILLAB_BASE_SOURCE=registry: mmdebstrap then comes in the engine's apt run."""
    if base_source() == "registry" or shutil.which("mmdebstrap"):
        return []
    return ["mmdebstrap"]


def may_install() -> bool:
    """Whether maillab installs Debian's engine here: root on Debian or Ubuntu, no DOCKER_HOST of the user's."""
    return not os.environ.get("DOCKER_HOST") and os.geteuid() == 0 and is_debian_like()


def install(progress: Progress) -> None:
    """The engine's packages (and the base images' tool) in one apt run, where no dockerd is installed and
    maillab may install it; nothing otherwise."""
    if may_install() and not shutil.which("dockerd"):
        apt_install(["docker.io", *_base_image_tools()], progress)


def ensure(state_dir: Path, progress: Progress) -> docker.DockerClient:
    client = connect()
    if client:
        return client
    if os.environ.get("DOCKER_HOST"):
        raise EngineError(f"the Docker engine at DOCKER_HOST={os.environ['DOCKER_HOST']} does not answer: "
                          "start it, or unset DOCKER_HOST to use the local one")
    if not may_install():
        raise EngineError("no Docker engine answers: start one (e.g. `sudo systemctl start docker`), "
                          "or run as root on Debian/Ubuntu so maillab can install Debian's docker.io")
    install(progress)
    state_dir.mkdir(parents=True, exist_ok=True)
    log = state_dir / "dockerd.log"
    with progress.step(f"starting dockerd in the background (log: {log})"):
        with open(log, "ab") as out:
            subprocess.Popen(["dockerd"], stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                             start_new_session=True)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            client = connect(timeout=5)
            if client:
                return client
            time.sleep(0.5)
    raise EngineError(f"dockerd did not answer within 60 s: see {log}")


def main(argv: list[str]) -> int:
    """`python3 -m sendmail_fleet.engine install`: only the engine's packages, as `ensure` would install them."""
    if argv != ["install"]:
        print("usage: python3 -m sendmail_fleet.engine install", file=sys.stderr)
        return 2
    try:
        install(Progress())
    except EngineError as exc:
        print(f"engine install: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
