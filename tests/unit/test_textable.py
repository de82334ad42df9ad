"""Result tables line up whatever the cell widths."""

from sendmail_fleet.textable import align


def test_columns_line_up_and_trailing_space_is_trimmed():
    assert align([("A", "BB"), ("CCC", "D")]) == ["A    BB", "CCC  D"]


def test_a_cell_with_line_breaks_stays_on_its_row():
    assert align([("HOST", "DETAIL"), ("vps6", "failed:\nExecuting: x\n-> Failed")]) == [
        "HOST  DETAIL", "vps6  failed: Executing: x -> Failed"]


def test_a_rule_goes_under_the_header():
    assert align([("VPS", "X"), ("vps10", "ok")], " | ", rule="-+-") == ["VPS   | X", "------+---", "vps10 | ok"]


def test_the_ansible_filter_takes_dicts_by_column_and_leaves_missing_cells_empty():
    from sendmail_fleet.collection import filter_plugin
    tt = filter_plugin("text_table")
    rows = [{"host": "vps1", "result": "switched"}, {"host": "vps10"}]
    assert tt.FilterModule().filters()["text_table"](rows, ["host", "result"]) == [
        "HOST   RESULT", "-----  --------", "vps1   switched", "vps10"]
