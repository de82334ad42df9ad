"""mail_users_password_rounds: the sha512-crypt rounds of the hash the mail_users role makes from a password. Every
SMTP-Auth and POP3 login computes that hash again on the VPS, so the count is the admin's to set; the default keeps
the hashes hosts already have (Ansible's 656000), and a count sha512-crypt does not take stops the play first."""

from __future__ import annotations

import json
import re
import subprocess
import sys

import pytest
import yaml
from ansible.parsing.dataloader import DataLoader
from ansible.template import Templar, trust_as_template

from sendmail_fleet import playbook as ansible_playbook
from sendmail_fleet import repo_root

ROLE = repo_root() / "roles" / "mail_users"


def role_hash(password: str, **variables) -> str:
    """The hash the role's account task makes from `password` for alice on vps1, with the role's defaults."""
    tasks = yaml.safe_load((ROLE / "tasks" / "accounts.yml").read_text())
    expr = next(t for t in tasks if t["name"] == "Users | Accounts")["ansible.builtin.user"]["password"]
    defaults = yaml.safe_load((ROLE / "defaults" / "main.yml").read_text())
    return Templar(loader=DataLoader(), variables={
        **defaults, "item": {"name": "alice", "password": password}, "inventory_hostname": "vps1", **variables,
    }).template(trust_as_template(expr))


def test_by_default_the_hash_is_ansibles_656000_rounds_so_existing_accounts_keep_theirs():
    from ansible.plugins.filter.core import get_encrypted_password

    made = role_hash("alice-Secret-1")
    assert made.startswith("$6$rounds=656000$")
    salt = made.split("$")[3]
    assert made == get_encrypted_password("alice-Secret-1", "sha512", salt=salt)  # what the role made before


def test_a_smaller_count_makes_the_hash_of_that_many_rounds():
    from ansible.plugins.filter.core import get_encrypted_password

    made = role_hash("alice-Secret-1", mail_users_password_rounds=5000)
    assert made.startswith("$6$") and "rounds=656000" not in made  # 5000 is crypt(3)'s own: not written
    salt = made.split("$")[2]
    assert made == get_encrypted_password("alice-Secret-1", "sha512", salt=salt, rounds=5000)
    assert made != get_encrypted_password("alice-Secret-1", "sha512", salt=salt, rounds=5001)
    assert made.split("$")[2] == role_hash("alice-Secret-1").split("$")[3]  # the same stable salt either way


PLAYBOOK = """
- hosts: all
  gather_facts: false
  tasks:
    - name: The accounts' check
      ansible.builtin.include_role:
        name: sendmail_fleet.mail.mail_users
        tasks_from: check
"""


def check(tmp_path, rounds: str, accounts: list[dict] | None = None) -> subprocess.CompletedProcess:
    (tmp_path / "pb.yml").write_text(PLAYBOOK)
    (tmp_path / "hosts.ini").write_text(f"vps1 ansible_connection=local ansible_python_interpreter={sys.executable}\n")
    given = json.dumps({"mail_users_password_rounds": rounds, "mail_users_accounts": accounts or []})
    return subprocess.run(["ansible-playbook", "-i", str(tmp_path / "hosts.ini"), str(tmp_path / "pb.yml"),
                           "-e", given],
                          env=ansible_playbook.ansible_env(accelerated=False), capture_output=True, text=True,
                          check=False, cwd=tmp_path, timeout=300)


@pytest.mark.parametrize("rounds", ["999", "1000000000"])
def test_a_count_sha512_crypt_does_not_take_stops_the_play_naming_the_variable_and_the_range(tmp_path, rounds):
    run = check(tmp_path, rounds)
    assert run.returncode != 0
    text = " ".join(run.stdout.split())
    assert f"vps1: mail_users_password_rounds is {rounds}; sha512-crypt takes 1000 to 999999999 rounds" in text, \
        run.stdout[-2000:]


def test_a_count_in_range_passes_the_check(tmp_path):
    run = check(tmp_path, "5000")
    assert run.returncode == 0 and "failed=0" in run.stdout, run.stdout[-2000:] + run.stderr[-2000:]


def test_a_placeholder_password_and_a_bad_count_are_both_named_and_the_password_is_not_shown(tmp_path):
    run = check(tmp_path, "10", [{"name": "erin", "password": "changeme"}, {"name": "frank", "password": "Fr-9x"}])
    assert run.returncode != 0
    text = " ".join(run.stdout.split())
    assert ("vps1: account erin: password is a placeholder, not a password; mail_users_password_rounds is 10; "
            "sha512-crypt takes") in text, text[-2000:]
    assert "An empty or placeholder password lets anyone who guesses it read and send the mailbox's mail." in text
    assert "changeme" not in run.stdout and "Fr-9x" not in run.stdout


def test_a_bad_count_alone_does_not_speak_of_placeholder_passwords(tmp_path):
    text = " ".join(check(tmp_path, "999").stdout.split())
    message = re.search(r"msg: '(.*?)'", text)
    assert message and message.group(1) == ("vps1: mail_users_password_rounds is 999; sha512-crypt takes 1000 to "
                                             "999999999 rounds (656000 is the default). Nothing was changed."), text
