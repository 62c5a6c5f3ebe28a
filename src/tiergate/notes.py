"""Signed notes (C2SP ``signed-note``) with Ed25519 keys: what checkpoints and cosignatures are.

A note is UTF-8 text ending in a newline, a blank line, then one signature line per signer:
``— <key name> <base64(4-byte key ID || signature)>``. An Ed25519 key's ID is
``SHA-256(name || "\\n" || type || 32-byte public key)[:4]``, type 0x01 for a log's note
signatures and 0x04 for a witness's cosignatures (C2SP ``tlog-cosignature``).

Keys are stored as text, one line, in the usual encodings of signed-note keys:

    PRIVATE+KEY+<name>+<key ID, hex>+<base64(type || 32-byte Ed25519 seed)>      (the .key file)
    <name>+<key ID, hex>+<base64(type || 32-byte Ed25519 public key)>             (the .pub file)
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from tiergate.errors import CheckpointError, SigningKeyError

#: Signature types: a note signature, and a timestamped cosignature (tlog-cosignature).
NOTE, COSIGNATURE = 0x01, 0x04
DASH = "\u2014 "


def key_id(name: str, kind: int, public: bytes) -> bytes:
    return hashlib.sha256(name.encode("utf-8") + b"\n" + bytes([kind]) + public).digest()[:4]


def _check_name(name: str, where: str) -> None:
    if not name or "+" in name or any(c.isspace() for c in name) or not name.isprintable():
        raise SigningKeyError(f"{where}: the key name {name!r} must be non-empty, without '+' or spaces "
                        "(a schema-less URL such as example.com/tiergate/log).")


@dataclass(frozen=True)
class Verifier:
    name: str
    kind: int
    public: bytes

    @property
    def id(self) -> bytes:
        return key_id(self.name, self.kind, self.public)

    def text(self) -> str:
        return f"{self.name}+{self.id.hex()}+{base64.b64encode(bytes([self.kind]) + self.public).decode()}"

    def check(self, message: bytes, signature: bytes) -> bool:
        try:
            Ed25519PublicKey.from_public_bytes(self.public).verify(signature, message)
        except InvalidSignature:
            return False
        return True


@dataclass(frozen=True)
class Signer:
    name: str
    kind: int
    seed: bytes

    @property
    def verifier(self) -> Verifier:
        public = Ed25519PrivateKey.from_private_bytes(self.seed).public_key().public_bytes(Encoding.Raw,
                                                                                         PublicFormat.Raw)
        return Verifier(self.name, self.kind, public)

    def text(self) -> str:
        return (f"PRIVATE+KEY+{self.name}+{self.verifier.id.hex()}+"
                f"{base64.b64encode(bytes([self.kind]) + self.seed).decode()}")

    def sign(self, message: bytes) -> bytes:
        return Ed25519PrivateKey.from_private_bytes(self.seed).sign(message)


def generate(name: str, kind: int = NOTE) -> Signer:
    _check_name(name, "keygen")
    from cryptography.hazmat.primitives.serialization import NoEncryption, PrivateFormat

    seed = Ed25519PrivateKey.generate().private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())
    return Signer(name, kind, seed)


def _split_key(text: str, where: str) -> tuple[str, bytes, int, bytes]:
    parts = text.strip().split("+", 2)
    if len(parts) != 3:
        raise SigningKeyError(f"{where}: not a signed-note key (expected NAME+KEYID+BASE64).")
    name, hex_id, encoded = parts
    _check_name(name, where)
    try:
        raw = base64.b64decode(encoded, validate=True)
        wanted = bytes.fromhex(hex_id)
    except (binascii.Error, ValueError):
        raise SigningKeyError(f"{where}: the key ID or key material is not valid hex/base64.") from None
    if len(raw) != 33 or raw[0] not in (NOTE, COSIGNATURE) or len(wanted) != 4:
        raise SigningKeyError(f"{where}: not an Ed25519 signed-note key (type 0x01 or 0x04 and 32 bytes).")
    return name, wanted, raw[0], raw[1:]


def parse_signer(text: str, where: str = "key") -> Signer:
    if not text.startswith("PRIVATE+KEY+"):
        raise SigningKeyError(f"{where}: not a private key (it must start with PRIVATE+KEY+). "
                        "Give the .key file that `tiergate log keygen` wrote.")
    name, wanted, kind, seed = _split_key(text[len("PRIVATE+KEY+"):], where)
    signer = Signer(name, kind, seed)
    if signer.verifier.id != wanted:
        raise SigningKeyError(f"{where}: the key ID does not match the key: the file is damaged.")
    return signer


def parse_verifier(text: str, where: str = "public key") -> Verifier:
    if text.startswith("PRIVATE+KEY+"):
        raise SigningKeyError(f"{where}: this is a private key; give the .pub file.")
    name, wanted, kind, public = _split_key(text, where)
    verifier = Verifier(name, kind, public)
    if verifier.id != wanted:
        raise SigningKeyError(f"{where}: the key ID does not match the key: the file is damaged.")
    return verifier


def signature_line(name: str, key: bytes, signature: bytes) -> str:
    return f"{DASH}{name} {base64.b64encode(key + signature).decode()}\n"


def sign(text: str, signer: Signer) -> str:
    if not text.endswith("\n"):
        raise ValueError("a note's text ends in a newline")
    return text + "\n" + signature_line(signer.name, signer.verifier.id, signer.sign(text.encode("utf-8")))


def split(note: str, where: str = "note") -> tuple[str, list[tuple[str, bytes]]]:
    """The note's text and its signatures as (key name, key ID || signature bytes)."""
    if any(ord(c) < 0x20 and c != "\n" for c in note):
        raise CheckpointError(f"{where}: a signed note holds no control characters other than newline.")
    cut = note.rfind("\n\n")
    if cut < 0 or not note.endswith("\n"):
        raise CheckpointError(f"{where}: not a signed note (text, a blank line, then signature lines).")
    text, lines = note[:cut + 1], note[cut + 2:].splitlines()
    signatures = []
    for number, line in enumerate(lines, start=1):
        if not line.startswith(DASH) or line.count(" ") != 2:
            raise CheckpointError(f"{where}: signature line {number} is not '\u2014 NAME BASE64'.")
        _dash, name, encoded = line.split(" ")
        try:
            raw = base64.b64decode(encoded, validate=True)
        except binascii.Error:
            raise CheckpointError(f"{where}: signature line {number} is not base64.") from None
        if len(raw) < 5:
            raise CheckpointError(f"{where}: signature line {number} is too short.")
        signatures.append((name, raw))
    if not signatures:
        raise CheckpointError(f"{where}: the note has no signature.")
    return text, signatures


def open_note(note: str, verifier: Verifier, where: str = "note") -> str:
    """The note's text, if ``verifier`` signed it (a note signature, type 0x01)."""
    text, signatures = split(note, where)
    for name, raw in signatures:
        if name == verifier.name and raw[:4] == verifier.id:
            if verifier.check(text.encode("utf-8"), raw[4:]):
                return text
            raise CheckpointError(f"{where}: the signature of {name} does not verify: the note was changed "
                                  "after it was signed, or signed by another key of that name.",
                                  code="signature_invalid")
    raise CheckpointError(f"{where}: not signed by {verifier.name} (key ID {verifier.id.hex()}).",
                          code="signature_invalid")
