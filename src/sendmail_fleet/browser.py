"""Headless Chromium for the reports: does a page render, what does it look like.

Chromium comes from Debian's package (installed here when it is missing and we are root on Debian/Ubuntu, as the
Docker engine is). It is started with no network of its own: background networking, sync, component updates and
QUIC off, a throw-away profile, so it opens only the file it is given.

  python -m sendmail_fleet.browser PAGE.html OUT.png [WIDTHxHEIGHT]   # a screenshot, as the README's are made
"""

from __future__ import annotations

import os
import shutil
import struct
import subprocess
import sys
import tempfile
import zlib
from dataclasses import dataclass
from pathlib import Path

from .engine import EngineError, apt_install, is_debian_like
from .progress import Progress

NAMES = ("chromium", "chromium-browser")
FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync", "--hide-scrollbars",
         "--disable-features=Translate,MediaRouter,OptimizationHints", "--no-default-browser-check")
PHONE = (390, 844)
DESKTOP = (1280, 900)


def chromium(progress: Progress | None = None) -> str:
    """The Chromium binary; Debian's package is installed when none is found and this is root on Debian."""
    for name in NAMES:
        if found := shutil.which(name):
            return found
    if os.geteuid() != 0 or not is_debian_like():
        raise EngineError("no Chromium found: install it (Debian: apt-get install chromium) to render the reports")
    apt_install(["chromium"], progress or Progress())
    for name in NAMES:
        if found := shutil.which(name):
            return found
    raise EngineError("apt-get installed chromium but no chromium binary is on PATH")


def _run(page: Path, *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    with tempfile.TemporaryDirectory(prefix="maillab-chromium-") as profile:
        argv = [chromium(), *FLAGS, f"--user-data-dir={profile}", *args, page.resolve().as_uri()]
        run = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL)
    if run.returncode != 0:
        tail = "\n".join(run.stderr.strip().splitlines()[-5:])
        raise EngineError(f"chromium exited {run.returncode} on {page}:\n{tail}")
    return run


def dom(page: Path) -> str:
    """The document as Chromium parsed it (what it would render)."""
    return _run(page, "--dump-dom").stdout


def screenshot(page: Path, out: Path, size: tuple[int, int] = DESKTOP) -> Path:
    out.parent.mkdir(parents=True, exist_ok=True)
    _run(page, f"--window-size={size[0]},{size[1]}", f"--screenshot={out.resolve()}")
    if not out.exists():
        raise EngineError(f"chromium wrote no screenshot for {page}")
    return out


@dataclass(frozen=True)
class Png:
    width: int
    height: int
    ink: float  # share of the filtered scanline bytes that are not zero: ~0 for a blank page of one colour


def png(path: Path) -> Png:
    """Width, height and how much was drawn, read with the standard library (PNG chunks and zlib)."""
    data = path.read_bytes()
    if data[:8] != b"\x89PNG\r\n\x1a\n":
        raise ValueError(f"{path} is not a PNG")
    pos, width, height, idat = 8, 0, 0, b""
    while pos < len(data):
        length, kind = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + length]
        if kind == b"IHDR":
            width, height = struct.unpack(">II", body[:8])
        elif kind == b"IDAT":
            idat += body
        pos += 12 + length
    raw = zlib.decompress(idat)
    nonzero = len(raw) - raw.count(0)
    return Png(width, height, nonzero / max(1, len(raw)))


def main(argv: list[str]) -> int:
    if len(argv) not in (2, 3):
        print(__doc__.strip().splitlines()[-1].strip(), file=sys.stderr)
        return 2
    size = DESKTOP
    if len(argv) == 3:
        w, _, h = argv[2].partition("x")
        size = (int(w), int(h))
    out = screenshot(Path(argv[0]), Path(argv[1]), size)
    info = png(out)
    print(f"{out}: {info.width}x{info.height}, ink {info.ink:.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
