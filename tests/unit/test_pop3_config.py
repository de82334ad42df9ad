"""dovecot's mbox locking, as the pop3 role writes it for both releases' dovecot."""

from __future__ import annotations

import jinja2
import pytest
import yaml

from sendmail_fleet import repo_root

ROLE = repo_root() / "roles/pop3"
DEFAULTS = yaml.safe_load((ROLE / "defaults/main.yml").read_text())
TEMPLATES = ["pop3-2.3.conf.j2", "pop3-2.4.conf.j2"]


def render(template: str, driver: str = "mbox", **overrides) -> list[str]:
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(ROLE / "templates"), undefined=jinja2.StrictUndefined)
    mail = {"driver": driver, "path": "~/mail", "inbox": "/var/mail/%{user}"}
    values = {**DEFAULTS, "ansible_managed": "managed", "__pop3_mail": mail, **overrides}
    return env.get_template(template).render(**values).splitlines()


@pytest.mark.parametrize("template", TEMPLATES)
def test_dovecot_locks_an_mbox_it_writes_with_fcntl_alone_the_lock_both_deliverers_take(template):
    # mail.local locks fcntl then dotlock, procmail dotlock then fcntl: any order of both is the reverse of one.
    assert [line for line in render(template) if line.startswith("mbox_")] == ["mbox_write_locks = fcntl"]


@pytest.mark.parametrize("template", TEMPLATES)
def test_an_admins_lock_order_is_written_as_given_and_a_maildir_gets_no_mbox_setting(template):
    assert "mbox_write_locks = fcntl dotlock" in render(template, pop3_mbox_write_locks=["fcntl", "dotlock"])
    assert not [line for line in render(template, driver="maildir") if line.startswith("mbox_")]


def test_the_role_api_documents_the_default_and_the_locks_dovecot_knows():
    spec = yaml.safe_load((ROLE / "meta/argument_specs.yml").read_text())["argument_specs"]["main"]["options"]
    option = spec["pop3_mbox_write_locks"]
    assert option["default"] == DEFAULTS["pop3_mbox_write_locks"] == ["fcntl"]
    assert set(option["choices"]) == {"dotlock", "dotlock_try", "fcntl", "flock", "lockf"}
