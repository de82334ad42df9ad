"""The roles' wiring: tags reach the tasks through site.yml, every role runs alone from a minimal playbook, and the
collection artifact provisions a lab VPS by fully qualified role names."""

from __future__ import annotations

import re
import subprocess
import textwrap
from pathlib import Path

import pytest

from sendmail_fleet import repo_root
from sendmail_fleet.mailcheck import Checks

from .conftest import DEBIAN_13, changed_tasks, lab_host, playbook, recap

AUTH_ONLY = lab_host("default-auth-only", DEBIAN_13)
PROCMAIL = lab_host("default-procmail-lda", DEBIAN_13)
BOTH_WAYS = lab_host("default", DEBIAN_13)
ARTIFACT = lab_host("default-procmail-lda-auth-only", DEBIAN_13)  # the collection artifact switches it and back

PLAYBOOKS = Path(__file__).parent / "playbooks"


# The sendmail role's one config task (sendmail_fleet.mail.sendmail_config): build, check, switch, restart, roll back.
DEPLOY = ("sendmail : Deploy | Build with m4, check with sendmail, switch and verify; the previous config"
          " comes back on failure")


def tasks_run(output: str) -> list[str]:
    """'role : name' of every task that ran or was skipped, in order; left out are fact gathering, the roles'
    argument checks, the platform check, the check of the mail settings to publish, the accounts' password check
    and the variant's resolution (tag always: every other task depends on them)."""
    always = ("Gathering Facts", "Validating arguments", " : Init | ", " : Table | ", "Mail host | A supported platform",
              "Mail host | The mail settings to publish", "Users | Every present account has a real password")
    return [t for t in re.findall(r"^TASK \[(.+?)\] \*+$", output, re.M) if not any(a in t for a in always)]


def test_site_list_tags_shows_every_roles_tags(provisioned, paths):
    run = playbook(paths, "--list-tags")
    assert run.returncode == 0, run.stdout[-3000:]
    tags = set(re.search(r"TASK TAGS: \[(.*)\]", run.stdout).group(1).split(", "))
    assert {"tls", "mail_users", "procmail", "sasl", "pop3", "pop_before_smtp", "sendmail", "sendmail_install",
            "sendmail_config", "sendmail_variants", "sendmail_service"} <= tags


def test_tags_sasl_runs_only_sasl_tasks_and_the_variant_resolution(provisioned, paths):
    run = playbook(paths, "-l", AUTH_ONLY, "--tags", "sasl")
    assert run.returncode == 0, run.stdout[-3000:]
    ran = tasks_run(run.stdout)
    assert any(t.startswith("sasl : SASL | saslauthd's settings") for t in ran), ran
    # mail_host imports the sasl role without its apt task: the host's one apt run (and the dpkg query that skips
    # it when nothing is missing) carries every role's tag, so the sasl packages come from it.
    others = [t for t in ran if not t.startswith("sasl : ")]
    assert others == ["mail_host : Mail host | Which of those packages are installed (dpkg's own list)",
                      "mail_host : Mail host | Packages of every role this host needs, in one apt run"], others


def test_tags_sendmail_config_runs_only_the_config_phase(provisioned, paths):
    run = playbook(paths, "-l", AUTH_ONLY, "--tags", "sendmail_config")
    assert run.returncode == 0, run.stdout[-3000:]
    ran = tasks_run(run.stdout)
    assert DEPLOY in ran, ran
    phases = ("Config | ", "Helper | ", "Relay grants | ", "Deploy | ", "Restart | ")
    others = [t for t in ran if not (t.startswith("sendmail : ") and t.split(" : ", 1)[1].startswith(phases))]
    assert others == [], others


def test_tags_sendmail_config_rebuilds_and_restarts_a_changed_config(provisioned, paths, maillab):
    """A config change under --tags still reaches the build, the deploy and the restart (included files)."""
    node = provisioned.get(AUTH_ONLY)
    maillab.sh(node, "sed -i 's/^VERSIONID.*/dnl tampered by hand/' /etc/mail/sendmail.mc")
    assert "tampered by hand" in maillab.sh(node, "cat /etc/mail/sendmail.mc")[1]
    run = playbook(paths, "-l", AUTH_ONLY, "--tags", "sendmail_config")
    assert run.returncode == 0, run.stdout[-3000:]
    ran = tasks_run(run.stdout)
    assert DEPLOY in ran
    assert f"{DEPLOY}: {node.short}" in changed_tasks(run.stdout)  # built, switched, restarted and verified
    assert f"VERSIONID(`sendmail-fleet {node.variant}')" in maillab.sh(node, "cat /etc/mail/sendmail.mc")[1]
    assert Checks(maillab, node).auth_relay("PLAIN").passed


def test_a_package_removed_by_hand_is_installed_again_by_the_next_run_and_the_run_after_changes_nothing(
        provisioned, paths, maillab):
    """A host with every package skips apt (a dpkg query decides); a missing one sends it to apt again."""
    node = provisioned.get(AUTH_ONLY)
    code, out = maillab.sh(node, "DEBIAN_FRONTEND=noninteractive apt-get remove -y -q fail2ban >/dev/null"
                                 " && dpkg-query -W -f '${db:Status-Abbrev}' fail2ban")
    assert (code, out.strip()) == (0, "rc"), out
    run = playbook(paths, "-l", AUTH_ONLY)
    assert run.returncode == 0, run.stdout[-3000:]
    assert recap(run.stdout)[AUTH_ONLY]["changed"] > 0
    # fail2ban's server answers once it has read its jails: poll it for up to 30 s
    code, out = maillab.sh(node, "dpkg-query -W -f '${db:Status-Abbrev}' fail2ban && for i in $(seq 60); do "
                                 "fail2ban-client ping 2>/dev/null && exit 0; sleep 0.5; done; exit 1")
    assert code == 0 and out.startswith("ii") and "pong" in out, out
    again = playbook(paths, "-l", AUTH_ONLY)
    assert again.returncode == 0, again.stdout[-3000:]
    assert recap(again.stdout)[AUTH_ONLY]["changed"] == 0, changed_tasks(again.stdout)
    assert Checks(maillab, node).auth_relay("PLAIN").passed


# One file each role manages, deleted first so that the role alone must change it and notify its handlers.
FORCED = {AUTH_ONLY: ["/etc/ssl/sendmail-fleet/ca.pem", "/etc/sasl2/Sendmail.conf", "/etc/mail/local-host-names",
                   "/etc/dovecot/conf.d/90-sendmail-fleet-pop3.conf", "/etc/sendmail-fleet/mail-settings.json"],
          PROCMAIL: ["/etc/procmailrc"],
          BOTH_WAYS: ["/etc/dovecot/conf.d/95-pop-before-smtp.conf"]}
# The roles-alone playbook's hosts, by what each play needs (its hosts: are these variables).
ALONE_HOSTS = ("-e", f"alone_auth_only={AUTH_ONLY}", "-e", f"alone_procmail={PROCMAIL}",
               "-e", f"alone_pop_before_smtp={BOTH_WAYS}")


@pytest.fixture(scope="module")
def roles_alone(provisioned, paths, maillab):
    for short, files in FORCED.items():
        maillab.sh(provisioned.get(short), "rm -f " + " ".join(files))
    first = playbook(paths, *ALONE_HOSTS, name=PLAYBOOKS / "roles-alone.yml")
    second = playbook(paths, *ALONE_HOSTS, name=PLAYBOOKS / "roles-alone.yml")
    return first, second


def test_every_role_runs_alone_and_restarts_what_it_changed(roles_alone):
    first, _ = roles_alone
    assert first.returncode == 0, first.stdout[-5000:]
    assert "was not found" not in first.stdout and "is undefined" not in first.stdout
    changed = {h: c["changed"] for h, c in recap(first.stdout).items()}
    assert all(changed[h] > 0 for h in FORCED), changed
    handlers = re.findall(r"^RUNNING HANDLER \[(.+?)\]", first.stdout, re.M)
    for expected in ("tls : Restart the services that use the certificate",
                     "sasl : Restart the services that read sendmail's SASL config",
                     "sendmail : Restart sendmail", "pop3 : Restart dovecot",
                     "client_setup : Stop the mail settings service (its next request starts it on the new data)"):
        assert expected in handlers, handlers
    # pop_before_smtp restarts dovecot in its tasks, not in a handler: the hook it lost came back and ran at once.
    assert (f"pop_before_smtp : POP-before-SMTP | Restart what runs the hook (only where it is running): {BOTH_WAYS}"
            in changed_tasks(first.stdout)), changed_tasks(first.stdout)


def test_a_role_alone_run_twice_changes_nothing(roles_alone):
    _, second = roles_alone
    assert second.returncode == 0, second.stdout[-5000:]
    changed = {h: c["changed"] for h, c in recap(second.stdout).items()}
    assert all(v == 0 for v in changed.values()), changed_tasks(second.stdout)


def test_the_roles_alone_leave_the_hosts_as_mail_host_makes_them(roles_alone, paths, maillab, provisioned):
    run = playbook(paths, "-l", ",".join(FORCED))
    assert run.returncode == 0, run.stdout[-4000:]
    changed = {h: c["changed"] for h, c in recap(run.stdout).items()}
    assert all(v == 0 for v in changed.values()), changed_tasks(run.stdout)
    for short in FORCED:
        checks = Checks(maillab, provisioned.get(short))
        assert checks.local_delivery().passed, checks.results[-1].detail


HOOK = ["/etc/dovecot/conf.d/95-pop-before-smtp.conf", "/etc/systemd/system/dovecot.service.d/pop-before-smtp.conf"]


def test_a_removal_cut_off_before_dovecot_restarted_is_finished_by_the_next_run_and_pop3_logins_keep_working(
        roles_alone, paths, maillab, provisioned):
    """The pop_before_smtp removal deletes the hook, restarts dovecot, then deletes the post-login script. A run
    that lost its controller between the first two leaves a dovecot that still calls the script; the next run finds
    no hook to delete, and without a restart of its own would delete the script under that dovecot."""
    node = provisioned.get(BOTH_WAYS)
    checks = Checks(maillab, node)
    code, out = maillab.sh(node, "rm " + " ".join(HOOK))  # what the cut-off run did, without its restart
    assert code == 0, out
    try:
        run = playbook(paths, "-e", f"pbs_removed_on={BOTH_WAYS}", name=PLAYBOOKS / "pop-before-smtp-removed.yml")
        assert run.returncode == 0, run.stdout[-4000:]
        pop = maillab.pop3("client1", node, checks.alice.user, checks.alice.password)
        assert pop["ok"], pop["steps"]  # not "-ERR EOF" after PASS: dovecot no longer calls the script it lost
        code, out = maillab.sh(node, "ls /usr/local/lib/pop-before-smtp-postlogin " + " ".join(HOOK))
        assert code != 0 and out.count("No such file") == 3, out  # the removal finished
        assert (f"pop_before_smtp : POP-before-SMTP | Restart what runs the hook (only where it is running): "
                f"{BOTH_WAYS}") in changed_tasks(run.stdout), changed_tasks(run.stdout)
        again = playbook(paths, "-e", f"pbs_removed_on={BOTH_WAYS}", name=PLAYBOOKS / "pop-before-smtp-removed.yml")
        assert again.returncode == 0 and recap(again.stdout)[BOTH_WAYS]["changed"] == 0, changed_tasks(again.stdout)
    finally:
        back = playbook(paths, "-l", BOTH_WAYS)  # the host's variant wants POP-before-SMTP: site.yml puts it back
    assert back.returncode == 0, back.stdout[-4000:]
    assert checks.pop_login_relay().passed, checks.results[-1].detail



def test_a_hook_written_by_a_run_that_lost_its_restart_is_live_after_the_next_run(paths, maillab, provisioned):
    """pop_before_smtp writes dovecot's hook, then restarts dovecot. A run that lost its controller between the two
    leaves a dovecot that never calls the hook: POP3 logins open no relay. The next run finds the hook's files as
    they should be; it sees that they changed after dovecot started (the files module's read_at_start_by) and
    restarts dovecot, so the logins open relay again. The same holds for dovecot's settings, saslauthd's, OpenDKIM's
    and the sending-limit milter's (unit tests of the module)."""
    node = provisioned.get(BOTH_WAYS)
    client1 = maillab.topo.get("client1").address
    checks = Checks(maillab, node)
    keep = " ".join(f"cp -p {f} {f}.keep;" for f in HOOK)
    put_back = " ".join(f"cp {f}.keep {f} && rm {f}.keep;" for f in HOOK)  # written anew, as that run wrote it
    code, out = maillab.sh(node, f"set -e; {keep} rm {' '.join(HOOK)}; systemctl daemon-reload; "
                                 f"systemctl restart dovecot; {put_back} pop-before-smtp revoke {client1}")
    assert code == 0, out
    try:
        lost = checks.pop_login_relay()
        assert lost.seen == "550", f"dovecot without its hook: the login opens no relay ({lost.detail})"
        run = playbook(paths, "-l", BOTH_WAYS)
        assert run.returncode == 0, run.stdout[-4000:]
        assert (f"pop_before_smtp : POP-before-SMTP | Restart what runs the hook (only where it is running): "
                f"{BOTH_WAYS}") in changed_tasks(run.stdout), changed_tasks(run.stdout)
        live = checks.pop_login_relay()
        assert live.seen == "250" and live.passed, f"the hook live again: the login opens relay ({live.detail})"
        again = playbook(paths, "-l", BOTH_WAYS)
        assert again.returncode == 0 and recap(again.stdout)[BOTH_WAYS]["changed"] == 0, changed_tasks(again.stdout)
    finally:
        maillab.sh(node, f"pop-before-smtp revoke {client1}")
        restored = playbook(paths, "-l", BOTH_WAYS)
        assert restored.returncode == 0, restored.stdout[-4000:]


@pytest.fixture(scope="module")
def collection(tmp_path_factory) -> Path:
    """The collection artifact, built from this checkout and installed into an empty collections path."""
    tmp = tmp_path_factory.mktemp("collection")
    galaxy = [str(Path(__import__("sys").executable).parent / "ansible-galaxy"), "collection"]
    build = subprocess.run([*galaxy, "build", "--output-path", str(tmp), str(repo_root())], capture_output=True,
                           text=True, timeout=300)
    assert build.returncode == 0, build.stdout + build.stderr
    artifact = next(tmp.glob("sendmail_fleet-mail-*.tar.gz"))
    install = subprocess.run([*galaxy, "install", "--force", "-p", str(tmp / "collections"), str(artifact)],
                             capture_output=True, text=True, timeout=300)
    assert install.returncode == 0, install.stdout + install.stderr
    assert (tmp / "collections" / "ansible_collections" / "sendmail_fleet" / "mail" / "roles" / "mail_host").is_dir()
    return tmp


def fqcn_playbook(tmp: Path) -> tuple[Path, dict[str, str]]:
    """A playbook elsewhere that names the roles by FQCN, and a config that sees only the installed artifact."""
    book = tmp / "provision.yml"
    book.write_text(textwrap.dedent(f"""\
        - name: A mail host from the installed collection
          hosts: {ARTIFACT}
          become: true
          force_handlers: true
          roles:
            - role: sendmail_fleet.mail.mail_host
        """))
    cfg = tmp / "ansible.cfg"
    cfg.write_text(textwrap.dedent(f"""\
        [defaults]
        collections_path = {tmp / 'collections'}
        roles_path = {tmp / 'no-roles'}
        interpreter_python = auto_silent
        callback_result_format = yaml
        [ssh_connection]
        pipelining = True
        """))
    return book, {"ANSIBLE_CONFIG": str(cfg)}


def test_the_collection_artifact_provisions_a_lab_vps_by_fully_qualified_names(collection, paths, maillab,
                                                                                 provisioned):
    book, env = fqcn_playbook(collection)
    art = provisioned.get(ARTIFACT)
    other = "default-procmail-lda"  # it runs default-procmail-lda-auth-only: the artifact switches it
    assert art.variant != other
    switched = playbook(paths, "-e", f"sendmail_variant={other}", name=book, env=env)
    assert switched.returncode == 0, switched.stdout[-5000:]
    assert "sendmail_fleet.mail.mail_host" in switched.stdout or "mail_host :" in switched.stdout
    assert f"VERSIONID(`sendmail-fleet {other}')" in maillab.sh(art, "cat /etc/mail/sendmail.mc")[1]
    import dataclasses
    checks = Checks(maillab, dataclasses.replace(art, variant=other))
    assert checks.pop_login_relay().passed, checks.results[-1].detail
    back = playbook(paths, name=book, env=env)
    assert back.returncode == 0, back.stdout[-5000:]
    same = playbook(paths, "-l", ARTIFACT)
    assert same.returncode == 0, same.stdout[-4000:]
    assert recap(same.stdout)[ARTIFACT]["changed"] == 0, "the artifact and the checkout must provision alike"
    checks = Checks(maillab, art)
    assert checks.auth_relay("PLAIN").passed, checks.results[-1].detail
