"""The sendmail role: each VPS in its own variant, idempotent, and nothing broken ever goes live."""

import json
from pathlib import Path

import pytest

from sendmail_fleet.mailcheck import Checks
from sendmail_fleet.variants import variant_names

from .conftest import (
    DEBIAN_12,
    DEBIAN_13,
    VPS,
    VPS_IDS,
    changed_tasks,
    host,
    lab_host,
    maillab_cli,
    playbook,
    recap,
    sha,
)

# Two hosts that between them take every branch of the roles; a host in the default variant.
EVERY_BRANCH = (lab_host("pop-before-smtp", DEBIAN_13), lab_host("default-procmail-lda-auth-only", DEBIAN_12))
DEFAULT = lab_host("default", DEBIAN_13)


@pytest.mark.parametrize("node", VPS, ids=VPS_IDS)
def test_sendmail_its_m4_macros_m4_and_make_are_installed(provisioned, node):
    h = host(node)
    for pkg in ("sendmail", "sendmail-cf", "m4", "make"):
        assert h.package(pkg).is_installed, pkg
    assert h.file("/usr/share/sendmail/cf/feature/drac.m4").exists


@pytest.mark.parametrize("node", VPS, ids=VPS_IDS)
def test_mta_listens_on_25_and_msa_on_587_on_all_addresses(provisioned, node):
    h = host(node)
    assert h.socket("tcp://0.0.0.0:25").is_listening
    assert h.socket("tcp://0.0.0.0:587").is_listening


@pytest.mark.parametrize("node", VPS, ids=VPS_IDS)
def test_each_vps_runs_its_own_variant(provisioned, node):
    h = host(node)
    assert f"VERSIONID(`sendmail-fleet {node.variant}')" in h.file("/etc/mail/sendmail.mc").content_string
    assert h.file("/etc/mail/sendmail.cf").contains(f"sendmail-fleet {node.variant}")


@pytest.mark.parametrize("node", VPS, ids=VPS_IDS)
def test_all_five_variants_are_built_for_switching_by_hand(provisioned, node):
    h = host(node)
    for name in variant_names():
        cf = h.file(f"/etc/mail/variants/{name}.cf")
        assert cf.exists and cf.contains(f"sendmail-fleet {name}"), name


def test_a_second_run_on_plain_ansible_core_changes_nothing(provisioned, paths):
    """The lab provisions with Mitogen when it is installed; the roles need only ansible-core, and a run without
    it finds nothing to change after one with it. The two hosts between them take every branch of the roles
    (SASL absent and present, procmail absent and present, POP-before-SMTP present and absent), one on Debian 13
    and one on Debian 12; later tests run site.yml on every host with Mitogen and assert the same."""
    run = playbook(paths, "-l", ",".join(EVERY_BRANCH), accelerated=False)
    assert run.returncode == 0, run.stdout[-4000:]
    changed = {h: c["changed"] for h, c in recap(run.stdout).items()}
    assert set(changed) == set(EVERY_BRANCH) and all(v == 0 for v in changed.values()), changed_tasks(run.stdout)


def test_check_mode_shows_the_mc_diff_and_changes_nothing(provisioned, paths):
    node = provisioned.get(DEFAULT)
    before = sha(node, "/etc/mail/sendmail.mc")
    run = playbook(paths, "--check", "--diff", "-l", DEFAULT, "-e", "sendmail_variant=default-auth-only")
    assert run.returncode == 0, run.stdout[-4000:]
    assert "-FEATURE(`drac', `hash -o /etc/mail/drac')dnl" in run.stdout
    assert "+VERSIONID(`sendmail-fleet default-auth-only')dnl" in run.stdout
    assert sha(node, "/etc/mail/sendmail.mc") == before


def test_an_unknown_variant_is_refused_naming_the_variable_and_choices(provisioned, paths):
    run = playbook(paths, "-l", DEFAULT, "-e", "sendmail_variant=sendmail-classic")
    assert run.returncode != 0
    assert "sendmail_variant" in run.stdout and "default-procmail-lda-auth-only" in run.stdout


def test_an_unknown_feature_is_refused(provisioned, paths):
    run = playbook(paths, "-l", DEFAULT, "-e", '{"sendmail_features": ["smtp_auth", "uucp"]}')
    assert run.returncode != 0 and "sendmail_features" in run.stdout and "pop_before_smtp" in run.stdout


def test_a_bad_setup_date_is_refused(provisioned, paths):
    run = playbook(paths, "-l", DEFAULT, "-e", "sendmail_variant=", "-e", "sendmail_setup_date=16/01/2003")
    assert run.returncode != 0 and "sendmail_setup_date" in run.stdout and "YYYY-MM-DD" in run.stdout


BROKEN = {
    "m4 error": ("FEATURE(`no_such_feature')dnl", "m4 refused"),
    "cf that fails the smoke test": ("LOCAL_RULESETS\nSLocal_check_mail\nR$*  $@ OK", "sendmail rejected the compiled"),
    "cf that starts without STARTTLS": ("define(`confSERVER_KEY', `/nonexistent/key.pem')dnl",
                                        "previous config is back"),
}


# The same variant on each release.
AUTH_ONLY_PER_RELEASE = (lab_host("default-auth-only", DEBIAN_13), lab_host("default-auth-only", DEBIAN_12))
LIVE = ("/etc/mail/sendmail.mc", "/etc/mail/sendmail.cf")


@pytest.mark.parametrize("case", BROKEN, ids=list(BROKEN))
def test_broken_input_is_refused_on_debian_12_and_13_and_the_running_config_still_serves_mail(
        provisioned, paths, maillab, case):
    extra, message = BROKEN[case]
    nodes = [provisioned.get(h) for h in AUTH_ONLY_PER_RELEASE]
    assert {n.release for n in nodes} == {"bookworm", "trixie"}
    before = {n.short: [sha(n, f) for f in LIVE] for n in nodes}
    run = playbook(paths, "-l", ",".join(AUTH_ONLY_PER_RELEASE), "-e", json.dumps({"sendmail_mc_extra": extra}))
    assert run.returncode != 0
    failed = {h: c["failed"] for h, c in recap(run.stdout).items()}
    assert failed == {h: 1 for h in AUTH_ONLY_PER_RELEASE}, run.stdout[-3000:]
    assert run.stdout.count(message) >= 2, run.stdout[-3000:]
    for node in nodes:
        assert [sha(node, f) for f in LIVE] == before[node.short], f"{node.short}: the live config changed"
        checks = Checks(maillab, node)
        assert checks.local_delivery().passed, node.short
        assert checks.auth_offer().passed, (node.short, checks.results[-1].detail)


SASL_CONF = "/etc/sasl2/Sendmail.conf"


def test_a_restart_notified_before_a_task_that_fails_still_happens_so_no_later_run_has_to_find_it(
        provisioned, paths, maillab):
    """sendmail reads Cyrus SASL's Sendmail.conf (its mech_list) only when it starts. A run whose sasl role puts that
    file right, and whose sendmail build then fails, must still restart sendmail: the next run finds the file right
    and notifies nothing, so a restart dropped with the failed host would never come."""
    name = AUTH_ONLY_PER_RELEASE[0]
    node = provisioned.get(name)
    checks = Checks(maillab, node)
    # sendmail started on a mech list without PLAIN, as if an earlier Sendmail.conf had said so.
    start_sendmail_on_login_only(maillab, node)
    refused = checks.auth_relay("PLAIN")
    assert refused.seen == "504", refused  # 504 5.3.3: the mechanism is not offered
    run = playbook(paths, "-l", name, "-e", json.dumps({"sendmail_mc_extra": BROKEN["m4 error"][0]}))
    assert run.returncode != 0 and "m4 refused" in run.stdout, run.stdout[-3000:]
    assert recap(run.stdout)[name]["failed"] == 1, run.stdout[-3000:]
    assert "mech_list: PLAIN LOGIN" in maillab.sh(node, f"cat {SASL_CONF}")[1]
    relayed = checks.auth_relay("PLAIN")
    assert relayed.passed, relayed.detail  # sendmail restarted on the file the failed run put right


def start_sendmail_on_login_only(maillab, node, keep: str = "") -> None:
    """sendmail restarted on a Sendmail.conf whose mech_list is LOGIN (AUTH PLAIN then gets 504), the file first
    copied to `keep` when given. Stopped and started as the role's helper does it: Debian's init script alone can
    leave the old daemon on the ports in the lab's containers."""
    code, out = maillab.sh(node, (f"cp -p {SASL_CONF} {keep} && " if keep else "")
                           + f"sed -i 's/^mech_list: .*/mech_list: LOGIN/' {SASL_CONF} && systemctl stop sendmail"
                           " && { pkill -TERM -x sendmail-mta; true; } && for i in $(seq 150); do ss -Hltn "
                           "'sport = :587' | grep -q . || break; sleep 0.2; done && systemctl start sendmail && "
                           "for i in $(seq 150); do ss -Hltn 'sport = :587' | grep -q . && exit 0; sleep 0.2; "
                           "done; exit 1")
    assert code == 0, out


def test_a_sasl_config_written_by_a_run_that_lost_its_controller_before_the_restart_is_put_in_force_by_the_next_run(
        provisioned, paths, maillab):
    """The sasl role put Sendmail.conf right and notified the restart, then the controller was lost before the
    handler ran (force_handlers cannot help there). The next run finds the file right and notifies nothing; the
    deploy's check sees a daemon that started before the file changed and restarts it, once."""
    name = AUTH_ONLY_PER_RELEASE[1]
    node = provisioned.get(name)
    checks = Checks(maillab, node)
    keep = "/root/Sendmail.conf.as-the-role-writes-it"
    start_sendmail_on_login_only(maillab, node, keep=keep)
    assert checks.auth_relay("PLAIN").seen == "504"
    # What the lost run left: the role's file in place (written after the daemon started), and no restart.
    code, out = maillab.sh(node, f"cat {keep} > {SASL_CONF} && rm -f {keep}")
    assert code == 0, out
    assert checks.auth_relay("PLAIN").seen == "504", "sendmail read Sendmail.conf without a restart"
    run = playbook(paths, "-l", name)
    assert run.returncode == 0, run.stdout[-3000:]
    assert [t for t in changed_tasks(run.stdout) if "Sendmail.conf" in t or "SASL" in t] == [], changed_tasks(run.stdout)
    assert any(t.startswith("sendmail : Deploy |") for t in changed_tasks(run.stdout)), changed_tasks(run.stdout)
    relayed = checks.auth_relay("PLAIN")
    assert relayed.passed, relayed.detail
    again = playbook(paths, "-l", name)
    assert again.returncode == 0 and recap(again.stdout)[name]["changed"] == 0, changed_tasks(again.stdout)


# pop-before-smtp on each release (on Debian 12 the host given only its set-up date, in the default lab).
LEGACY_PER_RELEASE = (lab_host("pop-before-smtp", DEBIAN_13), lab_host("pop-before-smtp", DEBIAN_12))


def test_a_failed_switch_to_another_variant_is_rolled_back_and_the_old_variant_keeps_its_promises(
        provisioned, paths, maillab):
    """pop-before-smtp to default-auth-only with a key sendmail cannot read: the new config fails its verify, the
    legacy config comes back and is verified as pop-before-smtp promises (no AUTH), not as auth-only does, so the
    run says the previous config is back rather than that sendmail may be down."""
    nodes = [provisioned.get(h) for h in LEGACY_PER_RELEASE]
    assert {n.release for n in nodes} == {"bookworm", "trixie"} and {n.variant for n in nodes} == {"pop-before-smtp"}
    before = {n.short: [sha(n, f) for f in LIVE] for n in nodes}
    run = playbook(paths, "-l", ",".join(LEGACY_PER_RELEASE), "--tags", "sendmail_config", "-e", json.dumps({
        "sendmail_variant": "default-auth-only", "sendmail_setup_date": "",
        "sendmail_mc_extra": BROKEN["cf that starts without STARTTLS"][0]}))
    assert run.returncode != 0
    assert run.stdout.count("result: rolled-back") == 2, run.stdout[-3000:]
    assert "The previous config is back and sendmail is running on it" in run.stdout
    assert "SENDMAIL MAY BE DOWN" not in run.stdout and "rollback-failed" not in run.stdout
    assert run.stdout.count("previous config (pop-before-smtp) back, verified as pop-before-smtp promises") == 2
    for node in nodes:
        assert [sha(node, f) for f in LIVE] == before[node.short], f"{node.short}: the legacy config is not back"
        checks = Checks(maillab, node)
        checks.start_without_grants()
        results = [check() for check in (checks.local_delivery, checks.relay_without_auth,
                                         checks.submission_without_auth, checks.auth_offer, checks.pop_login_relay)]
        assert [r.check for r in results if not r.passed] == [], (node.short, [r.detail for r in results])
        checks.start_without_grants()  # client1's POP3 login above opened a window: ended


def test_maillab_provision_with_one_broken_host_names_that_host_its_task_and_the_log_in_its_last_lines(provisioned):
    broken, good = AUTH_ONLY_PER_RELEASE
    extra = {"sendmail_mc_extra": "{{ \"" + BROKEN["m4 error"][0] + f"\" if inventory_hostname == '{broken}' else '' }}}}"}
    run = maillab_cli("provision", "-l", ",".join(AUTH_ONLY_PER_RELEASE), "-e", json.dumps(extra))
    assert run.returncode != 0
    last = run.stdout.rstrip("\n").splitlines()[-8:]
    text = "\n".join(last)
    assert f"  {broken}: task [sendmail : Deploy | Build with m4, check with sendmail" in text, run.stdout[-3000:]
    assert "m4 refused" in text and f"{good}:" not in text
    log = Path(last[-1].split("full Ansible output: ", 1)[1])
    assert log.is_file() and "PLAY RECAP" in log.read_text() and f"fatal: [{broken}]" in log.read_text()
    assert "TASK [" not in run.stdout  # the stream is in the log, not on the screen


def test_after_refused_input_the_next_good_run_succeeds_without_touching_the_live_config(provisioned):
    # The refused runs left their .mc in staging; the next good run renders the good one there again and finds
    # the live config as it was (no build, no restart), so later runs on these hosts change nothing. It runs as
    # a user runs it: `maillab provision`, a line per phase, Ansible's output in the log it names.
    nodes = [provisioned.get(h) for h in AUTH_ONLY_PER_RELEASE]
    before = {n.short: [sha(n, f) for f in LIVE] for n in nodes}
    run = maillab_cli("provision", "-l", ",".join(AUTH_ONLY_PER_RELEASE))
    assert run.returncode == 0, run.stdout[-3000:]
    log = Path(run.stdout.split("full Ansible output: ", 1)[1].split()[0]).read_text()
    assert "PLAY RECAP" in log, log[-3000:]
    assert changed_tasks(log) == [], changed_tasks(log)  # no build, no switch, no restart
    printed = run.stdout.splitlines()
    assert len(printed) < 40 and "TASK [" not in run.stdout, run.stdout
    assert any(line.split("]", 1)[-1].split()[:1] == ["sendmail"] for line in printed), run.stdout  # a phase line
    assert any("provisioned: 2 hosts, " in line and line.endswith(", 0 failed") for line in printed), run.stdout
    assert {n.short: [sha(n, f) for f in LIVE] for n in nodes} == before
