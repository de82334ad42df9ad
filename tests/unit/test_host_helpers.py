"""Helpers that run on a VPS (or the controller, for the rollout's probe) use only the standard library:
the VPS has no project virtualenv, and the Ansible collection ships them as plain files."""

import ast
import sys

import pytest
import yaml

from sendmail_fleet import repo_root
from sendmail_fleet.host import HELPERS


def imports(name: str) -> set[str]:
    """The top-level modules a helper imports."""
    tree = ast.parse(HELPERS[name].read_text())
    mods = {a.name.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    return mods | {n.module.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.level == 0}


# The one helper that is more than the standard library: the sending-limit milter speaks sendmail's milter protocol
# through pymilter, which its role installs from Debian (the issue asks for a maintained milter library).
DEBIAN_LIBRARIES = {"sending_limits": {"Milter": ("sending_limits", "python3-milter")}}


@pytest.mark.parametrize("name", sorted(HELPERS))
def test_helper_uses_only_the_standard_library(name):
    extra = DEBIAN_LIBRARIES.get(name, {})
    assert imports(name) <= set(sys.stdlib_module_names) | {"__future__"} | set(extra)


@pytest.mark.parametrize("name, module, role, package",
                         [(n, m, r, p) for n, mods in DEBIAN_LIBRARIES.items() for m, (r, p) in mods.items()])
def test_a_helper_that_needs_a_debian_library_gets_it_from_its_role(name, module, role, package):
    assert module in imports(name)
    assert package in yaml.safe_load((repo_root() / "roles" / role / "vars" / "main.yml").read_text())[
        f"__{role}_packages"]


# Standard-library modules Python 3.13 (Debian 13) no longer has (PEP 594 and lib2to3): this controller's
# Python may still list them, a Debian 13 host cannot import them.
REMOVED_BY_3_13 = {"aifc", "audioop", "cgi", "cgitb", "chunk", "crypt", "imghdr", "mailcap", "msilib", "nis",
                   "nntplib", "ossaudiodev", "pipes", "sndhdr", "spwd", "sunau", "telnetlib", "uu", "xdrlib",
                   "lib2to3"}


@pytest.mark.parametrize("name", sorted(HELPERS))
def test_helper_imports_nothing_python_3_13_removed(name):
    assert not imports(name) & REMOVED_BY_3_13


@pytest.mark.parametrize("name", sorted(HELPERS))
def test_helper_is_a_real_file_in_its_role(name):
    assert HELPERS[name].is_file() and not HELPERS[name].is_symlink()
