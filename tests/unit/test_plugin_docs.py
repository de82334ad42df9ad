"""Every plugin's DOCUMENTATION, EXAMPLES and RETURN are YAML that loads: ansible-doc and ansible-lint read them, and
one that does not load only says so as an [ERROR] line in a log that still ends "clean" (it happened twice: a
plain list item with ": " in it)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
import yaml

from sendmail_fleet import repo_root

PLUGINS = sorted((repo_root() / "plugins").glob("*/*.py"))
BLOCKS = ("DOCUMENTATION", "EXAMPLES", "RETURN")


def doc_blocks(path: Path) -> dict[str, str]:
    """The module-level string constants named DOCUMENTATION, EXAMPLES and RETURN, read without importing."""
    tree = ast.parse(path.read_text())
    return {t.id: node.value.value for node in tree.body if isinstance(node, ast.Assign)
            for t in node.targets if isinstance(t, ast.Name) and t.id in BLOCKS
            and isinstance(node.value, ast.Constant) and isinstance(node.value.value, str)}


@pytest.mark.parametrize("path", PLUGINS, ids=[f"{p.parent.name}/{p.name}" for p in PLUGINS])
def test_the_documentation_blocks_of_a_plugin_load_as_yaml(path):
    for name, text in doc_blocks(path).items():
        try:
            yaml.safe_load(text)
        except yaml.YAMLError as e:
            pytest.fail(f"{path.name} {name} is not YAML: {e}")


def test_every_module_documents_each_of_its_options():
    """The modules' DOCUMENTATION names the options their argument_spec takes, and no others."""
    for path in sorted((repo_root() / "plugins" / "modules").glob("*.py")):
        doc = yaml.safe_load(doc_blocks(path)["DOCUMENTATION"])
        tree = ast.parse(path.read_text())
        specs = [n for n in ast.walk(tree) if isinstance(n, ast.keyword) and n.arg == "argument_spec"
                 and isinstance(n.value, ast.Dict)]
        assert specs, f"{path.name}: no argument_spec={{...}} found"
        spec = {k.value for k in specs[0].value.keys if isinstance(k, ast.Constant)}
        assert set(doc.get("options", {})) == spec, path.name
