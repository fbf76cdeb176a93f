"""Opening a batch's sealed values for the connector, and keeping them out of what
the batch's outcome says.

The exporter hands the connector changes whose export-only values are in plain text
(the connector must write them) and records outcomes from the connector's results.
A target's error may quote the value it refused: PostgreSQL's detail line shows the
failing row, a script may echo its input. Each error is therefore scrubbed of its
change's secrets before it reaches the event's history, the log, an alert or the
SCIM answer. Nothing is registered with the log's global redaction, which would keep
every password in memory for the life of the process."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass

from ecmahost.connectors.base import Change, Result
from ecmahost.connectors.exceptions import ConflictError, PermanentError, TransientError
from ecmahost.engine.queue.claims import Claim
from ecmahost.engine.queue.sealed import SealBrokenError, Sealer, scrubbed, secret_values

__all__ = ["Opened", "Opener"]


@dataclass(frozen=True, slots=True)
class Opened:
    """One batch, opened: ``changes`` (None where a value could not be unsealed)
    beside the secrets each one carries."""

    anchors: tuple[str, ...]
    changes: tuple[Change | None, ...]
    secrets: tuple[tuple[str, ...], ...]
    broken: tuple[SealBrokenError | None, ...]

    @property
    def any_secret(self) -> bool:
        return any(self.secrets)

    def results(self, exported: Sequence[Result]) -> list[Result]:
        """The whole batch's results from the connector's, which cover only the
        opened changes (in order): errors scrubbed of the batch's secrets (all of
        them: a batch that fails as a whole, a script's stderr, may quote any)."""
        given = iter(exported)
        secrets = [secret for carried in self.secrets for secret in carried]
        results: list[Result] = []
        for anchor, change, broken in zip(self.anchors, self.changes, self.broken, strict=True):
            if change is None:
                results.append(Result(anchor, broken))
                continue
            result = next(given)
            if result.error is not None and secrets:
                result = dataclasses.replace(result, error=_scrubbed(result.error, secrets))
            results.append(result)
        return results


class Opener:
    """Unseals the ``names`` (export-only attributes) of each claim's change."""

    def __init__(self, sealer: Sealer | None, names: frozenset[str]) -> None:
        self._sealer = sealer
        self._names = names

    def open(self, claims: Sequence[Claim]) -> Opened:
        changes: list[Change | None] = []
        secrets: list[tuple[str, ...]] = []
        broken: list[SealBrokenError | None] = []
        for claim in claims:
            change = claim.change
            try:
                attributes = (
                    self._sealer.unseal(change.attributes)
                    if self._sealer is not None
                    else dict(change.attributes)
                )
            except SealBrokenError as exc:
                changes.append(None)
                secrets.append(())
                broken.append(exc)
                continue
            changes.append(dataclasses.replace(change, attributes=attributes))
            secrets.append(tuple(secret_values(attributes, self._names)))
            broken.append(None)
        anchors = tuple(c.change.anchor for c in claims)
        return Opened(anchors, tuple(changes), tuple(secrets), tuple(broken))


def _scrubbed(error: Exception, secrets: Sequence[str]) -> Exception:
    """The error as the engine classes it, its message without the secrets."""
    message = str(error) or type(error).__name__
    clean = scrubbed(message, secrets)
    if clean == message:
        return error
    kind: type[Exception]
    if isinstance(error, ConflictError):
        kind = ConflictError
    elif isinstance(error, PermanentError):
        kind = PermanentError
    elif isinstance(error, TransientError):
        kind = TransientError
    else:
        kind = TransientError  # as the exporter treats any other error
    return kind(clean)
