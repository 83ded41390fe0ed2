"""Runs every recogniser over a text and settles overlaps: one finding per stretch of text, of the kind that ranks
first (a key that contains digits is a secret, not a phone number), covering everything any recogniser matched."""
from __future__ import annotations

from dataclasses import dataclass

from core.policy.pii import accounts, contact, identity, keys, people
from core.policy.pii.base import Finding, Recogniser, Text

# Rank when two findings overlap, and the order of the README's table.
KINDS = ("secret", "email", "iban", "card", "id", "passport", "ip", "phone", "address", "name")
_RANK = {kind: i for i, kind in enumerate(KINDS)}
RECOGNISERS: tuple[Recogniser, ...] = tuple(sorted(
    (*keys.RECOGNISERS, *contact.RECOGNISERS, *accounts.RECOGNISERS, *identity.RECOGNISERS, *people.RECOGNISERS),
    key=lambda r: _RANK[r.kind]))
assert {r.kind for r in RECOGNISERS} == set(KINDS)


@dataclass
class _Claim:
    """A stretch of the original text held by one kind while overlaps are settled."""

    start: int
    end: int
    kind: str
    recogniser: str

    @property
    def rank(self) -> int:
        return _RANK[self.kind]


def find_pii(original: str) -> list[Finding]:
    """Every span of `original` that is personal data or a secret, without overlaps, in text order."""
    if not original:
        return []
    text = Text(original)
    raw: list[_Claim] = []
    for rec in RECOGNISERS:
        for start, end in rec.find(text):
            if end > start:
                raw.append(_Claim(*text.original_span(start, end), rec.kind, rec.name))
    # Higher rank first, then longer first. A later finding that overlaps a kept one widens it (nothing any
    # recogniser matched may stay visible) but takes the kept one's kind.
    raw.sort(key=lambda c: (c.rank, c.start - c.end, c.start))
    kept: list[_Claim] = []
    for claim in raw:
        for k in kept:
            if claim.start < k.end and k.start < claim.end:
                k.start, k.end = min(k.start, claim.start), max(k.end, claim.end)
                break
        else:
            kept.append(claim)
    # Widening can make two kept claims overlap: fold them, the higher rank's kind wins.
    kept.sort(key=lambda c: c.start)
    merged: list[_Claim] = []
    for claim in kept:
        if merged and claim.start < merged[-1].end:
            prev = merged[-1]
            winner = prev if prev.rank <= claim.rank else claim
            merged[-1] = _Claim(prev.start, max(prev.end, claim.end), winner.kind, winner.recogniser)
        else:
            merged.append(claim)
    return [Finding(c.kind, c.start, c.end, original[c.start:c.end], c.recogniser) for c in merged]
