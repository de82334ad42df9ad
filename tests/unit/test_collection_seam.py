"""One seam between the lab and the collection (sendmail_fleet.collection): no other module of the lab's package
builds a path into the collection's roles/ or plugins/, or reads role YAML itself."""

from __future__ import annotations

import re

from sendmail_fleet import collection, repo_root
from sendmail_fleet.host import HELPERS, load

PACKAGE = repo_root() / "src" / "sendmail_fleet"
# the checkout's roles/ or plugins/ (Mitogen's own plugins folder, inside its package, is not the collection's)
INTO_COLLECTION = re.compile(r"""repo_root\(\).*["'](roles|plugins)["']|["'](roles|plugins)/|defaults["'] */""")


def test_only_the_collection_module_knows_where_roles_and_plugins_are():
    found = [f"{p.relative_to(PACKAGE)}:{n}: {line.strip()}"
             for p in sorted(PACKAGE.rglob("*.py")) if p.name != "collection.py" or p.parent != PACKAGE
             for n, line in enumerate(p.read_text().splitlines(), 1) if INTO_COLLECTION.search(line)]
    assert found == []


def test_every_host_helper_is_a_file_of_its_role_and_loads_through_the_seam():
    for name, path in HELPERS.items():
        assert path.is_file() and path.parent.name == "files" and path.parents[2] == collection.root() / "roles"
        assert load(name).__name__ == f"sendmail_fleet_helper_{name}"


def test_the_lab_reads_the_variant_table_from_the_roles_public_defaults():
    defaults = collection.role_defaults("sendmail")
    assert {"sendmail_variants", "sendmail_promises"} <= set(defaults)
    assert collection.role_path("sendmail", "defaults", "main.yml").is_file()
