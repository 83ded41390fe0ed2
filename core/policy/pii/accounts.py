"""Bank details: payment-card numbers (Luhn, a real issuer range and length, a plausible grouping, whatever the
separators) and IBANs (the country's length and format, mod-97; spaces, dashes or none; any case) — through
`python-stdnum`'s validators where it has one."""
from __future__ import annotations

import re

from stdnum import iban as _iban
from stdnum import luhn
from stdnum.exceptions import ValidationError

from core.policy.pii.base import Recogniser, Spans, Text

# Digits with at most one separator between them: spaces (up to two), or - . / with spaces around.
_CARD = re.compile(r"(?<![A-Za-z0-9.\-/_])\d(?:(?:[ \t]{0,2}[\-./][ \t]{0,2}|[ \t]{1,2})?\d){11,18}"
                   r"(?![0-9A-Za-z]|[.\-/]\d)")
# (issuer identification prefix range, allowed lengths)
_ISSUERS = (((4, 4), (13, 16, 19)), ((51, 55), (16,)), ((2221, 2720), (16,)), ((34, 34), (15,)), ((37, 37), (15,)),
            ((6011, 6011), (16, 19)), ((644, 649), (16, 19)), ((65, 65), (16, 19)), ((3528, 3589), (16, 17, 18, 19)),
            ((300, 305), (14, 16, 19)), ((36, 36), (14, 16, 19)), ((38, 39), (16, 19)), ((62, 62), (16, 17, 18, 19)),
            ((2200, 2204), (16, 17, 18, 19)), ((50, 50), (16, 18, 19)), ((56, 58), (16, 18, 19)),
            ((60, 60), (16, 19)), ((63, 63), (16, 19)), ((67, 67), (16, 19)), ((81, 81), (16,)))


def _issuer_ok(digits: str) -> bool:
    for (low, high), lengths in _ISSUERS:
        if len(digits) in lengths and low <= int(digits[:len(str(low))]) <= high:
            return True
    return False


def _grouping_ok(groups: list[int]) -> bool:
    """One block, groups of four (the last one shorter), or Amex / Diners 4-6-5 / 4-6-4."""
    if len(groups) == 1:
        return True
    if groups[:-1] == [4] * (len(groups) - 1) and 1 <= groups[-1] <= 4:
        return True
    return groups in ([4, 6, 5], [4, 6, 4], [6, 13])


def card_ok(candidate: str) -> bool:
    digits = re.sub(r"\D", "", candidate)
    groups = [len(g) for g in re.split(r"\D+", candidate) if g]
    return (13 <= len(digits) <= 19 and len(set(digits)) > 1 and luhn.is_valid(digits) and _issuer_ok(digits)
            and _grouping_ok(groups))


def find_cards(text: Text) -> Spans:
    for m in _CARD.finditer(text.norm):
        if card_ok(m.group(0)):
            yield m.span()


# An IBAN as people write it: country, check digits, then groups with or without spaces / dashes. The pattern may
# take in a following word ("… 00 by Friday"); trailing groups are dropped until the checksum holds.
_IBAN = re.compile(r"(?<![A-Za-z0-9])[A-Za-z]{2}\d{2}(?:[ \-]?[A-Za-z0-9]{1,4}){3,9}(?![A-Za-z0-9])")


def iban_ok(candidate: str) -> bool:
    """Mod-97 and the country's length and format. Not the national check digits some countries add inside the
    account number: an IBAN with a mistyped account is still someone's bank detail."""
    compact = re.sub(r"[\s\-]", "", candidate).upper()
    if not 15 <= len(compact) <= 34:
        return False
    try:
        _iban.validate(compact, check_country=False)
        return True
    except ValidationError:
        return False


def find_ibans(text: Text) -> Spans:
    for m in _IBAN.finditer(text.norm):
        cand = m.group(0)
        while len(re.sub(r"[\s\-]", "", cand)) >= 15:
            if iban_ok(cand):
                yield m.start(), m.start() + len(cand)
                break
            cut = max(cand.rfind(" "), cand.rfind("-"))
            if cut <= 4:
                break
            cand = cand[:cut]


RECOGNISERS = [
    Recogniser("iban", "IBANs", "country + check digits + account in the country's length and format (python-stdnum's registry), mod-97 checked; "
               "grouped by spaces or dashes or not at all, upper or lower case", "DE89-3704-0044-0532-0130-00",
               find_ibans),
    Recogniser("card", "Payment-card numbers", "13–19 digits, Luhn-checked, in a real issuer range and length (Visa, "
               "Mastercard, Amex, Discover, JCB, Diners, UnionPay, Mir, Maestro), in one block, groups of four or "
               "4-6-5, separated by spaces, `-`, `.`, `/` or ` - `", "5222 - 3333 - 4444 - 5552, 3782 822463 10005",
               find_cards),
]
