#!/usr/bin/python
"""Ansible module files: a set of files, folders and absences on the host, made so in one task."""

from __future__ import annotations

import grp
import os
import pwd
import shlex
import shutil
import stat
import subprocess
import time
from collections.abc import Callable
from typing import Any

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.sendmail_fleet.mail.plugins.module_utils.atomic import write_atomic

DOCUMENTATION = r"""
module: files
short_description: Several files, folders and absences of one role's step, in one task
description:
  - Each entry is made so in the order given, like M(ansible.builtin.copy) with C(content),
    M(ansible.builtin.file) with C(state=directory), C(state=absent) or C(state=file) would, but in one module
    run on the host instead of one task per file.
  - A file is written only when its content differs, to a temporary file in the same folder that gets the
    owner and mode first and then replaces the old one, so no reader sees it half-written or with the wrong
    mode. A folder is created with its parents. An absent path is removed, a folder with what it holds.
  - An entry with C(state=file) and no C(content) must exist (or, with C(create), is made empty, like
    M(ansible.builtin.file) with C(state=touch) and the times preserved); only its owner, group and mode are set.
  - The task reports changed when any entry changed, lists them in C(changed_paths), and shows with --diff what
    each one was and becomes. Check mode writes nothing.
options:
  files:
    description: The entries, in order (a folder before the files it holds).
    type: list
    elements: dict
    required: true
    suboptions:
      path: {description: Absolute path on the host., type: path, required: true}
      state: {description: What is there., type: str, choices: [file, directory, absent], default: file}
      content: {description: The file's whole content (render templates with the template lookup)., type: str}
      src: {description: "Instead of content: a file on the host whose content this one gets (like copy's
                           remote_src). Its content is never shown, --diff says only that it differs.", type: path}
      mode: {description: Octal mode such as "0644"; a new file gets 0644 and a new folder 0755 without it.,
             type: str}
      validate: {description: "A command that must accept the new content before it replaces the old one: %s is
                              the temporary file (like copy's validate). A folder listed earlier exists by then.",
                 type: str}
      owner: {description: User name that owns it; unchanged (root for a new one) without it., type: str}
      group: {description: Group name that owns it; unchanged without it., type: str}
      create: {description: "A file without content or src that is absent is made empty (a mailbox); one that
                            exists keeps its content and times.", type: bool, default: false}
  read_at_start_by:
    description:
      - A systemd unit that reads these files only as it starts (a daemon's settings, its unit's drop-in).
      - "Before it writes anything the module asks systemd when the unit's running process started, and returns in
        C(newer_than_start) the listed files that changed after that. Such a file was written by a run whose restart
        never came (a handler or a restart task lost with its controller); the role restarts the unit when the list
        is not empty, so a lost restart comes with the next run. Empty when the unit is not running."
    type: str
  also_read:
    description:
      - "With O(read_at_start_by), files the unit reads as it starts that other tasks write (its certificate and
        key): a run that wrote them and lost the restart leaves them newer than the unit's start, and they are
        named in C(newer_than_start) too. Only read, never written, and a missing one is no change."
    type: list
    elements: path
    default: []
  reloaded_stamp:
    description:
      - "With O(read_at_start_by), a file whose modification time says when the unit last loaded the files without
        starting: whatever reloads it touches the file after the reload worked (the tls role's deploy hook, after a
        renewal). A file that changed before both the start and that time is loaded, no restart is due. A missing
        stamp counts for nothing."
    type: path
"""

RETURN = r"""
changed_paths: {description: "The entries' paths that changed (or would in check mode), in order.", type: list}
newer_than_start: {description: "With read_at_start_by: the listed files (state file) and also_read that changed after
                                 the unit's running process started (and after reloaded_stamp's time), as they were
                                 before this task wrote anything.",
                   type: list}
"""

DEFAULT_MODE = {"file": 0o644, "directory": 0o755}


class Failed(Exception):
    """The task fails with this message; changed_paths holds what changed before it."""

    def __init__(self, msg: str, changed_paths: list[str]) -> None:
        super().__init__(msg)
        self.changed_paths = changed_paths


def _id(kind: str, name: str | None) -> int:
    """The uid (kind "user") or gid ("group") of a name; -1 (leave it) for none."""
    if name is None:
        return -1
    try:
        return pwd.getpwnam(name).pw_uid if kind == "user" else grp.getgrnam(name).gr_gid
    except KeyError:
        raise ValueError(f"no {kind} {name}") from None


def _mode(text: str | int | None) -> int | None:
    if text is None:
        return None
    if isinstance(text, int):  # YAML read an unquoted 0644 as the number it means
        value = text
    else:
        try:
            value = int(text, 8)
        except ValueError:
            raise ValueError(f"mode {text!r} is not octal (write it quoted, \"0644\")") from None
    if not 0 <= value <= 0o7777:
        raise ValueError(f"mode {text!r} is out of range")
    return value


def _kind(st: os.stat_result | None) -> str:
    if st is None:
        return "absent"
    return "directory" if stat.S_ISDIR(st.st_mode) else "file"


def _attrs(st: os.stat_result | None) -> dict[str, Any]:
    if st is None:
        return {"state": "absent"}
    return {"state": _kind(st), "mode": f"{stat.S_IMODE(st.st_mode):04o}", "uid": st.st_uid, "gid": st.st_gid}


def _lstat(path: str) -> os.stat_result | None:
    try:
        return os.lstat(path)
    except FileNotFoundError:
        return None


def _validate(command: str, tmp: str) -> None:
    """The command must accept the temporary file (%s) before it goes live."""
    if "%s" not in command:
        raise ValueError(f"validate {command!r} has no %s for the file to check")
    argv = [tmp if word == "%s" else word.replace("%s", tmp) for word in shlex.split(command)]
    done = subprocess.run(argv, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        why = (done.stderr or done.stdout).strip()[-500:]
        raise ValueError(f"{command} refused the new content (exit {done.returncode}): {why}; the old file stays")


def _write(path: str, data: bytes, mode: int, uid: int, gid: int, validate: str | None = None) -> None:
    """data at path atomically (module_utils.atomic), the validate command run on the temporary file first."""
    write_atomic(path, data, mode, uid, gid, check=(lambda tmp: _validate(validate, tmp)) if validate else None)


def _text(data: bytes | None) -> str:
    return "" if data is None else data.decode("utf-8", errors="replace")


def _one(entry: dict[str, Any], check_mode: bool, planned: set[str]) -> tuple[bool, dict[str, Any] | None]:
    """Make one entry so; (changed, diff). planned: folders check mode would have created before this entry."""
    path, state = os.path.normpath(entry["path"]), entry.get("state") or "file"
    if not os.path.isabs(path):
        raise ValueError("the path must be absolute")
    st = _lstat(path)
    if state == "absent":
        if st is None:
            return False, None
        if not check_mode:
            if _kind(st) == "directory" and not stat.S_ISLNK(st.st_mode):
                shutil.rmtree(path)
            else:
                os.unlink(path)
        return True, {"before_header": path, "after_header": path,
                      "before": f"{_kind(st)}\n", "after": "absent\n"}

    mode, uid, gid = _mode(entry.get("mode")), _id("user", entry.get("owner")), _id("group", entry.get("group"))
    if st is not None and _kind(st) != state:
        raise ValueError(f"it is a {_kind(st)}, not a {state}")
    content, src = entry.get("content"), entry.get("src")
    if content is not None and src is not None:
        raise ValueError("give content or src, not both")
    if state == "file" and content is None and src is None and st is None:
        if not entry.get("create"):
            raise ValueError("it is absent, and without content there is nothing to write (or say create)")
        content = ""

    before = _attrs(st)
    want_mode = mode if mode is not None else (stat.S_IMODE(st.st_mode) if st else DEFAULT_MODE[state])
    want_uid = uid if uid >= 0 else (st.st_uid if st else os.geteuid())
    want_gid = gid if gid >= 0 else (st.st_gid if st else os.getegid())
    after = {"state": state, "mode": f"{want_mode:04o}", "uid": want_uid, "gid": want_gid}

    old: bytes | None = None
    new: bytes | None = None
    if state == "file" and (content is not None or src is not None):
        if src is not None:
            with open(src, "rb") as f:
                new = f.read()
        else:
            new = (content or "").encode("utf-8")
        if st is not None:
            with open(path, "rb") as f:
                old = f.read()
    content_changed = new is not None and old != new
    attrs_changed = before != after
    if not (content_changed or attrs_changed):
        return False, None

    if not check_mode:
        if state == "directory":
            if st is None:
                os.makedirs(path, mode=want_mode)
            os.chown(path, want_uid, want_gid)
            os.chmod(path, want_mode)
        elif content_changed:
            if not os.path.isdir(os.path.dirname(path)):
                raise ValueError("its folder does not exist (list the folder first)")
            _write(path, new or b"", want_mode, want_uid, want_gid, entry.get("validate"))
        else:
            os.chown(path, want_uid, want_gid)
            os.chmod(path, want_mode)
    elif content_changed and not (os.path.isdir(os.path.dirname(path)) or os.path.dirname(path) in planned):
        raise ValueError("its folder does not exist (list the folder first)")
    if state == "directory":
        planned.add(path)

    def show(a: dict[str, Any]) -> str:
        return "absent\n" if a["state"] == "absent" else f"{a['state']} mode {a['mode']} uid {a['uid']} gid {a['gid']}\n"

    if content_changed:
        diff = {"before_header": path if st else f"{path} (absent)", "after_header": path,
                "before": _text(old), "after": _text(new)}
        if src is not None:  # a key, say: only that it changes
            diff.update(before=f"{'absent' if st is None else 'the old content'}\n", after=f"the content of {src}\n")
        if attrs_changed and st is not None:
            diff["before_header"] += f" ({show(before).strip()})"
            diff["after_header"] += f" ({show(after).strip()})"
    else:
        diff = {"before_header": path, "after_header": path, "before": show(before), "after": show(after)}
    return True, diff


def _systemctl_show(unit: str) -> str:
    done = subprocess.run(["systemctl", "show", unit, "--property=ActiveState",
                           "--property=ExecMainStartTimestampMonotonic", "--property=ActiveEnterTimestampMonotonic"],
                          capture_output=True, text=True, check=False)
    return done.stdout if done.returncode == 0 else ""


def unit_started(unit: str, show: Callable[[str], str] = _systemctl_show) -> float | None:
    """When the unit's running process started, in seconds since the epoch (the clock of files' mtimes); None when
    the unit is not running. systemd keeps the start on the monotonic clock, which Python reads as systemd does."""
    props = dict(line.split("=", 1) for line in show(unit).splitlines() if "=" in line)
    if props.get("ActiveState") not in ("active", "reloading"):
        return None
    mono = 0
    for name in ("ExecMainStartTimestampMonotonic", "ActiveEnterTimestampMonotonic"):
        value = props.get(name, "")
        mono = int(value) if value.isdigit() else 0
        if mono:
            break
    if not mono:
        return None
    return time.time() - (time.monotonic() - mono / 1_000_000)


def newer_than(files: list[dict[str, Any]], started: float | None) -> list[str]:
    """The entries of state file whose file changed after started (none when started is None)."""
    if started is None:
        return []
    found = []
    for entry in files:
        if (entry.get("state") or "file") != "file":
            continue
        st = _lstat(os.path.normpath(entry["path"]))
        if st is not None and st.st_mtime > started:
            found.append(entry["path"])
    return found


def not_loaded(files: list[dict[str, Any]], unit: str | None, also_read: list[str], reloaded_stamp: str | None,
               show: Callable[[str], str] = _systemctl_show) -> list[str]:
    """newer_than_start: the entries and also_read files that changed after the unit last loaded them (its start,
    or the reloaded_stamp's time where that is later); none without a unit, or when it does not run."""
    if not unit:
        return []
    loaded = unit_started(unit, show)
    stamp = _lstat(os.path.normpath(reloaded_stamp)) if reloaded_stamp else None
    if loaded is not None and stamp is not None:
        loaded = max(loaded, stamp.st_mtime)
    return newer_than(files + [{"path": p} for p in also_read], loaded)


def converge(files: list[dict[str, Any]], check_mode: bool, want_diff: bool) -> dict[str, Any]:
    """Every entry made so, in order. Raises Failed naming the first entry that cannot be."""
    changed_paths: list[str] = []
    diffs: list[dict[str, Any]] = []
    planned: set[str] = set()
    for entry in files:
        try:
            changed, diff = _one(entry, check_mode, planned)
        except (OSError, ValueError) as e:
            raise Failed(f"{entry.get('path')}: {e}", changed_paths) from e
        if changed:
            changed_paths.append(entry["path"])
            if diff:
                diffs.append(diff)
    result: dict[str, Any] = {"changed": bool(changed_paths), "changed_paths": changed_paths}
    if want_diff:
        result["diff"] = diffs
    return result


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "files": {"type": "list", "elements": "dict", "required": True, "options": {
                "path": {"type": "path", "required": True},
                "state": {"type": "str", "choices": ["file", "directory", "absent"], "default": "file"},
                "content": {"type": "str"},
                "src": {"type": "path"},
                "validate": {"type": "str"},
                "mode": {"type": "raw"},
                "owner": {"type": "str"},
                "group": {"type": "str"},
                "create": {"type": "bool", "default": False},
            }},
            "read_at_start_by": {"type": "str"},
            "also_read": {"type": "list", "elements": "path", "default": []},
            "reloaded_stamp": {"type": "path"},
        },
        supports_check_mode=True,
    )
    # Read before anything is written: a file this task writes notifies the unit's restart in the usual way.
    stale = not_loaded(module.params["files"], module.params["read_at_start_by"], module.params["also_read"],
                       module.params["reloaded_stamp"])
    try:
        result = converge(module.params["files"], module.check_mode, module._diff)
        result["newer_than_start"] = stale
    except Failed as e:
        module.fail_json(msg=str(e), changed=bool(e.changed_paths), changed_paths=e.changed_paths)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
