"""Encryption at rest for secrets the ledger must keep (ListSecrets), and the keyed hashes
that stand for recipients once their personal data is purged."""

from __future__ import annotations

import functools
import hashlib
import hmac
import os
from collections.abc import Callable
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken

from worker.errors import ConfigurationError
from worker.settings import Settings


class SecretBox:
    def __init__(self, key: bytes) -> None:
        try:
            self._fernet = Fernet(key)
        except ValueError:
            raise ConfigurationError(
                "MAILUP_JOBS_SECRET_KEY is not a Fernet key (32 url-safe base64-encoded bytes)"
            ) from None

    def encrypt(self, secret: str) -> str:
        return self._fernet.encrypt(secret.encode()).decode()

    def decrypt(self, token: str) -> str:
        try:
            return self._fernet.decrypt(token.encode()).decode()
        except InvalidToken:
            raise ConfigurationError(
                "a stored secret cannot be decrypted: MAILUP_JOBS_SECRET_KEY is not the key "
                "it was encrypted with"
            ) from None


def _local_key(path: Path) -> bytes:
    """The embedded default: a key generated once and kept beside the SQLite ledger."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        draft = path.with_name(f"{path.name}.{os.getpid()}")
        draft.write_bytes(Fernet.generate_key())
        draft.chmod(0o600)
        try:
            os.link(draft, path)  # atomic: concurrent first starts agree on one key
        except FileExistsError:
            pass
        finally:
            draft.unlink()
    return path.read_bytes().strip()


@functools.cache
def _box(key: bytes) -> SecretBox:
    return SecretBox(key)


def _installation_key(settings: Settings) -> bytes:
    key = settings.secret_key.get_secret_value().encode()
    if not key and settings.ledger_is_shared:
        # Each host would generate its own key and could not read the others' secrets.
        raise ConfigurationError(
            "MAILUP_JOBS_SECRET_KEY must be set when the ledger is shared "
            "(MAILUP_JOBS_DATABASE_URL); make one with: mailup-jobs generate-key"
        )
    return key or _local_key(settings.data_dir / "secret.key")


def secret_box(settings: Settings) -> SecretBox:
    return _box(_installation_key(settings))


# A recipient's hash is this many hex digits (128 bits): no two recipients of a ledger will
# share one, and the indexes stay half the size of a full SHA-256's.
HASH_DIGITS = 32


def normalise_recipient(recipient: str) -> str:
    """One spelling per recipient: an address in lower case, a number with + (not 00)."""
    text = "".join(recipient.split())
    if "@" in text:
        return text.lower()
    return "+" + text[2:] if text.startswith("00") else text


def recipient_hasher(settings: Settings) -> Callable[[str], str]:
    """The keyed hash (HMAC-SHA256) the ledger keeps of a phone number or email address, so
    that "was anything sent to x" is answered after x itself was purged. Keyed, because a
    plain hash of a phone number is undone by trying every number."""
    return _hasher(_installation_key(settings))


@functools.cache
def _hasher(installation_key: bytes) -> Callable[[str], str]:
    # Its own key, derived from the secret key: hashes reveal nothing of the key that
    # encrypts secrets.
    key = hmac.new(installation_key, b"recipient hash", hashlib.sha256).digest()

    def hashed(recipient: str) -> str:
        digest = hmac.new(key, normalise_recipient(recipient).encode(), hashlib.sha256)
        return digest.hexdigest()[:HASH_DIGITS]

    return hashed
