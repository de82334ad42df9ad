"""Find a Docker engine that answers, or install and start Debian's when this host allows it."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path

from docker.errors import DockerException

import docker

from .progress import Progress


class EngineError(RuntimeError):
    pass


def connect(timeout: int = 10) -> docker.DockerClient | None:
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


def _base_image_tools() -> list[str]:
    """A machine with no engine has no images either, so the lab's base images will come from the apt mirror
    (mmdebstrap, images.py) unless MAILLAB_BASE_SOURCE=registry: mmdebstrap then comes in the engine's apt run."""
    from . import images  # images imports this module: the rule on the base's source lives there

    if images.base_source() == "registry" or shutil.which("mmdebstrap"):
        return []
    return ["mmdebstrap"]


def ensure(state_dir: Path, progress: Progress) -> docker.DockerClient:
    client = connect()
    if client:
        return client
    if os.environ.get("DOCKER_HOST"):
        raise EngineError(f"the Docker engine at DOCKER_HOST={os.environ['DOCKER_HOST']} does not answer: "
                          "start it, or unset DOCKER_HOST to use the local one")
    if os.geteuid() != 0 or not is_debian_like():
        raise EngineError("no Docker engine answers: start one (e.g. `sudo systemctl start docker`), "
                          "or run as root on Debian/Ubuntu so maillab can install Debian's docker.io")
    if not shutil.which("dockerd"):
        apt_install(["docker.io", *_base_image_tools()], progress)
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
