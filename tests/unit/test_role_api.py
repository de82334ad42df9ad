"""Each role's public API: every default is documented with a description, galaxy_info names its platforms, and
`ansible-doc -t role` renders it (so an admin can read it before using the role)."""

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from sendmail_fleet import repo_root

ROLES = sorted(p.name for p in (repo_root() / "roles").iterdir())


def options(spec: dict) -> dict:
    out = {}
    for entry in spec["argument_specs"].values():
        out.update(entry.get("options") or {})
    return out


def descriptions(opts: dict, path: str = ""):
    for name, opt in (opts or {}).items():
        yield path + name, opt.get("description")
        yield from descriptions(opt.get("options"), f"{path}{name}.")


@pytest.mark.parametrize("role", ROLES)
def test_every_default_is_a_documented_option_with_a_description(role):
    base = repo_root() / "roles" / role
    spec = yaml.safe_load((base / "meta" / "argument_specs.yml").read_text())
    defaults = base / "defaults" / "main.yml"
    names = set(yaml.safe_load(defaults.read_text()) or {}) if defaults.exists() else set()
    assert names <= set(options(spec)), sorted(names - set(options(spec)))
    assert [p for p, d in descriptions(options(spec)) if not d] == []
    assert all(e.get("short_description") for e in spec["argument_specs"].values())


@pytest.mark.parametrize("role", ROLES)
def test_galaxy_info_names_the_platforms(role):
    info = yaml.safe_load((repo_root() / "roles" / role / "meta" / "main.yml").read_text())["galaxy_info"]
    assert info["platforms"] and all(p["name"] == "Debian" and p["versions"] for p in info["platforms"])
    assert info["license"] == "MIT"


def test_ansible_doc_renders_every_role():
    doc = Path(sys.executable).parent / "ansible-doc"
    for role in ROLES:
        run = subprocess.run([str(doc), "-t", "role", "-r", str(repo_root() / "roles"), role],
                             capture_output=True, text=True, timeout=120)
        assert run.returncode == 0 and "ENTRY POINT" in run.stdout, (role, run.stderr[-500:])


def test_no_symlink_in_what_the_collection_ships():
    shipped = [repo_root() / d for d in ("roles", "plugins", "playbooks", "meta")]
    links = [p for d in shipped for p in d.rglob("*") if p.is_symlink()]
    assert links == []
