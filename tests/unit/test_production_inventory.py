"""The example production inventory parses, and every host in it resolves to one of the variants."""

import json
import os
import subprocess
import sys
from pathlib import Path

from sendmail_fleet import repo_root
from sendmail_fleet.variants import variant_for_setup_date, variant_names

INV = repo_root() / "inventory" / "production"


def ansible_inventory() -> dict:
    exe = Path(sys.executable).parent / "ansible-inventory"
    out = subprocess.run([str(exe), "-i", str(INV), "--list"], capture_output=True, text=True, timeout=120,
                         env={**os.environ, "ANSIBLE_CONFIG": str(repo_root() / "ansible.cfg")}, check=True)
    return json.loads(out.stdout)


def test_every_fleet_host_gets_a_known_variant_by_name_or_by_date():
    import datetime as dt
    data = ansible_inventory()
    hostvars = data["_meta"]["hostvars"]
    fleet = [h for g in data["fleet"]["children"] for h in data[g]["hosts"]]
    assert len(fleet) == 5
    resolved = {}
    for h in fleet:
        hv = hostvars[h]
        resolved[h] = hv.get("sendmail_variant") or variant_for_setup_date(dt.date.fromisoformat(hv["sendmail_setup_date"]))
        assert resolved[h] in variant_names()
        assert hv["rollout_probe_user"] and hv["mail_domain"]
        assert hv["rollout_probe_password"] == "{{ vault_rollout_probe_passwords[inventory_hostname] }}"
    assert set(resolved.values()) == {"pop-before-smtp", "default", "default-procmail-lda", "default-auth-only"}


def test_the_vault_example_gives_every_host_its_own_probe_password():
    import yaml
    vault = yaml.safe_load((INV / "group_vars" / "all" / "vault.yml.example").read_text())
    data = ansible_inventory()
    fleet = {h for g in data["fleet"]["children"] for h in data[g]["hosts"]}
    passwords = vault["vault_rollout_probe_passwords"]
    assert set(passwords) == fleet and len(set(passwords.values())) == len(fleet)
