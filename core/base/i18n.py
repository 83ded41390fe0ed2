"""The interface language: English (the source strings) and 简体中文, through the standard gettext tool chain.

- Strings are marked in the code with `_()` (or `N_()` for constants translated where they are shown) and extracted
  by Babel (`pybabel extract -F babel.cfg -o locales/messages.pot .`), translated in
  `locales/<lang>/LC_MESSAGES/messages.po` and compiled to `.mo` (`pybabel compile -d locales`); see docs/I18N.md.
  `tests/test_i18n.py` fails when a shown string is not marked, not in a catalog, or the `.mo` is stale.
- The language is per browser session: app.py sets it at the top of every run (`set_language`), and it lives in a
  context variable, so two sessions in two languages never mix. Work handed to another thread (a compare run's
  cells) carries it along with `contextvars.copy_context()`.
- Numbers and dates are formatted for the language with Babel's CLDR data (`number`, `day`, `percent`).
"""
from __future__ import annotations

import gettext
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import date
from functools import lru_cache
from pathlib import Path
from typing import TypeVar

from babel import Locale, UnknownLocaleError
from babel.dates import format_date
from babel.numbers import format_decimal, format_percent
from babel.support import Translations

LOCALES_DIR = Path(__file__).resolve().parents[2] / "locales"
DOMAIN = "messages"
SOURCE_LANGUAGE = "en"
UI_LANGUAGES = {"en": "English", "zh_CN": "简体中文"}  # code → its own name, as a language menu shows it
COOKIE_NAME = "promptlab_lang"

_language: ContextVar[str] = ContextVar("ui_language", default=SOURCE_LANGUAGE)


@lru_cache(maxsize=None)
def _translations(code: str) -> gettext.NullTranslations:
    if code == SOURCE_LANGUAGE:
        return gettext.NullTranslations()
    return Translations.load(str(LOCALES_DIR), [code], DOMAIN)


def supported(code: str | None) -> str | None:
    """The UI language a locale tag asks for ("zh-CN", "zh_Hans_CN", "zh", "en-GB" …), or None if not offered."""
    if not code:
        return None
    try:
        asked = Locale.parse(code.replace("-", "_"))
    except (ValueError, UnknownLocaleError):
        return None
    if asked.language == "zh" and (asked.script in (None, "Hans")) and asked.territory in (None, "CN", "SG"):
        return "zh_CN"
    return "en" if asked.language == "en" else None


def pick_language(chosen: str | None, configured: str | None, browser: str | None) -> str:
    """The session's language: what this browser chose in the menu, else PROMPTLAB_UI_LANGUAGE, else the browser's
    own language, else English."""
    for candidate in (chosen, configured, browser):
        code = supported(candidate)
        if code:
            return code
    return SOURCE_LANGUAGE


def set_language(code: str) -> None:
    _language.set(code if code in UI_LANGUAGES else SOURCE_LANGUAGE)


def language() -> str:
    return _language.get()


T = TypeVar("T")


@contextmanager
def speaking(code: str | None) -> Iterator[None]:
    """Everything inside is in `code` (None: the current language), and the language before comes back after —
    for a report written in a language other than the session's (`core.records.report --lang`)."""
    token = _language.set(code if code in UI_LANGUAGES else _language.get())
    try:
        yield
    finally:
        _language.reset(token)


def deferred(build: Callable[[], T]) -> Callable[[], T]:
    """`build`, to run later in the language that is current NOW. A download button's data callable runs when the
    file is clicked, in the server's request thread where the session's language is not set: without this, a file
    shared from the 中文 UI would come out in English."""
    code = _language.get()

    def run() -> T:
        with speaking(code):
            return build()
    return run


def _(message: str) -> str:
    """`message` in the session's language (itself when untranslated)."""
    return _translations(_language.get()).gettext(message)


def ngettext(singular: str, plural: str, n: int) -> str:
    return _translations(_language.get()).ngettext(singular, plural, n)


def N_(message: str) -> str:
    """Marks a constant for extraction; it is translated with `_()` where it is shown."""
    return message


def number(value: float | int, digits: int | None = None) -> str:
    """A number as the language writes it (grouping, decimal sign)."""
    pattern = None if digits is None else "#,##0." + "0" * digits if digits else "#,##0"
    return format_decimal(value, format=pattern, locale=_language.get())


def percent(value: float, digits: int = 1) -> str:
    return format_percent(value, format="#,##0." + "0" * digits + "%" if digits else "#,##0%",
                          locale=_language.get())


# Plotly's own month names are English: charts write days as the language does with numbers where it must.
_CHART_DAY = {"en": "%d %b", "zh_CN": "%m月%d日"}


def chart_day_format() -> str:
    """The d3 time format of a chart's day ticks in the session's language."""
    return _CHART_DAY.get(_language.get(), "%Y-%m-%d")


def day(value: date) -> str:
    """A day as the language writes it: "20 Nov 2026" / "2026年11月20日"."""
    return format_date(value, "d MMM y" if _language.get() == "en" else "medium", locale=_language.get())
