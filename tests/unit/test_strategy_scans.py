"""The project's strategy keeps Mitogen's module scans (which module_utils files a module needs, found by reading and
compiling each one) from one run to the next: a later run takes the kept answer while none of the files and folders
it was read from changed, scans again where any did, and trusts no file that is not the user's own."""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
from pathlib import Path

import pytest

MITOGEN = importlib.util.find_spec("ansible_mitogen") is not None
pytestmark = pytest.mark.skipif(not MITOGEN, reason="the fast extra is not installed (bootstrap installs it)")


class Counted:
    """Mitogen's own scan, counting the times it is asked."""

    def __init__(self) -> None:
        import ansible_mitogen.module_finder

        self.real, self.calls = ansible_mitogen.module_finder.scan, 0

    def __call__(self, **kwargs):
        self.calls += 1
        return self.real(**kwargs)


def module_tree(tmp_path: Path) -> tuple[str, str, tuple[str, ...]]:
    """A module importing module_utils a, which imports the package c and its b: (name, path, search path)."""
    utils = tmp_path / "module_utils"
    (utils / "c").mkdir(parents=True)
    (utils / "a.py").write_text("from ansible.module_utils.c import b\n")
    (utils / "c" / "__init__.py").write_text("")
    (utils / "c" / "b.py").write_text("X = 1\n")
    (tmp_path / "mod.py").write_text("from ansible.module_utils.a import b\n")
    return "ansible_module_mod", str(tmp_path / "mod.py"), (str(utils),)


def names(found) -> list[str]:
    return sorted(name for name, _, _ in found)


def test_a_later_run_takes_the_kept_answer_without_scanning(strategy, tmp_path):
    name, path, search = module_tree(tmp_path)
    file, scan = tmp_path / "cache" / "scans.json", Counted()
    first = strategy.KeptScans(file, scan)(name, path, search)
    assert names(first) == ["ansible.module_utils.a", "ansible.module_utils.c", "ansible.module_utils.c.b"]
    assert first == sorted(scan.real(module_name=name, module_path=path, search_path=search))
    later = strategy.KeptScans(file, scan)  # a new run: a new process reads the file
    assert later(name, path, search) == first and scan.calls == 1
    assert oct(file.parent.stat().st_mode & 0o777) == "0o700"


def test_a_changed_or_added_module_utils_file_is_scanned_again(strategy, tmp_path):
    name, path, search = module_tree(tmp_path)
    file, scan = tmp_path / "cache" / "scans.json", Counted()
    strategy.KeptScans(file, scan)(name, path, search)
    (tmp_path / "module_utils" / "c" / "b.py").write_text("from ansible.module_utils.c import d\n")
    assert names(strategy.KeptScans(file, scan)(name, path, search))[-1] == "ansible.module_utils.c.b"
    assert scan.calls == 2  # b.py changed: scanned again (d does not exist yet)
    (tmp_path / "module_utils" / "c" / "d.py").write_text("Y = 2\n")
    os.utime(tmp_path / "module_utils" / "c", ns=(1, 1))  # the folder's time moves when a file is added
    assert "ansible.module_utils.c.d" in names(strategy.KeptScans(file, scan)(name, path, search))
    assert scan.calls == 3


def test_a_file_that_others_may_write_is_not_trusted(strategy, tmp_path):
    name, path, search = module_tree(tmp_path)
    file, scan = tmp_path / "cache" / "scans.json", Counted()
    strategy.KeptScans(file, scan)(name, path, search)
    file.chmod(0o666)
    strategy.KeptScans(file, scan)(name, path, search)
    assert scan.calls == 2
    assert file.stat().st_mode & 0o777 == 0o600  # written again, the user's own


def test_a_broken_file_is_scanned_over(strategy, tmp_path):
    name, path, search = module_tree(tmp_path)
    file, scan = tmp_path / "cache" / "scans.json", Counted()
    file.parent.mkdir(mode=0o700)
    file.write_text("{not json")
    file.chmod(0o600)
    assert names(strategy.KeptScans(file, scan)(name, path, search))[0] == "ansible.module_utils.a"
    assert scan.calls == 1


def test_answers_for_modules_whose_file_is_gone_are_dropped_at_the_next_save(strategy, tmp_path):
    file, scan = tmp_path / "cache" / "scans.json", Counted()
    gone_name, gone_path, gone_search = module_tree(tmp_path / "old-checkout")
    kept_name, kept_path, kept_search = module_tree(tmp_path / "checkout")
    strategy.KeptScans(file, scan)(gone_name, gone_path, gone_search)
    strategy.KeptScans(file, scan)(kept_name, kept_path, kept_search)
    assert len(json.loads(file.read_text())) == 2
    shutil.rmtree(tmp_path / "old-checkout")
    (tmp_path / "checkout" / "other.py").write_text("from ansible.module_utils.a import b\n")
    strategy.KeptScans(file, scan)("ansible_module_other", str(tmp_path / "checkout" / "other.py"), kept_search)
    kept = [json.loads(key)[1] for key in json.loads(file.read_text())]
    assert sorted(kept) == sorted([kept_path, str(tmp_path / "checkout" / "other.py")])
    assert strategy.KeptScans(file, scan)(kept_name, kept_path, kept_search) and scan.calls == 3  # still kept
