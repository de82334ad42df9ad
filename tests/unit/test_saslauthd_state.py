"""The saslauthd probe sendmail runs on the submission port (standard library only)."""

import os
import socket
import subprocess
from pathlib import Path

import pytest

from sendmail_fleet.host import load

probe = load("saslauthd_state")


@pytest.fixture
def listening(tmp_path: Path):
    path = str(tmp_path / "mux")
    srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    srv.bind(path)
    srv.listen(1)
    yield path
    srv.close()


def fake_proc(tmp_path: Path, names: dict[str, str]) -> str:
    proc = tmp_path / "proc"
    for pid, name in names.items():
        (proc / pid).mkdir(parents=True)
        (proc / pid / "comm").write_text(name + "\n")
    (proc / "self").mkdir(exist_ok=True)
    return str(proc)


def test_a_listening_socket_is_up(listening):
    assert probe.socket_state(listening) == "up"


def test_a_missing_socket_is_down(tmp_path):
    assert probe.socket_state(str(tmp_path / "mux")) == "down"


def test_a_stale_socket_left_by_a_killed_saslauthd_is_down(tmp_path):
    path = str(tmp_path / "mux")
    srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    srv.bind(path)
    srv.close()  # the file stays, nobody listens
    assert probe.socket_state(path) == "down"


def test_a_folder_closed_to_this_user_cannot_tell(tmp_path, listening):
    """sendmail runs the probe as DefaultUser (mail), which may not enter root:sasl 0710."""
    closed = tmp_path / "closed"
    closed.mkdir(mode=0o700)
    target = str(closed / "mux")
    if os.geteuid() == 0:  # root passes every permission check: ask as nobody, as sendmail would as mail
        # the system's python3: the test's own interpreter may live in a folder nobody cannot enter
        code = Path(probe.__file__).read_text().replace('if __name__ == "__main__":', "if False:")
        code += "\nprint(socket_state(sys.argv[1]))\n"
        run = subprocess.run(["/usr/bin/python3", "-I", "-c", code, target],
                             user=65534, group=65534, extra_groups=[], capture_output=True, text=True)
        assert run.stdout.strip() == "None", run.stderr
    else:
        os.chmod(closed, 0)
        try:
            assert probe.socket_state(target) is None
        finally:
            os.chmod(closed, 0o700)


def test_process_table_says_up_when_saslauthd_runs(tmp_path):
    assert probe.process_state(fake_proc(tmp_path, {"1": "systemd", "77": "saslauthd"})) == "up"


def test_process_table_says_down_when_it_does_not(tmp_path):
    assert probe.process_state(fake_proc(tmp_path, {"1": "systemd", "78": "sendmail-mta"})) == "down"


def test_a_hidden_process_table_cannot_tell(tmp_path):
    assert probe.process_state(fake_proc(tmp_path, {"4242": "python3"})) is None


def test_when_nothing_can_tell_it_says_up(tmp_path, monkeypatch):
    monkeypatch.setattr(probe, "socket_state", lambda path: None)
    assert probe.state(str(tmp_path / "mux"), fake_proc(tmp_path, {"9": "sh"})) == "up"


def test_falls_back_to_the_process_table_when_the_socket_is_closed_to_it(tmp_path, monkeypatch):
    monkeypatch.setattr(probe, "socket_state", lambda path: None)
    assert probe.state("x", fake_proc(tmp_path, {"1": "systemd"})) == "down"


def test_sendmail_calling_convention_prints_one_word_and_exits_0(listening, capsys):
    assert probe.main([listening, "probe"]) == 0
    assert capsys.readouterr().out == "up\n"
    assert probe.main([listening + ".gone", "probe"]) == 0
    assert capsys.readouterr().out == "down\n"


def test_an_unexpected_error_still_answers_up(monkeypatch, capsys):
    def boom(*a):
        raise RuntimeError("surprise")
    monkeypatch.setattr(probe, "state", boom)
    assert probe.main(["/x", "probe"]) == 0 and capsys.readouterr().out == "up\n"
