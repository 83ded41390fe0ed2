"""Workspace settings: what the Settings and Analytics pages change while the app runs (budget, rate limits,
moderation, privacy, fallback chains), kept in the database's `app_settings` table and shared by every session.

Each module declares its setting once (`Setting`: key, default, how it is stored); every read and write goes through
`Workspace.load` / `Workspace.save`, so the storage format has one home. They apply to everyone, so only an admin may
change them: `save` takes the actor, refuses anyone else (`AdminOnly`) and writes the change to the audit log.
"""
from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar, cast

from sqlalchemy.engine import Engine

from core.base.db import get_value, set_value
from core.base.errors import PromptLabError
from core.base.i18n import _
from core.policy.access import Identity
from core.policy.audit import audit

T = TypeVar("T")


@dataclass(frozen=True)
class Setting(Generic[T]):
    """One workspace setting: its key, its value when unset, its stored form, and when a value means "unset"."""

    key: str
    default: T
    stored_as: type = str  # str (text as is), float (a number), or a dataclass (its fields as JSON)
    unset_when: Callable[[T], bool] = lambda value: value is None

    def encode(self, value: T) -> str | None:
        if self.unset_when(value):
            return None  # removes the row: the default applies again
        if dataclasses.is_dataclass(self.stored_as):
            return json.dumps(dataclasses.asdict(value))  # type: ignore[call-overload]
        if self.stored_as is float:
            return repr(float(value))  # type: ignore[arg-type]
        return str(value)

    def decode(self, raw: str) -> T:
        if dataclasses.is_dataclass(self.stored_as):
            return cast(T, self.stored_as(**json.loads(raw)))
        return cast(T, self.stored_as(raw))


class AdminOnly(PromptLabError):
    """A non-admin asked to change something that applies to everyone (refused in core, whatever the page shows)."""

    def __init__(self) -> None:
        super().__init__("admin_only", _("Only an admin can change this: it applies to everyone using this "
                                         "workspace."))


def require_admin(actor: Identity) -> None:
    """Raise AdminOnly unless the actor is an admin (without an access gate the single user is one)."""
    if not actor.admin:
        raise AdminOnly()


class Workspace:
    """The workspace settings of one database."""

    def __init__(self, engine: Engine):
        self.engine = engine

    @staticmethod
    def _key(setting: Setting[Any], scope: str | None) -> str:
        return f"{setting.key}:{scope}" if scope else setting.key

    def load(self, setting: Setting[T], scope: str | None = None) -> T:
        """The stored value, or the setting's default. `scope` separates per-provider values."""
        raw = get_value(self.engine, self._key(setting, scope))
        return setting.decode(raw) if raw else setting.default

    def save(self, setting: Setting[T], value: T, scope: str | None = None, *, actor: Identity) -> None:
        """Store a value for everyone: an admin's change, audited with its actor and the values before and after;
        anyone else is refused (AdminOnly) and nothing changes."""
        require_admin(actor)
        key = self._key(setting, scope)
        before, after = get_value(self.engine, key), setting.encode(value)
        set_value(self.engine, key, after)
        audit(self.engine, actor.name, "setting", key, {"from": before, "to": after})
