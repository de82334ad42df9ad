"""The base image built from the apt mirror sets dpkg up as the official debian:RELEASE image does (its
docker-apt-speedup: force-unsafe-io), so a lab from the mirror and a lab from a registry install packages alike."""

from __future__ import annotations

import subprocess
from pathlib import Path
from types import SimpleNamespace

from sendmail_fleet import images
from sendmail_fleet.mirror import Mirrors
from sendmail_fleet.progress import Progress


def test_mmdebstrap_gets_the_dpkg_settings_file_and_the_image_tag_follows_it(monkeypatch, tmp_path):
    ran: list[list[str]] = []

    def fake_run(argv, **kw):
        ran.append(argv)
        Path(argv[argv.index("trixie") + 1]).write_bytes(b"tar")
        return subprocess.CompletedProcess(argv, 0, "", "")

    monkeypatch.setattr(images, "_ensure_mmdebstrap", lambda progress: None)
    monkeypatch.setattr(images, "detect", lambda: Mirrors("http://mirror.invalid/debian", None))
    monkeypatch.setattr(images.subprocess, "run", fake_run)
    imported: list[bytes] = []
    client = SimpleNamespace(api=SimpleNamespace(import_image_from_data=lambda data, **kw: imported.append(data)))
    images._base_from_mirror(client, "maillab-base-trixie:x", "trixie", Progress())  # type: ignore[arg-type]

    opts = [a.split("=", 1)[1] for a in ran[0] if a.startswith("--dpkgopt=")]
    assert len(opts) == 1 and imported == [b"tar"]
    settings = Path(opts[0])
    assert settings.parent == images.DOCKER_DIR / "base"  # hashed into every image's tag (recipe_hash)
    lines = [ln.strip() for ln in settings.read_text().splitlines() if ln.strip() and not ln.startswith("#")]
    assert lines == ["force-unsafe-io"]
