"""Image and PDF variables (promptfoo's `file://` vars, the Playground's "Files"): where an attachment variable
goes in a request, what it costs before sending, and how it is named where its bytes must not go (cache keys, code
views, stored results).

A variable whose value is an `Attachment` is placed by one of two rules:
  * promptfoo's: a JSON chat prompt puts `{{image}}` (or `data:image/png;base64,{{image}}`) as the URL of an
    `image_url` / `input_image` part, or as the `file_data` of a `file` / `input_file` part; the part becomes the
    attachment's content part, nothing else is added for that use;
  * PromptLab's simple one: anywhere else (`Here is {{invoice}}` in a user message, a text part, the system
    prompt) the slot reads `[invoice.pdf]` and the attachment is sent as a content part after the text of the user
    message that names it (the last user message when a system prompt names it), once per message.
Messages are built in the Chat Completions shape (`attachments.chat_part`); the gate restates them for the
Responses API (`responses_api.input_items`: `input_image` / `input_file`). promptfoo differs on one point: it
sends a PDF var as its extracted text; PromptLab sends the PDF itself, as OpenAI's file input.
"""
from __future__ import annotations

import base64
import hashlib
import io
import re
from collections.abc import Callable
from typing import Any

from PIL import Image, UnidentifiedImageError

from core.base.errors import PromptLabError
from core.base.i18n import _
from core.llm import attachments as files
from core.llm.attachments import Attachment

_SLOT = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}")
# A part's URL that is only a slot, with or without the data-URI prefix older promptfoo examples write by hand.
_URL_SLOT = re.compile(r"^\s*(?:data:[\w.+-]+/[\w.+-]+;base64,)?\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}\s*$")
_DATA_URI = re.compile(r"data:([\w.+-]+/[\w.+-]+);base64,([A-Za-z0-9+/=]+)")
MEDIA_TYPES = ("image_url", "file", "input_image", "input_file")
# File names a `file://` var is read as an attachment by (the bytes decide what it is: `check_attachment`).
ATTACHMENT_SUFFIXES = tuple(f".{e}" for e in files.UPLOAD_EXTENSIONS)


def is_attachment_name(name: str) -> bool:
    return name.lower().endswith(ATTACHMENT_SUFFIXES)


def label(attachment: Attachment) -> str:
    """What the slot of an attachment variable reads in text."""
    return f"[{attachment.name}]"


def ref(attachment: Attachment) -> dict[str, Any]:
    """An attachment as stored beside results and reports: name, type, size and SHA-256, never its bytes."""
    out: dict[str, Any] = {"file": attachment.name, "media_type": attachment.media_type,
                           "size": len(attachment.data), "sha256": attachment.sha256}
    if attachment.width and attachment.height:
        out["width"], out["height"] = attachment.width, attachment.height
    return out


def is_ref(value: Any) -> bool:
    return isinstance(value, dict) and {"file", "media_type", "sha256", "size"} <= set(value)


def plain_vars(variables: dict[str, Any]) -> dict[str, Any]:
    """Variables as JSON can hold them: each attachment as its `ref`."""
    return {k: ref(v) if isinstance(v, Attachment) else v for k, v in variables.items()}


def text_vars(variables: dict[str, Any]) -> dict[str, Any]:
    """Variables for text (assertion values, a grader's prompt): each attachment as its `[name]`."""
    return {k: label(v) if isinstance(v, Attachment) else v for k, v in variables.items()}


def _fill(text: str, variables: dict[str, Any], render: Callable[[str, dict[str, Any]], str]) -> tuple[str, list[str]]:
    """(the text with its slots filled, the attachment variables it names, in order)."""
    named = [n for n in dict.fromkeys(_SLOT.findall(text)) if isinstance(variables.get(n), Attachment)]
    return render(text, text_vars(variables)), named


def _placed(part: dict[str, Any], variables: dict[str, Any]) -> dict[str, Any] | None:
    """The attachment's own part when `part` is an image / file part whose URL or data is one attachment slot."""
    kind = part.get("type")
    if kind == "image_url":
        given = part.get("image_url")
        url = given.get("url") if isinstance(given, dict) else given
    elif kind == "input_image":
        url = part.get("image_url")
    elif kind == "file":
        url = (part.get("file") or {}).get("file_data")
    elif kind == "input_file":
        url = part.get("file_data")
    else:
        return None
    match = _URL_SLOT.match(url) if isinstance(url, str) else None
    attachment = variables.get(match.group(1)) if match else None
    if not isinstance(attachment, Attachment):
        return None
    placed = files.chat_part(attachment)
    detail = _detail(part)
    if attachment.is_image and detail:
        placed["image_url"]["detail"] = detail
    return placed


def _render_value(value: Any, variables: dict[str, Any], render: Callable[[str, dict[str, Any]], str],
                  named: list[str]) -> Any:
    if isinstance(value, str):
        text, more = _fill(value, variables, render)
        named.extend(n for n in more if n not in named)
        return text
    if isinstance(value, list):
        return [_render_value(v, variables, render, named) for v in value]
    if isinstance(value, dict):
        return {k: _render_value(v, variables, render, named) for k, v in value.items()}
    return value


def place_files(messages: list[dict[str, Any]], variables: dict[str, Any],
                render: Callable[[str, dict[str, Any]], str]) -> list[dict[str, Any]]:
    """Template messages (content text or parts, with {{slots}}) filled for one set of variables: text slots by
    `render`, attachment variables by the rules in this module's docstring."""
    out: list[dict[str, Any]] = []
    carried: list[str] = []  # attachments named outside a user message: they go with the last user message
    for message in messages:
        content = message.get("content")
        named: list[str] = []
        if isinstance(content, list):
            parts = []
            for part in content:
                placed = _placed(part, variables) if isinstance(part, dict) else None
                parts.append(placed if placed is not None else _render_value(part, variables, render, named))
            filled: Any = parts
        elif isinstance(content, str):
            filled, named = _fill(content, variables, render)
        else:
            filled = content
        if message.get("role") != "user":
            carried.extend(n for n in named if n not in carried)
            named = []
        out.append({**message, "content": _with_parts(filled, named, variables)})
    if carried:
        last = max((i for i, m in enumerate(out) if m.get("role") == "user"), default=None)
        if last is None:
            out.append({"role": "user", "content": _with_parts("", carried, variables)})
        else:
            out[last] = {**out[last], "content": _with_parts(out[last]["content"], carried, variables)}
    return out


def _with_parts(content: Any, names: list[str], variables: dict[str, Any]) -> Any:
    """Content with the named attachments' parts after its text (each attachment once per message)."""
    if not names:
        return content
    parts: list[Any] = [{"type": "text", "text": content}] if isinstance(content, str) and content else \
        list(content) if isinstance(content, list) else []
    present = {_uri_of(p) for p in parts if isinstance(p, dict)}
    for name in names:
        part = files.chat_part(variables[name])
        uri = part["image_url"]["url"] if "image_url" in part else part["file"]["file_data"]
        if uri not in present:
            parts.append(part)
            present.add(uri)
    return parts


# ----- what went in a request ------------------------------------------------------------------------------------
def media_parts(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Every image and file part of a request's messages (either API's shapes)."""
    return [p for m in messages if isinstance(m.get("content"), list)
            for p in m["content"] if isinstance(p, dict) and p.get("type") in MEDIA_TYPES]


def has_media(messages: list[dict[str, Any]]) -> bool:
    return bool(media_parts(messages))


def _detail(part: dict[str, Any]) -> str | None:
    """An image part's `detail` (low / high / auto) in either API's shape."""
    given = part.get("image_url")
    detail = given.get("detail") if isinstance(given, dict) else part.get("detail")
    return detail if isinstance(detail, str) else None


def _uri_of(part: dict[str, Any]) -> str:
    kind = part.get("type")
    if kind == "image_url":
        given = part.get("image_url")
        return str(given.get("url", "") if isinstance(given, dict) else given or "")
    if kind == "input_image":
        return str(part.get("image_url") or "")
    if kind == "file":
        return str((part.get("file") or {}).get("file_data") or "")
    return str(part.get("file_data") or "")


def image_token_forecast(messages: list[dict[str, Any]], model: str) -> int:
    """Input tokens the images of a request will cost on `model` (OpenAI's tile / patch rule; 0 when unknown).
    A PDF's tokens (its text and page images) are not forecast."""
    total = 0
    for part in media_parts(messages):
        if part.get("type") not in ("image_url", "input_image"):
            continue
        match = _DATA_URI.match(_uri_of(part))
        if not match:
            continue
        try:
            with Image.open(io.BytesIO(base64.b64decode(match.group(2)))) as image:  # reads the header only
                width, height = image.size
        except (UnidentifiedImageError, OSError, ValueError):
            continue
        total += files.image_tokens(model, width, height, _detail(part) or "auto") or 0
    return total


def digested(value: Any) -> Any:
    """JSON-like data with each base64 data URI replaced by `sha256:<hex of its bytes>` (cache keys and request
    hashes: an image changes the key by what it is, and the key never hashes megabytes of text)."""
    if isinstance(value, str):
        if "base64," not in value:
            return value
        return _DATA_URI.sub(lambda m: f"{m.group(1)};sha256:" + hashlib.sha256(
            base64.b64decode(m.group(2) + "=" * (-len(m.group(2)) % 4))).hexdigest(), value)
    if isinstance(value, list):
        return [digested(v) for v in value]
    if isinstance(value, dict):
        return {k: digested(v) for k, v in value.items()}
    return value


def too_large(name: str, size: int) -> PromptLabError:
    """The sentence for a file over the attachment limit, said before its bytes are read (`check_attachment`
    says the same of bytes in hand)."""
    return PromptLabError("attachment_too_large", _(
        "{name} is {size} MB; attachments can be at most 20 MB each."
    ).format(name=name, size=f"{size / 1024 / 1024:.1f}"))


def var_names(file_names: list[str]) -> list[str]:
    """The {{variable}} each uploaded file is known by: its name without the extension, as an identifier
    ("invoice.pdf" → invoice, "scan 2.png" → scan_2, "2024.png" → file_2024); a repeated name gets _2, _3 …"""
    out: list[str] = []
    for file_name in file_names:
        stem = file_name.rsplit("/", 1)[-1].rsplit(".", 1)[0]
        name = re.sub(r"\W+", "_", stem, flags=re.ASCII).strip("_") or "file"
        name = f"file_{name}" if name[0].isdigit() else name
        base, n = name, 2
        while name in out:
            name, n = f"{base}_{n}", n + 1
        out.append(name)
    return out


def chip(stored: dict[str, Any]) -> str:
    """A stored image / PDF variable in one line for tables and lists: kind, name, pixels, size, digest."""
    kind = "🖼️" if str(stored.get("media_type", "")).startswith("image/") else "📄"
    pixels = f" · {stored['width']}×{stored['height']}" if stored.get("width") and stored.get("height") else ""
    size = stored.get("size") or 0
    amount = f"{size / 1024 / 1024:.1f} MB" if size >= 1024 * 1024 else f"{max(1, round(size / 1024))} KB"
    return f"{kind} {stored.get('file')}{pixels} · {amount} · sha256 {str(stored.get('sha256'))[:12]}"


def chipped(variables: dict[str, Any]) -> dict[str, Any]:
    """Variables for display: each stored image / PDF as its `chip`."""
    return {k: chip(v) if is_ref(v) else v for k, v in variables.items()}
