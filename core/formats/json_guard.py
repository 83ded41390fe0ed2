"""JSON from people and files, read without letting its shape take the app down: nesting is bounded before the
parser recurses (5,000 levels would raise RecursionError deep inside it), and JSON Schemas may only refer inside
themselves (a remote `$ref` would fetch, a `$ref` to the root loops)."""
from __future__ import annotations

import json
from typing import Any

MAX_DEPTH = 64


class JSONShapeError(ValueError):
    """JSON that is valid but not acceptable here: one sentence."""


def nesting_depth(text: str) -> int:
    """The deepest [ / { nesting in JSON text (strings skipped), without parsing it."""
    depth = deepest = 0
    in_string = escaped = False
    for ch in text:
        if in_string:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_string = False
        elif ch == '"':
            in_string = True
        elif ch in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif ch in "]}":
            depth -= 1
    return deepest


def nested_deeper_than(text: str, max_depth: int) -> bool:
    """Whether the JSON text nests more than max_depth levels. Text with no more brackets than that cannot (counting
    them is C-fast), so only such text is scanned character by character (~20 µs for a 500-character line)."""
    return text.count("[") + text.count("{") > max_depth and nesting_depth(text) > max_depth


def loads(text: str, what: str = "The JSON", max_depth: int = MAX_DEPTH) -> Any:
    """json.loads with the nesting bounded; raises json.JSONDecodeError or JSONShapeError (one sentence)."""
    if nested_deeper_than(text, max_depth):
        raise JSONShapeError(f"{what} is nested more than {max_depth} levels deep.")
    return json.loads(text)


def check_refs(schema: Any, what: str = "The schema") -> None:
    """Only references inside the schema, and none to its root (which would recurse for ever)."""
    stack = [schema]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            ref = node.get("$ref")
            if ref is not None:
                if not isinstance(ref, str) or not ref.startswith("#"):
                    raise JSONShapeError(f"{what} refers outside itself ($ref {str(ref)[:80]!r}): only references "
                                         "inside the schema (#/$defs/…) are allowed.")
                if ref in ("#", "#/"):
                    raise JSONShapeError(f"{what} refers to itself as a whole ($ref '#'), which never ends.")
            for key in ("$dynamicRef", "$recursiveRef"):
                if key in node:
                    raise JSONShapeError(f"{what} uses {key}, which PromptLab does not follow.")
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
