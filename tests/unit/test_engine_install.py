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


def test_the_engine_module_needs_only_the_standard_library_until_it_connects():
    # The bootstrap runs it with the host's python3 beside pip, before .venv has the Docker SDK.
    import subprocess
    import sys

    code = "import sys; sys.modules['docker'] = None; import sendmail_fleet.engine"
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr


def test_install_alone_puts_in_the_packages_ensure_would_and_nothing_where_it_may_not(monkeypatch):
    runs: list[list[str]] = []
    monkeypatch.delenv("DOCKER_HOST", raising=False)
    monkeypatch.delenv("MAILLAB_BASE_SOURCE", raising=False)
    monkeypatch.setattr(engine, "is_debian_like", lambda: True)
    monkeypatch.setattr(engine.shutil, "which", lambda name: None)
    monkeypatch.setattr(engine, "apt_install", lambda packages, progress: runs.append(packages))
    monkeypatch.setattr(engine.os, "geteuid", lambda: 1000)
    assert engine.main(["install"]) == 0 and runs == []  # not root: nothing, ensure says what to do
    monkeypatch.setattr(engine.os, "geteuid", lambda: 0)
    monkeypatch.setenv("DOCKER_HOST", "tcp://127.0.0.1:2375")
    assert engine.main(["install"]) == 0 and runs == []  # the user's own engine: nothing
    monkeypatch.delenv("DOCKER_HOST")
    assert engine.main(["install"]) == 0 and runs == [["docker.io", "mmdebstrap"]]
    assert engine.main([]) == 2


def test_an_apt_failure_is_exit_status_1_with_its_message(monkeypatch, capsys):
    monkeypatch.delenv("DOCKER_HOST", raising=False)
    monkeypatch.setattr(engine, "is_debian_like", lambda: True)
    monkeypatch.setattr(engine.os, "geteuid", lambda: 0)
    monkeypatch.setattr(engine.shutil, "which", lambda name: None)

    def fail(packages, progress):
        raise engine.EngineError("apt-get install -y -qq docker.io failed: ['E: Unable to locate package docker.io']")

    monkeypatch.setattr(engine, "apt_install", fail)
    assert engine.main(["install"]) == 1
    assert "Unable to locate package docker.io" in capsys.readouterr().err
