"""The main job as a person sees it: `maillab demo` on the provisioned lab prints progress and a table (not the
stream), and writes an HTML report beside its JSON that renders in a real browser, on a desktop and on a phone.

The session's real-mail checks are this demo run (conftest.demo_run): test_c_mail asserts each promise on its
results.
"""

from __future__ import annotations

from sendmail_fleet import browser
from sendmail_fleet.variants import NOT_APPLICABLE, checks, promise

from ..htmlcells import parse
from .conftest import VPS


def test_the_demo_passes_and_prints_fewer_than_80_lines_ending_with_the_table(demo_run):
    lines = demo_run.output.rstrip("\n").splitlines()
    assert demo_run.returncode == 0, demo_run.output[-4000:]
    assert len(lines) < 80, f"{len(lines)} lines:\n{demo_run.output}"
    assert "TASK [" not in demo_run.output and "PLAY RECAP" not in demo_run.output
    total = len(VPS) * len(checks())
    assert lines[-1] == f"{total} passed, 0 failed  (JSON: {demo_run.json}; HTML: {demo_run.html})"
    header = next(i for i, line in enumerate(lines) if line.startswith("VPS "))
    table = lines[header:header + 2 + len(VPS)]
    assert [c.strip() for c in table[0].split("|")][:3] == ["VPS", "DEBIAN", "VARIANT"]
    assert [row.split("|")[0].strip() for row in table[2:]] == [n.short for n in VPS]
    assert all("FAIL" not in row for row in table[2:])


def test_each_vps_gets_one_progress_line_not_one_per_check(demo_run):
    tallies = [line for line in demo_run.output.splitlines() if "checks as promised" in line]
    assert len(tallies) == len(VPS), demo_run.output
    for node in VPS:
        assert any(f"] {node.short} " in t for t in tallies), (node.short, tallies)


def test_the_html_report_renders_in_chromium_with_a_row_per_vps_and_a_green_cell_per_promise_kept(demo_run):
    page = parse(browser.dom(demo_run.html))  # the document as Chromium parsed it
    header, *rows = page.rows
    assert [c[0] for c in header] == ["VPS", "DEBIAN", "VARIANT", *checks()]
    assert [r[0][0] for r in rows] == [n.short for n in VPS]
    for node, row in zip(VPS, rows, strict=True):
        assert row[2][0] == node.variant
        # green where the check saw what the variant promises, plain where it does not apply to the variant
        assert [c[1] for c in row[3:]] == ["" if promise(node.variant, check) == NOT_APPLICABLE else "ok"
                                          for check in checks()], (node.short, row)
    assert "script" not in page.tags


def test_the_html_report_draws_on_a_desktop_and_on_a_phone(demo_run, tmp_path):
    blank = tmp_path / "blank.html"
    blank.write_text("<!DOCTYPE html><html><body></body></html>")
    empty = browser.png(browser.screenshot(blank, tmp_path / "blank.png", browser.PHONE))
    for size in (browser.DESKTOP, browser.PHONE):
        shot = browser.png(browser.screenshot(demo_run.html, tmp_path / f"demo-{size[0]}.png", size))
        assert (shot.width, shot.height) == size
        assert shot.ink > 10 * max(empty.ink, 0.001), (size, shot, empty)  # the table was drawn, not a blank page
