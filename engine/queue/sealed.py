"""Sealing export-only values (an initial password) while they wait in the queue.

Entra sends a password once, with the write that creates or resets an account; the
host must hold it until the target takes it, and no longer. In the event's payload it
is stored sealed: encrypted (Fernet: AES-128-CBC with an HMAC-SHA256) under a key kept
beside the connector space, in the state folder, readable by the host's user alone
(0600). A copy of the database (a backup, a support bundle) then shows no password.
The exporter unseals it just before the connector's export call; once the target took
the change the space erases it (``engine.space.erasure``).

The key is made at first need and never rotated: a sealed value outlives at most a
failed event kept for replay. A lost key leaves such a value unreadable, and its
export fails with a message that says so rather than exporting without it.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, Final

from cryptography.fernet import Fernet, InvalidToken
from ecmahost.connectors.exceptions import PermanentError
from ecmahost.engine.space.erasure import SEALED_MARK, is_sealed

__all__ = ["KEY_FILE_NAME", "SealBrokenError", "Sealer", "scrubbed", "secret_values"]

KEY_FILE_NAME: Final = "queue.key"


class SealBrokenError(PermanentError):
    """A sealed value cannot be opened: the key file changed or is gone. The change
    cannot be exported as Entra sent it; Entra sends the password again with a new write."""


class Sealer:
    """Seals and unseals values with the key in ``state_dir``."""

    def __init__(self, state_dir: Path) -> None:
        self._path = state_dir / KEY_FILE_NAME
        self._fernet: Fernet | None = None

    @property
    def key_file(self) -> Path:
        return self._path

    def seal(self, values: Mapping[str, Any], names: Iterable[str]) -> dict[str, Any]:
        """``values`` with those ``names`` held sealed (values already sealed stay);
        a value keeps its JSON type through ``unseal``."""
        sealed = dict(values)
        for name in names:
            value = sealed.get(name)
            if value is not None and not is_sealed(value):
                text = json.dumps(value, ensure_ascii=False).encode("utf-8")
                sealed[name] = {SEALED_MARK: self._cipher().encrypt(text).decode("ascii")}
        return sealed

    def unseal(self, values: Mapping[str, Any]) -> dict[str, Any]:
        """``values`` with every sealed one opened; SealBrokenError if one cannot be."""
        opened = dict(values)
        for name, value in values.items():
            if is_sealed(value):
                try:
                    token = str(value[SEALED_MARK]).encode("ascii")
                    opened[name] = json.loads(self._cipher().decrypt(token))
                except (InvalidToken, ValueError) as exc:
                    raise SealBrokenError(
                        f"the sealed value of {name!r} cannot be opened: the key file "
                        f"{self._path.name} changed since it was queued"
                    ) from exc
        return opened

    def _cipher(self) -> Fernet:
        if self._fernet is None:
            self._fernet = Fernet(self._key())
        return self._fernet

    def _key(self) -> bytes:
        """The key, created (0600, never replaced) when there is none yet. Two
        processes racing to create it agree: the loser reads the winner's."""
        with contextlib.suppress(FileNotFoundError):
            return self._read()
        self._path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        key = Fernet.generate_key()
        try:
            fd = os.open(self._path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            return self._read()
        with os.fdopen(fd, "wb") as file:
            file.write(key)
            file.flush()
            os.fsync(file.fileno())
        return key

    def _read(self) -> bytes:
        key = self._path.read_bytes().strip()
        if not key:  # a creator died between open and write
            raise SealBrokenError(f"the key file {self._path.name} is empty")
        return key


def secret_values(values: Mapping[str, Any], names: Iterable[str]) -> list[str]:
    """The texts of ``names`` in (unsealed) ``values``: what an error message about
    the change must never carry."""
    found: list[str] = []
    for name in names:
        value = values.get(name)
        for item in value if isinstance(value, list) else [value]:
            if isinstance(item, str) and item:
                found.append(item)
    return found


def scrubbed(message: str, secrets: Iterable[str]) -> str:
    """``message`` with each secret (as it is, and as ``repr`` or JSON quote it)
    replaced by ``***``: a target's error may quote the value it refused."""
    forms = {
        form
        for secret in secrets
        for form in (
            secret,
            repr(secret)[1:-1],
            json.dumps(secret)[1:-1],
            json.dumps(secret, ensure_ascii=False)[1:-1],
        )
    }
    for form in sorted(forms, key=len, reverse=True):
        message = message.replace(form, "***")
    return message
