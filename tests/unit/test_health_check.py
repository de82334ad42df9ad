"""The rollout's health check of a whole batch (plugins/filter/health_check.py): what each host is asked, and how
its answers become failures. The promises are derived here from what each phase means, not read from the table."""

from __future__ import annotations

import json

import pytest

from sendmail_fleet.collection import filter_plugin

hc = filter_plugin("health_check")

# What each relay phase means for the three dialogues the check judges.
AUTH_ONLY = {"relay, no auth": "550", "AUTH PLAIN relay": "235", "POP login relay": "550", "excepted POP relay": "-"}
BOTH = {"relay, no auth": "550", "AUTH PLAIN relay": "235", "POP login relay": "250", "excepted POP relay": "-"}
GRACE = {"relay, no auth": "550", "AUTH PLAIN relay": "235", "POP login relay": "450", "excepted POP relay": "250"}
HELP = "https://autoconfig.vps1.test/"


def settings(promise: dict, host: str = "vps1", second: str = "mx") -> dict:
    return {"promise": promise, "token": f"rollout-{host}-1", "user": "alice", "password": "s3cret",
            "sender": f"alice@{host}.test", "rcpt": "carol@remote.test", "remote_rcpt": "postmaster@example.com",
            "server": f"172.29.25.1{host[-1]}", "server_name": f"mail.{host}.test", "verify": True, "cafile": "",
            "second_client": second, "help_url": HELP, "mailbox_host": "mx", "mailbox": "/var/mail/carol"}


def smtp(*steps: tuple[str, int, str], ok: bool = False) -> dict:
    return {"ok": ok, "steps": [{"step": s, "code": c, "text": t} for s, c, t in steps]}


REFUSED = smtp(("connect", 220, ""), ("ehlo", 250, ""), ("mail", 250, ""), ("rcpt", 550, "5.7.1 Relaying denied"))
OPEN = smtp(("connect", 220, ""), ("mail", 250, ""), ("rcpt", 250, "ok"), ("data", 250, "queued"), ok=True)
AUTHED = smtp(("connect", 220, ""), ("auth", 235, "2.0.0 OK"), ("rcpt", 250, ""), ("data", 250, ""), ok=True)
AUTH_REFUSED = smtp(("connect", 220, ""), ("auth", 535, "5.7.0 authentication failed"))
LOGGED_IN = {"ok": True, "steps": [{"step": "user", "text": "+OK"}, {"step": "pass", "text": "+OK Logged in."}]}
GRACE_REFUSAL = smtp(("rcpt", 450, f"4.7.1 POP-before-SMTP is ending: set up SMTP-Auth, see {HELP}"))


def test_the_first_dialogue_is_unauthenticated_relay_and_the_pop3_login_comes_before_the_relay_after_it():
    plan = hc.health_plan(settings(AUTH_ONLY))
    kinds = [(r["kind"], r["port"], bool(r.get("auth"))) for r in plan["requests"]]
    assert kinds == [("smtp", 25, False), ("smtp", 587, True), ("pop3", 110, False), ("smtp", 25, False)]
    assert plan["requests"][0]["rcpt"] == ["postmaster@example.com"]


@pytest.mark.parametrize(("promise", "rcpt"), [(BOTH, "carol@remote.test"), (AUTH_ONLY, "postmaster@example.com"),
                                               (GRACE, "postmaster@example.com")])
def test_the_relay_after_login_goes_to_the_probe_mailbox_only_where_it_must_be_delivered(promise, rcpt):
    assert hc.health_plan(settings(promise))["requests"][3]["rcpt"] == [rcpt]


def test_the_second_client_only_tries_unauthenticated_relay_and_carries_no_password():
    plan = hc.health_plan(settings(AUTH_ONLY))
    assert plan["second"] == {"kind": "smtp", "server": "172.29.25.11", "port": 25,
                              "mail_from": "alice@vps1.test", "rcpt": ["postmaster@example.com"]}
    assert "s3cret" not in json.dumps(hc.health_batch({"vps1": plan}, "mx"))
    assert hc.health_plan(settings(AUTH_ONLY, second=""))["second"] is None


def test_each_second_client_gets_only_the_hosts_it_probes():
    plans = {"vps1": hc.health_plan(settings(AUTH_ONLY, "vps1", "mx")),
             "vps2": hc.health_plan(settings(AUTH_ONLY, "vps2", "")),
             "vps3": hc.health_plan(settings(AUTH_ONLY, "vps3", "mx"))}
    assert list(hc.health_batch(plans, "mx")["hosts"]) == ["vps1", "vps3"]
    assert list(hc.health_batch(plans)["hosts"]) == ["vps1", "vps2", "vps3"]


def verdict(promise: dict, answers: list[dict], second: dict | None = REFUSED) -> dict:
    return hc.health_verdict(answers, promise, HELP, "mx", second, "tok")


def test_an_auth_only_host_that_keeps_its_promises_has_no_failure_and_one_message_to_find():
    v = verdict(AUTH_ONLY, [REFUSED, AUTHED, LOGGED_IN, REFUSED])
    assert v == {"failures": [], "deliveries": [{"check": "AUTH PLAIN relay", "token": "tok-auth"}]}


def test_a_host_that_still_relays_after_a_pop3_login_fails_and_says_what_it_saw():
    v = verdict(AUTH_ONLY, [REFUSED, AUTHED, LOGGED_IN, OPEN])
    assert v["failures"] == ["POP login relay: promised 550, saw 250 (queued)"]


def test_an_open_relay_seen_only_from_the_second_address_is_a_failure_naming_it():
    v = verdict(AUTH_ONLY, [REFUSED, AUTHED, LOGGED_IN, REFUSED], second=OPEN)
    assert v["failures"] == ["relay, no auth from mx: promised 550, saw 250"]


def test_refused_auth_and_a_failed_pop3_login_are_each_counted():
    failed_login = {"ok": False, "steps": [{"step": "user", "text": "+OK"}, {"step": "error", "text": "-ERR EOF"}]}
    v = verdict(AUTH_ONLY, [REFUSED, AUTH_REFUSED, failed_login, REFUSED])
    assert v["failures"] == ["AUTH PLAIN relay: promised 235, saw 535 and the message was refused",
                             "POP3 login failed: -ERR EOF"]
    assert v["deliveries"] == []


def test_the_grace_refusal_must_be_temporary_and_name_the_help_page():
    assert verdict(GRACE, [REFUSED, AUTHED, LOGGED_IN, GRACE_REFUSAL])["failures"] == []
    bare = smtp(("rcpt", 450, "4.7.1 try later"))
    assert verdict(GRACE, [REFUSED, AUTHED, LOGGED_IN, bare])["failures"] == [
        "POP login relay: promised 450, saw 450 (4.7.1 try later)"]


def test_both_methods_expect_the_relayed_message_in_the_mailbox_too():
    v = verdict(BOTH, [REFUSED, AUTHED, LOGGED_IN, OPEN])
    assert v["failures"] == [] and [d["token"] for d in v["deliveries"]] == ["tok-auth", "tok-pop"]


def test_a_probe_that_gave_no_answer_fails_every_host_of_the_batch_with_the_reason():
    plans = {h: hc.health_plan(settings(AUTH_ONLY, h)) for h in ("vps1", "vps2")}
    verdicts = hc.health_verdicts(plans, "Traceback: boom", [])
    assert all(v["failures"][0].startswith("the probe on the controller gave no answer") for v in verdicts.values())


def test_verdicts_take_each_hosts_answers_and_its_second_clients_answer():
    plans = {h: hc.health_plan(settings(AUTH_ONLY, h)) for h in ("vps1", "vps2")}
    ours = json.dumps({"vps1": [REFUSED, AUTHED, LOGGED_IN, REFUSED], "vps2": [REFUSED, AUTHED, LOGGED_IN, REFUSED]})
    second = [{"item": "mx", "stdout": json.dumps({"vps1": [REFUSED], "vps2": [OPEN]})}]
    verdicts = hc.health_verdicts(plans, ours, second)
    assert verdicts["vps1"]["failures"] == []
    assert verdicts["vps2"]["failures"] == ["relay, no auth from mx: promised 550, saw 250"]


def test_a_second_client_that_failed_to_run_the_probe_is_a_failure_not_a_pass():
    plans = {"vps1": hc.health_plan(settings(AUTH_ONLY))}
    ours = json.dumps({"vps1": [REFUSED, AUTHED, LOGGED_IN, REFUSED]})
    verdicts = hc.health_verdicts(plans, ours, [{"item": "mx", "stdout": "", "rc": 1}])
    assert verdicts["vps1"]["failures"] == ["the probe on mx gave no answer (nothing)"]


def test_one_wait_per_mailbox_for_the_whole_batch_and_a_missing_message_is_a_failure_of_its_host():
    plans = {h: hc.health_plan(settings(BOTH, h)) for h in ("vps1", "vps2")}
    verdicts = {h: hc.health_verdict([REFUSED, AUTHED, LOGGED_IN, OPEN], BOTH, HELP, "mx", REFUSED,
                                     plans[h]["token"]) for h in plans}
    waits = hc.health_waits(plans, verdicts)
    assert len(waits) == 1 and waits[0]["host"] == "mx" and waits[0]["argv"][-1] == "/var/mail/carol"
    assert waits[0]["lines"] == ["X-Maillab-Token: rollout-vps1-1-auth", "X-Maillab-Token: rollout-vps1-1-pop",
                                 "X-Maillab-Token: rollout-vps2-1-auth", "X-Maillab-Token: rollout-vps2-1-pop"]
    found = [{"item": waits[0], "stdout_lines": waits[0]["lines"][:3]}]
    failures = hc.health_failures(plans, verdicts, found)
    assert failures == {"vps1": [], "vps2": ["POP login relay: accepted but not delivered to /var/mail/carol"]}
