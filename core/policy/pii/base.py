"""What every recogniser shares: the text as matched (NFKC-normalised, mapped back to the original), the
`Finding` it reports and the `Recogniser` record the README's table is generated from."""
from __future__ import annotations

import functools
import re
import unicodedata
from collections.abc import Callable, Iterator
from dataclasses import dataclass

_NON_ASCII = re.compile(r"[^\x00-\x7f]+")


class Text:
    """A text as the recognisers see it: NFKC-normalised (full-width letters, digits, ＠ and ． become ASCII, so
    `ａｎａ＠ｅｘａｍｐｌｅ．ｃｏｍ` matches like `ana@example.com`), with each character's place in the original so
    that the original span is the one redacted."""

    def __init__(self, original: str) -> None:
        self.original = original
        if original.isascii():
            self.norm, self._origin = original, None
            return
        pieces: list[str] = []
        origin: list[int] = []
        pos = 0
        # Only the non-ASCII runs that NFKC changes are walked character by character.
        for run in _NON_ASCII.finditer(original):
            if unicodedata.is_normalized("NFKC", run.group()):
                continue
            pieces.append(original[pos:run.start()])
            origin.extend(range(pos, run.start()))
            for i, ch in enumerate(run.group(), run.start()):
                n = unicodedata.normalize("NFKC", ch)
                pieces.append(n)
                origin.extend([i] * len(n))
            pos = run.end()
        if not pieces:
            self.norm, self._origin = original, None
            return
        pieces.append(original[pos:])
        origin.extend(range(pos, len(original)))
        self.norm, self._origin = "".join(pieces), origin

    @functools.cached_property
    def lower(self) -> str:
        return self.norm.lower()

    def original_span(self, start: int, end: int) -> tuple[int, int]:
        if self._origin is None:
            return start, end
        return self._origin[start], self._origin[end - 1] + 1

    def before(self, pos: int, width: int) -> str:
        """Up to `width` characters of the normalised text before `pos` (where cue words are looked for)."""
        return self.norm[max(0, pos - width):pos]

    def after(self, pos: int, width: int) -> str:
        return self.norm[pos:pos + width]


Spans = Iterator[tuple[int, int]]  # spans in the normalised text


@dataclass(frozen=True)
class Finding:
    """A span of the original text that is personal data or a secret, and which recogniser found it."""

    kind: str
    start: int
    end: int
    text: str
    recogniser: str


@dataclass(frozen=True)
class Recogniser:
    """One format of one kind: how it is found, and what the README says about it (shape and a made-up example)."""

    kind: str
    name: str
    shape: str
    example: str
    find: Callable[[Text], Spans]


def pattern(regex: re.Pattern[str], check: Callable[[re.Match[str], Text], bool] | None = None,
            group: int = 0, needles: tuple[str, ...] = ()) -> Callable[[Text], Spans]:
    """A finder from a regular expression, an optional check of each match (checksum, context) and the group that is
    the secret part (an `Authorization:` header keeps its name, loses its value). `needles`: strings one of which
    every match contains (looked for in the lower-cased text); without any, the regex is not run at all — a
    substring test is far cheaper than a scan, and most texts hold no key."""
    def find(text: Text) -> Spans:
        if needles and not any(n in text.lower for n in needles):
            return
        for m in regex.finditer(text.norm):
            if m.group(group) and (check is None or check(m, text)):
                yield m.span(group)
    return find


def mixed(s: str, upper: bool = True, digit: bool = True) -> bool:
    """A random token mixes character classes; a word, a package name or a placeholder does not."""
    return (any(c.islower() for c in s) and (not upper or any(c.isupper() for c in s))
            and (not digit or any(c.isdigit() for c in s)))


# Written where a real value would be: YOUR_API_KEY, <token>, ${SECRET}, ****, os.environ[...], changeme.
PLACEHOLDER = re.compile(r"(?i)^(?:<.*|\$.*|\{.*|%.*|\*+|•+|x{3,}|\.{3,}|_+|your[_-].*|.*[_-]here|changeme|redacted"
                         r"|\[.*|os\.environ.*|os\.getenv.*|process\.env.*|getenv.*|env\(.*|none|null|true|false)$")
