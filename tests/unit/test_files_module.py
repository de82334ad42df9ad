"""The collection's files module (sendmail_fleet.mail.files, plugins/modules/files.py): several files, folders and
absences in one task, on a temporary folder. The lab tests prove it on real hosts through the roles that use it."""

from __future__ import annotations

import grp
import os
import pwd
import stat
from pathlib import Path

import pytest

from sendmail_fleet.collection import plugin

mod = plugin("modules", "files")

ME = pwd.getpwuid(os.geteuid()).pw_name
MY_GROUP = grp.getgrgid(os.getegid()).gr_name


def mode_of(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_new_files_and_folders_are_written_in_order_with_their_modes(tmp_path):
    folder, script = tmp_path / "lib", tmp_path / "lib" / "hook"
    out = mod.converge([{"path": str(folder), "state": "directory", "mode": "0700"},
                        {"path": str(script), "content": "#!/bin/sh\nexec \"$@\"\n", "mode": "0755",
                         "owner": ME, "group": MY_GROUP}], check_mode=False, want_diff=True)
    assert out["changed"] and out["changed_paths"] == [str(folder), str(script)]
    assert (mode_of(folder), mode_of(script), script.read_text()) == (0o700, 0o755, "#!/bin/sh\nexec \"$@\"\n")
    assert out["diff"][1]["after"] == "#!/bin/sh\nexec \"$@\"\n" and out["diff"][1]["before"] == ""


def test_a_second_run_changes_nothing(tmp_path):
    files = [{"path": str(tmp_path / "d"), "state": "directory"},
             {"path": str(tmp_path / "d" / "f"), "content": "x\n", "mode": "0600"},
             {"path": str(tmp_path / "gone"), "state": "absent"}]
    mod.converge(files, check_mode=False, want_diff=False)
    out = mod.converge(files, check_mode=False, want_diff=True)
    assert (out["changed"], out["changed_paths"], out["diff"]) == (False, [], [])


def test_changed_content_replaces_the_file_and_shows_before_and_after(tmp_path):
    f = tmp_path / "settings"
    f.write_text("WINDOW=600\n")
    f.chmod(0o644)
    inode = f.stat().st_ino
    out = mod.converge([{"path": str(f), "content": "WINDOW=900\n"}], check_mode=False, want_diff=True)
    assert f.read_text() == "WINDOW=900\n" and mode_of(f) == 0o644, "no mode given: the old one stays"
    assert f.stat().st_ino != inode, "written to a temporary file that replaced the old one, not in place"
    assert (out["diff"][0]["before"], out["diff"][0]["after"]) == ("WINDOW=600\n", "WINDOW=900\n")
    assert [p.name for p in tmp_path.iterdir()] == ["settings"], "no temporary file is left behind"


def test_only_a_wrong_mode_is_mended_without_rewriting(tmp_path):
    f = tmp_path / "map"
    f.write_text("10.0.0.1 RELAY\n")
    f.chmod(0o644)
    inode = f.stat().st_ino
    out = mod.converge([{"path": str(f), "state": "file", "mode": "0600"}], check_mode=False, want_diff=True)
    assert out["changed"] and mode_of(f) == 0o600 and f.stat().st_ino == inode
    assert "0644" in out["diff"][0]["before"] and "0600" in out["diff"][0]["after"]


def test_state_file_without_content_fails_on_a_missing_file_naming_it(tmp_path):
    with pytest.raises(mod.Failed, match=r"/missing: it is absent"):
        mod.converge([{"path": str(tmp_path / "missing"), "state": "file", "mode": "0600"}], False, False)


def test_create_makes_a_missing_file_empty_and_never_touches_an_existing_ones_content_or_times(tmp_path):
    new, mailbox = tmp_path / "bob", tmp_path / "alice"
    mailbox.write_text("From carol@remote.test  Fri Dec  4 10:00:00 2026\nSubject: kept\n\nbody\n")
    mailbox.chmod(0o644)
    os.utime(mailbox, (1_700_000_000, 1_700_000_000))
    entries = [{"path": str(f), "state": "file", "create": True, "mode": "0660"} for f in (new, mailbox)]
    out = mod.converge(entries, check_mode=False, want_diff=False)
    assert out["changed_paths"] == [str(new), str(mailbox)]
    assert new.read_text() == "" and mode_of(new) == 0o660
    assert "Subject: kept" in mailbox.read_text() and mode_of(mailbox) == 0o660
    assert mailbox.stat().st_mtime == 1_700_000_000, "a mailbox's times are mail programs' 'new mail' signal"
    assert mod.converge(entries, check_mode=False, want_diff=False)["changed"] is False


def test_absent_removes_files_and_whole_folders_and_reports_each(tmp_path):
    (tmp_path / "dropin").mkdir()
    (tmp_path / "dropin" / "x.conf").write_text("x")
    (tmp_path / "timer").write_text("t")
    entries = [{"path": str(tmp_path / "dropin"), "state": "absent"},
               {"path": str(tmp_path / "timer"), "state": "absent"},
               {"path": str(tmp_path / "never"), "state": "absent"}]
    out = mod.converge(entries, check_mode=False, want_diff=True)
    assert out["changed_paths"] == [str(tmp_path / "dropin"), str(tmp_path / "timer")]
    assert list(tmp_path.iterdir()) == []


def test_absent_removes_a_symlink_not_what_it_points_to(tmp_path):
    target = tmp_path / "real"
    target.mkdir()
    (tmp_path / "link").symlink_to(target)
    mod.converge([{"path": str(tmp_path / "link"), "state": "absent"}], False, False)
    assert target.is_dir() and not (tmp_path / "link").exists()


def test_check_mode_writes_nothing_but_reports_every_change(tmp_path):
    (tmp_path / "old").write_text("old")
    entries = [{"path": str(tmp_path / "new"), "state": "directory"},
               {"path": str(tmp_path / "new" / "f"), "content": "f"},
               {"path": str(tmp_path / "old"), "state": "absent"}]
    out = mod.converge(entries, check_mode=True, want_diff=True)
    assert out["changed_paths"] == [e["path"] for e in entries]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["old"]


def test_a_file_whose_folder_is_missing_fails_naming_it_and_what_changed_before(tmp_path):
    first = tmp_path / "first"
    with pytest.raises(mod.Failed, match=r"/nowhere/f: its folder does not exist") as e:
        mod.converge([{"path": str(first), "content": "1"},
                      {"path": str(tmp_path / "nowhere" / "f"), "content": "2"}], False, False)
    assert e.value.changed_paths == [str(first)] and first.read_text() == "1"


def test_a_folder_where_a_file_should_be_fails_rather_than_being_replaced(tmp_path):
    (tmp_path / "conf").mkdir()
    with pytest.raises(mod.Failed, match=r"it is a directory, not a file"):
        mod.converge([{"path": str(tmp_path / "conf"), "content": "x"}], False, False)
    assert (tmp_path / "conf").is_dir()


@pytest.mark.parametrize("field, value, message", [
    ("owner", "no-such-user-here", "no user no-such-user-here"),
    ("group", "no-such-group-here", "no group no-such-group-here"),
    ("mode", "rw-r--r--", "is not octal"),
])
def test_an_unknown_owner_group_or_mode_fails_with_what_is_wrong(tmp_path, field, value, message):
    with pytest.raises(mod.Failed, match=message):
        mod.converge([{"path": str(tmp_path / "f"), "content": "x", field: value}], False, False)
    assert not (tmp_path / "f").exists()


def test_an_unquoted_yaml_mode_means_the_number_yaml_read(tmp_path):
    f = tmp_path / "f"
    mod.converge([{"path": str(f), "content": "x", "mode": 0o640}], False, False)
    assert mode_of(f) == 0o640


def test_a_relative_path_is_refused(tmp_path):
    with pytest.raises(mod.Failed, match="must be absolute"):
        mod.converge([{"path": "etc/x", "content": "x"}], False, False)


def test_src_copies_a_file_on_the_host_and_never_shows_its_content(tmp_path):
    (tmp_path / "privkey.pem").write_text("-----BEGIN PRIVATE KEY-----\nsecret\n")
    key = tmp_path / "key.pem"
    key.write_text("old key\n")
    out = mod.converge([{"path": str(key), "src": str(tmp_path / "privkey.pem"), "mode": "0600"}], False, True)
    assert key.read_text() == "-----BEGIN PRIVATE KEY-----\nsecret\n" and mode_of(key) == 0o600
    assert "secret" not in repr(out) and "old key" not in repr(out)
    again = mod.converge([{"path": str(key), "src": str(tmp_path / "privkey.pem"), "mode": "0600"}], False, True)
    assert again["changed"] is False


def test_src_and_content_together_are_refused(tmp_path):
    with pytest.raises(mod.Failed, match="content or src, not both"):
        mod.converge([{"path": str(tmp_path / "f"), "content": "x", "src": str(tmp_path / "g")}], False, False)


def test_validate_must_accept_the_new_content_or_the_old_file_stays(tmp_path):
    data = tmp_path / "settings.json"
    data.write_text('{"ok": true}\n')
    check = "python3 -c 'import json,sys; json.load(open(sys.argv[1]))' %s"
    with pytest.raises(mod.Failed, match=r"(?s)refused the new content \(exit 1\).*JSONDecodeError.*the old file stays"):
        mod.converge([{"path": str(data), "content": "{not json", "validate": check}], False, False)
    assert data.read_text() == '{"ok": true}\n' and [p.name for p in tmp_path.iterdir()] == ["settings.json"]
    out = mod.converge([{"path": str(data), "content": '{"ok": false}\n', "validate": check}], False, False)
    assert out["changed"] and data.read_text() == '{"ok": false}\n'


def test_validate_without_a_placeholder_is_refused(tmp_path):
    with pytest.raises(mod.Failed, match="has no %s"):
        mod.converge([{"path": str(tmp_path / "f"), "content": "x", "validate": "true"}], False, False)


def started_at(seconds_ago: float, state: str = "active"):
    """A `systemctl show` answer for a unit whose process started seconds_ago (on the monotonic clock, as systemd
    keeps it)."""
    import time
    mono = int((time.monotonic() - seconds_ago) * 1_000_000)
    return lambda unit: (f"ActiveState={state}\nExecMainStartTimestampMonotonic={mono}\n"
                         f"ActiveEnterTimestampMonotonic={mono + 50_000}\n")


def test_a_file_changed_after_the_unit_started_is_named_one_written_before_is_not(tmp_path):
    old, new = tmp_path / "old.conf", tmp_path / "new.conf"
    old.write_text("a\n")
    new.write_text("b\n")
    now = os.stat(new).st_mtime
    os.utime(old, (now - 120, now - 120))  # written two minutes ago, the daemon restarted one minute ago
    started = mod.unit_started("dovecot", show=started_at(60))
    assert started is not None and abs(started - (now - 60)) < 5
    files = [{"path": str(tmp_path), "state": "directory"}, {"path": str(old), "content": "a\n"},
             {"path": str(new), "content": "b\n"}, {"path": str(tmp_path / "gone"), "state": "absent"},
             {"path": str(tmp_path / "not-yet"), "content": "c\n"}]
    assert mod.newer_than(files, started) == [str(new)], "only the file written after the start; folders never"


def test_a_unit_that_does_not_run_has_no_file_newer_than_its_start(tmp_path):
    f = tmp_path / "settings"
    f.write_text("x\n")
    for answer in (started_at(60, state="inactive"), started_at(60, state="failed"), lambda unit: "",
                   lambda unit: "ActiveState=active\nExecMainStartTimestampMonotonic=0\n"
                                "ActiveEnterTimestampMonotonic=0\n"):
        assert mod.unit_started("opendkim", show=answer) is None
    assert mod.newer_than([{"path": str(f), "content": "x\n"}], None) == []


def test_a_unit_without_a_main_process_start_counts_from_when_it_became_active():
    import time
    mono = int((time.monotonic() - 30) * 1_000_000)
    started = mod.unit_started("x", show=lambda unit: f"ActiveState=active\nExecMainStartTimestampMonotonic=0\n"
                                                      f"ActiveEnterTimestampMonotonic={mono}\n")
    assert started is not None and abs(started - (time.time() - 30)) < 1


def test_the_start_is_read_from_systemd_for_the_unit_named(monkeypatch):
    seen = []

    class Done:
        returncode, stdout = 0, "ActiveState=active\nExecMainStartTimestampMonotonic=5000000\n"

    monkeypatch.setattr(mod.subprocess, "run", lambda argv, **kw: seen.append(argv) or Done())
    assert mod.unit_started("saslauthd") is not None
    assert seen[0][:3] == ["systemctl", "show", "saslauthd"]


def test_a_certificate_written_after_the_start_by_another_task_is_named_unless_a_reload_loaded_it(tmp_path):
    conf, cert, stamp = tmp_path / "dovecot.conf", tmp_path / "cert.pem", tmp_path / "tls-reloaded"
    conf.write_text("a\n")
    cert.write_text("new certificate\n")
    now = os.stat(cert).st_mtime
    os.utime(conf, (now - 900, now - 900))  # the settings: before the start, 15 minutes ago
    os.utime(cert, (now - 120, now - 120))  # the certificate: two minutes ago; dovecot started 10 minutes ago
    files, also = [{"path": str(conf), "content": "a\n"}], [str(cert), str(tmp_path / "absent-key.pem")]
    started = started_at(600)
    # The controller was lost before the restart: the certificate is newer than the start, and nothing reloaded.
    assert mod.not_loaded(files, "dovecot", also, str(stamp), show=started) == [str(cert)], "no stamp: the start"
    # A renewal's deploy hook reloaded the daemons after it wrote the certificate, then touched the stamp: loaded.
    stamp.write_text("")
    os.utime(stamp, (now - 60, now - 60))
    assert mod.not_loaded(files, "dovecot", also, str(stamp), show=started) == []
    # A reload before the certificate was written loaded the old one.
    os.utime(stamp, (now - 300, now - 300))
    assert mod.not_loaded(files, "dovecot", also, str(stamp), show=started) == [str(cert)]
    # Without a stamp the start alone counts; a unit that does not run has loaded nothing stale; no unit, no check.
    assert mod.not_loaded(files, "dovecot", also, None, show=started) == [str(cert)]
    assert mod.not_loaded(files, "dovecot", also, str(stamp), show=started_at(60, state="inactive")) == []
    assert mod.not_loaded(files, None, also, str(stamp), show=started) == []
    assert cert.read_text() == "new certificate\n", "also_read files are only read"
