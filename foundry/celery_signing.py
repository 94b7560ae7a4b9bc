"""Key material for Celery's message signing (`celery.security`): an RSA key and its self-signed
certificate. Every process signs the task and control messages it sends with the key; a worker
refuses a message that no certificate in the store verifies (docs/operations/deployment.md).

Nothing here reads Django settings, so `bin/dev` can create the files before settings load.
"""

import datetime
import fcntl
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

from celery.exceptions import SecurityError
from celery.security.certificate import Certificate, FSCertStore
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID
from kombu.serialization import registry

KEY_NAME = "celery-signing.key"
CERT_NAME = "celery-signing.crt"
# Celery verifies RSA signatures only (PSS padding).
KEY_SIZE = 3072
VALID_DAYS = 3650
MAX_DAYS = 36_500


class SigningKeyError(Exception):
    """The key material is incomplete or unusable; the message says what to do."""


@dataclass(frozen=True)
class SigningFiles:
    key: Path
    cert: Path

    def env_lines(self) -> str:
        return f"FOUNDRY_CELERY_SIGNING_KEY={self.key}\nFOUNDRY_CELERY_SIGNING_CERT={self.cert}\n"


def signing_keys_create(directory: str | Path, *, days: int = VALID_DAYS) -> SigningFiles:
    """Create the key (mode 0600) and its certificate in `directory` unless both are there.

    Safe when several processes call it at once (pytest-xdist workers): one creates, the others
    wait for it and use the same pair.
    """
    if not 1 <= days <= MAX_DAYS:
        raise SigningKeyError(f"A certificate lives 1 to {MAX_DAYS} days, not {days}.")
    directory = Path(directory).resolve()
    files = SigningFiles(key=directory / KEY_NAME, cert=directory / CERT_NAME)
    if files.key.exists() and files.cert.exists():
        return files  # also where the directory is read-only
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    with open(directory / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if files.key.exists() and files.cert.exists():
            return files
        if files.key.exists() or files.cert.exists():
            raise SigningKeyError(
                f"{directory} holds only one of {KEY_NAME} and {CERT_NAME}; remove it or use another directory."
            )
        key = rsa.generate_private_key(public_exponent=65537, key_size=KEY_SIZE)
        key_pem = key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        _file_write(files.cert, _certificate(key, days=days).public_bytes(serialization.Encoding.PEM), mode=0o644)
        _file_write(files.key, key_pem, mode=0o600)
    return files


def _certificate(key: rsa.RSAPrivateKey, *, days: int) -> x509.Certificate:
    # Celery names the signer by issuer and serial number: a random serial keeps an old and a new
    # certificate apart in one store during a rotation.
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Agent Foundry Celery message signing")])
    now = datetime.datetime.now(datetime.UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )


def _file_write(path: Path, content: bytes, *, mode: int) -> None:
    """Write whole or not at all: a reader never sees half a key."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as f:
            f.write(content)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def signing_problems(*, key: str, cert: str, store: str) -> list[str]:
    """What would stop this process signing, or its workers verifying, with these files.

    Uses Celery's own certificate classes, so what it accepts is what the worker accepts.
    """
    try:
        private_key = serialization.load_pem_private_key(Path(key).read_bytes(), password=None)
        certificate = Certificate(Path(cert).read_text())
        cert_store = FSCertStore(store)
    except (OSError, ValueError, TypeError, SecurityError) as exc:
        return [str(exc)]
    problems = []
    if not isinstance(private_key, rsa.RSAPrivateKey):
        problems.append(f"{key} is not an RSA key (Celery signs with RSA only).")
    elif private_key.public_key().public_numbers() != certificate.get_pubkey().public_numbers():
        problems.append(f"{key} is not the private key of {cert}.")
    if certificate.has_expired():
        problems.append(f"{cert} has expired.")
    try:
        cert_store[certificate.get_id()]
    except SecurityError:
        problems.append(f"{cert} is not in the certificate store {store!r}: workers would refuse every message.")
    return problems


def signing_cert_expiry(cert: str) -> datetime.datetime:
    return x509.load_pem_x509_certificate(Path(cert).read_bytes()).not_valid_after_utc


def raw_text_refuse() -> None:
    """Refuse `application/text` messages as a bad signature is refused: logged, and dropped.

    Kombu lets that type past any `accept_content` and hands its raw text to the worker, which
    then fails outside its error handling and stops: one such message in Redis would take every
    worker down in turn. Nothing we run sends it.
    """
    registry.register("foundry-refused-text", None, _raw_text_refused, content_type="application/text")


def _raw_text_refused(data) -> None:
    raise SecurityError("application/text messages are refused: they are never signed")
