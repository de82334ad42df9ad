"""The POP-before-SMTP map helper that runs on the VPS (standard library only)."""

import json
import os
import pwd
import stat
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

from sendmail_fleet.host import load

pbs = load("pop_before_smtp")


@pytest.fixture
def fake_makemap(tmp_path: Path) -> str:
    """A stand-in for makemap hash: TARGET.db is a text file of KEY<TAB>VALUE lines. With -o the existing
    map is kept and added to; a key already there is an error unless -r is given, as with makemap.
    Every call is logged to makemap.calls."""
    script = tmp_path / "makemap"
    script.write_text(textwrap.dedent(f"""\
        #!{sys.executable}
        import sys
        flags = [a for a in sys.argv[1:] if a.startswith("-")]
        kind, target = [a for a in sys.argv[1:] if not a.startswith("-")]
        assert kind == "hash"
        open({str(tmp_path / "makemap.calls")!r}, "a").write(" ".join(flags) + "\\n")
        db = {{}}
        if "-u" in flags:  # dump, as makemap -u does: KEY<TAB>VALUE, keys lower-cased
            try:
                sys.stdout.write(open(target + ".db").read().lower().replace("\tok", "\tOK"))
            except FileNotFoundError:
                sys.exit("makemap: error opening type hash map " + target)
            sys.exit(0)
        if "-o" in flags:
            try:
                db = dict(l.split("\\t") for l in open(target + ".db").read().splitlines())
            except FileNotFoundError:
                pass
        for line in sys.stdin.read().splitlines():
            key, value = line.split("\\t")
            if key in db and "-r" not in flags:
                sys.exit("makemap: duplicate key " + key)
            db[key] = value
        open(target + ".db", "w").write("".join(k + "\\t" + v + "\\n" for k, v in db.items()))
        """))
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    return str(script)


def makemap_calls(rmap: pbs.RelayMap) -> list[str]:
    calls = Path(rmap.map).parent / "makemap.calls"
    return calls.read_text().splitlines() if calls.exists() else []


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


def test_a_repeat_login_within_the_window_leaves_the_map_alone(rmap):
    rmap.record("198.51.100.1", "alice", now=1000)
    rmap.record("198.51.100.1", "alice", now=1010)
    assert makemap_calls(rmap) == [""]  # the first login built the map; the repeat only noted the time
    assert rmap.load()["198.51.100.1"].seen == 1010


def test_a_new_address_is_added_in_place_and_the_others_stay(rmap):
    rmap.record("198.51.100.1", "alice", now=1000)
    rmap.record("2001:db8::7", "bob", now=1001)
    assert makemap_calls(rmap) == ["", "-o -r"]
    assert db(rmap) == {"198.51.100.1": "OK", "IPv6:2001:db8:0:0:0:0:0:7": "OK"}
    assert "IPv6:2001:db8:0:0:0:0:0:7\tOK" in Path(rmap.map).read_text()


def test_a_login_after_the_window_but_before_expiry_ran_replaces_the_stale_key(rmap):
    rmap.record("198.51.100.1", "alice", now=1000)
    rmap.record("198.51.100.1", "alice", now=1100)  # the timer has not removed the old key yet
    assert makemap_calls(rmap)[-1] == "-o -r"
    assert rmap.expire(now=1150) == 0 and db(rmap) == {"198.51.100.1": "OK"}


def test_a_failed_makemap_grants_nothing(rmap, tmp_path):
    rmap.record("198.51.100.1", "alice", now=1000)
    rmap.makemap = "/bin/false"
    with pytest.raises(RuntimeError, match="makemap failed"):
        rmap.record("198.51.100.2", "bob", now=1001)
    assert set(rmap.load()) == {"198.51.100.1"} and db(rmap) == {"198.51.100.1": "OK"}


def test_expiry_compacts_repeated_logins(rmap):
    for t in range(10):
        rmap.record("198.51.100.1", "alice", now=1000 + t)
    assert len(Path(rmap.state).read_text().splitlines()) == 10
    assert rmap.expire(now=1020) == 0
    assert Path(rmap.state).read_text().splitlines() == ["198.51.100.1\t1009.000\talice"]


def test_a_deleted_map_is_rebuilt_whole_at_the_next_login(rmap):
    rmap.record("198.51.100.1", "alice", now=1000)
    Path(f"{rmap.map}.db").unlink()
    rmap.record("198.51.100.2", "bob", now=1001)
    assert db(rmap) == {"198.51.100.1": "OK", "198.51.100.2": "OK"}


def test_invalid_address_is_refused(rmap):
    with pytest.raises(ValueError):
        rmap.record("not-an-ip", "x")


def test_corrupt_lines_are_skipped_and_good_ones_kept(rmap, capsys):
    Path(rmap.state).parent.mkdir(parents=True)
    Path(rmap.state).write_text(f"198.51.100.1\t{time.time():.3f}\talice\ngarbage line\n\x00\x01\n10.0.0.300\t1\tx\n")
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
    leftovers = [p.name for p in Path(rmap.map).parent.iterdir() if p.name.startswith(".")]
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


def test_the_hook_form_is_read_without_argparse_and_means_the_same(tmp_path, fake_makemap, monkeypatch):
    args = pbs._hook_call(["record", "--user", "alice", "192.0.2.9"])
    assert (args.cmd, args.user, args.address, args.config) == ("record", "alice", "192.0.2.9", pbs.CONFIG)
    full = pbs.parse_args(["record", "--user", "alice", "192.0.2.9"])
    assert (full.cmd, full.user, full.address, full.config) == (args.cmd, args.user, args.address, args.config)
    assert pbs._hook_call(["record", "--user", "alice", "--help"]) is None
    assert pbs._hook_call(["--config", "x", "record", "1.2.3.4"]) is None


def test_a_login_imports_nothing_slow(tmp_path):
    """dovecot runs the helper at every login: argparse, subprocess, json, pathlib... would cost ~50 ms."""
    code = textwrap.dedent(f"""\
        import sys
        before = set(sys.modules)
        sys.path.insert(0, {str(Path(pbs.__file__).parent)!r})
        import pop_before_smtp as h
        h._hook_call(["record", "--user", "u", "192.0.2.1"])
        print(" ".join(sorted(set(sys.modules) - before)))
        """)
    run = subprocess.run([sys.executable, "-I", "-S", "-c", code], capture_output=True, text=True, check=True)
    loaded = set(run.stdout.split())
    assert "pop_before_smtp" in loaded
    assert not loaded & {"argparse", "subprocess", "json", "pathlib", "dataclasses", "tempfile", "typing"}


def test_makemap_runs_as_the_map_owner_when_started_as_root():
    code, err = pbs._spawn(["/bin/sh", "-c", "id -un >&2; cat >&2"], "from stdin\n", "nobody")
    assert code == 0
    expected = "nobody" if os.geteuid() == 0 else pwd.getpwuid(os.geteuid()).pw_name
    assert err.splitlines() == [expected, "from stdin"]


def test_a_missing_makemap_is_an_error_not_a_crash():
    code, err = pbs._spawn(["/nonexistent/makemap"], "", "")
    assert code == 127 and "cannot run /nonexistent/makemap" in err


# -- no address keeps relaying past its window, whatever fails ------------------------------------------------

def test_a_makemap_that_fails_during_expiry_leaves_the_stale_address_listed_so_the_next_expiry_removes_it(
        rmap, tmp_path):
    rmap.record("192.0.2.10", "alice", now=1000)
    good = rmap.makemap
    rmap.makemap = "/bin/false"
    with pytest.raises(RuntimeError):
        rmap.expire(now=1100)  # the window (60 s) has passed, but the map cannot be written
    assert "192.0.2.10" in Path(rmap.state).read_text(), "the entries must still list what the old map grants"
    rmap.makemap = good
    assert rmap.expire(now=1101) == 1
    assert db(rmap) == {}


def test_a_map_that_cannot_be_rebuilt_fails_closed_the_live_map_goes_and_the_failure_is_logged_and_noted(
        rmap, monkeypatch):
    logged: list[tuple[str, bool]] = []
    monkeypatch.setattr(pbs, "_log", lambda message, err=False: logged.append((message, err)))
    rmap.record("192.0.2.20", "alice", now=1000)
    rmap.record("192.0.2.21", "bob", now=1050)  # still inside its window at 1100
    assert rmap.status() == {"map": "ok", "problem": ""}
    good, rmap.makemap = rmap.makemap, "/bin/false"  # as makemap fails on a full disk or a read-only folder
    with pytest.raises(RuntimeError, match="makemap failed"):
        rmap.expire(now=1100)
    assert not Path(f"{rmap.map}.db").exists(), "the expired grant must not stay in the live map"
    state = rmap.status()
    assert state["map"] == "failed" and state["map_removed"] is True and "makemap failed" in state["error"]
    assert state["problem"].startswith("the POP-before-SMTP relay map failed closed at ")
    assert state["problem"].endswith("no address relays by POP-before-SMTP until it is rebuilt")
    assert [err for _, err in logged] == [True] and "could not be rebuilt" in logged[0][0]
    with pytest.raises(RuntimeError):
        rmap.expire(now=1101)  # still broken: still closed, still noted
    assert rmap.status()["map"] == "failed" and not Path(f"{rmap.map}.db").exists()
    rmap.makemap = good  # the disk has room again: the next expiry rebuilds and the note goes
    assert rmap.expire(now=1102) == 1
    assert db(rmap) == {"192.0.2.21": "OK"} and rmap.status() == {"map": "ok", "problem": ""}


def test_a_map_that_cannot_even_be_removed_says_so_in_the_log_and_the_status(rmap, monkeypatch):
    logged: list[str] = []
    monkeypatch.setattr(pbs, "_log", lambda message, err=False: logged.append(message))
    rmap.record("192.0.2.30", "alice", now=1000)
    rmap.makemap = "/bin/false"
    real_unlink = os.unlink

    def read_only(path, *args, **kwargs):
        if str(path) == f"{rmap.map}.db":
            raise OSError(30, "Read-only file system")
        return real_unlink(path, *args, **kwargs)

    monkeypatch.setattr(os, "unlink", read_only)
    with pytest.raises(RuntimeError):
        rmap.expire(now=1100)
    state = rmap.status()
    assert state["map"] == "failed" and state["map_removed"] is False and "could NOT be removed" in state["problem"]
    assert "COULD NOT BE REMOVED" in logged[0] and "Read-only file system" in logged[0]


def test_a_failed_login_grants_nothing_new_and_leaves_the_other_windows_to_the_next_expiry(rmap):
    rmap.record("192.0.2.40", "alice", now=1000)
    rmap.makemap = "/bin/false"
    with pytest.raises(RuntimeError):
        rmap.record("192.0.2.41", "bob", now=1001)
    assert db(rmap) == {"192.0.2.40": "OK"} and rmap.status()["map"] == "ok"


def test_cli_status_says_ok_failed_or_missing(tmp_path, fake_makemap, capsys):
    cfg = tmp_path / "cfg"
    cfg.write_text(f"STATE={tmp_path}/st/clients\nMAP={tmp_path}/drac\nWINDOW=1\nMAKEMAP_USER=\nMAKEMAP={fake_makemap}\n")
    assert pbs.main(["--config", str(cfg), "status", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["map"] == "missing"
    # A login long ago (its window is over), then makemap breaks: expiry must rebuild the map, and cannot.
    pbs.RelayMap(tmp_path / "st" / "clients", tmp_path / "drac", 1, "", fake_makemap).record("192.0.2.50", now=1000)
    assert pbs.main(["--config", str(cfg), "status"]) == 0 and "map ok" in capsys.readouterr().out
    cfg.write_text(cfg.read_text().replace(f"MAKEMAP={fake_makemap}", "MAKEMAP=/bin/false"))
    assert pbs.main(["--config", str(cfg), "expire"]) == 1
    capsys.readouterr()
    assert pbs.main(["--config", str(cfg), "status", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["map"] == "failed"
    assert pbs.main(["--config", str(cfg), "status"]) == 0 and "FAILED CLOSED" in capsys.readouterr().out


def test_a_crash_between_map_and_entries_is_repaired_by_the_next_expiry(rmap):
    rmap.record("192.0.2.11", "alice", now=1000)
    # As if the process died after makemap added a key and before the entry was written:
    rmap._run_makemap("198.51.100.66\tOK\n", rmap.map, "-o", "-r")
    assert "198.51.100.66" in db(rmap)
    assert rmap.expire(now=1010) == 0  # nothing is due, but the map holds a key no entry lists
    assert set(db(rmap)) == {"192.0.2.11"}


def test_an_address_planted_in_the_map_by_hand_is_removed_by_the_next_expiry(rmap):
    rmap.record("192.0.2.12", "alice", now=1000)
    Path(f"{rmap.map}.db").write_text(Path(f"{rmap.map}.db").read_text() + "203.0.113.5\tOK\n")
    rmap.expire(now=1001)
    assert set(db(rmap)) == {"192.0.2.12"}


def test_an_entry_dated_in_the_future_grants_nothing_and_is_dropped(rmap):
    now = time.time()
    Path(rmap.state).parent.mkdir(parents=True, exist_ok=True)
    Path(rmap.state).write_text(f"192.0.2.13\t{now + 10 * 365 * 86400:.3f}\tmallory\n")
    assert rmap.expire(now=now) == 1  # expiry drops it
    assert db(rmap) == {} and Path(rmap.state).read_text() == ""
    Path(rmap.state).write_text(f"192.0.2.13\t{now + 3600:.3f}\tmallory\n")
    assert rmap.rebuild() == 0 and db(rmap) == {}  # a rebuild grants it nothing either
    rmap.record("192.0.2.13", "mallory", now=now)  # a real login from that address opens relay as usual
    assert set(db(rmap)) == {"192.0.2.13"}


def test_a_user_name_with_tabs_or_line_breaks_cannot_forge_an_entry(rmap):
    rmap.record("192.0.2.14", "eve\t9999999999\n203.0.113.9\t9999999999\tforged", now=time.time())
    text = Path(rmap.state).read_text()
    assert text.count("\n") == 1 and "203.0.113.9" not in set(pbs.parse_state(text)[0])
    assert set(db(rmap)) == {"192.0.2.14"}


def test_the_entries_and_the_text_map_are_readable_by_root_only(rmap):
    rmap.record("192.0.2.15", "alice", now=1000)
    rmap.expire(now=2000)
    rmap.record("192.0.2.16", "bob", now=3000)
    for path in (rmap.state, rmap.map, rmap.state + ".lock"):
        assert stat.S_IMODE(os.stat(path).st_mode) & 0o077 == 0, path


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to give the folder another group")
def test_the_rewritten_text_map_keeps_the_helpers_group_in_a_set_group_id_folder_like_etc_mail(rmap):
    # Debian's /etc/mail is smmta:smmsp with the set-group-ID bit: a new file there would get group smmsp,
    # and the role (root:root 0600) would change it back on every run after an expiry.
    folder = os.path.dirname(rmap.map)
    os.chown(folder, -1, 65534)
    os.chmod(folder, 0o2755)
    rmap.record("192.0.2.15", "alice", now=1000)
    rmap.expire(now=2000)
    assert os.stat(rmap.map).st_gid == os.getegid()


def test_temporary_files_are_made_exclusively_and_never_through_a_link(rmap, tmp_path, monkeypatch):
    target = tmp_path / "victim"
    target.write_text("untouched\n")
    fixed = str(tmp_path / "drac.fixed")
    os.symlink(target, fixed)
    monkeypatch.setattr(pbs, "_beside", lambda path: fixed)  # an attacker guessed the name and planted a link
    with pytest.raises(OSError):
        rmap._write_atomic(rmap.map, "x")
    assert target.read_text() == "untouched\n"


def test_temporary_names_cannot_be_guessed():
    names = {pbs._beside("/etc/mail/drac") for _ in range(50)}
    assert len(names) == 50 and all(n.startswith("/etc/mail/.drac.") for n in names)


def test_a_revoked_address_stops_relaying_at_once_and_the_others_keep_their_window(rmap):
    rmap.record("198.51.100.1", "alice", now=1000)
    rmap.record("198.51.100.2", "bob", now=1010)
    rmap.record("198.51.100.1", "alice", now=1020)  # a repeat login: two lines for the address
    assert rmap.revoke("198.51.100.1", now=1030) is True
    assert db(rmap) == {"198.51.100.2": "OK"}
    assert [e.address for e in pbs.live(rmap.load(), 1030, rmap.window).values()] == ["198.51.100.2"]
    assert rmap.expire(now=1031) == 0 and db(rmap) == {"198.51.100.2": "OK"}  # no older line brings it back


def test_revoking_an_address_with_no_live_entry_changes_nothing_it_grants(rmap):
    rmap.record("198.51.100.2", "bob", now=1000)
    assert rmap.revoke("::ffff:198.51.100.1", now=1001) is False
    assert db(rmap) == {"198.51.100.2": "OK"}


def test_a_login_after_a_revoke_opens_a_new_window(rmap):
    rmap.record("198.51.100.1", "alice", now=1000)
    rmap.revoke("198.51.100.1", now=1001)
    rmap.record("198.51.100.1", "alice", now=1002)
    assert db(rmap) == {"198.51.100.1": "OK"}


def test_cli_revoke_says_what_it_did_and_refuses_a_bad_address(tmp_path, fake_makemap, capsys):
    cfg = tmp_path / "cfg"
    cfg.write_text(f"STATE={tmp_path}/st\nMAP={tmp_path}/drac\nWINDOW=100\nMAKEMAP_USER=\nMAKEMAP={fake_makemap}\n")
    assert pbs.main(["--config", str(cfg), "record", "--user", "alice", "192.0.2.9"]) == 0
    assert pbs.main(["--config", str(cfg), "revoke", "192.0.2.9"]) == 0
    assert pbs.main(["--config", str(cfg), "revoke", "192.0.2.9"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out == ["192.0.2.9 may no longer relay", "192.0.2.9 had no live entry: nothing to revoke"]
    assert pbs.main(["--config", str(cfg), "list", "--json"]) == 0 and json.loads(capsys.readouterr().out) == []
    assert pbs.main(["--config", str(cfg), "revoke", "not-an-address"]) == 2


# -- grace mode: a login no longer opens relay, except for an excepted mailbox or network ------------------------
DAY = 86400.0
NOW = 1_800_000_000.0  # 2027-01-15 08:00 UTC


def grace_map(rmap: pbs.RelayMap) -> dict[str, str]:
    path = Path(f"{rmap.grace_map}.db")
    return dict(line.split("\t") for line in path.read_text().splitlines()) if path.exists() else {}


@pytest.fixture
def grace(tmp_path: Path, fake_makemap: str) -> pbs.RelayMap:
    return pbs.RelayMap(tmp_path / "state" / "clients", tmp_path / "drac", 60, makemap_user="", makemap=fake_makemap,
                        mode="grace", grace_map=tmp_path / "grace", exceptions=tmp_path / "exceptions")


def exceptions(rmap: pbs.RelayMap, text: str) -> None:
    Path(rmap.exceptions_file).write_text(text)


def test_in_grace_a_login_puts_its_address_in_the_grace_map_with_the_mailbox_and_opens_no_relay(grace):
    grace.record("198.51.100.1", "alice", now=NOW)
    assert grace.outcome == "grace"
    assert db(grace) == {} and grace_map(grace) == {"198.51.100.1": "alice"}


def test_in_grace_an_excepted_mailbox_relays_until_its_end_date(grace):
    exceptions(grace, "mailbox bob 2027-01-31\n")
    grace.record("198.51.100.2", "bob", now=NOW)
    assert grace.outcome == "relay until 2027-01-31"
    assert db(grace) == {"198.51.100.2": "OK"} and grace_map(grace) == {}


def test_an_exception_ends_on_its_date_at_the_next_expiry_with_no_other_change(grace):
    exceptions(grace, "mailbox bob 2027-01-15\n")  # the last day it counts is today
    grace.window = 3 * DAY
    grace.record("198.51.100.2", "bob", now=NOW)
    assert db(grace) == {"198.51.100.2": "OK"}
    assert grace.expire(now=NOW + 0.5 * DAY) == 0 and db(grace) == {"198.51.100.2": "OK"}  # still the 15th
    assert grace.expire(now=NOW + DAY) == 0  # the 16th: the window is still open, the exception is over
    assert db(grace) == {} and grace_map(grace) == {"198.51.100.2": "bob"}


def test_a_network_exception_covers_every_mailbox_inside_it_and_nothing_outside(grace):
    exceptions(grace, "network 203.0.113.0/24 2027-12-31\nnetwork 2001:db8::/64 2027-12-31\n")
    grace.record("203.0.113.77", "carol", now=NOW)
    grace.record("2001:db8::9", "dave", now=NOW)
    grace.record("203.0.114.1", "erin", now=NOW)
    assert set(db(grace)) == {"203.0.113.77", "IPv6:2001:db8:0:0:0:0:0:9"}
    assert grace_map(grace) == {"203.0.114.1": "erin"}


def test_behind_one_address_an_excepted_mailbox_keeps_the_address_relaying_whoever_logs_in_after_it(grace):
    exceptions(grace, "mailbox bob 2027-12-31\n")
    grace.record("198.51.100.9", "bob", now=NOW)
    grace.record("198.51.100.9", "alice", now=NOW + 10)  # a colleague behind the same NAT address
    assert db(grace) == {"198.51.100.9": "OK"} and grace_map(grace) == {}
    assert grace.expire(now=NOW + 30) == 0 and db(grace) == {"198.51.100.9": "OK"}
    assert grace.expire(now=NOW + 65) == 0 and grace_map(grace) == {"198.51.100.9": "alice"}  # bob's login is old


def test_granting_or_revoking_an_exception_on_the_host_counts_at_once(grace):
    grace.record("198.51.100.3", "alice", now=NOW)
    assert grace.set_exception("mailbox", "alice", "2027-06-30", now=NOW + 1)
    assert db(grace) == {"198.51.100.3": "OK"} and grace_map(grace) == {}
    assert grace.set_exception("mailbox", "alice", None, now=NOW + 2)
    assert db(grace) == {} and grace_map(grace) == {"198.51.100.3": "alice"}
    assert not grace.set_exception("mailbox", "alice", None, now=NOW + 3)  # nothing to revoke


@pytest.mark.parametrize("line", ["mailbox bob 2027-02-30", "mailbox bob someday", "network 300.1.2.3/8 2027-12-31",
                                  "group staff 2027-12-31", "mailbox bob", "mailbox b\u00adob 2027-12-31"])
def test_an_exception_line_that_cannot_be_read_grants_nothing_and_is_said(grace, capsys, line):
    exceptions(grace, line + "\n")
    grace.record("198.51.100.4", "bob", now=NOW)
    assert db(grace) == {} and grace_map(grace) == {"198.51.100.4": "bob"}
    assert "skipped" in capsys.readouterr().err


def test_a_repeat_login_in_grace_only_appends_and_a_new_address_rebuilds(grace):
    grace.record("198.51.100.5", "alice", now=NOW)
    calls = len(makemap_calls(grace))
    grace.record("198.51.100.5", "alice", now=NOW + 5)
    assert len(makemap_calls(grace)) == calls
    grace.record("198.51.100.6", "alice", now=NOW + 6)
    assert len(makemap_calls(grace)) > calls and set(grace_map(grace)) == {"198.51.100.5", "198.51.100.6"}


def test_a_grace_map_that_cannot_be_rebuilt_fails_closed_with_the_relay_map(grace, monkeypatch):
    monkeypatch.setattr(pbs, "_log", lambda message, err=False: None)
    exceptions(grace, "mailbox bob 2027-12-31\n")
    grace.record("198.51.100.7", "bob", now=NOW)
    grace.record("198.51.100.8", "alice", now=NOW)
    grace.makemap = "/bin/false"
    with pytest.raises(RuntimeError):
        grace.expire(now=NOW + 61)
    assert not Path(f"{grace.map}.db").exists() and not Path(f"{grace.grace_map}.db").exists()


def test_in_grant_mode_exceptions_do_not_matter_and_no_grace_map_is_written(rmap):
    rmap.record("198.51.100.9", "alice", now=NOW)
    assert rmap.outcome == "relay" and db(rmap) == {"198.51.100.9": "OK"}
    assert not Path(f"{rmap.grace_map}.db").exists()


def test_cli_exceptions_grant_list_revoke_and_list_shows_what_each_address_gets(tmp_path, fake_makemap, capsys):
    cfg = tmp_path / "cfg"
    cfg.write_text(f"STATE={tmp_path}/st/clients\nMAP={tmp_path}/drac\nWINDOW=600\nMAKEMAP_USER=\n"
                   f"MAKEMAP={fake_makemap}\nMODE=grace\nGRACE_MAP={tmp_path}/grace\nEXCEPTIONS={tmp_path}/ex/list\n")
    run = ["--config", str(cfg)]
    assert pbs.main([*run, "record", "--user", "alice", "192.0.2.10"]) == 0
    assert pbs.main([*run, "record", "--user", "bob", "192.0.2.11"]) == 0
    assert pbs.main([*run, "exceptions", "grant", "--mailbox", "bob", "--until", "2099-12-31"]) == 0
    assert "bob may relay by POP-before-SMTP until 2099-12-31" in capsys.readouterr().out
    assert pbs.main([*run, "list", "--json"]) == 0
    gets = {e["user"]: e["gets"] for e in json.loads(capsys.readouterr().out)}
    assert gets == {"alice": "grace", "bob": "relay"}
    assert pbs.main([*run, "exceptions", "list", "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == [{"kind": "mailbox", "value": "bob", "until": "2099-12-31",
                                                    "active": True}]
    assert pbs.main([*run, "exceptions", "revoke", "--mailbox", "bob"]) == 0
    assert pbs.main([*run, "exceptions", "grant", "--network", "192.0.2.0/24"]) == 2  # no --until
    assert pbs.main([*run, "exceptions", "grant", "--mailbox", "bob", "--until", "31.12.2099"]) == 2
    assert "is not a date" in capsys.readouterr().err
