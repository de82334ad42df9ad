"""The tls role's other sources beside the lab's ACME: a certificate from the controller is checked before it is
installed (it must match its key and not have expired, else the live files stay as they are); a self-signed one is
made when the certificate is not self-signed, is remade within 30 days of its end or when the host's name changes,
and is left alone otherwise. Runs `--tags tls` on one host of each release, then puts the ACME certificate back."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor

import pytest
from cryptography import x509

import docker
from sendmail_fleet.lab import _put_file
from sendmail_fleet.pki import issue

from .conftest import DEBIAN_12, DEBIAN_13, changed_tasks, lab_host, playbook, recap, sha, tls_seen

# Two hosts no other test of this module touches: the controller's certificate on Debian 13, a self-signed one on
# Debian 12 (openssl 3.0), in threads beside each other.
CONTROLLER = lab_host("default-procmail-lda", DEBIAN_13)
SELF_SIGNED = lab_host("default-procmail-lda", DEBIAN_12)

LIVE = ("/etc/ssl/sendmail-fleet/cert.pem", "/etc/ssl/sendmail-fleet/key.pem")
LAB_CA = "sendmail-fleet lab CA"  # the issuer of the lab's own certificates (the controller source's)
UNCHANGED = "It was not installed; the live certificate in /etc/ssl/sendmail-fleet is unchanged."


def live_cert(maillab, node) -> x509.Certificate:
    return x509.load_pem_x509_certificate(maillab.sh(node, f"cat {LIVE[0]}")[1].encode())


@pytest.fixture(scope="module")
def self_signed_beside(maillab, paths) -> Iterator[Future]:
    """The self-signed scenario on SELF_SIGNED, started when the first test of this module sets up, so it runs beside
    the controller tests on CONTROLLER (other hosts, other certificates)."""
    with ThreadPoolExecutor(1, thread_name_prefix="self-signed") as pool:
        yield pool.submit(self_signed_scenario, maillab, paths)


@pytest.fixture(scope="module")
def pairs(paths, tmp_path_factory, provisioned, self_signed_beside):
    """Files on the controller: a good certificate with another key, and an expired certificate with its key."""
    folder = tmp_path_factory.mktemp("certs")
    node = provisioned.get(CONTROLLER)
    now = dt.datetime.now(dt.timezone.utc)
    good, _ = issue(paths.pki, [node.fqdn], now + dt.timedelta(days=300))
    _, other_key = issue(paths.pki, [node.fqdn], now + dt.timedelta(days=300))
    expired, expired_key = issue(paths.pki, [node.fqdn], now - dt.timedelta(days=2))
    files = {"good.crt": good, "other.key": other_key, "expired.crt": expired, "expired.key": expired_key}
    for name, data in files.items():
        (folder / name).write_bytes(data)
        (folder / name).chmod(0o600)
    return {name: str(folder / name) for name in files}


@pytest.mark.parametrize(("cert", "key", "why"), [
    ("good.crt", "other.key", "does not match its key"),
    ("expired.crt", "expired.key", "has expired"),
], ids=["key-mismatch", "expired"])
def test_a_controller_certificate_that_fails_its_checks_is_refused_and_the_live_files_stay(
        pairs, maillab, paths, cert, key, why):
    ctl = maillab.topo.get(CONTROLLER)
    before = [sha(ctl, f) for f in LIVE]
    run = playbook(paths, "-l", CONTROLLER, "--tags", "tls", "-e", "tls_source=controller",
                   "-e", f"tls_cert_src={pairs[cert]}", "-e", f"tls_key_src={pairs[key]}")
    assert run.returncode != 0
    said = " ".join(run.stdout.split())
    assert f"the certificate {pairs[cert]} {why}" in said and UNCHANGED in said, run.stdout[-3000:]
    assert [sha(ctl, f) for f in LIVE] == before
    offer = maillab.smtp("client1", ctl, port=587, starttls=True)  # verified against the lab's CA, as before
    assert offer.raw["ok"] and offer.raw.get("tls_version") in ("TLSv1.2", "TLSv1.3"), offer.summary()


def self_signed_scenario(maillab, paths) -> None:
    """Runs in a thread (self_signed_beside) while the controller tests work on CONTROLLER; its assertions fail the
    test that waits for it."""
    signed = maillab.topo.get(SELF_SIGNED)  # Debian 12 (openssl 3.0); the controller source runs on 13
    self_signed = ("-l", SELF_SIGNED, "--tags", "tls", "-e", "tls_source=self-signed")
    # The lab's certificate (from its ACME CA) is not self-signed: the source changed, so one is made (short-lived,
    # on purpose).
    short = playbook(paths, *self_signed, "-e", "tls_self_signed_days=10")
    assert short.returncode == 0, short.stdout[-3000:]
    first = live_cert(maillab, signed)
    assert first.issuer == first.subject and (first.not_valid_after_utc - first.not_valid_before_utc).days == 10
    # 10 days left is inside the 30-day window: the next run makes a new one.
    renewed = playbook(paths, *self_signed)
    assert renewed.returncode == 0, renewed.stdout[-3000:]
    second = live_cert(maillab, signed)
    assert second.serial_number != first.serial_number and (second.not_valid_after_utc - dt.datetime.now(
        dt.timezone.utc)).days >= 820
    again = playbook(paths, *self_signed)
    assert recap(again.stdout)[SELF_SIGNED]["changed"] == 0, changed_tasks(again.stdout)
    assert live_cert(maillab, signed).serial_number == second.serial_number
    renamed = playbook(paths, *self_signed, "-e", f"mail_fqdn=mail2.{signed.domain}")
    assert renamed.returncode == 0, renamed.stdout[-3000:]
    names = live_cert(maillab, signed).extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert names.get_values_for_type(x509.DNSName) == [f"mail2.{signed.domain}"]
    # Another source: certbot's renewal of the old certificate is gone (it would overwrite this one).
    code, _ = maillab.sh(signed, "test -e /etc/letsencrypt/renewal/sendmail-fleet.conf")
    assert code != 0
    # Back to the lab's ACME CA (a new certificate, as certbot's was deleted), which clients verify again.
    back = playbook(paths, "-l", SELF_SIGNED, "--tags", "tls")
    assert back.returncode == 0, back.stdout[-3000:]
    offer = maillab.smtp("client1", signed, port=587, starttls=True)
    assert offer.raw["ok"] and offer.raw["cert_issuer"].startswith("Pebble"), offer.summary()


def key_lines_in(output: str, key_pem: str) -> list[str]:
    """The lines of a private key's body that appear in a playbook's output (none may)."""
    body = [line for line in key_pem.splitlines() if line and "PRIVATE KEY" not in line]
    assert body, "no key body to look for"
    return [line for line in body if line in output] + (["PRIVATE KEY"] if "PRIVATE KEY" in output else [])


def test_a_good_controller_certificate_is_installed_and_a_second_run_changes_nothing(maillab, paths):
    ctl = maillab.topo.get(CONTROLLER)  # the lab CA's certificate for it, given in the inventory
    controller = ("-l", CONTROLLER, "--tags", "tls", "-e", "tls_source=controller")
    first = playbook(paths, "-vvv", *controller)  # the key changes, at the highest verbosity
    assert first.returncode == 0, first.stdout[-3000:]
    assert key_lines_in(first.stdout, (paths.pki / f"{CONTROLLER}.key").read_text()) == []
    offer = maillab.smtp("client1", ctl, port=465, tls=True)
    assert offer.raw["ok"] and offer.raw["cert_issuer"] == "sendmail-fleet lab CA", offer.summary()
    again = playbook(paths, *controller)
    assert recap(again.stdout)[CONTROLLER]["changed"] == 0, changed_tasks(again.stdout)
    _, listing = maillab.sh(ctl, "stat -c '%a %U %G' /etc/ssl/sendmail-fleet/key.pem /etc/ssl/sendmail-fleet/incoming")
    assert listing.split("\n")[:2] == ["600 root root", "700 root root"], listing
    back = playbook(paths, "-vvv", "-l", CONTROLLER, "--tags", "tls")  # the lab's ACME certificate again: a new key
    assert back.returncode == 0, back.stdout[-3000:]
    assert key_lines_in(back.stdout, maillab.sh(ctl, "cat /etc/ssl/sendmail-fleet/key.pem")[1]) == []
    _, listing = maillab.sh(ctl, "ls -a /etc/ssl/sendmail-fleet")
    assert "incoming" not in listing.split()  # no copy of the controller's key stays behind
    assert maillab.smtp("client1", ctl, port=587, starttls=True).raw["cert_issuer"].startswith("Pebble")


def issuers(maillab, node) -> dict[int, str | None]:
    """The issuer a verifying client sees on dovecot's 995 and sendmail's 465."""
    return tls_seen(maillab, node, "cert_issuer", (995, 465))


def test_a_certificate_whose_restart_was_lost_with_the_controller_is_served_after_the_next_run(maillab, paths):
    """What a run that installed the controller's certificate and lost its controller before the handlers leaves: the
    new files in place, dovecot and sendmail still on the old certificate. The next run finds the files right, so
    nothing notifies the restart, and it still restarts both: the files are newer than what each daemon loaded."""
    ctl = maillab.topo.get(CONTROLLER)
    container = docker.from_env().containers.get(ctl.name)
    assert {i[:5] for i in issuers(maillab, ctl).values()} == {"Pebbl"}, issuers(maillab, ctl)
    for src, dest, mode in ((f"{CONTROLLER}.crt", "cert.pem", 0o644), (f"{CONTROLLER}.key", "key.pem", 0o600),
                            ("ca.crt", "ca.pem", 0o644)):  # as the tls role installs them (its __tls_files)
        _put_file(container, f"/etc/ssl/sendmail-fleet/{dest}", (paths.pki / src).read_bytes(), mode)
    # The hole, seen: both daemons still serve the certificate they loaded.
    assert {i[:5] for i in issuers(maillab, ctl).values()} == {"Pebbl"}, issuers(maillab, ctl)
    try:
        run = playbook(paths, "-l", CONTROLLER, "-e", "tls_source=controller")
        assert run.returncode == 0, run.stdout[-3000:]
        changed = changed_tasks(run.stdout)
        assert not [t for t in changed if "Install the checked certificate" in t or "Certificate changed" in t], \
            changed  # the files were right: nothing notified a restart
        assert [t for t in changed if t.startswith("pop3 : POP3 | dovecot running, restarted now")], changed
        assert issuers(maillab, ctl) == {995: LAB_CA, 465: LAB_CA}
        again = playbook(paths, "-l", CONTROLLER, "-e", "tls_source=controller")
        assert recap(again.stdout)[CONTROLLER]["changed"] == 0, changed_tasks(again.stdout)
    finally:
        back = playbook(paths, "-l", CONTROLLER, "--tags", "tls")  # the lab's ACME certificate again
        assert back.returncode == 0, back.stdout[-3000:]
    assert {i[:5] for i in issuers(maillab, ctl).values()} == {"Pebbl"}, issuers(maillab, ctl)


def test_a_self_signed_certificate_is_made_renewed_near_its_end_remade_for_a_new_name_and_else_kept(
        self_signed_beside):
    self_signed_beside.result(timeout=900)
