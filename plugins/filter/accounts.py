"""`account_problems`: what is wrong with mail_users_accounts, one sentence per account, before anything changes.

A present account needs a real password: a plain-text `password` that is not empty or a placeholder, or a
`password_hash` in crypt(3) form that is not empty, locked (`!...`, `*...`) or a placeholder. An empty shadow field
lets anyone in where PAM has `nullok` (Debian's common-auth does), and a placeholder is a password an attacker
guesses first. Sentences name the account and the field, never the value.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

DOCUMENTATION = r"""
name: account_problems
short_description: What is wrong with a list of mail accounts (empty or placeholder passwords and hashes)
description:
  - One sentence per problem, naming the account and the field, never the password or hash itself.
  - Accounts with state absent need no password.
options:
  _input:
    description: mail_users_accounts (name, password or password_hash, state).
    type: list
    elements: dict
    required: true
"""

EXAMPLES = r"""
problems: "{{ mail_users_accounts | sendmail_fleet.mail.account_problems }}"
"""

RETURN = r"""
_value:
  description: Sentences; empty when every account is fine.
  type: list
  elements: str
"""

# Values people leave in an inventory until the real one comes (compared case-insensitively, trimmed).
PLACEHOLDERS = frozenset({
    "changeme", "change-me", "change_me", "change me", "password", "passwort", "secret", "todo", "tbd", "fixme",
    "none", "null", "nil", "undefined", "placeholder", "default", "x", "xx", "xxx", "xxxx", "xxxxxxxx", "-", "*",
    "!", "!!", "123456", "12345678", "<password>", "<hash>", "<secret>", "password_hash", "vault",
})
# crypt(3) hashes glibc and libxcrypt understand: $id$[params$]salt$hash (md5, sha256, sha512, bcrypt, yescrypt,
# gost-yescrypt, scrypt). DES (13 characters) is refused: eight characters at most are checked.
CRYPT = re.compile(r"^\$(1|5|6|2[abxy]|y|gy|7)\$[^\s:$]+(\$[^\s:$]+)*\$[./0-9A-Za-z]{16,}$")


def _blank_or_placeholder(value: str) -> str | None:
    text = value.strip()
    if not text:
        return "is empty"
    if text.lower() in PLACEHOLDERS:
        return "is a placeholder, not a password"
    return None


def _hash_problem(value: Any) -> str | None:
    if not isinstance(value, str):
        return "is not a text"
    problem = _blank_or_placeholder(value)
    if problem:
        return problem
    if value.startswith(("!", "*")):
        return "is a locked or disabled entry (it starts with ! or *), not a password hash"
    if not CRYPT.match(value):
        return "is not a crypt(3) hash such as $6$... or $y$... (mkpasswd -m sha-512, or yescrypt)"
    return None


def account_problems(accounts: Sequence[Mapping[str, Any]] | None) -> list[str]:
    problems: list[str] = []
    for i, account in enumerate(accounts or []):
        if not isinstance(account, Mapping):
            problems.append(f"mail_users_accounts[{i}] is not a mapping with a name")
            continue
        name = str(account.get("name") or "").strip()
        who = f"account {name}" if name else f"mail_users_accounts[{i}]"
        if not name:
            problems.append(f"{who} has no name")
            continue
        if account.get("state", "present") == "absent":
            continue
        if "password_hash" in account and account["password_hash"] is not None:
            problem = _hash_problem(account["password_hash"])
            if problem:
                problems.append(f"{who}: password_hash {problem}")
            continue
        if "password" in account and account["password"] is not None:
            value = account["password"]
            problem = "is not a text" if not isinstance(value, str) else _blank_or_placeholder(value)
            if problem:
                problems.append(f"{who}: password {problem}")
            continue
        problems.append(f"{who} needs password_hash or password (vault it)")
    return problems


def mailbox_files(users: Sequence[str], spool: str = "/var/mail", group: str = "mail",
                  mode: str = "0660") -> list[dict[str, Any]]:
    """The files module's entries for the users' mailboxes: each made empty where missing, owned by its user; an
    existing mailbox keeps its mail and its times (mail programs read "new mail" from them)."""
    return [{"path": f"{spool.rstrip('/')}/{user}", "state": "file", "create": True, "owner": user, "group": group,
             "mode": mode} for user in users]


class FilterModule:
    def filters(self) -> dict:
        return {"account_problems": account_problems, "mailbox_files": mailbox_files}
