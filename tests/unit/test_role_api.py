"""Each role's public API: every default is documented with a description, galaxy_info names its platforms, and
`ansible-doc -t role` renders it (so an admin can read it before using the role)."""

import re
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


@pytest.mark.parametrize("role", PACKAGED + ["client_setup"])
def test_each_role_says_its_packages_through_public_variables_and_has_no_twin_entry_point(role):
    base = repo_root() / "roles" / role
    defaults = yaml.safe_load((base / "defaults" / "main.yml").read_text())
    assert f"{role}_packages" in defaults and defaults[f"{role}_install_packages"] is True
    spec = yaml.safe_load((base / "meta" / "argument_specs.yml").read_text())["argument_specs"]
    assert "configure" not in spec  # main with ROLE_install_packages false is the way without apt
    assert {f"{role}_packages", f"{role}_install_packages"} <= set(spec["main"]["options"])
    main = yaml.safe_load((base / "tasks" / "main.yml").read_text())
    apt = [t for t in main if "ansible.builtin.apt" in t]
    assert len(apt) == 1 and apt[0]["ansible.builtin.apt"]["name"] == f"{{{{ {role}_packages }}}}"
    assert f"{role}_install_packages | bool" in str(apt[0]["when"])


def test_mail_host_imports_each_role_without_its_apt_task_and_installs_every_package_itself():
    calls = [(role, entry) for path, role, entry in role_calls() if path.parts[:2] == ("roles", "mail_host")]
    assert sorted(role for role, entry in calls if entry == "main" and role in PACKAGED) == PACKAGED
    # client_setup comes in as its two parts (client_setup.yml, given the part's name), never its main with apt.
    assert ("client_setup", "{{ __mail_host_client_setup_part }}.yml") in calls and ("client_setup", "main") not in calls
    parts = re.findall(r"__mail_host_client_setup_part: (\w+)", "".join(
        (repo_root() / "roles/mail_host/tasks" / name).read_text() for name in ("main.yml", "variant_roles.yml")))
    assert parts == ["acme", "settings"]
    tasks = "".join(p.read_text() for p in (repo_root() / "roles/mail_host/tasks").glob("*.yml"))
    assert all(f"{role}_install_packages: false" in tasks for role in PACKAGED)
    lists = yaml.safe_load((repo_root() / "roles/mail_host/vars/main.yml").read_text())
    packages = lists["__mail_host_all_packages"] + lists["__mail_host_variant_packages"]
    assert all(f"{role}_packages" in packages for role in PACKAGED + ["client_setup"])


def _private_definitions() -> dict[str, set[str]]:
    """Each __variable and the roles that define it (vars, defaults, set_fact, register)."""
    owners: dict[str, set[str]] = {}
    for f in (repo_root() / "roles").rglob("*.yml"):
        role, text = f.relative_to(repo_root() / "roles").parts[0], f.read_text()
        for name in re.findall(r"^\s*(__[a-z0-9_]+):", text, re.M) + re.findall(r"register:\s*(__[a-z0-9_]+)", text):
            owners.setdefault(name, set()).add(role)
    return owners


def test_no_role_reads_a_private_variable_of_another_role():
    owners, read = _private_definitions(), []
    for f in (repo_root() / "roles").rglob("*"):
        if f.suffix not in (".yml", ".j2"):
            continue
        role = f.relative_to(repo_root() / "roles").parts[0]
        for name in set(re.findall(r"\b(__[a-z0-9_]+)", f.read_text())):
            if owners.get(name) and role not in owners[name]:
                read.append(f"{f.relative_to(repo_root())}: {name} of {sorted(owners[name])}")
    assert read == []
    assert len(owners) > 100  # the scan sees the roles' private variables


def test_no_task_file_holds_a_file_body_of_more_than_three_lines():
    bodies = []
    for f in (repo_root() / "roles").glob("*/tasks/*.yml"):
        lines = f.read_text().splitlines()
        for i, line in enumerate(lines):
            m = re.match(r"^(\s*)content: \|", line)  # a literal block: a file body (">-" holds expressions)
            if not m:
                continue
            indent = len(m.group(1))
            body = 0
            for nxt in lines[i + 1:]:
                if nxt.strip() and len(nxt) - len(nxt.lstrip()) <= indent:
                    break
                body += 1
            if body > 3:
                bodies.append(f"{f.relative_to(repo_root())}:{i + 1} ({body} lines)")
    assert bodies == []


def test_the_collections_modules_write_files_through_the_one_atomic_write():
    for name in ("files", "sendmail_config"):
        text = (repo_root() / "plugins" / "modules" / f"{name}.py").read_text()
        assert "plugins.module_utils.atomic import write_atomic" in text and "mkstemp" not in text, name
