"""The migration user by user: the grace phase on both Debian releases (the lab's two grace hosts, on 13 and on 12,
both provisioned default-grace with bob excepted), the per-user evidence of the audit, and the rollout in phases on the same two hosts.

A POP-before-SMTP user's message is refused with a temporary 450 4.7.1 naming the help page, stays with the
client, and is delivered once the user set up SMTP-Auth from autoconfig with a real mail program (msmtp); an
excepted mailbox relays until its end date, and not after it (the date moved into the past on the host, the expiry
timer alone applies it); the audit tells each user's state. Then the rollout moves both hosts from POP-before-SMTP
to grace without a gate, and to SMTP-Auth only only where the evidence is quiet; site.yml never moves them back.
At the end both hosts are put back on their inventory's variant, as the later tests expect them.
"""

from __future__ import annotations

import datetime as dt
import json
import time

import pytest

from sendmail_fleet import repo_root
from sendmail_fleet.lab import _put_file
from sendmail_fleet.mailcheck import Checks, MailLab, message, token
from sendmail_fleet.topology import GRACE_EXCEPTED_UNTIL, GRACE_EXCEPTED_USER, POP_BEFORE_SMTP_WINDOW

from ..client_rules import thunderbird_config
from .conftest import DEBIAN_12, DEBIAN_13, changed_tasks, client_sh, curl, lab_host, playbook, recap, sha

GRACE = "pop_before_smtp_grace"
QUIET, HELD = lab_host(release=DEBIAN_13, feature=GRACE), lab_host(release=DEBIAN_12, feature=GRACE)
GRACE_HOSTS = (QUIET, HELD)  # in the phased rollout, QUIET's users are quiet, HELD's alice is refused in grace
AUDIT = repo_root() / "reports" / "audit-pop-before-smtp.json"
PROGRAM = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Thunderbird/128.5.0"


@pytest.fixture(scope="module")
def grace(maillab: MailLab, mail_results):
    """The grace hosts as provisioned, every lab client's POP-before-SMTP grant on them ended (the demo's)."""
    nodes = [maillab.topo.get(s) for s in GRACE_HOSTS]
    assert [n.variant for n in nodes] == ["default-grace", "default-grace"]
    assert {n.release for n in nodes} == {"trixie", "bookworm"}
    for node in nodes:
        for client in maillab.topo.by_role("client"):
            maillab.sh(node, f"pop-before-smtp revoke {client.address}")
    return nodes


def relay(lab: MailLab, client: str, node, acct, tok: str, **req):
    carol = lab.topo.get("mx").accounts[0]
    return lab.smtp(client, node, port=25, mail_from=acct.address, rcpt=[carol.address], data=message(tok), **req)


def is_grace_refusal(res, node, lab: MailLab) -> bool:
    step = res.step("rcpt") or {}
    return step.get("code") == 450 and Checks(lab, node).refusal_is_right(450, step.get("text", ""))


def audit_users(paths, since: str) -> dict[tuple[str, str], dict]:
    run = playbook(paths, "-e", f"target={','.join(GRACE_HOSTS)}", "-e", f"audit_since={since}",
                   name="audit-pop-before-smtp.yml")
    assert run.returncode == 0, run.stdout[-3000:]
    return {(u["host"], u["user"]): u for u in json.loads(AUDIT.read_text())["users"]}


def now_iso() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")


def test_a_host_in_grace_publishes_smtp_auth_only_to_mail_programs(maillab, grace):
    for node in grace:
        status, _, body = curl(maillab, f"https://autoconfig.{node.domain}/mail/config-v1.1.xml")
        assert status == 200, body[:500]
        outgoing = {s.auth for s in thunderbird_config(body.encode(), node.domain) if s.kind == "outgoing"}
        assert outgoing == {"password-cleartext"}, body[:1200]
        page = curl(maillab, f"https://autoconfig.{node.domain}/")[2]
        assert "check your mail (POP3) first" not in page and "Checking mail first" not in page


def test_a_pop3_user_gets_450_naming_the_help_page_sets_up_smtp_auth_from_autoconfig_and_the_mail_arrives(
        maillab, grace, paths):
    """Per host: alice logs in by POP3 and sends without AUTH (her mail program's old settings): 450 4.7.1 with the
    help URL, on every try, and the message stays hers. The audit then says she needs help. She takes the settings
    autoconfig publishes into msmtp; the same message goes out by SMTP-Auth and reaches the remote mailbox, named
    by its program. The audit then says migrated. Nothing of what she sent is lost."""
    since = now_iso()
    mx, outbox = maillab.topo.get("mx"), {}
    for node in grace:
        alice = node.accounts[0]
        assert maillab.pop3("client1", node, alice.user, alice.password)["ok"]
        outbox[node.short] = token()
        for _try in range(2):  # a mail program retries a 4xx: it gets the same answer, nothing is accepted
            res = relay(maillab, "client1", node, alice, outbox[node.short])
            assert is_grace_refusal(res, node, maillab), res.summary()
            assert f"https://autoconfig.{node.domain}/" in res.step("rcpt")["text"]
    users = audit_users(paths, since)
    for node in grace:
        assert users[(node.short, "alice")]["state"] == "needs help", users[(node.short, "alice")]
        assert users[(node.short, "alice")]["grace_refusals"] >= 2

    for node in grace:
        alice, carol = node.accounts[0], mx.accounts[0]
        status, _, body = curl(maillab, f"https://autoconfig.{node.domain}/mail/config-v1.1.xml?"
                                        f"emailaddress={alice.address}")
        assert status == 200
        outgoing = next(s for s in thunderbird_config(body.encode(), node.domain) if s.kind == "outgoing")
        assert outgoing.auth == "password-cleartext" and outgoing.username in (alice.user, "%EMAILLOCALPART%")
        rc = "\n".join(["defaults", "tls_trust_file /etc/ssl/certs/ca-certificates.crt", "account grace",
                        f"host {outgoing.hostname}", f"port {outgoing.port}", f"from {alice.address}", "tls on",
                        f"tls_starttls {'on' if outgoing.socket == 'STARTTLS' else 'off'}", "auth on",
                        f"user {alice.user}", f"password {alice.password}", "account default : grace", ""])
        _put_file(maillab.container("client1"), "/root/.msmtprc-grace", rc.encode(), 0o600)
        tok = outbox.pop(node.short)
        _put_file(maillab.container("client1"), "/tmp/outbox.txt",
                  f"From: {alice.address}\nTo: {carol.address}\nUser-Agent: {PROGRAM}\n{message(tok)}".encode())
        code, out = client_sh(maillab, f"msmtp -C /root/.msmtprc-grace {carol.address} < /tmp/outbox.txt")
        assert code == 0, out
        assert maillab.wait_for_mail(mx, f"/var/mail/{carol.user}", tok), f"{node.short}: the outbox's message"
    assert outbox == {}  # every refused message went out in the end
    users = audit_users(paths, since)
    for node in grace:
        alice = users[(node.short, "alice")]
        assert alice["state"] == "migrated" and alice["first_auth"] >= since, alice
        assert PROGRAM in alice["programs"] and alice["help_sections"] == ["thunderbird"], alice
        bob = users[(node.short, GRACE_EXCEPTED_USER)]
        assert bob["state"] == f"excepted until {GRACE_EXCEPTED_UNTIL}", bob


def test_an_excepted_mailbox_relays_until_its_end_date_and_gets_the_450_after_it_with_no_playbook_run(
        maillab, grace, paths):
    """bob relays by POP-before-SMTP from client2; with his end date moved into the past in the host's file (as
    the calendar would), the expiry timer alone ends it, within his login's window; site.yml then writes the
    inventory's list back."""
    yesterday = (dt.datetime.now(dt.timezone.utc) - dt.timedelta(days=1)).strftime("%Y-%m-%d")
    mx = maillab.topo.get("mx")
    for node in grace:
        bob = node.accounts[1]
        assert bob.user == GRACE_EXCEPTED_USER
        assert maillab.pop3("client2", node, bob.user, bob.password)["ok"]
        # The refusal must come from the expiry timer (every 5 s in the lab) reading the ended date, not from bob's
        # window running out: so it is awaited only until a few seconds before that window's end.
        window_ends = time.monotonic() + POP_BEFORE_SMTP_WINDOW
        tok = token()
        assert relay(maillab, "client2", node, bob, tok).raw["ok"]
        assert maillab.wait_for_mail(mx, "/var/mail/carol", tok)
        code, _ = maillab.sh(node, f"sed -i 's/^mailbox {bob.user} .*/mailbox {bob.user} {yesterday}/' "
                                   "/etc/pop-before-smtp/exceptions")
        assert code == 0
        deadline = window_ends - 3
        while True:
            res = relay(maillab, "client2", node, bob, token())
            if not res.raw["ok"] or time.monotonic() > deadline:
                break
            time.sleep(1)
        assert is_grace_refusal(res, node, maillab), res.summary()
        _, listed = maillab.sh(node, "pop-before-smtp exceptions list")
        assert f"until {yesterday} (ended)" in listed, listed
    run = playbook(paths, "-l", ",".join(GRACE_HOSTS), "--tags", "pop_before_smtp")
    assert run.returncode == 0, run.stdout[-3000:]
    assert all(recap(run.stdout)[h]["changed"] >= 1 for h in GRACE_HOSTS), changed_tasks(run.stdout)
    for node in grace:
        _, text = maillab.sh(node, "cat /etc/pop-before-smtp/exceptions")
        assert f"mailbox {GRACE_EXCEPTED_USER} {GRACE_EXCEPTED_UNTIL}" in text.splitlines(), text
        maillab.sh(node, f"pop-before-smtp revoke {maillab.topo.get('client2').address}")


def rollout(paths, *args: str):
    return playbook(paths, "-e", f"target={','.join(GRACE_HOSTS)}", "-e", '{"pop_before_smtp_exceptions": []}',
                    *args, name="rollout-auth-only.yml")


def rows() -> dict[str, dict]:
    return {h["inventory_hostname"]: h for h in json.loads(
        (repo_root() / "reports" / "rollout-auth-only.json").read_text())["hosts"]}


def quiet_since(since: float) -> str:
    """rollout_quiet_days reaching back from now to `since` (the test shortens the days to what it waited). The
    rollout's readiness gate reads them a few seconds after the test starts it, so there they begin that much after
    `since`: to count an event, give a `since` before it; to leave one out, a `since` after it."""
    return f"rollout_quiet_days={(time.time() - since) / 86400:.8f}"


@pytest.fixture(scope="module")
def phased(maillab: MailLab, grace, paths):
    """Both hosts back on POP-before-SMTP (variant default), then the rollout's steps; put back afterwards."""
    back = playbook(paths, "-l", ",".join(GRACE_HOSTS), "-e", "sendmail_variant=default",
                    "-e", "sendmail_allow_pop_before_smtp_again=true")
    assert back.returncode == 0, back.stdout[-3000:]
    steps = {"to_grace": rollout(paths)}
    steps["to_grace_rows"] = rows()
    grace_done = time.time()
    steps["mc"] = {n.short: sha(n, "/etc/mail/sendmail.mc") for n in grace}
    steps["site_after_grace"] = playbook(paths, "-l", ",".join(GRACE_HOSTS), "-e", "sendmail_variant=default")
    steps["mc_after_site"] = {n.short: sha(n, "/etc/mail/sendmail.mc") for n in grace}
    # alice on HELD keeps her old settings: refused in grace after the step, so HELD must wait
    held = maillab.topo.get(HELD)
    alice = held.accounts[0]
    assert maillab.pop3("client1", held, alice.user, alice.password)["ok"]
    steps["refusal"] = relay(maillab, "client1", held, alice, token())
    refused_at = time.time()
    # counted: the refusal above (the grace step's own probes on QUIET came well before grace_done)
    steps["gated"] = rollout(paths, "-e", quiet_since(grace_done - 2))
    steps["gated_rows"] = rows()
    maillab.sh(held, f"pop-before-smtp revoke {maillab.topo.get('client1').address}")
    # left out: the refusal, made before refused_at (logs and the gate's cutoff have whole seconds)
    steps["quiet"] = rollout(paths, "-e", quiet_since(refused_at + 2))
    steps["quiet_rows"] = rows()
    steps["again"] = rollout(paths, "-e", quiet_since(refused_at + 2))
    steps["again_rows"] = rows()
    steps["site_after_auth_only"] = playbook(paths, "-l", ",".join(GRACE_HOSTS))
    yield steps
    restore = playbook(paths, "-l", ",".join(GRACE_HOSTS), "-e", "sendmail_allow_pop_before_smtp_again=true")
    assert restore.returncode == 0, restore.stdout[-3000:]


def test_the_rollout_moves_pop_before_smtp_hosts_to_grace_without_a_gate_proven_with_real_mail(phased):
    assert phased["to_grace"].returncode == 0, phased["to_grace"].stdout[-4000:]
    for short in GRACE_HOSTS:
        row = phased["to_grace_rows"][short]
        assert (row["rollout_before"], row["rollout_after"], row["rollout_step"], row["rollout_result"]) == (
            "default", "default-grace", "grace", "switched"), row
        assert "450 naming the help page" in row["rollout_detail"], row


def test_site_does_not_move_a_host_back_from_grace(phased, maillab):
    run = phased["site_after_grace"]
    assert run.returncode != 0
    for short in GRACE_HOSTS:
        assert f"{short}: the rollout moved this host to default-grace (grace)" in run.stdout, run.stdout[-3000:]
        assert recap(run.stdout)[short]["changed"] == 0
    assert phased["mc_after_site"] == phased["mc"]  # sendmail.mc of the grace variant, untouched


def test_a_host_with_a_user_refused_in_grace_is_held_with_that_user_named_and_a_quiet_one_goes_auth_only(
        phased, maillab):
    assert is_grace_refusal(phased["refusal"], maillab.topo.get(HELD), maillab), phased["refusal"].summary()
    gated = phased["gated_rows"]
    assert gated[QUIET]["rollout_result"] == "switched" and gated[QUIET]["rollout_after"] == "default-auth-only"
    held = gated[HELD]
    assert held["rollout_result"] == "held" and held["rollout_after"] == "default-grace", held
    assert "refused in grace (needs help): alice (last refused 20" in held["rollout_detail"], held
    assert "relayed by POP-before-SMTP" not in held["rollout_detail"] and "exceptions" not in held["rollout_detail"]
    assert phased["gated"].returncode != 0


def test_once_the_evidence_is_quiet_the_held_host_goes_auth_only_and_a_second_run_changes_nothing(phased):
    assert phased["quiet"].returncode == 0, phased["quiet"].stdout[-4000:]
    assert phased["quiet_rows"][HELD]["rollout_result"] == "switched"
    assert phased["quiet_rows"][HELD]["rollout_after"] == "default-auth-only"
    assert phased["quiet_rows"][QUIET]["rollout_result"] == "unchanged"
    again = phased["again"]
    assert again.returncode == 0, again.stdout[-4000:]
    assert {h: r["rollout_result"] for h, r in phased["again_rows"].items()} == {QUIET: "unchanged",
                                                                                 HELD: "unchanged"}
    changed = {h: c["changed"] for h, c in recap(again.stdout).items()}
    assert all(v == 0 for v in changed.values()), changed_tasks(again.stdout)


def test_site_leaves_hosts_the_rollout_moved_to_auth_only_where_they_are(phased, maillab):
    run = phased["site_after_auth_only"]
    assert run.returncode != 0
    for short in GRACE_HOSTS:
        assert f"{short}: the rollout moved this host to default-auth-only (auth-only)" in run.stdout
        assert recap(run.stdout)[short]["changed"] == 0
        _, mc = maillab.sh(maillab.topo.get(short), "cat /etc/mail/sendmail.mc")
        assert "VERSIONID(`sendmail-fleet default-auth-only')" in mc
