"""The access_map filters (plugins/filter/access_map.py): which lines of /etc/mail/access grant relay, read as sendmail
reads them (keys and RELAY in any case), and the file the sendmail role writes back."""

from __future__ import annotations

from sendmail_fleet.collection import filter_plugin

am = filter_plugin("access_map")

ACCESS = """\
# /etc/mail/access, as an admin left it
Connect:127.0.0.1\tRELAY
connect:localhost RELAY
Connect:IPv6:::1\tRELAY
GreetPause:\t500
ClientRate:\t10
GreetPause:203.0.113.5\t0
Connect:198.51.100.7\tRELAY
connect:198.51.100.8\trelay
To:partner.example\tRelay # the partner's domain
198.51.100.9 REJECT
From:spammer.example\tERROR:550 go away
Connect:198.51.100.7\tRELAY
CONNECT:198.51.100.10   OK
"""


def test_every_relay_grant_counts_whatever_its_case_and_loopback_and_other_values_do_not():
    assert am.access_relay_grants(ACCESS) == ["Connect:198.51.100.7", "connect:198.51.100.8", "To:partner.example"]


def test_kept_grants_are_left_out_without_regard_to_case():
    assert am.access_relay_grants(ACCESS, ["CONNECT:198.51.100.8", "to:partner.example"]) == ["Connect:198.51.100.7"]


def test_the_rebuilt_file_replaces_the_roles_limit_lines_removes_the_grants_and_keeps_every_other_line():
    limits = ["GreetPause:\t1000", "ClientRate:\t30", "GreetPause:203.0.113.5\t0"]
    out = am.access_rebuilt(ACCESS, limits, ["203.0.113.5"], ["connect:198.51.100.7", "Connect:198.51.100.8"],
                            "# sendmail-fleet limits")
    lines = out.splitlines()
    assert lines[-4:] == ["# sendmail-fleet limits", *limits] and out.endswith("\n")
    assert not any(line.lower().startswith(("connect:198.51.100.7", "connect:198.51.100.8")) for line in lines)
    for kept in ("Connect:127.0.0.1\tRELAY", "To:partner.example\tRelay # the partner's domain",
                 "198.51.100.9 REJECT", "From:spammer.example\tERROR:550 go away", "CONNECT:198.51.100.10   OK",
                 "# /etc/mail/access, as an admin left it"):
        assert kept in lines, kept
    # the admin's old limit lines for the default and the exempt address are gone: only the role's remain
    assert [line for line in lines if line.lower().startswith(("greetpause", "clientrate", "clientconn"))] == limits


def test_rebuilding_twice_gives_the_same_file():
    limits = ["GreetPause:\t1000", "ClientConn:\t10"]
    once = am.access_rebuilt(ACCESS, limits, [], [], "# sendmail-fleet limits")
    assert am.access_rebuilt(once, limits, [], [], "# sendmail-fleet limits") == once


def test_an_empty_or_missing_file_gets_just_the_limits():
    assert am.access_rebuilt("", ["GreetPause:\t1000"], [], [], "# c") == "# c\nGreetPause:\t1000\n"
    assert am.access_relay_grants("") == []
