"""Lab images, tagged by a hash of their recipe so a second `up` reuses them.

The base root file system comes from the host's own apt mirror (mmdebstrap + docker import) because
no registry may answer; where `debian:bookworm` is already present or MAILLAB_BASE_SOURCE=registry,
the official image is used instead. Derived images (vps, dns, client) are `docker build`s on top.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from docker.errors import BuildError, ImageNotFound

import docker

from . import repo_root
from .engine import EngineError, apt_install
from .mirror import detect
from .progress import Progress

DOCKER_DIR = repo_root() / "docker"
DERIVED = ("vps", "dns", "client")
LABEL = "sendmail-fleet.lab"


def base_packages() -> list[str]:
    lines = (DOCKER_DIR / "base" / "packages.txt").read_text().splitlines()
    return [ln.strip() for ln in lines if ln.strip() and not ln.startswith("#")]


def _hash_dir(h: hashlib._Hash, path: Path) -> None:
    for f in sorted(p for p in path.rglob("*") if p.is_file()):
        h.update(f.relative_to(path).as_posix().encode() + b"\0" + f.read_bytes() + b"\0")


def recipe_hash(name: str) -> str:
    h = hashlib.sha256(b"debian-12\0")
    _hash_dir(h, DOCKER_DIR / "base")
    if name != "base":
        _hash_dir(h, DOCKER_DIR / name)
    return h.hexdigest()[:12]


def tag(name: str) -> str:
    return f"maillab-{name}:{recipe_hash(name)}"


def _exists(client: docker.DockerClient, ref: str) -> bool:
    try:
        client.images.get(ref)
        return True
    except ImageNotFound:
        return False


def _base_from_registry(client: docker.DockerClient) -> bool:
    choice = os.environ.get("MAILLAB_BASE_SOURCE", "auto")
    if choice not in ("auto", "registry", "mirror"):
        raise EngineError(f"MAILLAB_BASE_SOURCE={choice!r}: choose auto, registry or mirror")
    return choice == "registry" or (choice == "auto" and _exists(client, "debian:bookworm"))


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
                progress.say(f"  {ref}: {line}")
            if line:
                last = line
    except BuildError as exc:
        raise EngineError(f"building {ref} failed: {exc}") from exc
    if not _exists(client, ref):
        raise EngineError(f"building {ref} produced no image (last output: {last})")


def _base_from_mirror(client: docker.DockerClient, ref: str, progress: Progress) -> None:
    if not shutil.which("mmdebstrap"):
        if os.geteuid() != 0:
            raise EngineError("mmdebstrap is missing: install it (apt-get install mmdebstrap) or set "
                              "MAILLAB_BASE_SOURCE=registry where a registry is reachable")
        apt_install(["mmdebstrap"], progress)
    mirrors = detect()
    with tempfile.TemporaryDirectory(prefix="maillab-") as tmp:
        out = Path(tmp) / "rootfs.tar"
        argv = ["mmdebstrap", "--variant=minbase", "--include=" + ",".join(base_packages()),
                # The lab may use a snapshot mirror whose Release files are past their Valid-Until.
                "--aptopt=Acquire::Check-Valid-Until \"false\"",
                "bookworm", str(out), *mirrors.source_lines()]
        with progress.step(f"mmdebstrap: Debian 12 root file system from {mirrors.main}"):
            run = subprocess.run(argv, capture_output=True, text=True)
            if run.returncode != 0:
                tail = "\n".join(run.stderr.strip().splitlines()[-5:])
                raise EngineError(f"mmdebstrap failed (exit {run.returncode}):\n{tail}")
        with progress.step(f"docker import {ref}"), open(out, "rb") as fh:
            client.api.import_image_from_data(fh.read(), repository=ref.split(":")[0],
                                              tag=ref.split(":")[1],
                                              changes=[f"LABEL {LABEL}=image", 'CMD ["/bin/bash"]'])


def ensure_base(client: docker.DockerClient, progress: Progress) -> str:
    ref = tag("base")
    if _exists(client, ref):
        return ref
    if _base_from_registry(client):
        with progress.step(f"building {ref} from debian:bookworm"):
            _build(client, DOCKER_DIR / "base", ref, progress, "Dockerfile.registry",
                   {"PACKAGES": " ".join(base_packages())})
    else:
        _base_from_mirror(client, ref, progress)
    return ref


def ensure_all(client: docker.DockerClient, progress: Progress) -> dict[str, str]:
    refs = {"base": ensure_base(client, progress)}
    for name in DERIVED:
        ref = tag(name)
        if not _exists(client, ref):
            with progress.step(f"building image {ref}"):
                _build(client, DOCKER_DIR / name, ref, progress, buildargs={"BASE": refs["base"]})
        refs[name] = ref
    return refs
