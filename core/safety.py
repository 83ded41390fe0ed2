"""Safety: PII and secret redaction (applied before text is stored), the moderation gate, and what the log keeps.

Redaction finds e-mail addresses, phone numbers (international formats), payment-card numbers (Luhn-checked),
IBANs (mod-97 checked), IP addresses, and API keys / bearer tokens, and replaces each with a typed placeholder.
"""
from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, field
from typing import Any

TEXT_POLICIES = ("full", "redacted", "metadata")  # store texts as they are / with PII redacted / not at all
MODERATION_MODES = ("off", "input", "input_and_output")

# Lookarounds use ASCII classes: text in Chinese has no spaces, and CJK characters count as \w.
# "@" or the full-width "＠" people type on CJK keyboards.
_EMAIL = re.compile(r"(?<![A-Za-z0-9._%+-])[A-Za-z0-9._%+-]+[@\uff20][A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*"
                    r"\.[A-Za-z]{2,}(?![A-Za-z0-9-])")
_SECRET = re.compile(
    r"(?<![A-Za-z0-9])(?:sk-(?:proj-|live-|test-)?[A-Za-z0-9_\-]{16,}"   # OpenAI-style keys
    r"|Bearer\s+[A-Za-z0-9_\-\.=]{16,}"                                 # bearer tokens
    r"|AKIA[0-9A-Z]{16}(?![A-Za-z0-9])"                                  # AWS access key ids
    r"|gh[pousr]_[A-Za-z0-9]{30,}"                                       # GitHub tokens
    r"|xox[abprs]-[A-Za-z0-9-]{10,}"                                     # Slack tokens
    r"|AIza[0-9A-Za-z_\-]{35}"                                          # Google API keys
    r"|[srp]k_(?:live|test)_[A-Za-z0-9]{16,})")                          # Stripe keys
# IBANs as written, upper or lower case (the mod-97 check decides); cards grouped by spaces, dashes or dots.
_IBAN = re.compile(r"(?<![A-Za-z0-9])(?:[A-Z]{2}\d{2}(?:[ ]?[A-Z0-9]{4}){2,7}(?:[ ]?[A-Z0-9]{1,3})?"
                   # typed in lower case: letters only in the bank code, so a following word is not swallowed
                   r"|[a-z]{2}\d{2}[ ]?[a-z0-9]{4}(?:[ ]?\d{4}){1,6}(?:[ ]?\d{1,3})?)(?![A-Za-z0-9])")
_CARD = re.compile(r"(?<![\d.-])(?:\d[ .-]?){12,18}\d(?![\d-]|\.\d)")
_IPV4 = re.compile(r"(?<![\d.])(?:\d{1,3}\.){3}\d{1,3}(?!\.?\d)")
_IPV6 = re.compile(r"(?<![:0-9A-Za-z])(?:[0-9A-Fa-f]{0,4}:){2,7}[0-9A-Fa-f]{0,4}(?![:0-9A-Za-z])")
# Phones: an international +CC number, or a national number with the grouping people write (() - . space).
_PHONE = re.compile(
    r"(?<![0-9A-Za-z+])(?:\+\d{1,3}[\s.-]?(?:\(\d{1,4}\)[\s.-]?)?\d{1,4}(?:[\s.-]?\d{2,4}){1,4}"
    r"|\(\d{2,4}\)[\s.-]?\d{3,4}[\s.-]?\d{3,4}"
    r"|1[3-9]\d[\s-]?\d{4}[\s-]?\d{4}"                          # mainland China mobiles
    r"|0\d{1,4}[\s.-]\d{3,4}[\s.-]\d{3,4}"                      # trunk-prefixed national numbers
    r"|\d{3}[\s.-]\d{3}[\s.-]\d{4})(?![0-9A-Za-z])")            # NANP without country code
PLACEHOLDERS = {"secret": "[SECRET]", "email": "[EMAIL]", "iban": "[IBAN]", "card": "[CARD]", "ip": "[IP]",
                "phone": "[PHONE]"}


def luhn_ok(digits: str) -> bool:
    total, parity = 0, len(digits) % 2
    for i, ch in enumerate(digits):
        d = int(ch)
        if i % 2 == parity:
            d = d * 2 - 9 if d * 2 > 9 else d * 2
        total += d
    return total % 10 == 0


def iban_ok(text: str) -> bool:
    s = text.replace(" ", "").upper()
    if not 15 <= len(s) <= 34:
        return False
    rearranged = s[4:] + s[:4]
    try:
        return int("".join(str(int(c, 36)) for c in rearranged)) % 97 == 1
    except ValueError:
        return False


def _card_ok(match: str) -> bool:
    digits = re.sub(r"\D", "", match)
    return 13 <= len(digits) <= 19 and luhn_ok(digits) and len(set(digits)) > 1


def _ip_ok(match: str) -> bool:
    try:
        ipaddress.ip_address(match.split("%")[0])
        return True
    except ValueError:
        return False


def _phone_ok(match: str) -> bool:
    digits = re.sub(r"\D", "", match)
    return 8 <= len(digits) <= 15


@dataclass
class Redaction:
    """Redacted text and what was found (kind, original span)."""

    text: str
    findings: list[tuple[str, str]] = field(default_factory=list)


# Order matters: secrets and e-mails first (they contain digits), then checksummed numbers, then the rest.
_DETECTORS = (("secret", _SECRET, None), ("email", _EMAIL, None), ("iban", _IBAN, iban_ok), ("card", _CARD, _card_ok),
              ("ip", _IPV4, _ip_ok), ("ip", _IPV6, _ip_ok), ("phone", _PHONE, _phone_ok))


def redact(text: str) -> Redaction:
    """Replace PII and secrets with typed placeholders."""
    findings: list[tuple[str, str]] = []
    for kind, pattern, check in _DETECTORS:
        # An IBAN-shaped string whose checksum fails is a reference number, not a card or phone inside it.
        shielded = [m.span() for m in _IBAN.finditer(text)] if kind not in ("secret", "email", "iban") else []

        def replace(m: re.Match, kind: str = kind, check: Any = check, shielded: list = shielded) -> str:
            if check is not None and not check(m.group(0)):
                return m.group(0)
            if any(a <= m.start() < b for a, b in shielded):
                return m.group(0)
            findings.append((kind, m.group(0)))
            return PLACEHOLDERS[kind]
        text = pattern.sub(replace, text)
    return Redaction(text, findings)


def redact_value(value: Any) -> Any:
    """Redact every string inside JSON-like data (messages, parameters)."""
    if isinstance(value, str):
        return redact(value).text
    if isinstance(value, list):
        return [redact_value(v) for v in value]
    if isinstance(value, dict):
        return {k: redact_value(v) for k, v in value.items()}
    return value
