"""The provisioning rules of one connector: how a write is staged in the connector
space and what it exports (renames, disables, deletes, as ECMA2Host's deprovisioning
choices say), and what a sync-mode write answers once the target took it, or not.

Free of HTTP: the rules raise domain errors (``ecmahost.engine.exceptions``), which
the SCIM front-end's error middleware turns into SCIM errors."""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Final

from ecmahost.connectors.base import Capability, Schema, Value
from ecmahost.connectors.exceptions import ConfigError
from ecmahost.engine.config import ConnectorConfig, DeleteAction, DisableAction
from ecmahost.engine.exceptions import (
    AnchorImmutableError,
    AnchorRequiredError,
    TargetConflictError,
    TargetRejectedError,
    TargetTimeoutError,
    TargetUnavailableError,
)
from ecmahost.engine.queue import ErrorKind, Outcome, OutcomeStatus
from ecmahost.engine.queue.notifier import Notifier
from ecmahost.engine.queue.sealed import Sealer
from ecmahost.engine.space.states import Op
from ecmahost.engine.space.store import Staging
from ecmahost.engine.space.stored import StoredObject

__all__ = [
    "OUTCOME_RECHECK_S",
    "PASSWORD_NAMES",
    "Rules",
    "check_outcome",
    "check_passwords",
    "confirm_export",
    "create_anchor",
    "is_active",
    "stage_delete",
    "stage_write",
]

log = logging.getLogger(__name__)

PASSWORD_NAMES: Final = frozenset({"password", "export_password"})
"""Attribute names (lower-cased) that receive Entra's password: SCIM's core
``password`` and ECMA2Host's ``export_password``."""

OUTCOME_RECHECK_S: Final = 1.0
"""How often a write waiting for its export reads the outcome again. The export
worker tells the writes waiting in its own process; another host's worker tells
them through the cluster's messages, which one killed just after recording its
outcome never sends: the read bounds that loss to a second, not ``export_wait_s``."""


@dataclass(frozen=True, slots=True)
class Rules:
    """What one connector's writes may do and how its deprovisioning goes."""

    connector: str
    anchor: str
    """The anchor attribute's name."""
    disable_attribute: str | None
    """The Boolean attribute SCIM ``active`` maps to; None: disables are not seen."""
    disable: DisableAction
    delete: DeleteAction
    can_rename: bool
    disabled_value: bool = False
    """What the disable attribute holds while disabled (True: an inverted flag)."""
    import_only: frozenset[str] = frozenset()
    """Attributes a write never sets: the target's value is kept."""
    export_only: frozenset[str] = frozenset()
    """Attributes a write exports but the connector space never keeps."""
    anchor_assigned: bool = False
    """The target assigns the anchor: creates carry none, and SCIM never changes it."""
    sealer: Sealer | None = None
    """Seals the export-only values (an initial password) an event's payload carries;
    None: they are queued as they are (tests of the rules alone)."""

    @classmethod
    def of(
        cls,
        config: ConnectorConfig,
        schema: Schema,
        capabilities: Iterable[Capability],
        sealer: Sealer | None = None,
    ) -> Rules:
        """The rules of a connector with this configuration, schema and capabilities."""
        flag = schema.get(config.deprovision.disable_attribute or "")
        return cls(
            config.name,
            schema.anchor.name,
            flag.name if flag is not None else None,
            config.deprovision.disable,
            config.deprovision.delete,
            Capability.RENAME in capabilities,
            config.deprovision.disabled_value,
            frozenset(a.name for a in schema.attributes if not a.exported),
            frozenset(a.name for a in schema.attributes if not a.imported),
            Capability.ASSIGNS_ANCHOR in capabilities and schema.anchor.assigned,
            sealer,
        )

    def is_active(self, attributes: Mapping[str, Value]) -> bool:
        return is_active(attributes, self.disable_attribute, self.disabled_value)


def is_active(
    attributes: Mapping[str, Value], disable_attribute: str | None, disabled_value: bool = False
) -> bool:
    """False only when the disable attribute is present and holds ``disabled_value``."""
    if disable_attribute is None or disable_attribute not in attributes:
        return True
    return attributes[disable_attribute] is not disabled_value


def check_passwords(config: ConnectorConfig, schema: Schema) -> None:
    """ConfigError for an attribute that receives Entra's password but is read back
    (not export-only): imports would keep the password in the connector space."""
    for attribute in schema.attributes:
        if attribute.name.lower() in PASSWORD_NAMES and attribute.imported:
            raise ConfigError(
                f"attribute {attribute.name!r} receives Entra's password: list it in export_only",
                f"connectors.{config.name}.settings.export_only",
            )


# -- staging ----------------------------------------------------------------------


def stage_write(
    rules: Rules,
    before: StoredObject | None,
    attributes: dict[str, Value],
    external_id: str | None = None,
) -> Staging:
    """Stage a create (``before`` None) or a replace of ``before`` with ``attributes``.

    A rename needs the connector's capability; a write that turns an active object
    inactive is a disable, exported as the connector's deprovisioning choice says.
    AnchorRequiredError or AnchorImmutableError for a write the anchor rule refuses.

    Import-only attributes keep the values ``before`` had (the target's); export-only
    ones are exported but never kept in the staged attributes."""
    if rules.anchor_assigned:
        attributes = _keep_assigned(rules.anchor, before, attributes)
    anchor = _new_anchor(rules, before, attributes)
    attributes = _keep_imported(rules, before, attributes)
    if before is None or not rules.is_active(before.attributes) or rules.is_active(attributes):
        staging = Staging(attributes, True, Op.UPSERT, anchor=anchor, external_id=external_id)
    else:
        staging = _stage_disable(rules, before, attributes, anchor, external_id)
    return _split_directions(rules, staging)


def _keep_imported(
    rules: Rules, before: StoredObject | None, attributes: dict[str, Value]
) -> dict[str, Value]:
    """The write's attributes with the import-only ones as the target had them: a
    write cannot set them, and a PUT that leaves them out does not clear them."""
    if not rules.import_only:
        return attributes
    kept = {k: v for k, v in attributes.items() if k not in rules.import_only}
    if before is not None:
        kept |= {k: v for k, v in before.attributes.items() if k in rules.import_only}
    return kept


def _split_directions(rules: Rules, staging: Staging) -> Staging:
    """Export-only values go to the export alone, sealed (they may be a password);
    import-only ones never do (the connector leaves an attribute a change lacks as
    the target has it). A write that exports nothing keeps no export-only value."""
    if not (rules.import_only or rules.export_only):
        return staging
    kept = {k: v for k, v in staging.attributes.items() if k not in rules.export_only}
    if staging.export is None:
        return dataclasses.replace(staging, attributes=kept)
    source = staging.exported if staging.exported is not None else staging.attributes
    exported = {k: v for k, v in source.items() if k not in rules.import_only}
    if rules.sealer is not None:
        exported = rules.sealer.seal(exported, rules.export_only)
    return dataclasses.replace(staging, attributes=kept, exported=exported)


def stage_delete(rules: Rules, before: StoredObject) -> Staging:
    """Stage a delete: hidden from SCIM at once, and exported as a delete or, when
    the connector says so and has a disable attribute, as a disable; with ``none``
    the object is forgotten by the connector space and nothing is exported."""
    disables = rules.delete is DeleteAction.DISABLE and rules.disable_attribute is not None
    flow = "disable" if disables else rules.delete.value
    log.info(
        "delete: %s",
        flow,
        extra={
            "connector": rules.connector,
            "action": f"deprovision.delete.{flow}",
            "scim_id": before.id,
            "anchor": before.anchor,
        },
    )
    if rules.delete is DeleteAction.NONE:
        return Staging(before.attributes, visible=False, export=None)
    if disables:
        assert rules.disable_attribute is not None
        disabled = {**before.attributes, rules.disable_attribute: rules.disabled_value}
        staging = stage_write(rules, before, disabled, before.external_id)
        return Staging(
            staging.attributes,
            visible=False,
            export=staging.export,
            exported=staging.exported,
            external_id=before.external_id,
        )
    return Staging(
        before.attributes, visible=False, export=Op.DELETE, external_id=before.external_id
    )


def _stage_disable(
    rules: Rules,
    before: StoredObject,
    attributes: dict[str, Value],
    anchor: str | None,
    external_id: str | None,
) -> Staging:
    action = rules.disable
    extra = {
        "connector": rules.connector,
        "action": f"deprovision.{action.value}",
        "scim_id": before.id,
        "anchor": before.anchor,
    }
    log.info("disable: %s", action.value, extra=extra)
    if action is DisableAction.NONE:
        assert rules.disable_attribute is not None  # only its value makes a disable
        staged = _store_only_disable(before, attributes, rules.disable_attribute)
        return Staging(
            attributes,
            True,
            staged.export,
            staged.exported,
            anchor=anchor,
            external_id=external_id,
        )
    if action is DisableAction.DELETE:
        return Staging(attributes, False, Op.DELETE, anchor=anchor, external_id=external_id)
    return Staging(attributes, True, Op.UPSERT, anchor=anchor, external_id=external_id)


def _store_only_disable(
    before: StoredObject, attributes: Mapping[str, Value], flag: str
) -> Staging:
    """Keep the disable in the connector space only; the write's other changes are
    still exported, with the flag as the target had it."""
    exported = {k: v for k, v in attributes.items() if k != flag}
    if flag in before.attributes:
        exported[flag] = before.attributes[flag]
    if exported == dict(before.attributes):
        return Staging(attributes, visible=True, export=None)
    return Staging(attributes, visible=True, export=Op.UPSERT, exported=exported)


def _new_anchor(
    rules: Rules, before: StoredObject | None, after: Mapping[str, Value]
) -> str | None:
    """The new anchor of a write that renames, None for one that does not."""
    name = rules.anchor
    if rules.anchor_assigned:
        return None  # the target's to choose and to change (see ``_keep_assigned``)
    if not after.get(name) and before is not None:
        raise AnchorImmutableError(name, removed=True)
    if not after.get(name):
        raise AnchorRequiredError(name)
    if before is None or after[name] == before.anchor:
        return None
    if not rules.can_rename:
        raise AnchorImmutableError(name, removed=False)
    return str(after[name])


def create_anchor(rules: Rules, attributes: Mapping[str, Value]) -> str | None:
    """The anchor a create stages its object under; None when the target assigns it
    (the object is then created with a pending anchor). AnchorRequiredError when the
    client must send one and did not."""
    if rules.anchor_assigned:
        return None
    if not attributes.get(rules.anchor):
        raise AnchorRequiredError(rules.anchor)
    return str(attributes[rules.anchor])


def _keep_assigned(
    name: str, before: StoredObject | None, attributes: dict[str, Value]
) -> dict[str, Value]:
    """An anchor the target assigns is never the client's to set, only to ask for:
    a value sent goes to the connector, which may honour it (an LDAP ``-dn-`` names
    or moves the entry) or not, and the export's result shows what the target holds.
    A write that leaves it out (a PUT) keeps the bound value."""
    if before is None or attributes.get(name) or name not in before.attributes:
        return attributes
    return {**attributes, name: before.attributes[name]}


# -- the export's outcome ---------------------------------------------------------


async def confirm_export(
    outcomes: Notifier[int, Outcome],
    recorded: Callable[[int], Awaitable[Outcome | None]],
    event_id: int,
    wait_s: float,
) -> None:
    """Return once the target took the event's change (ECMA2Host's sync mode);
    otherwise raise the domain error that says why not (see ``check_outcome``).

    ``recorded`` reads an outcome already stored, which the export worker may
    have published before this call subscribed, or which another host recorded
    and could not announce (it died first): read again every ``OUTCOME_RECHECK_S``."""
    outcome = await outcomes.wait(
        event_id, wait_s, lambda: recorded(event_id), recheck_s=OUTCOME_RECHECK_S
    )
    check_outcome(outcome, wait_s)


def check_outcome(outcome: Outcome | None, wait_s: float) -> None:
    """Nothing for a done export. TargetTimeoutError without an outcome after
    ``wait_s``, TargetUnavailableError for a transient failure (both: try later),
    TargetConflictError or TargetRejectedError for a refusal (the request must change)."""
    if outcome is None:
        raise TargetTimeoutError(wait_s)
    if outcome.status == OutcomeStatus.DONE:
        return
    if outcome.error_kind == ErrorKind.TRANSIENT:
        raise TargetUnavailableError(
            outcome.error, retrying=outcome.status == OutcomeStatus.RETRYING
        )
    if outcome.error_kind == ErrorKind.CONFLICT:
        raise TargetConflictError(outcome.error)
    raise TargetRejectedError(outcome.error)
