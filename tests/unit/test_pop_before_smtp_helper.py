"""The POP-before-SMTP map helper that runs on the VPS (standard library only)."""

import json
import os
import stat
import sys
import textwrap
import threading
from pathlib import Path

import pytest

from sendmail_fleet.host import pop_before_smtp as pbs


@pytest.fixture
def fake_makemap(tmp_path: Path) -> str:
    """A stand-in for makemap: writes the map source it reads to TARGET.db, as makemap hash would."""
    script = tmp_path / "makemap"
    script.write_text(textwrap.dedent(f"""\
        #!{sys.executable}
        import sys
        assert sys.argv[1] == "hash"
        data = sys.stdin.read()
        open(sys.argv[2] + ".db", "w").write(data)
        """))
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    return str(script)


@pytest.fixture
def rmap(tmp_path: Path, fake_makemap: str) -> pbs.RelayMap:
    return pbs.RelayMap(tmp_path / "state" / "clients", tmp_path / "drac", 60, makemap_user="", makemap=fake_makemap)


def db(rmap: pbs.RelayMap) -> dict[str, str]:
    text = Path(f"{rmap.map}.db").read_text()
    return dict(line.split("\t") for line in text.splitlines())


@pytest.mark.parametrize("given,key", [
    ("192.0.2.7", "192.0.2.7"),
    ("::ffff:198.51.100.9", "198.51.100.9"),
    ("2001:db8::1", "IPv6:2001:db8:0:0:0:0:0:1"),
    ("[2001:DB8:0:0:0:0:0:A]", "IPv6:2001:db8:0:0:0:0:0:a"),
])
def test_map_keys_are_what_sendmail_looks_up(given, key):
    assert pbs.map_key(pbs.normalise(given)) == key


def test_a_login_opens_relay_for_that_address_only(rmap):
    rmap.record("198.51.100.1", "alice", now=1000)
    assert db(rmap) == {"198.51.100.1": "OK"}


def test_entries_expire_after_the_window(rmap):
    rmap.record("198.51.100.1", "alice", now=1000)
    rmap.record("198.51.100.2", "bob", now=1050)
    assert rmap.expire(now=1061) == 1
    assert db(rmap) == {"198.51.100.2": "OK"}
    assert rmap.expire(now=1200) == 1
    assert db(rmap) == {}


def test_a_new_login_refreshes_the_window(rmap):
    rmap.record("198.51.100.1", "alice", now=1000)
    rmap.record("198.51.100.1", "alice", now=1050)
    assert rmap.expire(now=1100) == 0
    assert "198.51.100.1" in db(rmap)


def test_invalid_address_is_refused(rmap):
    with pytest.raises(ValueError):
        rmap.record("not-an-ip", "x")


def test_corrupt_lines_are_skipped_and_good_ones_kept(rmap, capsys):
    rmap.state.parent.mkdir(parents=True)
    rmap.state.write_text("198.51.100.1\t9999999999\talice\ngarbage line\n\x00\x01\n10.0.0.300\t1\tx\n")
    assert rmap.rebuild() == 1
    assert db(rmap) == {"198.51.100.1": "OK"}
    assert "skipped 3 unreadable" in capsys.readouterr().err


def test_missing_state_file_means_an_empty_map(rmap):
    assert rmap.expire() == 0
    assert db(rmap) == {}


def test_concurrent_logins_lose_no_entry(rmap):
    addrs = [f"10.1.{i // 250}.{i % 250 + 1}" for i in range(40)]
    threads = [threading.Thread(target=rmap.record, args=(a, f"user{i}")) for i, a in enumerate(addrs)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert set(db(rmap)) == set(addrs)
    assert len(rmap.load()) == 40


def test_map_is_replaced_atomically_no_temp_files_left(rmap):
    for i in range(5):
        rmap.record(f"10.2.0.{i + 1}", "u")
    leftovers = [p.name for p in rmap.map.parent.iterdir() if p.name.startswith(".")]
    assert leftovers == []


def test_makemap_failure_is_reported(tmp_path):
    bad = pbs.RelayMap(tmp_path / "s", tmp_path / "m", 60, makemap_user="", makemap="/bin/false")
    with pytest.raises(RuntimeError, match="makemap failed"):
        bad.record("10.0.0.1")


def test_cli_record_and_list_json(tmp_path, fake_makemap, capsys):
    cfg = tmp_path / "cfg"
    cfg.write_text(f"STATE={tmp_path}/st\nMAP={tmp_path}/drac\nWINDOW=100\nMAKEMAP_USER=\nMAKEMAP={fake_makemap}\n")
    assert pbs.main(["--config", str(cfg), "record", "--user", "alice", "2001:db8::5"]) == 0
    assert pbs.main(["--config", str(cfg), "list", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert rows[0]["address"] == "2001:db8::5" and rows[0]["user"] == "alice"
    assert pbs.main(["--config", str(cfg), "record", "bogus"]) == 2


def test_helper_uses_only_the_standard_library():
    import ast
    tree = ast.parse(Path(pbs.__file__).read_text())
    mods = {a.name.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    mods |= {n.module.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.level == 0}
    assert mods <= set(sys.stdlib_module_names) | {"__future__"}
