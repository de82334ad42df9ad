"""Result tables line up whatever the cell widths."""

from sendmail_fleet.textable import align


def test_columns_line_up_and_trailing_space_is_trimmed():
    assert align([("A", "BB"), ("CCC", "D")]) == ["A    BB", "CCC  D"]


def test_a_rule_goes_under_the_header():
    assert align([("VPS", "X"), ("vps10", "ok")], " | ", rule="-+-") == ["VPS   | X", "------+---", "vps10 | ok"]
