"""The sendmail role's config module (sendmail_fleet.mail.sendmail_config, plugins/modules/sendmail_config.py):
what it decides from the live .mc and the switch helper's check, and which of the helper's commands it runs, against a stand-in helper. The
lab tests prove it on real hosts (tests/lab/test_b_sendmail_role.py, test_b_wiring.py)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from sendmail_fleet.collection import plugin

mod = plugin("modules", "sendmail_config")

MC = "VERSIONID(`sendmail-fleet default-auth-only')dnl\nnew\n"
GOOD = {"cf_exists": True, "cf_matches_mc": True, "daemon_older_than_cf": False, "unfinished": None, "drift": []}


class Helper:
    """The switch helper: answers each command with what the test set, and records what was asked."""

    def __init__(self, check: dict, build: tuple[int, str] = (0, ""), apply: tuple[int, dict] = (0, {}),
                 restart: tuple[int, dict] = (0, {})) -> None:
        self.answers = {"check": (0, json.dumps(check), ""), "build": (build[0], "", build[1]),
                        "apply": (apply[0], json.dumps(apply[1]), ""), "restart": (restart[0], json.dumps(restart[1]), "")}
        self.asked: list[str] = []

    def __call__(self, argv: list[str]) -> tuple[int, str, str]:
        command = argv[2] if argv[1] == "detached" else argv[1]
        self.asked.append(command)
        return self.answers[command]


@pytest.fixture
def host(tmp_path: Path) -> dict:
    (tmp_path / "mail").mkdir()
    helper = tmp_path / "sendmail-switch"
    helper.write_text("#!/bin/sh\n")
    return {"helper": str(helper), "fqdn": "vps1.example.test", "variant": "default-auth-only", "mc": MC,
            "restart_stale": True,
            "spec": {"mail_dir": str(tmp_path / "mail"), "state_dir": str(tmp_path / "state")}}


def live(p: dict, text: str) -> None:
    Path(p["spec"]["mail_dir"], "sendmail.mc").write_text(text)


def staged(p: dict) -> Path:
    return Path(p["spec"]["state_dir"], "staging", "sendmail.mc")


def test_a_live_config_that_is_what_the_mc_builds_is_left_alone(host):
    live(host, MC)
    helper = Helper(GOOD)
    out = mod.converge(host, helper, check_mode=False, want_diff=True)
    assert (out["changed"], out["built"], out["restarted"], helper.asked) == (False, False, False, ["check"])
    assert "diff" not in out and not staged(host).exists()


def test_a_changed_mc_is_staged_built_and_switched_with_its_diff(host):
    live(host, "VERSIONID(`sendmail-fleet default')dnl\nold\n")
    helper = Helper(GOOD, apply=(0, {"result": "switched", "steps": ["backed up", "installed", "verified"]}))
    out = mod.converge(host, helper, check_mode=False, want_diff=True)
    assert helper.asked == ["check", "build", "apply"]
    assert (out["changed"], out["built"], out["restarted"]) == (True, True, True)
    assert staged(host).read_text() == MC and oct(staged(host).stat().st_mode & 0o777) == "0o644"
    assert "old" in out["diff"]["before"] and out["diff"]["after"] == MC
    assert "switched to default-auth-only" in out["msg"]


def test_a_build_that_m4_refuses_installs_nothing_and_says_why(host):
    live(host, "old\n")
    helper = Helper(GOOD, build=(1, "m4 refused sendmail.mc (exit 1): no_such_feature. Nothing was installed"))
    with pytest.raises(mod.Failed, match="did not build: m4 refused .*Nothing was installed"):
        mod.converge(host, helper, check_mode=False, want_diff=False)
    assert helper.asked == ["check", "build"]


def test_a_switch_that_failed_its_verify_says_the_previous_config_is_back(host):
    live(host, "old\n")
    helper = Helper(GOOD, apply=(3, {"result": "rolled-back", "detail": "port 25 offers no STARTTLS"}))
    with pytest.raises(mod.Failed) as e:
        mod.converge(host, helper, check_mode=False, want_diff=False)
    assert "port 25 offers no STARTTLS" in str(e.value) and "The previous config is back" in str(e.value)
    assert e.value.result["restarted"] and e.value.result["switch"]["result"] == "rolled-back"


def test_a_switch_whose_rollback_failed_too_says_sendmail_may_be_down(host):
    live(host, "old\n")
    helper = Helper(GOOD, apply=(1, {"result": "rollback-failed", "detail": "no greeting"}))
    with pytest.raises(mod.Failed, match="SENDMAIL MAY BE DOWN: rollback-failed"):
        mod.converge(host, helper, check_mode=False, want_diff=False)


@pytest.mark.parametrize("state", [
    {**GOOD, "cf_matches_mc": False, "drift": ["the live sendmail.cf is not what sendmail.mc compiles to (x)"]},
    {**GOOD, "cf_exists": False, "cf_matches_mc": False, "drift": ["missing"]},
    {**GOOD, "unfinished": {"state": "restarting", "running": False}, "drift": ["a switch did not finish"]},
], ids=["hand-edited cf", "no cf", "unfinished switch"])
def test_a_live_cf_that_is_not_what_the_same_mc_builds_is_built_again(host, state):
    live(host, MC)
    helper = Helper(state, apply=(0, {"result": "switched"}))
    out = mod.converge(host, helper, check_mode=False, want_diff=True)
    assert helper.asked == ["check", "build", "apply"] and out["changed"] and "diff" not in out


def test_a_daemon_older_than_the_live_cf_is_restarted_not_rebuilt(host):
    live(host, MC)
    helper = Helper({**GOOD, "daemon_older_than_cf": True, "drift": ["the running daemon started before ..."]},
                    restart=(0, {"result": "restarted"}))
    out = mod.converge(host, helper, check_mode=False, want_diff=False)
    assert helper.asked == ["check", "restart"] and (out["changed"], out["built"], out["restarted"]) == (True, False, True)
    host["restart_stale"] = False
    helper = Helper({**GOOD, "daemon_older_than_cf": True})
    assert not mod.converge(host, helper, check_mode=False, want_diff=False)["changed"]


def test_a_daemon_older_than_a_file_it_reads_only_at_start_is_restarted_and_the_message_names_the_file(host):
    live(host, MC)
    helper = Helper({**GOOD, "changed_since_start": ["/etc/sasl2/Sendmail.conf"]}, restart=(0, {"result": "restarted"}))
    out = mod.converge(host, helper, check_mode=False, want_diff=False)
    assert helper.asked == ["check", "restart"] and (out["changed"], out["built"], out["restarted"]) == (True, False, True)
    assert out["msg"] == "restarted: the daemon had started before /etc/sasl2/Sendmail.conf changed"
    host["restart_stale"] = False
    helper = Helper({**GOOD, "changed_since_start": ["/etc/sasl2/Sendmail.conf"]})
    assert not mod.converge(host, helper, check_mode=False, want_diff=False)["changed"] and helper.asked == ["check"]


def test_a_restart_that_fails_its_verify_fails_the_task(host):
    live(host, MC)
    helper = Helper({**GOOD, "daemon_older_than_cf": True}, restart=(1, {"result": "failed", "detail": "no AUTH"}))
    with pytest.raises(mod.Failed, match="after a restart: no AUTH"):
        mod.converge(host, helper, check_mode=False, want_diff=False)


def test_check_mode_reads_only_and_reports_the_drift_as_changed(host):
    live(host, MC)
    sentence = "the running daemon started before the live sendmail.cf was installed"
    helper = Helper({**GOOD, "daemon_older_than_cf": True, "drift": [sentence]})
    out = mod.converge(host, helper, check_mode=True, want_diff=True)
    assert helper.asked == ["check"] and out["changed"] and out["drift"] == [sentence] and sentence in out["msg"]
    live(host, "old\n")
    out = mod.converge(host, Helper(GOOD), check_mode=True, want_diff=True)
    assert out["changed"] and out["diff"]["after"] == MC and not staged(host).exists()
    live(host, MC)
    assert not mod.converge(host, Helper(GOOD), check_mode=True, want_diff=True)["changed"]


def test_check_mode_on_a_new_host_without_the_helper_shows_the_whole_mc(host):
    Path(host["helper"]).unlink()
    helper = Helper(GOOD)
    out = mod.converge(host, helper, check_mode=True, want_diff=True)
    assert helper.asked == [] and out["changed"] and out["diff"]["before"] == "" and out["diff"]["after"] == MC


def test_a_real_run_without_the_helper_fails_naming_it(host):
    Path(host["helper"]).unlink()
    with pytest.raises(mod.Failed, match="no switch helper at .*sendmail-switch"):
        mod.converge(host, Helper(GOOD), check_mode=False, want_diff=False)


def test_a_check_the_helper_could_not_run_fails_with_its_message(host):
    live(host, MC)
    helper = Helper(GOOD)
    helper.answers["check"] = (2, "", "sendmail-switch: bad arguments: 'greet'")
    with pytest.raises(mod.Failed, match="could not check the live config: sendmail-switch: bad arguments"):
        mod.converge(host, helper, check_mode=False, want_diff=False)
