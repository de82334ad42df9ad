"""The rollout's real-mail health check as data, so that a whole batch is probed at once (mailprobe.py batch):

- `health_plan`: one host's dialogues, in the order they must run on it: unauthenticated relay first (before any
  POP3 login of the check, so no grant of the controller's address can hide an open relay), authenticated
  submission, a POP3 login, relay from the same address after it. The recipients follow the promise: the relay
  after the login goes to the probe mailbox only where the variant promises it (250); elsewhere to an address
  outside, since nothing must be delivered.
- `health_verdict`: the probe's answers against the promise (sendmail_promises, the table the lab's checks read
  too): a list of failures, each one sentence, and the messages that must now show up in the probe mailbox.

The rules were Jinja in roles/rollout/tasks/health_check.yml; here they have unit tests.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

DOCUMENTATION = r"""
name: health_plan
short_description: The rollout health check's dialogues for one host, in order
options:
  _input:
    description: >-
      The host's probe settings: promise (the variant's row of sendmail_promises), user, password, sender, rcpt,
      remote_rcpt, token, and the connection (server, server_name, verify, cafile).
    type: dict
    required: true
"""

EXAMPLES = r"""
plan: "{{ settings | sendmail_fleet.mail.health_plan }}"
failures: "{{ answers | sendmail_fleet.mail.health_verdict(promise, help_url, second_client, second_answer) }}"
"""

RETURN = r"""
_value:
  description: >-
    health_plan: a list of mailprobe requests, each with its kind (smtp or pop3). health_verdict: failures (list of
    sentences) and deliveries (check, token: the messages to find in the probe mailbox).
  type: raw
"""

CONNECTION = ("server", "server_name", "verify", "cafile")
CHECKS = ("relay, no auth", "AUTH PLAIN relay", "POP login relay")


def _data(token: str, suffix: str) -> str:
    return (f"Subject: rollout health check {token}-{suffix}\r\nX-Maillab-Token: {token}-{suffix}\r\n\r\n"
            f"{token}\r\n")


def health_plan(settings: Mapping[str, Any]) -> dict[str, Any]:
    """Everything the batch check needs of one host: its four dialogues in order, the unauthenticated relay to try
    from a second client (none when second_client is empty), the promise, and where its messages must arrive."""
    promise, token = settings["promise"], settings["token"]
    base = {k: settings[k] for k in CONNECTION if k in settings}
    user, password, sender = settings["user"], settings["password"], settings["sender"]
    pop_rcpt = settings["rcpt"] if str(promise["POP login relay"]) == "250" else settings["remote_rcpt"]
    unauth = {"port": 25, "mail_from": sender, "rcpt": [settings["remote_rcpt"]]}
    second_client = settings.get("second_client") or ""
    return {
        "requests": [
            {"kind": "smtp", **base, **unauth},
            {"kind": "smtp", **base, "port": 587, "starttls": True, "auth": ["PLAIN", user, password],
             "mail_from": sender, "rcpt": [settings["rcpt"]], "data": _data(token, "auth")},
            {"kind": "pop3", **base, "port": 110, "user": user, "password": password},
            {"kind": "smtp", **base, "port": 25, "mail_from": sender, "rcpt": [pop_rcpt], "data": _data(token, "pop")},
        ],
        # From another host the certificate is not checked: this dialogue never starts TLS.
        "second": {"kind": "smtp", "server": settings["server"], **unauth} if second_client else None,
        "second_client": second_client,
        "promise": {k: str(v) for k, v in promise.items()},
        "help_url": settings.get("help_url") or "",
        "token": token,
        "mailbox_host": settings["mailbox_host"],
        "mailbox": settings["mailbox"],
    }


def health_batch(plans: Mapping[str, Mapping[str, Any]], client: str = "") -> dict[str, Any]:
    """mailprobe.py batch's request: every host's dialogues from the controller (client ""), or the unauthenticated
    relay of the hosts whose second client is `client`."""
    if not client:
        return {"hosts": {h: list(p["requests"]) for h, p in plans.items()}}
    return {"hosts": {h: [p["second"]] for h, p in plans.items() if p.get("second_client") == client}}


def _last(steps: Sequence[Mapping[str, Any]], names: Sequence[str]) -> Mapping[str, Any]:
    picked = [s for s in steps if s.get("step") in names]
    return picked[-1] if picked else {}


def _seen(steps: Sequence[Mapping[str, Any]], names: Sequence[str]) -> str:
    code = _last(steps, names).get("code")
    return "none" if code is None else str(code)


def _short(text: str, width: int = 160) -> str:
    return text if len(text) <= width else text[: width - 3] + "..."


def health_verdict(answers: Sequence[Mapping[str, Any]], promise: Mapping[str, Any], help_url: str = "",
                   second_client: str = "", second: Mapping[str, Any] | None = None,
                   token: str = "") -> dict[str, list]:
    """`answers`: mailprobe's results for health_plan's four dialogues, in order; `second`: the unauthenticated
    relay tried from `second_client` (None: not tried)."""
    failures: list[str] = []
    deliveries: list[dict[str, str]] = []
    if len(answers) != 4:
        return {"failures": [f"the probe gave {len(answers)} answers for 4 dialogues"], "deliveries": []}
    unauth, auth, login, relay = answers
    want = {k: str(promise[k]) for k in CHECKS}

    seen = _seen(unauth.get("steps", []), ("rcpt", "data"))
    if seen != want["relay, no auth"]:
        failures.append(f"relay, no auth: promised {want['relay, no auth']}, saw {seen}")
    if second is not None:
        seen = _seen(second.get("steps", []), ("rcpt", "data"))
        if seen != want["relay, no auth"]:
            failures.append(f"relay, no auth from {second_client}: promised {want['relay, no auth']}, saw {seen}")

    seen = _seen(auth.get("steps", []), ("auth",))
    refused = want["AUTH PLAIN relay"] == "235" and not auth.get("ok")
    if seen != want["AUTH PLAIN relay"] or refused:
        failures.append(f"AUTH PLAIN relay: promised {want['AUTH PLAIN relay']}, saw {seen}"
                        + (" and the message was refused" if refused else ""))
    if auth.get("ok"):
        deliveries.append({"check": "AUTH PLAIN relay", "token": f"{token}-auth"})

    if not login.get("ok"):
        steps = login.get("steps", [])
        failures.append(f"POP3 login failed: {steps[-1].get('text', '') if steps else ''}")

    last = _last(relay.get("steps", []), ("rcpt", "data"))
    seen = "none" if last.get("code") is None else str(last["code"])
    text = str(last.get("text", ""))
    # The grace phase's refusal is temporary (4.7.1) and tells the user where to look; a bare 450 is not it.
    grace_ok = want["POP login relay"] != "450" or ("4.7.1" in text and (not help_url or help_url in text))
    if seen != want["POP login relay"] or not grace_ok:
        failures.append(f"POP login relay: promised {want['POP login relay']}, saw {seen} ({_short(text)})")
    if relay.get("ok") and want["POP login relay"] == "250":
        deliveries.append({"check": "POP login relay", "token": f"{token}-pop"})
    return {"failures": failures, "deliveries": deliveries}


def _parsed(stdout: Any, what: str) -> tuple[dict, str]:
    """mailprobe's JSON answer, or why there is none."""
    try:
        answer = json.loads(stdout or "")
    except (TypeError, ValueError):
        return {}, f"the probe {what} gave no answer ({str(stdout or 'nothing')[:120]})"
    return (answer, "") if isinstance(answer, dict) else ({}, f"the probe {what} gave no answer")


def health_verdicts(plans: Mapping[str, Mapping[str, Any]], answers: Any,
                    second_results: Sequence[Mapping[str, Any]] = ()) -> dict[str, dict[str, list]]:
    """Every host's verdict. `answers`: mailprobe.py batch's output (text) from the controller; `second_results`:
    the loop results of the batches run on the second clients (item: the client, stdout: mailprobe's output)."""
    ours, why = _parsed(answers, "on the controller")
    seconds: dict[str, dict] = {}
    second_why: dict[str, str] = {}
    for res in second_results:
        seconds[res.get("item", "")], second_why[res.get("item", "")] = _parsed(res.get("stdout"), f"on {res.get('item')}")
    out: dict[str, dict[str, list]] = {}
    for host, plan in plans.items():
        if host not in ours:
            out[host] = {"failures": [why or "the probe gave no answer for this host"], "deliveries": []}
            continue
        client = plan.get("second_client") or ""
        second = None
        extra: list[str] = []
        if client:
            got = seconds.get(client, {}).get(host)
            if got:
                second = got[0]
            else:
                extra.append(second_why.get(client) or f"the probe on {client} gave no answer for this host")
        verdict = health_verdict(ours[host], plan["promise"], plan.get("help_url", ""), client, second,
                                 plan.get("token", ""))
        verdict["failures"].extend(extra)
        out[host] = verdict
    return out


def health_waits(plans: Mapping[str, Mapping[str, Any]],
                 verdicts: Mapping[str, Mapping[str, list]]) -> list[dict[str, Any]]:
    """The token header lines to find, by mailbox: one wait on each mailbox for the whole batch."""
    waits: dict[tuple[str, str], list[str]] = {}
    for host, plan in plans.items():
        for d in verdicts.get(host, {}).get("deliveries", []):
            waits.setdefault((plan["mailbox_host"], plan["mailbox"]), []).append(f"X-Maillab-Token: {d['token']}")
    return [{"host": h, "mailbox": m, "lines": lines,
             "argv": ["grep", "-o", "-h", "-F", *[a for line in lines for a in ("-e", line)], m]}
            for (h, m), lines in waits.items()]


def health_failures(plans: Mapping[str, Mapping[str, Any]], verdicts: Mapping[str, Mapping[str, list]],
                    wait_results: Sequence[Mapping[str, Any]] = ()) -> dict[str, list[str]]:
    """Every host's failures: its verdict's, and each probe message accepted but not found in its mailbox
    (`wait_results`: the loop results of the waits, item: a health_waits entry, stdout_lines: what grep found)."""
    found: dict[tuple[str, str], set[str]] = {}
    for res in wait_results:
        item = res.get("item", {})
        found[(item.get("host"), item.get("mailbox"))] = {line.strip() for line in res.get("stdout_lines", [])}
    out: dict[str, list[str]] = {}
    for host, plan in plans.items():
        verdict = verdicts.get(host, {"failures": ["no verdict"], "deliveries": []})
        have = found.get((plan["mailbox_host"], plan["mailbox"]), set())
        out[host] = list(verdict["failures"]) + [
            f"{d['check']}: accepted but not delivered to {plan['mailbox']}" for d in verdict["deliveries"]
            if f"X-Maillab-Token: {d['token']}" not in have]
    return out


class FilterModule:
    def filters(self) -> dict:
        return {"health_plan": health_plan, "health_batch": health_batch, "health_verdicts": health_verdicts,
                "health_waits": health_waits, "health_failures": health_failures}
