"""Encryption at rest with MultiFernet: the newest key encrypts, every listed key decrypts."""

from __future__ import annotations

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

from bot.settings import SettingsError


class Cipher:
    def __init__(self, keys: list[str]) -> None:
        if not keys:
            raise SettingsError("CREDENTIALS_KEY", "is not set; run `python -m bot keygen`")
        try:
            self._fernet = MultiFernet([Fernet(k.encode()) for k in keys])
        except (ValueError, TypeError):
            raise SettingsError("CREDENTIALS_KEY", "holds a value that is not a Fernet key") from None

    def encrypt(self, plaintext: bytes) -> bytes:
        return self._fernet.encrypt(plaintext)

    def decrypt(self, token: bytes | str) -> bytes:
        """Raise InvalidToken for a corrupt token or one made with a key we no longer hold."""
        return self._fernet.decrypt(token)

    def rotate(self, token: bytes | str) -> bytes:
        return self._fernet.rotate(token)


__all__ = ["Cipher", "InvalidToken"]
