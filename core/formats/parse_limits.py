"""Documents people paste or upload (eval configs, test cases) read within limits: their size before anything is
parsed, YAML's nesting depth and its size after alias expansion (checked on the parser's event stream, before a
single object is built), and how many cases they hold. Each limit is one sentence (`LimitExceeded`)."""
from __future__ import annotations

from typing import Any

import yaml

from core.base.i18n import _

PASTED_BYTES = 2 * 1024 * 1024  # a config typed or pasted into the page
UPLOADED_BYTES = 20 * 1024 * 1024  # a file uploaded (a config, its cases) or read by the command line
MAX_DEPTH = 64  # the same bound as JSON's (core/formats/json_guard.py): promptfoo configs nest a dozen levels at most
MAX_NODES = 500_000  # YAML nodes after aliases are expanded (a 10,000-case set has ~300,000)
EXPANSION = 4  # aliases may make a YAML document's text at most this many times its byte limit
MAX_CASES = 10_000  # test cases in one config or one cases file

# LibYAML's parser when PyYAML was built with it (about 10× faster); the pure-Python one otherwise.
_LOADER: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class LimitExceeded(ValueError):
    """A document beyond one of the limits above: the sentence names it and the limit."""


def _mb(n: int) -> str:
    return f"{n / (1024 * 1024):g} MB"


def byte_size(text: str | bytes) -> int:
    """The UTF-8 size, without encoding a text that is too large anyway (it has at least one byte per character)."""
    if isinstance(text, bytes):
        return len(text)
    return len(text) if text.isascii() else len(text.encode("utf-8", errors="replace"))


def check_size(text: str | bytes | int, max_bytes: int, what: str) -> None:
    """Refuse a document (or a file of that many bytes) larger than `max_bytes`, before it is parsed."""
    size = text if isinstance(text, int) else max_bytes + 1 if len(text) > max_bytes else byte_size(text)
    if size > max_bytes:
        raise LimitExceeded(_('{what} is larger than {limit}: PromptLab reads at most {limit} here.').format(
            what=what, limit=_mb(max_bytes)))


def check_cases(count: int, what: str, max_cases: int = MAX_CASES) -> None:
    if count > max_cases:
        raise LimitExceeded(_('{what} holds more than {limit:,} test cases: split it into smaller sets.').format(
            what=what, limit=max_cases))


def check_yaml_shape(text: str, what: str, max_bytes: int) -> None:
    """Walk the parser's events (no objects built): the nesting must stay within MAX_DEPTH, and the document with
    every alias replaced by what it names within MAX_NODES nodes and EXPANSION × max_bytes characters — so a
    "billion laughs" document, a few hundred bytes that expand to 10⁹ nodes, is refused after a few events."""
    max_chars = EXPANSION * max_bytes
    nodes = chars = 0
    sizes: dict[str, tuple[int, int]] = {}  # anchor -> (nodes, characters) of what it names, expanded
    open_nodes: list[tuple[str | None, int, int]] = []  # (anchor, nodes, characters) when each collection opened
    for event in yaml.parse(text, Loader=_LOADER):
        if isinstance(event, yaml.CollectionStartEvent):
            open_nodes.append((event.anchor, nodes, chars))
            if len(open_nodes) > MAX_DEPTH:
                raise LimitExceeded(_('{what} is nested more than {limit} levels deep.').format(
                    what=what, limit=MAX_DEPTH))
            nodes += 1
        elif isinstance(event, yaml.CollectionEndEvent):
            anchor, nodes_before, chars_before = open_nodes.pop()
            if anchor is not None:
                sizes[anchor] = (nodes - nodes_before, chars - chars_before)
        elif isinstance(event, yaml.ScalarEvent):
            nodes += 1
            chars += len(event.value)
            if event.anchor is not None:
                sizes[event.anchor] = (1, len(event.value))
        elif isinstance(event, yaml.AliasEvent):
            added_nodes, added_chars = sizes.get(event.anchor or "", (1, 0))
            nodes += added_nodes
            chars += added_chars
        else:
            continue
        if nodes > MAX_NODES or chars > max_chars:
            raise LimitExceeded(_('{what} expands to more than {nodes:,} items or {limit} of text (YAML aliases '
                                  'repeat what they name): PromptLab does not read it.').format(
                what=what, nodes=MAX_NODES, limit=_mb(max_chars)))


def load_yaml(text: str, what: str, max_bytes: int) -> Any:
    """yaml.safe_load within the limits above; raises LimitExceeded or yaml.YAMLError."""
    check_size(text, max_bytes, what)
    check_yaml_shape(text, what, max_bytes)
    return yaml.load(text, Loader=_LOADER)  # noqa: S506 — a safe loader (CSafeLoader or SafeLoader)
