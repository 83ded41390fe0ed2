"""Safety: PII and secret redaction (applied before text is stored), the text policies and moderation modes.

What is redacted is decided in `core.policy.pii` (recognisers with real checks: libphonenumber, python-stdnum, vendor key
formats, context words); this module turns its findings into typed placeholders and keeps the API the log, the
reports and the settings use. `python -m core redaction-table` prints the README's table of what is (and is not) redacted.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from stdnum import luhn

from core.policy.pii import KINDS, RECOGNISERS, find_pii
from core.policy.pii.accounts import iban_ok as _iban_ok

TEXT_POLICIES = ("full", "redacted", "metadata")  # store texts as they are / with PII redacted / not at all
MODERATION_MODES = ("off", "input", "input_and_output")

PLACEHOLDERS = {"secret": "[SECRET]", "email": "[EMAIL]", "iban": "[IBAN]", "card": "[CARD]", "id": "[ID]",
                "passport": "[PASSPORT]", "ip": "[IP]", "phone": "[PHONE]", "address": "[ADDRESS]", "name": "[NAME]"}
assert set(PLACEHOLDERS) == set(KINDS)

# What the redaction leaves on purpose, and why: the README prints this beside what it removes.
NOT_REDACTED = (
    ("Names that nothing introduces", "a name alone in a sentence (“Okonkwo will call”) is found only when its given "
     "name is on the list of ~700 (English), or, in Chinese, when it is made of common given-name characters next to "
     "a weak cue (客户, 请转告, 明天 …); measured but not claimed. Names in other scripts, nicknames (小王)"),
    ("Passport numbers without the word", "a bare `PAA123456` cannot be told from an order or booking code"),
    ("Other countries' ids", "only the national ids listed above are checked; e.g. a French NIR or a German tax id "
     "is not (a phone-shaped one may still be caught as a phone)"),
    ("Addresses without a street number", "a city, district or company name alone (“上海市浦东新区”, “Calle Mayor, "
     "Madrid”); addresses in other countries' formats"),
    ("Dates of birth, ages, bank sort codes, card expiry dates and CVV codes, licence plates, MAC addresses, URLs",
     "not recognised"),
    ("Look-alikes kept on purpose", "version numbers (2.10.1.0), epoch timestamps, UUIDs, git SHAs, order and "
     "invoice numbers, prices, dates, ISBNs, hex colours, model names (gpt-4o-2024-08-06), package names "
     "(sk-transformers-utils-extended), placeholders (YOUR_API_KEY, <token>, ****)"),
)


def luhn_ok(digits: str) -> bool:
    return luhn.is_valid(digits) if digits.isdigit() else False


def iban_ok(text: str) -> bool:
    return _iban_ok(text)


@dataclass
class Redaction:
    """Redacted text and what was found (kind, original span), secrets first, then by kind, then in text order."""

    text: str
    findings: list[tuple[str, str]] = field(default_factory=list)


def redact(text: str) -> Redaction:
    """Replace PII and secrets with typed placeholders."""
    found = find_pii(text)
    if not found:
        return Redaction(text)
    pieces, pos = [], 0
    for f in found:
        pieces += [text[pos:f.start], PLACEHOLDERS[f.kind]]
        pos = f.end
    pieces.append(text[pos:])
    order = {kind: i for i, kind in enumerate(KINDS)}
    findings = [(f.kind, f.text) for f in sorted(found, key=lambda f: (order[f.kind], f.start))]
    return Redaction("".join(pieces), findings)


def redact_value(value: Any) -> Any:
    """Redact every string inside JSON-like data (messages, parameters)."""
    if isinstance(value, str):
        return redact(value).text
    if isinstance(value, list):
        return [redact_value(v) for v in value]
    if isinstance(value, dict):
        return {k: redact_value(v) for k, v in value.items()}
    return value


def redaction_table_markdown() -> str:
    """The README's table of what is redacted (generated from the recognisers) and of what is not."""
    rows = ["| Placeholder | What | How it is recognised | Example |", "| --- | --- | --- | --- |"]
    for rec in RECOGNISERS:
        rows.append(f"| `{PLACEHOLDERS[rec.kind]}` | {rec.name} | {rec.shape} | `{rec.example}` |")
    rows += ["", "Not redacted:", ""]
    rows += [f"- **{what}**: {why}." for what, why in NOT_REDACTED]
    return "\n".join(rows)
