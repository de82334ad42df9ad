"""The AWX execution environment (execution-environment.yml): scripts/ee-context.sh makes its build context offline
(ansible-galaxy builds the collection from this checkout, ansible-builder writes the context), and the context holds
ansible-core, ansible-runner, Mitogen and this collection at the version galaxy.yml gives."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tarfile
from pathlib import Path

import yaml

from sendmail_fleet import repo_root


def test_the_build_context_is_made_offline_with_the_collection_built_from_this_checkout(tmp_path):
    context = tmp_path / "context"
    env = dict(os.environ, PATH=str(Path(sys.executable).parent) + os.pathsep + os.environ["PATH"],
               # no package index and no proxy: making the context must not need the network
               PIP_NO_INDEX="1", http_proxy="http://127.0.0.1:9", https_proxy="http://127.0.0.1:9",
               HTTP_PROXY="http://127.0.0.1:9", HTTPS_PROXY="http://127.0.0.1:9")
    run = subprocess.run([str(repo_root() / "scripts" / "ee-context.sh"), str(context)], capture_output=True,
                         text=True, timeout=300, env=env)
    assert run.returncode == 0, run.stdout + run.stderr
    build = context / "_build"
    containerfile = (context / "Containerfile").read_text()
    assert "ansible-galaxy collection install" in containerfile and "COPY _build/collection /build/collection" in \
        containerfile
    pip = (build / "requirements.txt").read_text()
    assert "mitogen" in pip and "libpass" in pip
    assert yaml.safe_load((build / "requirements.yml").read_text()) == {
        "collections": [{"name": "/build/collection/sendmail_fleet-mail.tar.gz", "type": "file"}]}
    with tarfile.open(build / "collection" / "sendmail_fleet-mail.tar.gz") as tar:
        manifest = json.load(tar.extractfile("MANIFEST.json"))
        names = tar.getnames()
    info = manifest["collection_info"]
    galaxy = yaml.safe_load((repo_root() / "galaxy.yml").read_text())
    assert (info["namespace"], info["name"], info["version"]) == ("sendmail_fleet", "mail", galaxy["version"])
    assert "roles/mail_host/tasks/main.yml" in names and "playbooks/site.yml" in names
    assert not any(n.startswith((".ee", ".venv", ".lab", "tests/")) for n in names), "the artifact carries local files"
    definition = yaml.safe_load((repo_root() / "execution-environment.yml").read_text())
    assert "ansible-core" in definition["dependencies"]["ansible_core"]["package_pip"]
    assert "ansible-runner" in definition["dependencies"]["ansible_runner"]["package_pip"]
