"""Encryption at rest with MultiFernet: the newest key encrypts, every listed key decrypts.

Plaintexts of 128 bytes and up are compressed first (zlib primed with a dictionary of the bot's JSON
field names, behind a marker no JSON starts with): a record of a few hundred bytes is mostly field
names, and at thousands of follows and queued jobs those bytes are Redis's memory. Records written
before, uncompressed, still read.
"""

from __future__ import annotations

import zlib

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

from bot.settings import SettingsError

# Below this, zlib's own header and checksum outweigh what it saves.
COMPRESS_FROM_BYTES = 128
# Frozen: what was written with it is read with it. A better one gets a marker of its own, beside this.
_MARKER_V1 = b"\x00d1"
_DICTIONARY_V1 = (
    b'"linked_account_id":"","execution_id":"","node_status":"","attempts_made":1,"status":"ERRORED",'
    b'"status":"COMPLETED","environment":"production","workflow_id":"","workflow_name":"",'
    b'{"origin":{"team_id":"T","enterprise_id":null,"org_wide":false,"user_id":"U"},'
    b'"reply":{"response_url":null,"channel_id":null,"user_id":null,"thread_ts":null,'
    b'"message_ts":null,"ephemeral":true},"interaction":"","kind":"poll","follow_id":"",'
    b'"generation":"","seq":1}{"origin":{"team_id":"T","user_id":"U"},"target":{"execution_id":"",'
    b'"linked_account_id":""},"card":{"response_url":"https://hooks.slack.com/actions/T",'
    b'"channel_id":"C","user_id":"U","message_ts":"1","ephemeral":false},"requester":"U",'
    b'"started_at":1.0,"response_url_at":1.0,"response_url_uses":1,"fingerprint":"","last_seq":1,'
    b'"name":"","status":"RUNNING"}'
)


class Cipher:
    def __init__(self, keys: list[str]) -> None:
        if not keys:
            raise SettingsError("CREDENTIALS_KEY", "is not set; run `python -m bot keygen`")
        try:
            self._fernet = MultiFernet([Fernet(k.encode()) for k in keys])
        except (ValueError, TypeError):
            raise SettingsError("CREDENTIALS_KEY", "holds a value that is not a Fernet key") from None

    def encrypt(self, plaintext: bytes) -> bytes:
        if len(plaintext) >= COMPRESS_FROM_BYTES:
            packer = zlib.compressobj(zdict=_DICTIONARY_V1)
            plaintext = _MARKER_V1 + packer.compress(plaintext) + packer.flush()
        return self._fernet.encrypt(plaintext)

    def decrypt(self, token: bytes | str) -> bytes:
        """Raise InvalidToken for a corrupt token or one made with a key we no longer hold."""
        plaintext = self._fernet.decrypt(token)
        if not plaintext.startswith(_MARKER_V1):
            return plaintext
        try:
            unpacker = zlib.decompressobj(zdict=_DICTIONARY_V1)
            return unpacker.decompress(plaintext[len(_MARKER_V1) :]) + unpacker.flush()
        except zlib.error:
            # Authenticated, so written by a key we hold, yet not ours to read: treated as corrupt.
            raise InvalidToken from None

    def rotate(self, token: bytes | str) -> bytes:
        return self._fernet.rotate(token)


__all__ = ["Cipher", "InvalidToken"]
