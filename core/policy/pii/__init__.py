"""PII and secret detection: which spans of a text are personal data or credentials, and of what kind.

`find_pii(text)` returns `Finding`s (kind, start, end, text, recogniser); `RECOGNISERS` says what is looked for, and
the README's table of what is redacted is generated from it (`python -m core redaction-table`). Recognisers are
regular expressions with real checks: libphonenumber (`phonenumbers`) for phone numbers, `python-stdnum` for
IBANs, cards and national ids, context words where a format alone is ambiguous.
"""
from __future__ import annotations

from core.policy.pii.base import Finding, Recogniser
from core.policy.pii.engine import KINDS, RECOGNISERS, find_pii

__all__ = ["Finding", "Recogniser", "KINDS", "RECOGNISERS", "find_pii"]
