"""Workspace settings: what the Settings and Analytics pages change while the app runs (budget, rate limits,
moderation, privacy, fallback chains), kept in the database's `app_settings` table and shared by every session.

Each module declares its setting once (`Setting`: key, default, how it is stored); every read and write goes through
`Workspace.load` / `Workspace.save`, so the storage format has one home.
"""
from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar, cast

from sqlalchemy.engine import Engine

from core.db import get_value, set_value

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

    def save(self, setting: Setting[T], value: T, scope: str | None = None) -> None:
        set_value(self.engine, self._key(setting, scope), setting.encode(value))
