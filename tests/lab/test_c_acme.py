"""Certificates from the lab's ACME CA (pebble, reached through the lab DNS, its HTTP-01 checks connecting to each
host): every mail host holds one for its mail name, which clients verify; a forced renewal is served on 25, 465, 587,
110 and 995 while a client keeps submitting, and no submission fails."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from sendmail_fleet.mailcheck import MailLab, message, refused_at_connect, token

from .conftest import DEBIAN_12, DEBIAN_13, changed_tasks, lab_host, playbook, recap, tls_seen

RENEWED = (lab_host("default-auth-only", DEBIAN_13), lab_host("default-auth-only", DEBIAN_12))  # 465 open on both
MOVED = RENEWED[1]  # the host whose challenges' folder moves
CERTBOT_ENV = "REQUESTS_CA_BUNDLE=/etc/ssl/sendmail-fleet/acme-server-ca.pem"


@pytest.mark.parametrize("role", ["vps", "mx"])
def test_every_mail_host_holds_a_certificate_from_the_lab_acme_ca_for_its_mail_name(maillab, role):
    nodes = maillab.topo.by_role(role)
    with ThreadPoolExecutor(8) as pool:
        offers = list(pool.map(lambda n: maillab.smtp("client1", n, port=587, starttls=True), nodes))
    for node, offer in zip(nodes, offers, strict=True):
        assert offer.raw["ok"], f"{node.short}: {offer.summary()}"  # verified, name checked
        assert offer.raw["cert_issuer"].startswith("Pebble Intermediate CA"), (node.short, offer.raw["cert_issuer"])
        assert node.fqdn in offer.raw["cert_names"], (node.short, offer.raw["cert_names"])


def test_renewal_is_certbots_timer_with_the_deploy_hook_and_the_key_is_root_only(maillab):
    for short in RENEWED:
        node = maillab.topo.get(short)
        _, out = maillab.sh(node, "systemctl is-enabled certbot.timer; systemctl is-active certbot.timer;"
                                  " grep -h '^renew_hook' /etc/letsencrypt/renewal/sendmail-fleet.conf;"
                                  " stat -c '%a %U %G' /etc/ssl/sendmail-fleet/key.pem")
        assert out.split("\n")[:4] == ["enabled", "active",
                                       "renew_hook = /usr/local/lib/sendmail-fleet/tls-acme-deploy",
                                       "600 root root"], (short, out)


class Submitter(threading.Thread):
    """A mail program sending to carol on mx through a host, by AUTH on 587 and on 465 in turn, verifying the
    certificate each time; it retries a refused connection (sendmail reopens its ports when it takes up the new
    certificate) as a mail program's outbox does, and counts a message failed when it is not accepted."""

    def __init__(self, lab: MailLab, node) -> None:
        super().__init__(daemon=True)
        self.lab, self.node, self.stop = lab, node, threading.Event()
        self.accepted: list[str] = []
        self.failed: list[str] = []
        self.retried = 0

    def run(self) -> None:
        alice, carol = self.node.accounts[0], self.lab.topo.by_role("mx")[0].accounts[0]
        n = 0
        while not self.stop.is_set():
            n += 1
            tok, tls = token(), ({"port": 465, "tls": True} if n % 2 else {"port": 587, "starttls": True})
            for _attempt in range(5):
                res = self.lab.smtp("client1", self.node, **tls, auth=["PLAIN", alice.user, alice.password],
                                    mail_from=alice.address, rcpt=[carol.address], data=message(tok))
                if res.raw["ok"] or not refused_at_connect(res.raw["steps"]):
                    break
                self.retried += 1
                time.sleep(0.2)
            (self.accepted if res.raw["ok"] else self.failed).append(tok if res.raw["ok"] else res.summary())


@pytest.mark.parametrize("short", RENEWED)
def test_a_forced_renewal_is_served_on_every_tls_port_and_no_submission_fails_meanwhile(maillab, short):
    node = maillab.topo.get(short)
    before = tls_seen(maillab, node)
    assert len(set(before.values())) == 1 and None not in before.values(), before
    sender = Submitter(maillab, node)
    sender.start()
    try:
        code, out = maillab.sh(node, f"{CERTBOT_ENV} certbot renew --force-renewal --no-random-sleep-on-renew --cert-name sendmail-fleet 2>&1")
        assert code == 0, out[-2000:]
        deadline = time.monotonic() + 30
        while (after := tls_seen(maillab, node)) and set(after.values()) & set(before.values()):
            assert time.monotonic() < deadline, f"still the old certificate after 30 s: {before} -> {after}"
            time.sleep(0.5)
        wanted, deadline = len(sender.accepted) + 2, time.monotonic() + 30  # submissions after the switch too
        while len(sender.accepted) < wanted and not sender.failed and time.monotonic() < deadline:
            time.sleep(0.2)
    finally:
        sender.stop.set()
        sender.join(timeout=60)
    assert len(set(after.values())) == 1 and None not in after.values(), after
    assert sender.failed == [] and len(sender.accepted) >= 4, (sender.failed, len(sender.accepted))
    mx = maillab.topo.by_role("mx")[0]
    missing = [tok for tok in sender.accepted if not maillab.wait_for_mail(mx, "/var/mail/carol", tok, timeout=60)]
    assert missing == [], missing


def test_after_a_renewal_the_next_run_restarts_nothing_the_deploy_hook_reloaded_them(maillab, paths):
    """The renewals above: certbot's deploy hook put the new certificate in place, reloaded dovecot (sendmail
    re-executes itself on HUP) and touched its stamp. dovecot keeps its start time through a reload, yet the next run
    restarts nothing: a certificate that a reload loaded is no lost restart. A systemd daemon-reload in between (any
    role's unit change does one; systemd then forgets what its last ExecReload did) changes nothing to that."""
    for short in RENEWED:
        node = maillab.topo.get(short)
        _, out = maillab.sh(node, "systemctl daemon-reload; stat -c %Y /etc/ssl/sendmail-fleet/cert.pem; "
                                  "systemctl show dovecot -p ExecMainStartTimestamp --timestamp=unix")
        cert_written, started = out.split()[0], out.split("=@")[1].strip()
        assert int(cert_written) > int(started), f"{short}: the premise, a certificate newer than dovecot's start"
    run = playbook(paths, "-l", ",".join(RENEWED))
    assert run.returncode == 0, run.stdout[-3000:]
    assert all(recap(run.stdout)[h]["changed"] == 0 for h in RENEWED), changed_tasks(run.stdout)


def test_a_renewal_set_to_answer_from_another_folder_is_asked_for_again_once_and_then_renews(maillab, paths):
    """The admin moves the challenges' folder (as when nginx comes to hold port 80): the renewal settings follow
    in the same run, not at a failed renewal months later; the next run asks nothing; a forced renewal works."""
    node = maillab.topo.get(MOVED)
    moved = "/var/www/acme-moved"
    try:
        run = playbook(paths, "-l", MOVED, "-e", f"mail_host_acme_webroot={moved}")
        assert run.returncode == 0, run.stdout[-3000:]
        assert [t for t in changed_tasks(run.stdout) if "ACME | Ask the CA (HTTP-01, webroot)" in t], \
            changed_tasks(run.stdout)
        _, conf = maillab.sh(node, "grep '^webroot_path' /etc/letsencrypt/renewal/sendmail-fleet.conf")
        assert conf.strip() == f"webroot_path = {moved},"
        again = playbook(paths, "-l", MOVED, "-e", f"mail_host_acme_webroot={moved}")
        assert recap(again.stdout)[MOVED]["changed"] == 0, changed_tasks(again.stdout)
        code, out = maillab.sh(node, f"{CERTBOT_ENV} certbot renew --force-renewal --no-random-sleep-on-renew "
                                     "--cert-name sendmail-fleet 2>&1")
        assert code == 0, out[-2000:]
    finally:
        back = playbook(paths, "-l", MOVED)
        maillab.sh(node, f"rm -rf {moved}")
        assert back.returncode == 0, back.stdout[-3000:]
