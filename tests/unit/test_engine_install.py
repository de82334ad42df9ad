"""On a machine with no Docker engine, one apt run installs the engine and mmdebstrap, which the base images then
need (they come from the apt mirror there); a registry chosen by the user, or mmdebstrap present, needs no extra."""

from __future__ import annotations

import pytest

from sendmail_fleet import engine
from sendmail_fleet.progress import Progress


class Stop(Exception):
    pass


@pytest.mark.parametrize(("present", "source", "expected"), [
    (set(), None, ["docker.io", "mmdebstrap"]),
    ({"mmdebstrap"}, None, ["docker.io"]),
    (set(), "registry", ["docker.io"]),
])
def test_the_engine_and_the_base_image_tool_come_in_one_apt_run(monkeypatch, tmp_path, present, source, expected):
    runs: list[list[str]] = []

    def install(packages, progress):
        runs.append(packages)
        raise Stop  # the install is all this test is about: dockerd is not started

    monkeypatch.setattr(engine, "connect", lambda timeout=10: None)
    monkeypatch.delenv("DOCKER_HOST", raising=False)
    monkeypatch.setattr(engine.os, "geteuid", lambda: 0)
    monkeypatch.setattr(engine, "is_debian_like", lambda: True)
    monkeypatch.setattr(engine.shutil, "which", lambda name: f"/usr/bin/{name}" if name in present else None)
    monkeypatch.setattr(engine, "apt_install", install)
    if source:
        monkeypatch.setenv("MAILLAB_BASE_SOURCE", source)
    else:
        monkeypatch.delenv("MAILLAB_BASE_SOURCE", raising=False)
    with pytest.raises(Stop):
        engine.ensure(tmp_path, Progress())
    assert runs == [expected]


def test_an_unknown_base_source_stops_before_apt_and_names_the_choices(monkeypatch, tmp_path):
    runs: list[list[str]] = []
    monkeypatch.setattr(engine, "connect", lambda timeout=10: None)
    monkeypatch.delenv("DOCKER_HOST", raising=False)
    monkeypatch.setattr(engine.os, "geteuid", lambda: 0)
    monkeypatch.setattr(engine, "is_debian_like", lambda: True)
    monkeypatch.setattr(engine.shutil, "which", lambda name: None)

    def install(packages, progress):
        runs.append(packages)
        raise Stop

    monkeypatch.setattr(engine, "apt_install", install)
    monkeypatch.setenv("MAILLAB_BASE_SOURCE", "registy")
    with pytest.raises(engine.EngineError, match=r"MAILLAB_BASE_SOURCE='registy': choose auto, registry or mirror"):
        engine.ensure(tmp_path, Progress())
    assert runs == []
