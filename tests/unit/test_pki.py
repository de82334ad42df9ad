"""The lab's CA issues server certificates for the names asked, until the date asked; a host's pair is made once."""

import datetime as dt

from cryptography import x509

from sendmail_fleet import pki


def test_a_certificate_names_what_was_asked_ends_when_asked_and_chains_to_the_lab_ca(tmp_path):
    end = dt.datetime(2030, 1, 2, 3, 4, 5, tzinfo=dt.timezone.utc)
    cert_pem, key_pem = pki.issue(tmp_path, ["mail.a.test", "a.test"], end)
    cert = x509.load_pem_x509_certificate(cert_pem)
    ca = x509.load_pem_x509_certificate((tmp_path / "ca.crt").read_bytes())
    cert.verify_directly_issued_by(ca)
    names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert names.get_values_for_type(x509.DNSName) == ["mail.a.test", "a.test"]
    assert cert.not_valid_after_utc == end and b"PRIVATE KEY" in key_pem


def test_an_expired_certificate_can_be_made_for_tests_that_need_one(tmp_path):
    end = dt.datetime.now(dt.timezone.utc) - dt.timedelta(days=2)
    cert = x509.load_pem_x509_certificate(pki.issue(tmp_path, ["x.test"], end)[0])
    assert cert.not_valid_before_utc < cert.not_valid_after_utc < dt.datetime.now(dt.timezone.utc)


def test_a_hosts_pair_is_made_once_and_its_key_is_private(tmp_path):
    pki.ensure_host_cert(tmp_path, "vps1", ["mail.vps1.test"])
    first = (tmp_path / "vps1.crt").read_bytes()
    pki.ensure_host_cert(tmp_path, "vps1", ["mail.vps1.test"])
    assert (tmp_path / "vps1.crt").read_bytes() == first
    assert (tmp_path / "vps1.key").stat().st_mode & 0o777 == 0o600
