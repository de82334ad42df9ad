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


def role_calls():
    """Every include_role/import_role of the roles, playbooks and lab playbooks: (file, role name, tasks_from)."""
    files = [p for d in ("roles", "playbooks", "tests/lab/playbooks") for p in (repo_root() / d).rglob("*.yml")]
    for path in files:
        for task in walk(yaml.safe_load(path.read_text()) or []):
            for key in ("ansible.builtin.include_role", "ansible.builtin.import_role", "include_role", "import_role"):
                if isinstance(task.get(key), dict):
                    yield path.relative_to(repo_root()), task[key]["name"], task[key].get("tasks_from", "main")


def walk(node):
    if isinstance(node, list):
        for item in node:
            yield from walk(item)
    elif isinstance(node, dict):
        yield node
        for key in ("block", "rescue", "always", "tasks", "pre_tasks", "post_tasks", "handlers"):
            yield from walk(node.get(key))


def test_an_entry_point_with_an_argument_spec_is_called_by_its_name_so_ansible_checks_the_arguments():
    # Ansible looks the spec up by tasks_from as written: "switch.yml" finds no entry point "switch", and the role
    # then runs without checking its variables.
    unchecked = []
    for path, role, entry in role_calls():
        spec = yaml.safe_load((repo_root() / "roles" / role / "meta" / "argument_specs.yml").read_text())
        if entry not in spec["argument_specs"] and entry.removesuffix(".yml") in spec["argument_specs"]:
            unchecked.append(f"{path}: {role} tasks_from {entry}")
    assert unchecked == []
    assert sum(1 for _ in role_calls()) > 20


PACKAGED = ["fail2ban", "pop3", "procmail", "sasl", "sendmail", "tls"]


@pytest.mark.parametrize("role", PACKAGED)
def test_configure_is_main_without_the_apt_task_and_takes_the_same_options(role):
    base = repo_root() / "roles" / role
    main = yaml.safe_load((base / "tasks" / "main.yml").read_text())
    assert [t for t in main if "ansible.builtin.apt" in t] and main[-1]["ansible.builtin.import_tasks"] == "configure.yml"
    assert "ansible.builtin.apt" not in (base / "tasks" / "configure.yml").read_text()
    spec = yaml.safe_load((base / "meta" / "argument_specs.yml").read_text())["argument_specs"]
    assert spec["configure"]["options"] == spec["main"]["options"]


def test_mail_host_imports_each_role_without_its_apt_task_and_installs_every_package_itself():
    calls = [(role, entry) for path, role, entry in role_calls() if path.parts[:2] == ("roles", "mail_host")]
    assert sorted(role for role, entry in calls if entry == "configure") == PACKAGED
    assert ("client_setup", "acme.yml") in calls and ("client_setup", "main") not in calls
    packages = yaml.safe_load((repo_root() / "roles/mail_host/vars/main.yml").read_text())["__mail_host_packages"]
    assert all(f"__{role}_packages" in packages for role in PACKAGED + ["client_setup"])
