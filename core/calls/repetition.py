"""The repetition stop: tells when a streamed reply has fallen into a loop (the same stretch of text, a phrase or a
line, repeated back to back), so the gate can end it instead of letting a small model run to its token limit.
Pure text logic: no HTTP, no logging (the gate in `core/calls/gate.py` acts on it).
"""
from __future__ import annotations

from dataclasses import dataclass

from core.base.i18n import N_

FINISH_REASON = "repetition"  # the call log's finish_reason for a reply the guard ended
NOTE = N_("The reply kept repeating itself and was stopped.")


@dataclass
class RepetitionGuard:
    """Feed it the reply so far; `loop_start()` says where the loop's second copy begins, or None.

    A loop is a tail made of `min_repeats` or more back-to-back copies of one stretch of `period` characters
    (1 ≤ period ≤ `max_period`) covering at least `min_span` characters: "ok ok ok …" needs many copies, a repeated
    sentence or line needs four. Real answers repeat words and lines, but not the same 60+ characters four times
    in a row; tables and code repeat with variations, which this does not match."""

    min_repeats: int = 4
    min_span: int = 60
    max_period: int = 200

    def loop_start(self, text: str) -> int | None:
        """The index where the first repeated copy starts (text before it is the reply worth keeping)."""
        n = len(text)
        top = min(self.max_period, n // self.min_repeats)
        if top < 1:
            return None
        # A tail that repeats with period p has the last character again p places back: only those p are tried
        # (found with rfind, in C), shortest first as before; a guard run per streamed delta stays cheap.
        last, low = text[-1], n - 1 - top
        at = text.rfind(last, low, n - 1)
        while at >= 0:
            period = n - 1 - at
            at = text.rfind(last, low, at)
            repeats = max(self.min_repeats, -(-self.min_span // period))
            span = period * repeats
            if span > n:
                continue
            unit = text[n - period:]
            if text[n - 2 * period:n - period] != unit:
                continue  # not even two copies back to back
            if not any(c.isalnum() for c in unit):
                continue  # a rule of dashes or a run of blank lines is layout, not a loop
            if text[n - span:] == unit * repeats:
                # Walk back over further copies, so what is kept is the text before the loop plus one copy.
                start = n - span
                while start >= period and text[start - period:start] == unit:
                    start -= period
                return start + period
        return None
