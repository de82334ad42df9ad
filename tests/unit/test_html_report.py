"""The HTML reports: the collection's html_report filter (rollout, audit) and the demo's matrix built on it."""

from __future__ import annotations

import re

import pytest

from sendmail_fleet.collection import filter_plugin
from sendmail_fleet.demo import html as demo_html

from ..htmlcells import parse

report = filter_plugin("html_report")


ROWS = [
    {"host": "vps1", "result": "switched", "batch": 1, "detail": "proven with real mail"},
    {"host": "vps2", "result": "rolled-back", "batch": 2, "detail": "<script>alert(1)</script> & more"},
    {"host": "vps3", "result": "held", "batch": 2, "detail": ""},
]
COLOURS = {"result": {"switched": "ok", "held": "warn", "*": "fail"}}


def test_each_result_cell_is_coloured_by_what_its_value_maps_to_and_others_take_the_default():
    page = parse(report.html_report(ROWS, ["host", "result", "detail"], status=COLOURS))
    cells = {r[0][0]: r[1] for r in page.rows[1:]}
    assert cells == {"vps1": ("switched", "ok"), "vps2": ("rolled-back", "fail"), "vps3": ("held", "warn")}
    assert [c[0] for c in page.rows[0]] == ["HOST", "RESULT", "DETAIL"]


def test_text_is_escaped_and_the_page_has_no_script_and_no_outside_file():
    text = report.html_report(ROWS, ["host", "detail"])
    assert "<script>" not in text and "&lt;script&gt;alert(1)&lt;/script&gt; &amp; more" in text
    page = parse(text)
    assert "script" not in page.tags and "link" not in page.tags and "img" not in page.tags
    assert not re.search(r"(src|href)=", text)


def test_rows_are_split_by_group_in_the_order_groups_first_appear():
    page = parse(report.html_report(ROWS, ["host", "result"], title="Rollout", group_by="batch",
                                    group_label="Batch {}"))
    assert page.headings == ["Rollout", "Batch 1", "Batch 2"]
    assert [len(r) for r in page.rows] == [2, 2, 2, 2, 2]  # a header and vps1; a header, vps2 and vps3
    assert [r[0][0] for r in page.rows] == ["HOST", "vps1", "HOST", "vps2", "vps3"]


def test_the_page_is_made_for_a_phone_and_says_its_result_in_the_summary():
    text = report.html_report(ROWS, ["host", "result"], summary="3 hosts", status=COLOURS)
    assert '<meta name="viewport" content="width=device-width, initial-scale=1">' in text
    assert "overflow-x: auto" in text
    assert '<p class="summary fail">3 hosts</p>' in text  # a red cell makes the summary red
    ok = report.html_report(ROWS[:1], ["host", "result"], summary="1 host", status=COLOURS)
    assert '<p class="summary ok">1 host</p>' in ok
    held = report.html_report([ROWS[0], ROWS[2]], ["host", "result"], summary="2 hosts", status=COLOURS)
    assert '<p class="summary warn">2 hosts</p>' in held  # a warning and no failure: amber


def test_no_rows_is_said_not_shown_as_an_empty_table():
    assert "<p>No rows.</p>" in report.html_report([], ["host"])


def test_bad_arguments_fail_with_a_message_that_names_them():
    with pytest.raises(ValueError, match="2 columns but 1 headers"):
        report.html_report(ROWS, ["host", "result"], headers=["HOST"])
    with pytest.raises(ValueError, match="choose one of ok, fail, warn, info"):
        report.cell("x", "green")


def test_the_demo_page_is_a_matrix_of_hosts_and_checks_each_cell_the_reply_seen():
    data = {"hosts": [
        {"vps": "vps1", "release": "trixie", "variant": "pop-before-smtp", "checks": [
            {"check": "local mail", "passed": True, "seen": "250", "detail": ""},
            {"check": "relay, no auth", "passed": True, "seen": "550", "detail": ""},
            {"check": "bad/unknown AUTH", "passed": True, "seen": "-", "detail": "does not apply"}]},
        {"vps": "vps8", "release": "bookworm", "variant": "default-auth-only", "checks": [
            {"check": "local mail", "passed": True, "seen": "250", "detail": ""},
            {"check": "relay, no auth", "passed": False, "seen": "250", "detail": "expected 550, saw 250"}]}],
        "passed": False}
    text = demo_html(data, "2026-12-01 20:00 UTC")
    page = parse(text)
    assert [c[0] for c in page.rows[0]] == ["VPS", "DEBIAN", "VARIANT", "local mail", "relay, no auth",
                                            "bad/unknown AUTH"]
    assert page.rows[1] == [("vps1", ""), ("13", ""), ("pop-before-smtp", ""), ("250", "ok"), ("550", "ok"),
                            ("-", "")]  # a check that does not apply is not coloured
    assert page.rows[2][3:] == [("250", "ok"), ("250", "fail"), ("", "")]
    assert "4 of 5 checks saw what the variant promises; 1 did not" in text
    assert 'title="expected 550, saw 250"' in text and "FAIL vps8 relay, no auth: expected 550, saw 250" in text
