"""The lab's own certificate authority: one CA, one certificate per mail host."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID


def _key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _pem_key(key: rsa.RSAPrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def _write(path: Path, data: bytes, mode: int) -> None:
    path.write_bytes(data)
    path.chmod(mode)


def ensure_ca(directory: Path) -> tuple[x509.Certificate, rsa.RSAPrivateKey]:
    directory.mkdir(parents=True, exist_ok=True)
    crt, key = directory / "ca.crt", directory / "ca.key"
    if crt.exists() and key.exists():
        return (x509.load_pem_x509_certificate(crt.read_bytes()),
                serialization.load_pem_private_key(key.read_bytes(), None))  # type: ignore[return-value]
    ca_key = _key()
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "sendmail-fleet lab CA")])
    now = dt.datetime.now(dt.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(days=1)).not_valid_after(now + dt.timedelta(days=3650))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False),
                           critical=True)
            .sign(ca_key, hashes.SHA256()))
    _write(key, _pem_key(ca_key), 0o600)
    _write(crt, cert.public_bytes(serialization.Encoding.PEM), 0o644)
    return cert, ca_key


def issue(directory: Path, names: list[str], not_after: dt.datetime) -> tuple[bytes, bytes]:
    """A server certificate for `names` signed by the lab's CA, valid until `not_after`, and its new key (PEM)."""
    ca_cert, ca_key = ensure_ca(directory)
    host_key = _key()
    cert = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0])]))
            .issuer_name(ca_cert.subject).public_key(host_key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(min(not_after, dt.datetime.now(dt.timezone.utc)) - dt.timedelta(days=1))
            .not_valid_after(not_after)
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(n) for n in names]), critical=False)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH,
                                                  ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
            .sign(ca_key, hashes.SHA256()))
    return cert.public_bytes(serialization.Encoding.PEM), _pem_key(host_key)


def ensure_host_cert(directory: Path, short: str, names: list[str]) -> None:
    crt, key = directory / f"{short}.crt", directory / f"{short}.key"
    if crt.exists() and key.exists():
        return
    cert_pem, key_pem = issue(directory, names, dt.datetime.now(dt.timezone.utc) + dt.timedelta(days=825))
    _write(key, key_pem, 0o600)
    _write(crt, cert_pem, 0o644)
