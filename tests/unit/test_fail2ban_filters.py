"""The fail2ban filters match the failed-login lines of both releases we support (sendmail 8.17/8.18, dovecot 2.3
on Debian 12 and 2.4 on Debian 13) and nothing else, tested with fail2ban's own fail2ban-regex: Debian's fail2ban
package, fetched from this host's apt mirror and unpacked (not installed) into the lab's cache folder."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from sendmail_fleet import repo_root
from sendmail_fleet.lab import Paths

FILTERS = repo_root() / "roles" / "fail2ban" / "files" / "filter.d"


def _download(folder: Path) -> Path:
    def fetch() -> subprocess.CompletedProcess:
        return subprocess.run(["apt-get", "download", "fail2ban"], cwd=folder, capture_output=True, text=True,
                              timeout=300)
    run = fetch()
    if run.returncode != 0 and os.geteuid() == 0:  # a new machine has no package lists yet
        subprocess.run(["apt-get", "update", "-qq"], capture_output=True, timeout=600, check=False)
        run = fetch()
    debs = sorted(folder.glob("fail2ban_*.deb"))
    assert debs, f"cannot fetch Debian's fail2ban package (apt-get download fail2ban): {run.stderr.strip()}"
    return debs[-1]


@pytest.fixture(scope="session")
def fail2ban(tmp_path_factory) -> Path:
    """fail2ban's configuration folder (its stock filters plus ours), with fail2ban's code unpacked beside it."""
    cache = Paths.default().state / "cache" / "fail2ban"
    tree = cache / "tree"
    if not (tree / "usr" / "bin" / "fail2ban-regex").exists():
        cache.mkdir(parents=True, exist_ok=True)
        deb = _download(cache)
        shutil.rmtree(tree, ignore_errors=True)
        subprocess.run(["dpkg-deb", "-x", str(deb), str(tree)], check=True, timeout=120)
    config = tmp_path_factory.mktemp("fail2ban")
    shutil.copytree(tree / "etc" / "fail2ban", config, dirs_exist_ok=True)
    for f in FILTERS.glob("*.conf"):
        shutil.copy(f, config / "filter.d" / f.name)
    return config


def banned(fail2ban: Path, filter_name: str, lines: list[str], tmp_path: Path) -> list[str]:
    """The address fail2ban takes from each line the filter matches, in order."""
    log = tmp_path / "mail.log"
    log.write_text("\n".join(lines) + "\n")
    tree = Paths.default().state / "cache" / "fail2ban" / "tree"
    run = subprocess.run([sys.executable, str(tree / "usr" / "bin" / "fail2ban-regex"), "-c", str(fail2ban),
                          "-o", "ip", str(log), filter_name],
                         env={**os.environ, "PYTHONPATH": str(tree / "usr" / "lib" / "python3" / "dist-packages")},
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr[-2000:]
    return run.stdout.split()


SENDMAIL_FAILURES = {
    # sendmail 8.17 (Debian 12) and 8.18 (Debian 13) write the same line; a queue id, or NOQUEUE, or none.
    "saslauthd, PLAIN": "Nov 27 12:34:06 mail.vps3.test sm-mta[10406]: 5ARCY6Oe010406: AUTH failure (PLAIN): "
                        "authentication failure (-13) SASL(-13): authentication failure: Password verification "
                        "failed, relay=maillab-client2.maillab-net [172.29.25.102]",
    "LOGIN, may be forged": "Nov 27 12:35:01 mail.vps3.test sm-mta[10410]: 5ARCZ1aa010410: AUTH failure (LOGIN): "
                            "authentication failure (-13) SASL(-13): authentication failure: checkpass failed, "
                            "user=bob, relay=host.example [192.0.2.44] (may be forged)",
    "NOQUEUE, no name": "Nov 27 12:36:00 mail.vps3.test sm-mta[10411]: NOQUEUE: AUTH failure (PLAIN): "
                        "authentication failure (-13) SASL(-13): authentication failure: Password verification "
                        "failed, relay=[198.51.100.23]",
    "IPv6": "Nov 27 12:37:00 mail.vps3.test sm-mta[10412]: 5ARCb0bb010412: AUTH failure (PLAIN): authentication "
            "failure (-13) SASL(-13): authentication failure: Password verification failed, "
            "relay=[IPv6:2001:db8::7]",
}
SENDMAIL_OTHERS = [
    "Nov 27 12:34:06 mail.vps3.test sm-mta[10406]: AUTH=server, relay=maillab-client1.maillab-net [172.29.25.101], "
    "authid=alice, mech=PLAIN, bits=0",
    "Nov 27 12:34:07 mail.vps3.test sm-mta[10407]: 5ARCY7Oe010407: ruleset=check_rcpt, arg1=<carol@remote.test>, "
    "relay=maillab-client1.maillab-net [172.29.25.101], reject=550 5.7.1 <carol@remote.test>... Relaying denied",
]

DOVECOT_FAILURES = {
    "2.3 Disconnected (Debian 12)": "Nov 27 12:43:05 mail.vps3.test dovecot[11099]: pop3-login: Disconnected (auth "
                                    "failed, 1 attempts in 2 secs): user=<alice>, method=PLAIN, rip=172.29.25.102, "
                                    "lip=172.29.25.23, TLS, session=<O3DIZkFh5KasHRkB>",
    "2.3 Aborted login": "Nov 27 12:43:06 mail.vps3.test dovecot[11099]: pop3-login: Aborted login (auth failed, 3 "
                         "attempts in 12 secs): user=<bob>, method=LOGIN, rip=192.0.2.5, lip=172.29.25.23, "
                         "session=<A3DIZkFh5KasHRkB>",
    "2.4 Login aborted (Debian 13)": "Nov 27 12:44:00 mail.vps13.test dovecot[2201]: pop3-login: Login aborted: "
                                     "Connection closed (auth failed, 1 attempts in 2 secs) (auth_failed): "
                                     "user=<alice>, method=PLAIN, rip=192.0.2.66, lip=192.0.2.1, TLS, "
                                     "session=<Qk2wZkFhLOrAAAIB>",
    "a user name that names another address": "Nov 27 12:45:00 mail.vps3.test dovecot[11099]: pop3-login: "
                                              "Disconnected (auth failed, 1 attempts in 2 secs): user=<x, "
                                              "rip=6.6.6.6>, method=PLAIN, rip=192.0.2.77, lip=172.29.25.23, TLS",
}
DOVECOT_OTHERS = [
    "Nov 27 12:43:02 mail.vps3.test dovecot[11099]: pop3-login: Login: user=<alice>, method=PLAIN, "
    "rip=172.29.25.1, lip=172.29.25.23, mpid=15089, TLS, session=<j3WYZkFh2KasHRkB>",
    "Nov 27 12:43:05 mail.vps3.test dovecot[11099]: pop3-login: Disconnected: Connection closed: SSL_accept() "
    "failed: error:0A000412:SSL routines::sslv3 alert bad certificate: SSL alert number 42 (no auth attempts in 0 "
    "secs): user=<>, rip=172.29.25.1, lip=172.29.25.23, TLS handshaking, session=<O3DIZkFh5KasHRkB>",
    "Nov 27 12:44:01 mail.vps13.test dovecot[2201]: pop3-login: Login aborted: Connection closed (no auth attempts "
    "in 0 secs) (no_auth_attempts): user=<>, rip=192.0.2.67, lip=192.0.2.1, TLS, session=<Qk2wZkFhLOrAAAIC>",
]


@pytest.mark.parametrize("case", SENDMAIL_FAILURES)
def test_sendmail_auth_failures_are_matched_with_the_client_address(fail2ban, tmp_path, case):
    line = SENDMAIL_FAILURES[case]
    assert banned(fail2ban, "sendmail-fleet-auth", [line], tmp_path) == [line.rsplit("[", 1)[1].split("]")[0]
                                                                          .removeprefix("IPv6:")]


def test_sendmail_lines_that_are_no_failed_login_are_not_matched(fail2ban, tmp_path):
    assert banned(fail2ban, "sendmail-fleet-auth", SENDMAIL_OTHERS, tmp_path) == []


@pytest.mark.parametrize("case", DOVECOT_FAILURES)
def test_dovecot_failed_logins_of_both_releases_are_matched_with_the_client_address(fail2ban, tmp_path, case):
    line = DOVECOT_FAILURES[case]
    assert banned(fail2ban, "sendmail-fleet-pop3", [line], tmp_path) == [line.rsplit("rip=", 1)[1].split(",")[0]]


def test_dovecot_logins_and_connections_without_a_password_are_not_matched(fail2ban, tmp_path):
    assert banned(fail2ban, "sendmail-fleet-pop3", DOVECOT_OTHERS, tmp_path) == []
