"""A variant added by data alone: its entry in the variant table and its row of promises in a file
(data/sixth_variant.yml, given to the lab as MAILLAB_VARIANTS, as a provider's inventory gives its own tables). The lab
builds a VPS in it, site.yml provisions it, and the demo checks every promise of the row with real mail. Nothing in
the code or in this test names the variant: what to expect is the file's row.

Runs late (after the rollout and unreachable-host tests) and puts the lab back as it was: one VPS fewer, the
inventory without the extra tables.
"""

from __future__ import annotations

import json
from pathlib import Path

import yaml

import docker
from sendmail_fleet.lab import Paths
from sendmail_fleet.topology import PREFIX

from .conftest import maillab_cli

DATA = Path(__file__).parent / "data" / "sixth_variant.yml"


def test_a_variant_given_as_data_alone_is_built_provisioned_and_keeps_every_promise_in_the_demo(topo, tmp_path):
    added = yaml.safe_load(DATA.read_text())
    (name,) = added["sendmail_variants"]
    row = added["sendmail_promises"][name]
    n = topo.vps_count + 1
    short = f"vps{n}"
    env = {"MAILLAB_VARIANTS": str(DATA)}
    out = tmp_path / "demo.json"
    try:
        up = maillab_cli("up", "--vps", str(n), "--variant", f"{n}={name}", env=env)
        assert up.returncode == 0, up.stdout[-3000:]
        inventory = yaml.safe_load(Paths.default().inventory.read_text())["all"]
        assert inventory["children"]["fleet"]["hosts"][short]["sendmail_variant"] == name
        assert inventory["vars"]["sendmail_variants"][name] == added["sendmail_variants"][name]
        provisioned = maillab_cli("provision", "-l", short, env=env)
        assert provisioned.returncode == 0, provisioned.stdout[-3000:]
        # the demo on the new VPS alone: the earlier tests left other hosts where their scenarios put them
        demo = maillab_cli("demo", "--skip-provision", "--only", short, "--json", str(out), env=env)
        assert demo.returncode == 0 and out.exists(), demo.stdout[-3000:]
    finally:
        back = maillab_cli("up", "--vps", str(topo.vps_count))
    assert back.returncode == 0, back.stdout[-3000:]
    (host,) = json.loads(out.read_text())["hosts"]
    assert host["vps"] == short
    assert host["variant"] == name
    seen = {r["check"]: r for r in host["checks"]}
    assert sorted(seen) == sorted(row) and len(host["checks"]) == len(row), "the demo ran each check of the row once"
    wrong = {check: (promised, seen[check]["seen"], seen[check]["detail"]) for check, promised in row.items()
             if not seen[check]["passed"] or seen[check]["seen"] != promised}
    assert wrong == {}, f"{short} ({name}): check: (promised, seen, detail): {wrong}"
    # the lab is back: the extra VPS gone, the inventory without the extra tables
    assert f"{PREFIX}-{short}" not in {c.name for c in docker.from_env().containers.list(all=True)}
    assert "sendmail_variants" not in yaml.safe_load(Paths.default().inventory.read_text())["all"]["vars"]
