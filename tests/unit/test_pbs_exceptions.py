"""The grace phase's exceptions from the inventory (plugins/filter/pbs_exceptions.py): the role's early check and
the file it writes, read back by the host helper's own parser, so the inventory and the host agree."""

from __future__ import annotations

import datetime

import pytest

from sendmail_fleet import repo_root
from sendmail_fleet.collection import filter_plugin

ex = filter_plugin("pbs_exceptions")


def helper():
    return ex._helper()


def test_mailboxes_and_networks_with_their_last_day_become_the_helpers_file():
    entries = [{"mailbox": "bob", "until": "2027-03-31"},
               {"network": "192.0.2.0/28", "until": datetime.date(2027, 1, 31), "comment": "office"}]
    assert ex.exceptions_problems(entries) == []
    text = ex.exceptions_text(entries)
    found, bad = helper().parse_exceptions(text)
    assert bad == []
    assert [(e.kind, e.value, e.until) for e in found] == [("mailbox", "bob", "2027-03-31"),
                                                           ("network", "192.0.2.0/28", "2027-01-31")]
    assert text.startswith("#")  # the header says where the file comes from


def test_no_exceptions_is_an_empty_list_with_the_header_only():
    assert ex.exceptions_problems([]) == [] and ex.exceptions_problems(None) == []
    assert helper().parse_exceptions(ex.exceptions_text([])) == ([], [])


@pytest.mark.parametrize(("entry", "why"), [
    ({"mailbox": "bob"}, "needs exactly one of mailbox or network, and until"),
    ({"mailbox": "bob", "network": "10.0.0.0/8", "until": "2027-01-01"}, "exactly one of mailbox or network"),
    ({"mailbox": "bob", "until": "2027-02-30"}, "is not a date"),
    ({"mailbox": "bob", "until": "31.01.2027"}, "is not a date"),
    ({"network": "10.0.0.300/24", "until": "2027-01-01"}, "does not appear to be"),
    ({"mailbox": "bob smith", "until": "2027-01-01"}, "is not a mailbox name"),
    ({"mailbox": "bob\nmailbox eve", "until": "2027-01-01"}, "is not a mailbox name"),  # no forged second line
    ({"mailbox": "bob", "until": "2027-01-01", "untill": "x"}, "unknown keys: untill"),
    ("bob 2027-01-01", "is not a mapping"),
])
def test_an_unusable_entry_is_named_with_its_index_and_the_allowed_form(entry, why):
    problems = ex.exceptions_problems([{"mailbox": "alice", "until": "2027-01-01"}, entry])
    assert len(problems) == 1 and problems[0].startswith("pop_before_smtp_exceptions[1]") and why in problems[0]
    with pytest.raises(ValueError):
        ex.exceptions_text([entry])


def test_a_mailbox_or_network_listed_twice_is_refused():
    problems = ex.exceptions_problems([{"mailbox": "bob", "until": "2027-01-01"},
                                       {"mailbox": "bob", "until": "2028-01-01"},
                                       {"network": "192.0.2.0/24", "until": "2027-01-01"},
                                       {"network": "192.0.2.7/24", "until": "2027-01-01"}])
    assert [p.split(":")[0] for p in problems] == ["pop_before_smtp_exceptions[1]", "pop_before_smtp_exceptions[3]"]


def test_the_filter_reads_the_helper_the_role_deploys():
    assert ex._helper().__file__ == str(repo_root() / "roles/pop_before_smtp/files/pop_before_smtp.py")
