"""The control plane's PKI, made fresh at every start with the ``cryptography`` package.

One CA signs everything: the API server's serving certificate, a client
certificate per identity (the admin, the controller-manager, the scheduler,
the simulated kubelet, the API server towards the kubelet, and the product),
and the kubelet's serving certificate. Kubernetes authenticates a client
certificate as user = Common Name and groups = Organisations, which is how the
product gets exactly the identity EKS gives its Lambda roles: a member of the
group the shipped RoleBinding names, and nothing else.

Keys are EC P-256 (fast to make: a whole PKI takes milliseconds); the
service-account signing key is RSA, which every token consumer accepts.
"""

from __future__ import annotations

import datetime
import ipaddress
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

_VALID = datetime.timedelta(days=2)
"""Long enough for any run; a stale certificate can never be reused by a later start."""


@dataclass(frozen=True)
class KeyPair:
    """A certificate and its private key, as PEM files."""

    cert: Path
    key: Path


@dataclass(frozen=True)
class Identity:
    """Who a client certificate says it is: user (CN) and groups (O)."""

    user: str
    groups: tuple[str, ...] = ()


def _key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _name(common_name: str, organisations: tuple[str, ...] = ()) -> x509.Name:
    attributes = [x509.NameAttribute(NameOID.ORGANIZATION_NAME, o) for o in organisations]
    attributes.append(x509.NameAttribute(NameOID.COMMON_NAME, common_name))
    return x509.Name(attributes)


def _write(folder: Path, stem: str, cert: x509.Certificate, key: object) -> KeyPair:
    cert_path, key_path = folder / f"{stem}.crt", folder / f"{stem}.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    assert isinstance(key, ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey)
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    key_path.chmod(0o600)
    return KeyPair(cert_path, key_path)


class Authority:
    """A CA on disk in ``folder``, issuing serving and client certificates."""

    def __init__(self, folder: Path, name: str = "eks-bluegreen-local-ca") -> None:
        folder.mkdir(parents=True, exist_ok=True)
        self.folder = folder
        self._key = _key()
        now = datetime.datetime.now(datetime.UTC)
        subject = _name(name)
        self._cert = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(subject)
            .public_key(self._key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + _VALID)
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True,
                    key_cert_sign=True,
                    crl_sign=True,
                    content_commitment=False,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .sign(self._key, hashes.SHA256())
        )
        self.pair = _write(folder, "ca", self._cert, self._key)

    @property
    def pem(self) -> bytes:
        """The CA certificate, PEM."""
        return self._cert.public_bytes(serialization.Encoding.PEM)

    def _issue(
        self,
        stem: str,
        subject: x509.Name,
        usage: list[x509.ObjectIdentifier],
        hosts: tuple[str, ...] = (),
    ) -> KeyPair:
        key = _key()
        now = datetime.datetime.now(datetime.UTC)
        builder = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(self._cert.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + _VALID)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage(usage), critical=False)
        )
        if hosts:
            names: list[x509.GeneralName] = []
            for host in hosts:
                try:
                    names.append(x509.IPAddress(ipaddress.ip_address(host)))
                except ValueError:
                    names.append(x509.DNSName(host))
            builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
        return _write(self.folder, stem, builder.sign(self._key, hashes.SHA256()), key)

    def serving(self, stem: str, common_name: str, hosts: tuple[str, ...]) -> KeyPair:
        """A TLS server certificate for ``hosts`` (IP addresses or DNS names)."""
        return self._issue(stem, _name(common_name), [ExtendedKeyUsageOID.SERVER_AUTH], hosts)

    def client(self, stem: str, identity: Identity) -> KeyPair:
        """A client certificate Kubernetes reads as ``identity``."""
        return self._issue(
            stem, _name(identity.user, identity.groups), [ExtendedKeyUsageOID.CLIENT_AUTH]
        )


def service_account_keys(folder: Path) -> KeyPair:
    """The RSA key pair that signs (private) and verifies (public) service-account tokens.

    ``cert`` holds the public key here: that is what ``--service-account-key-file``
    takes.
    """
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    public, private = folder / "sa.pub", folder / "sa.key"
    public.write_bytes(
        key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    private.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.TraditionalOpenSSL,
            serialization.NoEncryption(),
        )
    )
    private.chmod(0o600)
    return KeyPair(public, private)
