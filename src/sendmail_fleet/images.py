"""Lab images, tagged by a hash of their recipe so a second `up` reuses them.

The base root file system comes from the host's own apt mirror (mmdebstrap + docker import) because
no registry may answer; where `debian:RELEASE` is already present or MAILLAB_BASE_SOURCE=registry,
the official image is used instead. Derived images (vps, dns, acme, client) are `docker build`s on top.
Mail hosts come in each Debian release the topology asks for (`maillab-vps-trixie`, `maillab-vps-bookworm`);
the DNS server, the ACME CA and the clients are test equipment and run Debian 12.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TypeVar

from docker.errors import BuildError, ImageNotFound

import docker

from . import repo_root
from .engine import EngineError, apt_install, base_source
from .mirror import detect
from .progress import Progress
from .topology import RELEASES

DOCKER_DIR = repo_root() / "docker"
LABEL = "sendmail-fleet.lab"
EQUIPMENT_RELEASE = "bookworm"  # the release of the DNS server and the clients
T = TypeVar("T")
R = TypeVar("R")


def base_packages() -> list[str]:
    lines = (DOCKER_DIR / "base" / "packages.txt").read_text().splitlines()
    return [ln.strip() for ln in lines if ln.strip() and not ln.startswith("#")]


def _hash_dir(h: hashlib._Hash, path: Path) -> None:
    for f in sorted(p for p in path.rglob("*") if p.is_file()):
        h.update(f.relative_to(path).as_posix().encode() + b"\0" + f.read_bytes() + b"\0")


def recipe_hash(name: str, release: str = EQUIPMENT_RELEASE) -> str:
    h = hashlib.sha256(f"debian-{RELEASES[release]}\0".encode())
    _hash_dir(h, DOCKER_DIR / "base")
    if name != "base":
        _hash_dir(h, DOCKER_DIR / name)
    return h.hexdigest()[:12]


def tag(name: str, release: str = EQUIPMENT_RELEASE) -> str:
    return f"maillab-{name}-{release}:{recipe_hash(name, release)}"


def _exists(client: docker.DockerClient, ref: str) -> bool:
    try:
        client.images.get(ref)
        return True
    except ImageNotFound:
        return False


def _base_from_registry(client: docker.DockerClient, release: str) -> bool:
    choice = base_source()
    return choice == "registry" or (choice == "auto" and _exists(client, f"debian:{release}"))


def _build(client: docker.DockerClient, path: Path, ref: str, progress: Progress,
           dockerfile: str = "Dockerfile", buildargs: dict[str, str] | None = None) -> None:
    last = ""
    try:
        for chunk in client.api.build(path=str(path), dockerfile=dockerfile, tag=ref, rm=True,
                                      forcerm=True, buildargs=buildargs or {}, decode=True,
                                      labels={LABEL: "image"}):
            if "error" in chunk:
                raise EngineError(f"building {ref} failed: {chunk['error'].strip()}")
            line = chunk.get("stream", "").strip()
            if line.startswith("Step "):
                progress.detail(f"  {ref}: {line}")
            if line:
                last = line
    except BuildError as exc:
        raise EngineError(f"building {ref} failed: {exc}") from exc
    if not _exists(client, ref):
        raise EngineError(f"building {ref} produced no image (last output: {last})")


def _ensure_mmdebstrap(progress: Progress) -> None:
    if not shutil.which("mmdebstrap"):
        if os.geteuid() != 0:
            raise EngineError("mmdebstrap is missing: install it (apt-get install mmdebstrap) or set "
                              "MAILLAB_BASE_SOURCE=registry where a registry is reachable")
        apt_install(["mmdebstrap"], progress)


def _base_from_mirror(client: docker.DockerClient, ref: str, release: str, progress: Progress) -> None:
    _ensure_mmdebstrap(progress)
    mirrors = detect()
    with tempfile.TemporaryDirectory(prefix="maillab-") as tmp:
        out = Path(tmp) / "rootfs.tar"
        argv = ["mmdebstrap", "--variant=minbase", "--include=" + ",".join(base_packages()),
                # dpkg as in the official debian image (docker/base/dpkg.cfg), for the build and in the image
                f"--dpkgopt={DOCKER_DIR / 'base' / 'dpkg.cfg'}",
                # The lab may use a snapshot mirror whose Release files are past their Valid-Until.
                "--aptopt=Acquire::Check-Valid-Until \"false\"",
                release, str(out), *mirrors.source_lines(release)]
        with progress.step(f"mmdebstrap: Debian {RELEASES[release]} root file system from {mirrors.main}"):
            run = subprocess.run(argv, capture_output=True, text=True)
            if run.returncode != 0:
                tail = "\n".join(run.stderr.strip().splitlines()[-5:])
                raise EngineError(f"mmdebstrap failed (exit {run.returncode}):\n{tail}")
        with progress.step(f"docker import {ref}"), open(out, "rb") as fh:
            client.api.import_image_from_data(fh.read(), repository=ref.split(":")[0],
                                              tag=ref.split(":")[1],
                                              changes=[f"LABEL {LABEL}=image", 'CMD ["/bin/bash"]'])


def ensure_base(client: docker.DockerClient, progress: Progress, release: str = EQUIPMENT_RELEASE) -> str:
    ref = tag("base", release)
    if _exists(client, ref):
        return ref
    if _base_from_registry(client, release):
        with progress.step(f"building {ref} from debian:{release}"):
            _build(client, DOCKER_DIR / "base", ref, progress, "Dockerfile.registry",
                   {"PACKAGES": " ".join(base_packages()), "RELEASE": release})
    else:
        _base_from_mirror(client, ref, release, progress)
    return ref


def wanted(releases: list[str]) -> list[tuple[str, str]]:
    """(image, release) pairs a lab needs: a VPS image per release its mail hosts run; DNS, the ACME CA and the
    clients on one."""
    return [("vps", r) for r in releases] + [(n, EQUIPMENT_RELEASE) for n in ("dns", "acme", "client")]


def all_at_once(jobs: Sequence[T], run: Callable[[T], R], most: int | None = None) -> list[R]:
    """run(job) for every job, each in its own thread, at most `most` at a time (all by default: the work is mostly
    downloads, dpkg and the engine's own); the first error is raised once every job has ended."""
    if len(jobs) <= 1:
        return [run(j) for j in jobs]
    with ThreadPoolExecutor(max_workers=min(len(jobs), most or len(jobs))) as pool:
        futures = [pool.submit(run, j) for j in jobs]
    return [f.result() for f in futures]  # every job has ended here (leaving `with` waits for them)


def ensure_all(client: docker.DockerClient, progress: Progress, releases: list[str]) -> dict[str, str]:
    """Every image the lab needs, built where missing; keys: vps-<release>, dns, acme, client. The base images of
    the releases are made at the same time, then every missing image on top of them at the same time (one after
    another took 65.1 s on a new machine here, at the same time 37.8 s: mmdebstrap 18 s for Debian 13, 23 s for 12)."""
    refs = {pair: tag(*pair) for pair in wanted(releases)}  # each tag hashes its recipe's files: once per image
    missing = [pair for pair, ref in refs.items() if not _exists(client, ref)]
    bases = sorted({release for _, release in missing})
    if any(not _exists(client, tag("base", r)) and not _base_from_registry(client, r) for r in bases):
        _ensure_mmdebstrap(progress)  # once, before the threads: two apt-get runs at once would fight for dpkg's lock
    made = dict(zip(bases, all_at_once(bases, lambda r: ensure_base(client, progress, r)), strict=True))

    def build(pair: tuple[str, str]) -> None:
        name, release = pair
        with progress.step(f"building image {refs[pair]}"):
            _build(client, DOCKER_DIR / name, refs[pair], progress, buildargs={"BASE": made[release]})

    all_at_once(missing, build)
    return {f"vps-{release}" if name == "vps" else name: ref for (name, release), ref in refs.items()}
