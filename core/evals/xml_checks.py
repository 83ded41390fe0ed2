"""promptfoo's `is-xml` and `contains-xml` (0.121.20, src/assertions/xml.ts), for core/evals/assertions.py.

`is-xml`: the whole output is well-formed XML, namespaces included (promptfoo uses the strict saxes parser; here
expat, which the standard library brings, with its external entities never loaded), a DOCTYPE's internal subset
refused as promptfoo refuses it. `contains-xml`: somewhere in the output is a balanced element (found by promptfoo's
own tag scan, ported below). Either may name required elements as dotted paths from the root ("root.child",
"root.item.1" for the second of several), checked on promptfoo's lenient object form of the XML.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any
from xml.parsers import expat

_NAME_START = ((58, 58), (95, 95), (65, 90), (97, 122), (192, 214), (216, 246), (248, 767), (880, 893), (895, 8191),
               (8204, 8205), (8304, 8591), (11264, 12271), (12289, 55295), (63744, 64975), (65008, 65533),
               (65536, 983039))
_NAME_MORE = ((45, 46), (48, 57), (183, 183), (768, 879), (8255, 8256))


def _name_start(ch: str | None) -> bool:
    return ch is not None and any(lo <= ord(ch) <= hi for lo, hi in _NAME_START)


def _name_char(ch: str | None) -> bool:
    return _name_start(ch) or (ch is not None and any(lo <= ord(ch) <= hi for lo, hi in _NAME_MORE))


def _read_name(text: str, start: int) -> tuple[str, int] | None:
    if start >= len(text) or not _name_start(text[start]):
        return None
    end = start + 1
    while end < len(text) and _name_char(text[end]):
        end += 1
    return text[start:end], end


def _tag_end(text: str, start: int) -> int:
    quote = None
    for i in range(start + 1, len(text)):
        ch = text[i]
        if quote:
            if ch == quote:
                quote = None
        elif ch in "\"'":
            quote = ch
        elif ch == "<":
            return -1
        elif ch == ">":
            return i
    return -1


def _delimited_end(text: str, start: int, delimiter: str) -> int:
    found = text.find(delimiter, start)
    return len(text) - 1 if found < 0 else found + len(delimiter) - 1


def _declaration_end(text: str, start: int) -> int:
    if text.startswith("<!--", start):
        return _delimited_end(text, start + 4, "-->")
    if text.startswith("<![CDATA[", start):
        return _delimited_end(text, start + 9, "]]>")
    quote, depth = None, 0
    for i in range(start + 2, len(text)):
        ch = text[i]
        if quote:
            if ch == quote:
                quote = None
        elif ch in "\"'":
            quote = ch
        elif ch == "[":
            depth += 1
        elif ch == "]" and depth > 0:
            depth -= 1
        elif ch == ">" and depth == 0:
            return i
    return len(text) - 1


@dataclass
class _Tag:
    kind: str  # opening, closing, declaration
    start: int
    end: int  # index of its `>`
    name: str = ""
    self_closing: bool = False


def _read_tag(text: str, start: int) -> _Tag | None:
    nxt = text[start + 1] if start + 1 < len(text) else None
    if nxt is None:
        return None
    if nxt == "!":
        return _Tag("declaration", start, _declaration_end(text, start))
    if nxt == "?":
        return _Tag("declaration", start, _delimited_end(text, start + 2, "?>"))
    closing = nxt == "/"
    name = _read_name(text, start + (2 if closing else 1))
    if name is None:
        return None
    end = _tag_end(text, start)
    if end == -1:
        return None
    if closing:
        return _Tag("closing", start, end, name[0])
    last = end - 1
    while last > start and text[last].isspace():
        last -= 1
    return _Tag("opening", start, end, name[0], self_closing=text[last] == "/")


@dataclass(frozen=True)
class _Candidate:
    start: int
    end: int
    parent: int | None


def _candidates(text: str) -> list[_Candidate]:
    """promptfoo's extractXmlCandidates and orderXmlCandidates: balanced elements, sibling runs first."""
    stack: list[tuple[str, int]] = []
    found: list[_Candidate] = []
    i = 0
    while i < len(text):
        if text[i] != "<":
            i += 1
            continue
        tag = _read_tag(text, i)
        if tag is None:
            i += 1
            continue
        parent = stack[-1][1] if stack else None
        if tag.kind == "opening":
            if tag.self_closing:
                found.append(_Candidate(tag.start, tag.end + 1, parent))
            else:
                stack.append((tag.name, tag.start))
        elif tag.kind == "closing":
            if stack and stack[-1][0] == tag.name:
                _name, start = stack.pop()
                found.append(_Candidate(start, tag.end + 1, stack[-1][1] if stack else None))
            else:
                stack.clear()
        i = tag.end + 1
    ordered: list[_Candidate] = []
    seen: set[tuple[int, int]] = set()

    def add(c: _Candidate) -> None:
        if (c.start, c.end) not in seen:
            seen.add((c.start, c.end))
            ordered.append(c)
    starts = {c.start for c in found}
    by_parent: dict[int | None, list[_Candidate]] = {}
    for c in found:
        by_parent.setdefault(c.parent, []).append(c)
    for parent, siblings in by_parent.items():
        if len(siblings) <= 1 or (parent is not None and parent in starts):
            continue
        siblings.sort(key=lambda c: (c.start, c.end))
        add(_Candidate(siblings[0].start, siblings[-1].end, parent))
    for c in sorted((c for c in found if c.parent is None or c.parent not in starts), key=lambda c: (c.start, -c.end)):
        add(c)
    return ordered


@dataclass
class _Node:
    children: dict[str, list[_Node]] = field(default_factory=dict)
    attributes: set[str] = field(default_factory=set)


_ATTRIBUTE = re.compile(r"""([^\s=/>"']+)\s*(?:=\s*(?:"[^"]*"|'[^']*'|[^\s>]+))?""")


def _tree(text: str) -> _Node:
    """The XML as promptfoo's parser holds it, enough to tell which element paths exist (lenient, like it)."""
    top = _Node()
    stack = [top]
    i = 0
    while i < len(text):
        if text[i] != "<":
            i += 1
            continue
        tag = _read_tag(text, i)
        if tag is None:
            i += 1
            continue
        if tag.kind == "opening":
            node = _Node()
            inner = text[tag.start + 1 + len(tag.name):tag.end].rstrip().removesuffix("/")
            node.attributes = {m.group(1) for m in _ATTRIBUTE.finditer(inner)}
            stack[-1].children.setdefault(tag.name, []).append(node)
            if not tag.self_closing:
                stack.append(node)
        elif tag.kind == "closing" and len(stack) > 1:
            stack.pop()
        i = tag.end + 1
    return top


def _has_path(top: _Node, path: list[str]) -> bool:
    current: Any = top
    for key in path:
        if isinstance(current, list):  # several elements of one name: an array, indexed
            if not key.isdigit() or str(int(key)) != key or int(key) >= len(current):
                return False
            current = current[int(key)]
        elif isinstance(current, _Node):
            if key in current.children:
                nodes = current.children[key]
                current = nodes[0] if len(nodes) == 1 else nodes
            elif key.startswith("@_") and key[2:] in current.attributes:
                current = None  # an attribute's value: nothing below it
            else:
                return False
        else:
            return False
    return True


def _missing(text: str, required: list[str] | None) -> list[str]:
    if not required:
        return []
    top = _tree(text)
    return [r for r in required if not _has_path(top, r.split("."))]


def _strict_problem(text: str) -> str | None:
    """Why the text is not well-formed XML (namespaces checked), or None. External entities are never loaded."""
    parser = expat.ParserCreate(namespace_separator=" ")
    internal_subset: list[bool] = []

    def doctype(_name: str, _system: str | None, _public: str | None, has_internal_subset: int) -> None:
        if has_internal_subset:
            internal_subset.append(True)
            raise ValueError("internal subset")

    parser.StartDoctypeDeclHandler = doctype
    parser.SetParamEntityParsing(expat.XML_PARAM_ENTITY_PARSING_NEVER)
    try:
        parser.Parse(text, True)
    except ValueError:
        return "DTD internal subsets are not supported by is-xml validation"
    except expat.ExpatError as err:
        if internal_subset:
            return "DTD internal subsets are not supported by is-xml validation"
        return f"XML parsing failed: {err.lineno}:{err.offset + 1}: {expat.ErrorString(err.code)}."
    return None


def required_elements(value: Any) -> list[str] | None:
    """The elements an xml assertion requires, from its value as promptfoo reads it; ValueError for another kind."""
    if value is None or value == "" or value == [] or value == {}:
        return None
    if isinstance(value, str):
        return [v.strip() for v in value.split(",")]
    if isinstance(value, list):
        return [str(v) for v in value]
    if isinstance(value, dict) and isinstance(value.get("requiredElements"), list):
        return [str(v) for v in value["requiredElements"]]
    raise ValueError("xml assertion must contain a string, array value, or no value")


def is_xml(text: str, required: list[str] | None) -> tuple[bool, str]:
    problem = _strict_problem(text)
    if problem is not None:
        return False, problem
    missing = _missing(text, required)
    if missing:
        return False, f"XML is missing required elements: {', '.join(missing)}"
    return True, "XML is valid and contains all required elements"


def contains_xml(text: str, required: list[str] | None) -> tuple[bool, str]:
    candidates = _candidates(text)
    if not candidates:
        return False, "No XML content found in the output"
    containers: list[_Candidate] = []
    for c in candidates:
        if any(c.start >= k.start and c.end <= k.end for k in containers):
            continue
        if not _missing(text[c.start:c.end], required):
            return True, "XML is valid and contains all required elements"
        containers.append(c)
    return False, "No valid XML content found matching the requirements"
