"""Find the Debian apt mirror this host already uses, so the lab images come from the same place.

Nothing here names a mirror: the answer is read from the host's apt configuration at run time,
or from MAILLAB_APT_MIRROR (and MAILLAB_APT_SECURITY_MIRROR) when the user sets them.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse


class MirrorNotFound(RuntimeError):
    pass


@dataclass(frozen=True)
class AptSource:
    uri: str
    suites: tuple[str, ...]
    components: tuple[str, ...]


@dataclass(frozen=True)
class Mirrors:
    main: str
    security: str | None

    def hosts(self) -> list[str]:
        """Host names the lab's containers must resolve to reach apt."""
        names = [urlparse(u).hostname for u in (self.main, self.security) if u]
        return sorted({n for n in names if n})

    def source_lines(self, suite: str = "bookworm") -> list[str]:
        lines = [f"deb {self.main} {suite} main", f"deb {self.main} {suite}-updates main"]
        if self.security:
            lines.append(f"deb {self.security} {suite}-security main")
        return lines


def parse_deb822(text: str) -> list[AptSource]:
    """Parse a deb822 `.sources` file (stanzas separated by blank lines)."""
    sources: list[AptSource] = []
    for stanza in re.split(r"\n\s*\n", text):
        fields: dict[str, str] = {}
        key = None
        for line in stanza.splitlines():
            if not line.strip() or line.lstrip().startswith("#"):
                continue
            if line[0].isspace() and key:
                fields[key] += " " + line.strip()
                continue
            if ":" in line:
                key, _, value = line.partition(":")
                key = key.strip().lower()
                fields[key] = value.strip()
        if fields.get("enabled", "yes").lower() == "no":
            continue
        if "deb" not in fields.get("types", "deb").split():
            continue
        for uri in fields.get("uris", "").split():
            sources.append(AptSource(uri, tuple(fields.get("suites", "").split()),
                                     tuple(fields.get("components", "").split())))
    return sources


def parse_one_line(text: str) -> list[AptSource]:
    """Parse the one-line `sources.list` format: `deb [opts] URI SUITE COMPONENT...`."""
    sources: list[AptSource] = []
    for line in text.splitlines():
        line = line.split("#", 1)[0].strip()
        if not line.startswith("deb "):
            continue
        line = re.sub(r"\[[^\]]*\]", " ", line[4:]).split()
        if len(line) >= 2:
            sources.append(AptSource(line[0], (line[1],), tuple(line[2:])))
    return sources


def read_sources(root: Path = Path("/")) -> list[AptSource]:
    apt = root / "etc" / "apt"
    sources: list[AptSource] = []
    for path in sorted((apt / "sources.list.d").glob("*.sources")):
        sources += parse_deb822(path.read_text(errors="replace"))
    for path in [apt / "sources.list", *sorted((apt / "sources.list.d").glob("*.list"))]:
        if path.is_file():
            sources += parse_one_line(path.read_text(errors="replace"))
    return sources


def _is_debian_archive(src: AptSource) -> bool:
    return "main" in src.components or not src.components


def pick(sources: list[AptSource]) -> Mirrors:
    main = security = None
    for src in sources:
        if not src.uri.startswith(("http://", "https://")) or not _is_debian_archive(src):
            continue
        if any(s.endswith("-security") for s in src.suites):
            security = security or src.uri.rstrip("/")
        elif any(s in ("bookworm", "stable", "trixie", "bullseye") or s.endswith("-updates")
                 for s in src.suites):
            main = main or src.uri.rstrip("/")
    if not main:
        raise MirrorNotFound(
            "no Debian apt mirror found in /etc/apt/sources.list{,.d/}; "
            "set MAILLAB_APT_MIRROR to a Debian mirror URL")
    return Mirrors(main, security)


def detect(root: Path = Path("/"), env: dict[str, str] | None = None) -> Mirrors:
    env = dict(os.environ) if env is None else env
    if env.get("MAILLAB_APT_MIRROR"):
        return Mirrors(env["MAILLAB_APT_MIRROR"].rstrip("/"),
                       env.get("MAILLAB_APT_SECURITY_MIRROR", "").rstrip("/") or None)
    return pick(read_sources(root))
