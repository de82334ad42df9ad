"""The fail2ban filters match the failed-login lines of both releases we support (sendmail 8.17/8.18, dovecot 2.3
on Debian 12 and 2.4 on Debian 13) and nothing else, tested with fail2ban's own fail2ban-regex: Debian's package,
which set-up (scripts/bootstrap.sh) fetched from this host's apt mirror and unpacked, not installed, into the lab's
cache folder. The tests themselves need no network; the lines are recorded from the lab or built as a stranger
would make them."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from sendmail_fleet import repo_root
from sendmail_fleet.lab import Paths
from sendmail_fleet.topology import LONG_PTR_NAME

FILTERS = repo_root() / "roles" / "fail2ban" / "files" / "filter.d"
TREE = Paths.default().state / "cache" / "fail2ban" / "tree"


@pytest.fixture(scope="session")
def fail2ban(tmp_path_factory) -> Path:
    """fail2ban's configuration folder (its stock filters plus ours), with fail2ban's code unpacked beside it."""
    assert (TREE / "usr" / "bin" / "fail2ban-regex").exists(), (
        f"fail2ban's code is not in {TREE}: scripts/bootstrap.sh fetches Debian's fail2ban package there (with "
        "apt-get download); run it once with the network (make unit does)")
    config = tmp_path_factory.mktemp("fail2ban")
    shutil.copytree(TREE / "etc" / "fail2ban", config, dirs_exist_ok=True)
    for f in FILTERS.glob("*.conf"):
        shutil.copy(f, config / "filter.d" / f.name)
    return config


def banned(fail2ban: Path, filter_name: str, lines: list[str], tmp_path: Path) -> list[str]:
    """The address fail2ban takes from each line the filter matches, in order."""
    log = tmp_path / "mail.log"
    log.write_text("\n".join(lines) + "\n")
    run = subprocess.run([sys.executable, str(TREE / "usr" / "bin" / "fail2ban-regex"), "-c", str(fail2ban),
                          "-o", "ip", str(log), filter_name],
                         env={**os.environ, "PYTHONPATH": str(TREE / "usr" / "lib" / "python3" / "dist-packages")},
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


# -- hostile input: what a stranger can write into a log line ----------------------------------------------------
# dovecot writes the user name a client sent verbatim inside user=<...>, before its own rip= and lip=. Each name
# below names another address (a customer's office, the controller): only the client's own address may be banned.
FORGED = "172.29.25.77"
HOSTILE_POP3_USERS = {
    "a second rip= after a closing >": f"x>, rip={FORGED}, y",
    "rip= and lip= as dovecot writes them": f"x>, method=PLAIN, rip={FORGED}, lip=10.0.0.1, TLS, session=<abc",
    "the whole tail of a line": f"x>, rip={FORGED}, lip=10.0.0.1, TLS, session=<abc>",
    "brackets and IPv6": f"[{FORGED}]>, rip=IPv6:2001:db8::66, y",
    "an address alone": FORGED,
    "no closing >": f"x, rip={FORGED}",
}


def dovecot_failure(user: str, client: str, release: str) -> str:
    if release == "2.3":
        return (f"Dec  4 10:00:01 mail.vps2.test dovecot[811]: pop3-login: Disconnected (auth failed, 1 attempts in 2 "
                f"secs): user=<{user}>, method=PLAIN, rip={client}, lip=172.29.25.22, TLS, session=<O3DIZkFh5Kas>")
    return (f"Dec  4 10:00:01 mail.vps2.test dovecot[811]: pop3-login: Login aborted: Connection closed (auth failed, "
            f"1 attempts in 2 secs) (auth_failed): user=<{user}>, method=PLAIN, rip={client}, lip=172.29.25.22, TLS, "
            "session=<Qk2wZkFhLOrA>")


@pytest.mark.parametrize("release", ["2.3", "2.4"])
@pytest.mark.parametrize("case", HOSTILE_POP3_USERS)
def test_a_pop3_user_name_that_names_another_address_gets_only_the_real_client_banned(fail2ban, tmp_path, case,
                                                                                   release):
    line = dovecot_failure(HOSTILE_POP3_USERS[case], "198.51.100.9", release)
    assert banned(fail2ban, "sendmail-fleet-pop3", [line] * 3, tmp_path) == ["198.51.100.9"] * 3


def test_a_pop3_failure_from_an_ipv6_client_bans_that_client(fail2ban, tmp_path):
    line = dovecot_failure(f"x>, rip={FORGED}", "2001:db8::9", "2.4")
    assert banned(fail2ban, "sendmail-fleet-pop3", [line], tmp_path) == ["2001:db8::9"]


# sendmail cuts relay= at 100 characters (relay=%.100s of "NAME [ADDRESS]"): a client with a long reverse DNS name
# has no address on its failure lines. Its session's "connect from" line (not cut) gives it, by process id.
LONG_PTR = LONG_PTR_NAME  # the lab's client2 has it: 124 characters, as a hostile client may have


def sendmail_session(pid: int, client: str, name: str, users: list[str]) -> list[str]:
    relay = f"{name} [{client}]" if name else f"[{client}]"
    lines = [f"Dec  4 10:00:00 mail.vps3.test sm-mta[{pid}]: NOQUEUE: connect from {relay}"]
    for i, user in enumerate(users):
        lines.append(f"Dec  4 10:00:0{i + 1} mail.vps3.test sm-mta[{pid}]: 5B4A0{i}Oe00{pid}: AUTH failure (PLAIN): "
                     "authentication failure (-13) SASL(-13): authentication failure: Password verification failed, "
                     f"user={user}, relay={relay[:100]}")
    return lines


def test_a_client_with_a_reverse_dns_name_too_long_for_the_failure_line_is_banned_by_its_connect_line(fail2ban,
                                                                                                         tmp_path):
    lines = sendmail_session(3101, "198.51.100.31", LONG_PTR, ["alice", "bob", "carol"])
    assert "[198.51.100.31]" not in lines[1]  # the premise: sendmail's own line has lost the address
    assert banned(fail2ban, "sendmail-fleet-auth", lines, tmp_path) == ["198.51.100.31"] * 3


@pytest.mark.parametrize("user", [
    "x, relay=[172.29.25.77]", f"x, relay=evil [{FORGED}] (may be forged)", f"[{FORGED}]", "x]"])
@pytest.mark.parametrize("name", ["", "client2.clients.test", LONG_PTR])
def test_an_smtp_auth_user_name_that_names_another_address_gets_only_the_real_client_banned(fail2ban, tmp_path,
                                                                                           user, name):
    lines = sendmail_session(3102, "198.51.100.32", name, [user, user])
    assert banned(fail2ban, "sendmail-fleet-auth", lines, tmp_path) == ["198.51.100.32"] * 2


def test_sessions_that_run_side_by_side_each_ban_their_own_client(fail2ban, tmp_path):
    a = sendmail_session(3201, "198.51.100.41", LONG_PTR, ["alice", "bob"])
    b = sendmail_session(3202, "198.51.100.42", "other.example", ["carol"])
    interleaved = [a[0], b[0], a[1], b[1], a[2]]
    assert banned(fail2ban, "sendmail-fleet-auth", interleaved, tmp_path) == \
        ["198.51.100.41", "198.51.100.42", "198.51.100.41"]


def test_a_connect_line_or_a_successful_login_alone_bans_nobody(fail2ban, tmp_path):
    lines = sendmail_session(3301, "198.51.100.51", LONG_PTR, [])
    lines.append("Dec  4 10:00:02 mail.vps3.test sm-mta[3301]: AUTH=server, relay=[198.51.100.51], authid=alice, "
                 "mech=PLAIN, bits=0")
    assert banned(fail2ban, "sendmail-fleet-auth", lines, tmp_path) == []


def test_a_cut_failure_line_without_its_session_names_no_address_rather_than_a_wrong_one(fail2ban, tmp_path):
    line = sendmail_session(3401, "198.51.100.61", LONG_PTR, [f"x, relay=[{FORGED}]"])[1]
    assert banned(fail2ban, "sendmail-fleet-auth", [line], tmp_path) == []
