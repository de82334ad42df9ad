"""The apt mirror is read from the host's own apt configuration."""

from pathlib import Path

import pytest

from sendmail_fleet.mirror import MirrorNotFound, Mirrors, detect, parse_deb822, parse_one_line, pick

DEB822 = """\
Types: deb
URIs: http://mirror.invalid/debian
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: http://security.invalid/debian-security
Suites: bookworm-security
Components: main

Types: deb-src
URIs: http://src.invalid/debian
Suites: bookworm
Components: main
"""


def test_deb822_sources_give_main_and_security_mirror():
    m = pick(parse_deb822(DEB822))
    assert m == Mirrors("http://mirror.invalid/debian", "http://security.invalid/debian-security")
    assert m.hosts() == ["mirror.invalid", "security.invalid"]


def test_disabled_stanza_is_ignored():
    text = DEB822.replace("Types: deb\nURIs: http://mirror.invalid", "Enabled: no\nTypes: deb\nURIs: http://mirror.invalid")
    with pytest.raises(MirrorNotFound):
        pick(parse_deb822(text))


def test_one_line_format_with_options():
    srcs = parse_one_line("# comment\ndeb [arch=amd64 signed-by=/x.gpg] http://m.invalid/debian/ bookworm main contrib\n"
                          "deb-src http://m.invalid/debian bookworm main\n")
    assert pick(srcs).main == "http://m.invalid/debian"


def test_environment_overrides_host_config(tmp_path: Path):
    m = detect(tmp_path, {"MAILLAB_APT_MIRROR": "http://own.invalid/debian/"})
    assert m.main == "http://own.invalid/debian" and m.security is None


def test_no_mirror_is_a_clear_error(tmp_path: Path):
    (tmp_path / "etc/apt/sources.list.d").mkdir(parents=True)
    with pytest.raises(MirrorNotFound, match="MAILLAB_APT_MIRROR"):
        detect(tmp_path, {})


def test_reads_files_under_a_root(tmp_path: Path):
    d = tmp_path / "etc/apt/sources.list.d"
    d.mkdir(parents=True)
    (d / "debian.sources").write_text(DEB822)
    assert detect(tmp_path, {}).source_lines() == [
        "deb http://mirror.invalid/debian bookworm main",
        "deb http://mirror.invalid/debian bookworm-updates main",
        "deb http://security.invalid/debian-security bookworm-security main",
    ]
