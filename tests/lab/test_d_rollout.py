"""The fleet rollout to SMTP-Auth only, with one host made to fail, while a client keeps sending mail.

It runs on every VPS but the lost-host scenario's (test_e's, on four Debian 12 hosts, in a thread beside it): the
Debian 13 set-up variants, the legacy host on Debian 12 and the grace hosts."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from sendmail_fleet import browser, repo_root
from sendmail_fleet.mailcheck import Checks, MailLab, message, token
from sendmail_fleet.variants import all_variants, auth_only_of, promise

from ..client_rules import thunderbird_config
from ..htmlcells import Cells, parse
from ..refusals import POP_BEFORE_SMTP, SMTP_AUTH, Refusal, unpromised
from .conftest import DEBIAN_12, DEBIAN_13, changed_tasks, curl, lab_host, playbook, recap, sha
from .lost_host import HOSTS as LOST_HOST_SCENARIO

# Its saslauthd is masked (an admin's leftover): SMTP-Auth cannot start there, so the switch must fail and be
# rolled back. The legacy host on Debian 12 (in the default lab given only its set-up date before 2003-01-16, so
# pop-before-smtp) is in the last batch, and its old variant promises no SMTP-Auth: after the rollback it keeps every
# promise of that variant (sendmail_promises).
BROKEN = lab_host("pop-before-smtp", DEBIAN_12)
LEGACY, BOTH_WAYS, AUTH_ONLY = (lab_host(v, DEBIAN_13) for v in ("pop-before-smtp", "default", "default-auth-only"))
RECORD = "/etc/ansible/facts.d/sendmail_fleet_rollout.fact"  # the sendmail role's sendmail_rollout_record
RECORD_BEFORE = "/etc/sendmail-fleet/rollout.json"  # where releases before 0.2.0 kept it
# A RELAY entry for client2's address planted in /etc/mail/access: BOTH_WAYS is switched anyway, AUTH_ONLY is
# auth-only already, so only the grant makes the rollout touch it. Either way the grant must be reported and removed.
# AUTH_ONLY's is written "relay": sendmail grants it all the same.
GRANTED = (BOTH_WAYS, AUTH_ONLY)
REPORT = repo_root() / "reports" / "rollout-auth-only.json"


def fleet(topo) -> list:
    """The VPSes this rollout works on: all but the lost-host scenario's, which runs at the same time."""
    return [n for n in topo.by_role("vps") if n.short not in LOST_HOST_SCENARIO]


def target(topo) -> tuple[str, str]:
    return ("-e", "target=" + ",".join(n.short for n in fleet(topo)))
AUDIT = repo_root() / "reports" / "audit-pop-before-smtp.json"


class Submitter(threading.Thread):
    """A mail client that keeps submitting to every VPS during the rollout: by SMTP-Auth where the host
    offers it, else after a POP3 login; it retries temporary failures as a real client would (a 4xx, a refused
    connection or a failed POP3 login while a daemon restarts). A refusal is kept with how it sent and the variant
    the host runs right after it, for tests/refusals.py to judge."""

    def __init__(self, lab: MailLab) -> None:
        super().__init__(daemon=True)
        self.lab, self.stop = lab, threading.Event()
        self.accepted: list[tuple[str, str]] = []
        self.refused: list[Refusal] = []
        self.carol = lab.topo.by_role("mx")[0].accounts[0]

    def live_variant(self, vps) -> str:
        _, out = self.lab.sh(vps, "sed -n \"s/^VERSIONID(\\`sendmail-fleet \\([a-z-]*\\)').*/\\1/p\" "
                                  "/etc/mail/sendmail.mc")
        return out.strip() or "?"

    def submit(self, vps) -> None:
        alice = vps.accounts[0]
        tok = token()
        method, res = SMTP_AUTH, None
        for _attempt in range(8):
            offer = self.lab.smtp("client1", vps, port=587, starttls=True)
            if offer.raw.get("ehlo_auth_after_tls"):
                method = SMTP_AUTH
                res = self.lab.smtp("client1", vps, port=587, starttls=True, auth=["PLAIN", alice.user, alice.password],
                                    mail_from=alice.address, rcpt=[self.carol.address], data=message(tok))
            else:
                method = POP_BEFORE_SMTP
                if not self.lab.pop3("client1", vps, alice.user, alice.password)["ok"]:
                    time.sleep(1)  # dovecot restarting: a mail program checks mail again later
                    continue
                res = self.lab.smtp("client1", vps, port=25, mail_from=alice.address, rcpt=[self.carol.address],
                                    data=message(tok))
            if res.raw["ok"]:
                self.accepted.append((vps.short, tok))
                return
            code = res.last_code
            if code and code >= 500:
                self.refused.append(Refusal(vps.short, method, code, res.last["text"][:120], self.live_variant(vps)))
                return
            time.sleep(1)  # a temporary failure (4xx, connection refused during a restart): retry
        self.refused.append(Refusal(vps.short, method, None, "gave up after 8 tries", self.live_variant(vps)))

    def run(self) -> None:
        while not self.stop.is_set():
            for vps in fleet(self.lab.topo):
                if self.stop.is_set():
                    return
                self.submit(vps)


def settled_since(maillab: MailLab, nodes: list, timeout: float = 90) -> str:
    """Where the audit starts so that it sees this module's mail only: once no VPS of the rollout has a message
    queued (the session's earlier checks, mail_results above all, are delivered or bounced), the next whole second.
    The containers share this machine's clock, so nothing before that second is this module's."""
    deadline = time.monotonic() + timeout
    queued = "find /var/spool/mqueue /var/spool/mqueue-client -name 'qf*' -type f | head -1"
    while busy := [n.short for n in nodes if maillab.sh(n, queued)[1].strip()]:
        assert time.monotonic() < deadline, f"mail still queued after {timeout:.0f} s on {', '.join(busy)}"
        time.sleep(0.5)
    start = dt.datetime.now(dt.timezone.utc).replace(microsecond=0) + dt.timedelta(seconds=1)
    time.sleep(max(0.0, (start - dt.datetime.now(dt.timezone.utc)).total_seconds()))
    return start.isoformat(timespec="seconds")


@pytest.fixture(scope="module")
def rollout(maillab: MailLab, mail_results, paths, lost_host_rollout):
    topo = maillab.topo  # lost_host_rollout: started first, so it runs beside this one
    assert topo.get(BROKEN).variant == "pop-before-smtp", "the rollout test needs MAILLAB_TEST_VPS >= 6"
    assert {n.release for n in fleet(topo)} == {"trixie", "bookworm"}, "the rollout runs on a mixed fleet"
    since = settled_since(maillab, fleet(topo))
    carol = topo.by_role("mx")[0].accounts[0]
    # The test's own traffic: bob by POP-before-SMTP on LEGACY (from client2), alice on BOTH_WAYS (client1),
    # alice by SMTP-Auth on AUTH_ONLY. The audit counts relayed mail by its delivery line, so wait until each
    # message is in carol's mailbox (mx makes the VPSes wait out its greet pause first).
    mx, sent = topo.by_role("mx")[0], []
    for client, vps_name, who in (("client2", LEGACY, 1), ("client1", BOTH_WAYS, 0)):
        vps = topo.get(vps_name)
        acct = vps.accounts[who]
        assert maillab.pop3(client, vps, acct.user, acct.password)["ok"]
        sent.append(token())
        assert maillab.smtp(client, vps, port=25, mail_from=acct.address, rcpt=[carol.address],
                            data=message(sent[-1])).raw["ok"]
    auth_node = topo.get(AUTH_ONLY)
    sent.append(token())
    assert maillab.smtp("client1", auth_node, port=587, starttls=True, auth=["PLAIN", "alice", auth_node.accounts[0].password],
                        mail_from=auth_node.accounts[0].address, rcpt=[carol.address], data=message(sent[-1])).raw["ok"]
    assert all(maillab.wait_for_mail(mx, "/var/mail/carol", tok) for tok in sent)
    audit = playbook(paths, *target(topo), "-e", f"audit_since={since}", name="audit-pop-before-smtp.yml")
    assert audit.returncode == 0, audit.stdout[-3000:]
    audit_data = json.loads(AUDIT.read_text())
    audit_html = AUDIT.with_suffix(".html").read_text()
    # Without rollout_force, BOTH_WAYS takes its first step, to grace (no gate: nothing is lost there); the next run's
    # readiness gate holds it on grace (alice relayed by POP-before-SMTP just now).
    to_grace = playbook(paths, "-e", f"target={BOTH_WAYS}", name="rollout-auth-only.yml")
    graced = {h["inventory_hostname"]: h for h in json.loads(REPORT.read_text())["hosts"]}[BOTH_WAYS]
    gated = playbook(paths, "-e", f"target={BOTH_WAYS}", name="rollout-auth-only.yml")
    held = {h["inventory_hostname"]: h for h in json.loads(REPORT.read_text())["hosts"]}[BOTH_WAYS]

    maillab.sh(topo.get(BROKEN), "systemctl mask saslauthd")
    client2 = topo.get("client2")
    for short, value in zip(GRANTED, ("RELAY", "relay"), strict=True):  # sendmail reads RELAY in any case
        node = topo.get(short)
        maillab.sh(node, f"printf 'Connect:{client2.address}\\t{value}\\n' >> /etc/mail/access"
                         " && runuser -u smmta -- makemap hash /etc/mail/access < /etc/mail/access")
        planted = Checks(maillab, node)._relay("client2")[0]
        assert planted.raw["ok"], f"the planted grant must open relay on {short} first: {planted.summary()}"
    submitter = Submitter(maillab)
    submitter.start()
    # Forced: the lab's users relayed by POP-before-SMTP minutes ago, so the gate would hold those hosts.
    run = playbook(paths, *target(topo), "-e", "rollout_max_fail_share=0.5", "-e", "rollout_force=true",
                   name="rollout-auth-only.yml")
    submitter.stop.set()
    submitter.join(timeout=120)
    report = json.loads(REPORT.read_text())
    return {"run": run, "report": {h["inventory_hostname"]: h for h in report["hosts"]}, "audit": audit_data,
            "submitter": submitter, "gated": gated, "held": held, "audit_html": audit_html,
            "to_grace": to_grace, "graced": graced,
            "report_html": REPORT.with_suffix(".html").read_text()}


def test_the_audit_names_exactly_the_users_who_relayed_by_pop_before_smtp(rollout):
    pbs = {(r["host"], r["user"]) for r in rollout["audit"]["relays"] if r["method"] == "pop-before-smtp"}
    assert pbs == {(LEGACY, "bob"), (BOTH_WAYS, "alice")}
    auth = {(r["host"], r["user"]) for r in rollout["audit"]["relays"] if r["method"] == "smtp-auth"}
    assert (AUTH_ONLY, "alice") in auth


def test_without_force_a_pop_before_smtp_host_first_goes_to_its_grace_variant(rollout):
    graced = rollout["graced"]
    assert rollout["to_grace"].returncode == 0, rollout["to_grace"].stdout[-4000:]
    assert (graced["rollout_before"], graced["rollout_after"], graced["rollout_step"], graced["rollout_result"]) == (
        "default", "default-grace", "grace", "switched"), graced


def test_a_host_whose_users_relayed_by_pop_before_smtp_lately_is_held_and_they_are_named(rollout, maillab):
    held, client1 = rollout["held"], maillab.topo.get("client1").address
    assert held["rollout_result"] == "held" and held["rollout_after"] == held["rollout_before"] == "default-grace"
    assert f"alice from {client1}" in held["rollout_detail"] and "rollout_force" in held["rollout_detail"], held
    assert rollout["gated"].returncode != 0  # a held host is not on SMTP-Auth only


def test_the_run_reports_the_failed_host_and_fails(rollout):
    assert rollout["run"].returncode != 0
    assert f"not switched: {BROKEN}" in rollout["run"].stdout, rollout["run"].stdout[-6000:]


def test_the_report_is_a_table_of_whole_lines_in_the_output_and_beside_the_json(rollout, maillab):
    table = REPORT.with_suffix(".txt").read_text().splitlines()
    assert table[0].split()[:6] == ["HOST", "BEFORE", "AFTER", "STEP", "RESULT", "SECONDS"]
    assert set(table[1].split()) == {"-" * len(w) for w in table[1].split()}  # the rule under the header
    hosts = {line.split()[0] for line in table[2:] if line.strip() and not line.startswith(("Nothing", "Set ", "HALTED"))}
    assert hosts == {n.short for n in fleet(maillab.topo)}
    printed = [line.strip() for line in rollout["run"].stdout.splitlines()]
    assert table[0].strip() in printed and all(row.strip() in printed for row in table[2:] if row.strip())


def rendered(text: str, where) -> Cells:
    """The page as Chromium parsed it."""
    page = where / "report.html"
    page.write_text(text)
    return parse(browser.dom(page))


def test_the_html_report_shows_the_hosts_by_batch_canary_first_coloured_by_result(rollout, maillab, tmp_path):
    batches = {h: int(row["rollout_batch_number"]) for h, row in rollout["report"].items()}
    assert sorted(set(batches.values())) == list(range(1, max(batches.values()) + 1)), batches
    assert list(batches.values()).count(1) == 1, batches  # the canary batch holds one host
    page = rendered(rollout["report_html"], tmp_path)
    assert page.headings[0] == "Rollout to SMTP-Auth only"
    assert page.headings[1:] == [f"Batch {b}" for b in sorted(set(batches.values()))]
    rows = {r[0][0]: r for r in page.rows if r[0][0] != "HOST"}
    assert set(rows) == {n.short for n in fleet(maillab.topo)}
    result = [c[0] for c in page.rows[0]].index("RESULT")
    assert rows[BROKEN][result] == ("rolled-back", "fail")
    assert {rows[h][result][1] for h in rows if h != BROKEN} == {"ok"}, rows
    assert "script" not in page.tags


def test_the_audit_html_report_marks_every_pop_before_smtp_relay(rollout, tmp_path):
    page = rendered(rollout["audit_html"], tmp_path)
    head = [c[0] for c in page.rows[0]]
    method, user = head.index("METHOD"), head.index("USER")
    marked = {(r[method][0], r[user][0]) for r in page.rows if r[method][1] == "warn"}
    assert {u for m, u in marked} >= {"bob", "alice"} and {m for m, _ in marked} == {"pop-before-smtp"}
    assert all(r[method][1] == "warn" for r in page.rows if r[method][0] == "pop-before-smtp")


def test_the_host_that_fails_its_switch_ends_on_its_old_variant_still_delivering_mail(rollout, maillab):
    row = rollout["report"][BROKEN]
    node = maillab.topo.get(BROKEN)
    assert row["rollout_result"] == "rolled-back", row
    assert row["rollout_before"] == row["rollout_after"] == node.variant
    code, mc = maillab.sh(node, "cat /etc/mail/sendmail.mc")
    assert f"VERSIONID(`sendmail-fleet {node.variant}')" in mc
    checks = Checks(maillab, node)
    assert checks.local_delivery().passed
    assert checks.pop_login_relay().passed, checks.results[-1].detail


def test_every_other_host_ends_auth_only_and_passes_every_auth_only_check(rollout, maillab):
    def failures(node) -> list[str]:
        """What is wrong on one switched host: its report row, each auth-only check, leftover machinery."""
        target = auth_only_of(node.variant)
        row = rollout["report"][node.short]
        if row["rollout_result"] not in ("switched", "unchanged") or row["rollout_after"] != target:
            return [f"{node.short}: {row}"]
        checks = Checks(maillab, dataclasses.replace(node, variant=target))
        results = [check() for check in (
            checks.local_delivery, checks.unknown_user, checks.relay_without_auth, checks.submission_without_auth,
            checks.auth_offer, lambda: checks.auth_relay("PLAIN"), checks.auth_failures, checks.pop_login_relay,
            checks.other_client_refused, checks.procmail_recipe)]
        bad = [f"{node.short} ({target}) {r.check}: saw {r.seen}: {r.detail}" for r in results if not r.passed]
        _, units = maillab.sh(node, "ls /etc/dovecot/conf.d/ /etc/systemd/system/")
        if "pop-before-smtp" in units:
            bad.append(f"{node.short}: the POP-before-SMTP machinery must be gone: {units}")
        return bad

    # The hosts at once, as the demo checks them: a check mostly waits on a reply or on mail arriving.
    nodes = [n for n in fleet(maillab.topo) if n.short != BROKEN]
    with ThreadPoolExecutor(len(nodes)) as pool:
        wrong = [line for lines in pool.map(failures, nodes) for line in lines]
    assert not wrong, "\n".join(wrong)


def test_what_mail_programs_find_follows_the_switch_and_a_rolled_back_host_keeps_its_own(rollout, maillab):
    """LEGACY went from POP-before-SMTP to SMTP-Auth only: the settings it publishes now ask for the password and
    no longer say "send after checking mail"; BROKEN, rolled back, still publishes what it really offers."""
    for short, auth in ((LEGACY, "password-cleartext"), (BROKEN, "smtp-after-pop")):
        node = maillab.topo.get(short)
        status, _, body = curl(maillab, f"https://autoconfig.{node.domain}/mail/config-v1.1.xml")
        assert status == 200, body[:600]
        outgoing = {s.auth for s in thunderbird_config(body.encode(), node.domain) if s.kind == "outgoing"}
        assert outgoing == {auth}, (short, body[:1200])


def test_no_submission_is_refused_during_the_rollout_unless_the_switch_promised_it(rollout):
    """Only a POP-before-SMTP relay to a host that is by then auth-only may be refused (550 5.7.1): every other
    refusal is a user whose mail the rollout lost (tests/refusals.py)."""
    sub = rollout["submitter"]
    assert unpromised(sub.refused, promise) == [], sub.refused


def test_every_message_accepted_during_the_rollout_is_delivered_exactly_once(rollout, maillab):
    sub = rollout["submitter"]
    assert len(sub.accepted) >= 10, (sub.accepted, sub.refused)
    mx = maillab.topo.by_role("mx")[0]
    deadline = time.monotonic() + 90
    while True:
        _, box = maillab.sh(mx, "cat /var/mail/carol")
        counts = {tok: box.count(f"X-Maillab-Token: {tok}") for _, tok in sub.accepted}
        if all(n >= 1 for n in counts.values()) or time.monotonic() > deadline:
            break
        time.sleep(1)
    assert {tok: n for tok, n in counts.items() if n != 1} == {}


def test_after_the_fix_the_next_run_switches_the_last_host_and_a_run_after_that_changes_nothing(rollout, maillab, paths):
    maillab.sh(maillab.topo.get(BROKEN), "systemctl unmask saslauthd")
    again = playbook(paths, *target(maillab.topo), "-vvv", "-e", "rollout_force=true", name="rollout-auth-only.yml")
    assert again.returncode == 0, again.stdout[-4000:]
    secrets = [a.password for a in maillab.topo.accounts()]
    assert [p for p in secrets if p in again.stdout] == [], "a password in the -vvv output of the rollout"
    # the lab's inventory gives each account its hash too (password_hash): never shown either
    assert "$6$" not in again.stdout, "a password's hash (sha512-crypt) in the -vvv output of the rollout"
    rows = {h["inventory_hostname"]: h for h in json.loads(REPORT.read_text())["hosts"]}
    assert rows[BROKEN]["rollout_result"] == "switched"
    final = playbook(paths, *target(maillab.topo), name="rollout-auth-only.yml")
    assert final.returncode == 0, final.stdout[-4000:]
    changed = {h: c["changed"] for h, c in recap(final.stdout).items()}
    assert all(v == 0 for v in changed.values()), changed_tasks(final.stdout)
    assert "Nothing to do: every host is already auth-only." in final.stdout
    assert all(all_variants()[h["rollout_after"]].smtp_auth and not all_variants()[h["rollout_after"]].pop_before_smtp
               for h in json.loads(REPORT.read_text())["hosts"])


def test_a_relay_grant_planted_in_access_is_reported_and_removed(rollout, maillab):
    client2 = maillab.topo.get("client2")
    for short in GRANTED:
        row = rollout["report"][short]
        assert row["rollout_result"] == "switched", row
        assert f"removed relay grants: access Connect:{client2.address}" in row["rollout_detail"], row
        _, access = maillab.sh(maillab.topo.get(short), "cat /etc/mail/access")
        relay = [line.split()[0] for line in access.splitlines() if line.upper().split()[-1:] == ["RELAY"]]
        assert f"Connect:{client2.address}" not in relay, relay
        assert "Connect:127" in relay  # loopback grants stay (local submission relays through 127.0.0.1)


def test_site_does_not_bring_pop_before_smtp_back_to_a_switched_host_unless_told_so(rollout, maillab, paths):
    legacy = maillab.topo.get(LEGACY)  # the inventory still says pop-before-smtp; the rollout moved it to auth-only
    before = sha(legacy, "/etc/mail/sendmail.mc")
    run = playbook(paths, "-l", LEGACY)
    assert run.returncode != 0
    assert f"{LEGACY}: the rollout moved this host to default-auth-only" in run.stdout, run.stdout[-3000:]
    assert "sendmail_allow_pop_before_smtp_again" in run.stdout and "Nothing was changed" in run.stdout
    assert recap(run.stdout)[LEGACY]["changed"] == 0 and sha(legacy, "/etc/mail/sendmail.mc") == before
    # A host whose record is still where releases before 0.2.0 kept it: the same refusal, and the record moves to
    # the local fact as it was (the one change of that run).
    _, record = maillab.sh(legacy, f"cat {RECORD}")
    assert json.loads(record)["variant"] == "default-auth-only"
    assert maillab.sh(legacy, f"mkdir -p /etc/sendmail-fleet && mv {RECORD} {RECORD_BEFORE}")[0] == 0
    run = playbook(paths, "-l", LEGACY)
    assert run.returncode != 0
    assert f"{LEGACY}: the rollout moved this host to default-auth-only" in run.stdout, run.stdout[-3000:]
    moved = [task.split(" : ", 1)[-1] for task in changed_tasks(run.stdout)]
    assert moved == [f"Init | That record becomes the local fact, once (its content as it was): {LEGACY}"], moved
    assert maillab.sh(legacy, f"cat {RECORD}")[1] == record and sha(legacy, "/etc/mail/sendmail.mc") == before
    assert maillab.sh(legacy, f"test -e {RECORD_BEFORE}")[0] == 1
    back = playbook(paths, "-l", LEGACY, "-e", "sendmail_allow_pop_before_smtp_again=true")
    assert back.returncode == 0, back.stdout[-3000:]
    assert "VERSIONID(`sendmail-fleet pop-before-smtp')" in maillab.sh(legacy, "cat /etc/mail/sendmail.mc")[1]
    assert maillab.sh(legacy, f"cat {RECORD}") == (0, ""), "moved back on purpose: the record is emptied (none)"


def test_with_the_variants_written_into_the_inventory_a_later_site_run_changes_nothing(rollout, maillab, paths):
    run = playbook(paths, *target(maillab.topo), "-e", "rollout_write_inventory=true", "-e", "rollout_force=true",
                   name="rollout-auth-only.yml")
    assert run.returncode == 0, run.stdout[-4000:]
    rows = {h["inventory_hostname"]: h for h in json.loads(REPORT.read_text())["hosts"]}
    assert rows[LEGACY]["rollout_result"] == "switched"
    written = paths.inventory.parent / "host_vars" / f"{LEGACY}.yml"
    assert "sendmail_variant: default-auth-only" in written.read_text()
    site = playbook(paths, "-l", ",".join(n.short for n in fleet(maillab.topo)))
    assert site.returncode == 0, site.stdout[-4000:]
    changed = {h: c["changed"] for h, c in recap(site.stdout).items()}
    assert changed and all(v == 0 for v in changed.values()), changed_tasks(site.stdout)
