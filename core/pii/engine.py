"""Runs every recogniser over a text and settles overlaps: one finding per stretch of text, of the kind that ranks
first (a key that contains digits is a secret, not a phone number), covering everything any recogniser matched."""
from __future__ import annotations

from core.pii import accounts, contact, identity, keys, people
from core.pii.base import Finding, Recogniser, Text

# Order = rank when two findings overlap, and the order of the README's table.
RECOGNISERS: tuple[Recogniser, ...] = (*keys.RECOGNISERS, *contact.RECOGNISERS[:1], *accounts.RECOGNISERS,
                                       *identity.RECOGNISERS, *contact.RECOGNISERS[2:], *contact.RECOGNISERS[1:2],
                                       *people.RECOGNISERS)
KINDS = ("secret", "email", "iban", "card", "id", "passport", "ip", "phone", "address", "name")
_RANK = {kind: i for i, kind in enumerate(KINDS)}
assert {r.kind for r in RECOGNISERS} == set(KINDS)


def find_pii(original: str) -> list[Finding]:
    """Every span of `original` that is personal data or a secret, without overlaps, in text order."""
    if not original:
        return []
    text = Text(original)
    raw: list[tuple[int, int, int, str, str]] = []  # (rank, start, end, kind, recogniser)
    for rec in RECOGNISERS:
        for start, end in rec.find(text):
            if end > start:
                a, b = text.original_span(start, end)
                raw.append((_RANK[rec.kind], a, b, rec.kind, rec.name))
    # Higher rank first, then longer first; a later finding that overlaps a kept one widens it (nothing matched
    # may stay visible) but keeps the kept one's kind.
    raw.sort(key=lambda f: (f[0], f[1] - f[2], f[1]))
    kept: list[list] = []
    for rank, a, b, kind, rec_name in raw:
        for k in kept:
            if a < k[1] and k[0] < b:
                k[0], k[1] = min(k[0], a), max(k[1], b)
                break
        else:
            kept.append([a, b, kind, rec_name, rank])
    kept = _merge_chains(kept)
    return sorted((Finding(kind, a, b, original[a:b], rec) for a, b, kind, rec, _ in kept), key=lambda f: f.start)


def _merge_chains(kept: list[list]) -> list[list]:
    """Widening can make two kept findings overlap; fold them until none do."""
    kept.sort(key=lambda k: k[0])
    out: list[list] = []
    for k in kept:
        if out and k[0] < out[-1][1]:
            prev = out[-1]
            winner = prev if prev[4] <= k[4] else k
            out[-1] = [prev[0], max(prev[1], k[1]), winner[2], winner[3], winner[4]]
        else:
            out.append(k)
    return out
