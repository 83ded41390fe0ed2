"""Images and PDFs a user attaches to a turn: checked by content, their image-token forecast, and their wire shapes.

One `Attachment` record serves both APIs: Chat Completions content parts and Responses input parts.
"""
from __future__ import annotations

import base64
import functools
import hashlib
import io
import logging
import math
import re
from dataclasses import dataclass
from typing import Any

from PIL import Image, UnidentifiedImageError
from pypdf import PdfReader
from pypdf.errors import PyPdfError

from core.base.errors import PromptLabError
from core.base.i18n import _

MAX_ATTACHMENT_BYTES = 20 * 1024 * 1024
# Pillow's format name → the media type OpenAI accepts; anything else is refused whatever its file name says.
IMAGE_FORMATS = {"PNG": "image/png", "JPEG": "image/jpeg", "WEBP": "image/webp", "GIF": "image/gif"}
PDF_MEDIA_TYPE = "application/pdf"
# What the upload widget offers; the content check below is what decides.
UPLOAD_EXTENSIONS = ["png", "jpg", "jpeg", "webp", "gif", "pdf"]


@dataclass(frozen=True)
class Attachment:
    """One attached file: name, media type, bytes (and their SHA-256), pixel size for an image."""

    name: str
    media_type: str
    data: bytes
    sha256: str
    width: int | None = None
    height: int | None = None
    pages: int | None = None  # a PDF's page count, as pypdf read it

    @property
    def is_image(self) -> bool:
        return self.media_type.startswith("image/")

    def data_uri(self) -> str:
        return f"data:{self.media_type};base64,{base64.b64encode(self.data).decode('ascii')}"


def check_attachment(name: str, data: bytes) -> Attachment:
    """The upload as an `Attachment`, or a `PromptLabError` with one sentence (size, type, corrupt or locked PDF)."""
    if len(data) > MAX_ATTACHMENT_BYTES:
        raise PromptLabError("attachment_too_large", _(
            "{name} is {size} MB; attachments can be at most 20 MB each."
        ).format(name=name, size=f"{len(data) / 1024 / 1024:.1f}"))
    digest = hashlib.sha256(data).hexdigest()
    if data[:5] == b"%PDF-":
        return Attachment(name, PDF_MEDIA_TYPE, data, digest, pages=_pdf_pages(name, data))
    try:
        with Image.open(io.BytesIO(data)) as image:
            fmt = image.format or ""
            width, height = image.size
            image.verify()
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, Image.DecompressionBombError):
        fmt = ""
    if fmt not in IMAGE_FORMATS:
        raise PromptLabError("attachment_type", _(
            "{name} is not a PNG, JPEG, WebP or GIF image or a PDF, so it cannot be attached."
        ).format(name=name))
    return Attachment(name, IMAGE_FORMATS[fmt], data, digest, width, height)


# What pypdf raises on a damaged file besides its own errors (it parses whatever the bytes say).
_PDF_FAULTS = (PyPdfError, ValueError, KeyError, TypeError, AttributeError, IndexError, RecursionError, OSError)


def check_uploads(uploads: list[tuple[str, bytes]]) -> tuple[list[Attachment], list[str]]:
    """Several uploads at once: the ones that pass, and one sentence for each that does not (the page keeps the
    good ones for the next message)."""
    good: list[Attachment] = []
    problems: list[str] = []
    for name, data in uploads:
        try:
            good.append(check_attachment(name, data))
        except PromptLabError as err:
            problems.append(err.message)
    return good, problems


_DATA_URI = re.compile(r"data:([\w.+-]+/[\w.+-]+);base64,[A-Za-z0-9+/=]{64,}")


def without_inline_data(value: Any) -> Any:
    """JSON-like data (a request as logged) with every base64 data URI cut to its type, size and digest: the call
    log keeps what was sent without holding each image's bytes again (the conversation store has them)."""
    def short(match: re.Match[str]) -> str:
        payload = match.group(0).split(",", 1)[1]
        digest = hashlib.sha256(base64.b64decode(payload + "=" * (-len(payload) % 4))).hexdigest()[:12]
        return f"data:{match.group(1)};base64,…[{len(payload) * 3 // 4:,} bytes, sha256 {digest}]"
    if isinstance(value, str):
        return _DATA_URI.sub(short, value) if "base64," in value else value
    if isinstance(value, list):
        return [without_inline_data(v) for v in value]
    if isinstance(value, dict):
        return {k: without_inline_data(v) for k, v in value.items()}
    return value


def _pdf_pages(name: str, data: bytes) -> int:
    """The PDF's page count, read by pypdf: a damaged or truncated file, or one that needs a password to open,
    is refused here with one sentence rather than by the model after a paid call."""
    logging.getLogger("pypdf").setLevel(logging.ERROR)  # its "EOF marker not found" warnings say what we say
    try:
        reader = PdfReader(io.BytesIO(data))
        # Encrypted with an empty user password (only printing or copying restricted) opens like any PDF.
        locked = reader.is_encrypted and not reader.decrypt("")
        pages = 0 if locked else len(reader.pages)
    except _PDF_FAULTS:
        raise PromptLabError("attachment_pdf_corrupt", _(
            "{name} is not a readable PDF (the file is damaged or incomplete)."
        ).format(name=name)) from None
    if locked:
        raise PromptLabError("attachment_pdf_locked", _(
            "{name} is password-protected; remove the password and attach it again."
        ).format(name=name))
    if pages == 0:
        raise PromptLabError("attachment_pdf_corrupt", _(
            "{name} is not a readable PDF (the file is damaged or incomplete)."
        ).format(name=name))
    return pages


# Image tokens (OpenAI's vision guide, "Calculating costs"). Tile rule: base + per 512-px tile after the image is
# scaled to fit 2048×2048 and then its shortest side to 768 (never up); detail "low" is the base alone. Patch rule:
# 32-px patches, at most 1536, times a per-model factor. gpt-5 is on the tile rule at 70 / 140 (its mini and nano
# on patches); gpt-4.1 bills tiles like gpt-4o (its mini and nano bill patches) — measured in the community's
# 128×64 table (gpt-4.1: 85 low / 255 high, plus the text).
_TILE_COSTS = {"gpt-4o-mini": (2833, 5667), "gpt-4o": (85, 170), "gpt-4.1": (85, 170), "gpt-4.5": (85, 170),
               "gpt-5": (70, 140), "o1": (75, 150), "o3": (75, 150), "computer-use": (65, 129)}
_PATCH_FACTORS = {"gpt-4.1-mini": 1.62, "gpt-4.1-nano": 2.46, "o4-mini": 1.72, "gpt-5-mini": 1.62,
                  "gpt-5-nano": 2.46}
MAX_PATCHES = 1536


def _family(model: str, table: dict) -> str | None:
    # Longest prefix first: "gpt-4o-mini" before "gpt-4o", "gpt-4.1-mini" before "gpt-4.1".
    bare = model.rsplit("/", 1)[-1].lower()
    for key in sorted(table, key=len, reverse=True):
        if bare.startswith(key):
            return key
    return None


def image_patches(width: int, height: int) -> int:
    """32-px patches of an image after OpenAI's downscale to at most 1536 patches."""
    patches = math.ceil(width / 32) * math.ceil(height / 32)
    if patches <= MAX_PATCHES:
        return patches
    shrink = math.sqrt(32 * 32 * MAX_PATCHES / (width * height))
    scaled_w, scaled_h = width * shrink, height * shrink
    # Scale again so the width is a whole number of patches.
    shrink = math.floor(scaled_w / 32) / (scaled_w / 32)
    scaled_w, scaled_h = scaled_w * shrink, scaled_h * shrink
    return min(MAX_PATCHES, math.ceil(scaled_w / 32) * math.ceil(scaled_h / 32))


def image_tiles(width: int, height: int) -> int:
    """512-px tiles of an image after fitting 2048×2048 and scaling its shortest side to 768."""
    w, h = float(width), float(height)
    if max(w, h) > 2048:
        scale = 2048 / max(w, h)
        w, h = w * scale, h * scale
    scale = 768 / min(w, h)
    if scale < 1:
        w, h = w * scale, h * scale
    return math.ceil(w / 512) * math.ceil(h / 512)


def image_tokens(model: str, width: int, height: int, detail: str = "auto") -> int | None:
    """Input tokens one image costs on `model`, or None when its rule is not known."""
    patch = _family(model, _PATCH_FACTORS)
    if patch is not None:
        return math.ceil(image_patches(width, height) * _PATCH_FACTORS[patch])
    tile = _family(model, _TILE_COSTS)
    if tile is None:
        return None
    base, per_tile = _TILE_COSTS[tile]
    if detail == "low":
        return base
    return base + per_tile * image_tiles(width, height)


# Providers whose image tokens follow OpenAI's rule; a compatible server (or a proxy) counts its own way.
RULE_KINDS = ("openai", "azure")


THUMBNAIL_PX = 320


@functools.lru_cache(maxsize=256)
def _thumbnail(data: bytes, px: int) -> bytes:
    with Image.open(io.BytesIO(data)) as image:
        image.seek(0)  # a GIF's first frame
        small = image.convert("RGBA" if image.mode in ("RGBA", "LA", "P") else "RGB")
        small.thumbnail((px, px))
        buf = io.BytesIO()
        small.save(buf, format="PNG")
    return buf.getvalue()


def thumbnail(attachment: Attachment, px: int = THUMBNAIL_PX) -> bytes:
    """A small PNG of an image attachment (at most `px` on its longer side) for the history: a 20 MB photo is not
    sent to the browser again on every rerun. Cached by the bytes (the same image is shrunk once)."""
    return _thumbnail(attachment.data, px)


def forecast(model: str, attachments: list[Attachment], provider_kind: str = "openai") -> tuple[int, int]:
    """(input tokens the images will cost on `model`, how many attachments no rule forecasts: PDFs — the server
    reads their text and a picture of each page — images on models whose rule is not known, and every attachment
    on a provider that does not count by OpenAI's rule)."""
    if provider_kind not in RULE_KINDS:
        return 0, len(attachments)
    tokens = uncounted = 0
    for a in attachments:
        cost = image_tokens(model, a.width, a.height) if a.is_image and a.width and a.height else None
        if cost is None:
            uncounted += 1
        else:
            tokens += cost
    return tokens, uncounted


def chat_part(attachment: Attachment) -> dict:
    """The Chat Completions content part for an attachment."""
    if attachment.is_image:
        return {"type": "image_url", "image_url": {"url": attachment.data_uri()}}
    return {"type": "file", "file": {"filename": attachment.name, "file_data": attachment.data_uri()}}


def responses_part(attachment: Attachment) -> dict:
    """The Responses API input part for an attachment."""
    if attachment.is_image:
        return {"type": "input_image", "image_url": attachment.data_uri(), "detail": "auto"}
    return {"type": "input_file", "filename": attachment.name, "file_data": attachment.data_uri()}


def to_stored(attachment: Attachment) -> dict:
    """The attachment as JSON for the conversation store: the bytes themselves, never a remote URL."""
    return {"name": attachment.name, "media_type": attachment.media_type,
            "data": base64.b64encode(attachment.data).decode("ascii"), "sha256": attachment.sha256,
            "width": attachment.width, "height": attachment.height, "pages": attachment.pages}


def from_stored(stored: dict) -> Attachment:
    """An attachment read back from the store, its bytes checked against the stored SHA-256."""
    data = base64.b64decode(stored["data"], validate=True)
    if hashlib.sha256(data).hexdigest() != stored["sha256"]:
        raise ValueError("stored attachment does not match its SHA-256")
    return Attachment(stored["name"], stored["media_type"], data, stored["sha256"],
                      stored.get("width"), stored.get("height"), stored.get("pages"))


# OpenAI models that take no image input (prefixes). Compatible servers are allowed: a server that refuses images
# answers with an error, which `no_vision_error` turns into one sentence.
_NO_VISION_PREFIXES = ("gpt-3.5", "o1-mini", "o3-mini", "gpt-4-0613", "gpt-4-0314", "babbage", "davinci")


def takes_images(provider_kind: str, model: str) -> bool:
    """Whether an image or PDF may be sent to `model` on this kind of provider (the offline model takes none)."""
    if provider_kind == "local":
        return False
    if provider_kind in ("openai", "azure"):
        bare = model.rsplit("/", 1)[-1].lower()
        return not (bare == "gpt-4" or bare.startswith(_NO_VISION_PREFIXES))
    return True


def no_vision_error(model: str) -> PromptLabError:
    """The one sentence for an attachment sent (or about to be sent) to a model without image input."""
    return PromptLabError("no_vision", _(
        "{model} does not take images or PDFs; remove the attachments or choose a model with vision."
    ).format(model=model))


def looks_like_no_vision(server_message: str) -> bool:
    """Whether a server's error text says it cannot take image / file input (compatible servers word it freely)."""
    said = server_message.lower()
    return any(word in said for word in ("image", "vision", "multimodal", "image_url", "file input")) and any(
        word in said for word in ("not support", "unsupported", "does not", "cannot", "can't", "invalid"))
