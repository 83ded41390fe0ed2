"""Image generation and editing with the gpt-image models: which parameters each model takes, validation, cost
(estimated before, from the response's usage after, via genai-prices), the checks an uploaded image passes and the
generation and edit calls through the gate.
"""
from __future__ import annotations

import base64
import io
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from genai_prices import Usage, calc_price

from core.base.errors import PromptLabError
from core.base.i18n import _
from core.calls.gate import CallContext, logged_call
from core.calls.log import CallLog, CallRecord, CallTexts
from core.llm.custom_prices import ensure_loaded as custom_ensure_loaded
from core.llm.custom_prices import image_price
from core.llm.providers import Provider
from core.llm.tokens import count_text

SIZES = ("auto", "1024x1024", "1536x1024", "1024x1536")
QUALITIES = ("auto", "low", "medium", "high")
BACKGROUNDS = ("auto", "opaque", "transparent")
FORMATS = ("png", "jpeg", "webp")
MODERATION = ("auto", "low")
MIME = {"png": "image/png", "jpeg": "image/jpeg", "webp": "image/webp"}
# An uploaded image to edit is attacker-controlled bytes: bounded in size and in pixels, and only these formats,
# recognised by their content (never by the file name).
MAX_UPLOAD_BYTES = 20 * 1024 * 1024
MAX_UPLOAD_PIXELS = 40_000_000
UPLOAD_KINDS = ("png", "jpeg", "webp")
_MAGIC = ((b"\x89PNG\r\n\x1a\n", "png"), (b"\xff\xd8\xff", "jpeg"))


@dataclass(frozen=True)
class ImageModel:
    """What an image model accepts."""

    id: str
    sizes: tuple[str, ...] = SIZES
    qualities: tuple[str, ...] = QUALITIES
    backgrounds: tuple[str, ...] = BACKGROUNDS
    formats: tuple[str, ...] = FORMATS
    max_n: int = 10
    moderation: bool = True


IMAGE_MODELS = {m.id: m for m in (ImageModel("gpt-image-1"), ImageModel("gpt-image-1-mini"),
                                  ImageModel("gpt-image-1.5"))}
# Output image tokens by quality and size, from OpenAI's gpt-image pricing guide (auto is priced as medium, square).
_IMAGE_TOKENS = {
    "low": {"1024x1024": 272, "1024x1536": 408, "1536x1024": 400},
    "medium": {"1024x1024": 1056, "1024x1536": 1584, "1536x1024": 1568},
    "high": {"1024x1024": 4160, "1024x1536": 6240, "1536x1024": 6208},
}


@dataclass
class ImageRequest:
    """One generation: prompt and every parameter (None = the model's default)."""

    model: str
    prompt: str
    n: int = 1
    size: str = "auto"
    quality: str = "auto"
    background: str = "auto"
    output_format: str = "png"
    output_compression: int | None = None
    moderation: str = "auto"
    edit: bool = False  # an edit of an uploaded image (images.edit), not a generation

    def api_params(self) -> dict[str, Any]:
        params: dict[str, Any] = {"model": self.model, "prompt": self.prompt, "n": self.n, "size": self.size,
                                  "quality": self.quality, "background": self.background,
                                  "output_format": self.output_format, "moderation": self.moderation}
        if self.output_format in ("jpeg", "webp") and self.output_compression is not None:
            params["output_compression"] = self.output_compression
        if self.edit:
            del params["moderation"]  # the edits endpoint has no moderation parameter
        return params


def model_spec(model: str) -> ImageModel:
    """The model's parameters; an unknown id (a newer gpt-image, a compatible server's) gets the gpt-image set."""
    return IMAGE_MODELS.get(model, ImageModel(model))


def image_models(listed: list[str]) -> list[str]:
    """Image models among a provider's model ids (the known ones when the list has none)."""
    found = sorted(m for m in listed if "image" in m.lower() and "dall-e" not in m.lower())
    return found or list(IMAGE_MODELS)


def validate(request: ImageRequest) -> list[str]:
    """Problems with the request, each a sentence; empty when it can be sent."""
    spec = model_spec(request.model)
    problems = []
    if not request.prompt.strip():
        problems.append(_("Write a prompt describing the image."))
    if not 1 <= request.n <= spec.max_n:
        problems.append(_('Ask for 1 to {max_n} images.').format(max_n=spec.max_n))
    for name, allowed in (("size", spec.sizes), ("quality", spec.qualities), ("background", spec.backgrounds),
                          ("output_format", spec.formats)):
        if getattr(request, name) not in allowed:
            problems.append(_("{model} does not take {name} {value!r}.").format(
                model=request.model, name=name, value=getattr(request, name)))
    if request.background == "transparent" and request.output_format == "jpeg":
        problems.append(_("A transparent background needs PNG or WebP output."))
    if request.output_compression is not None and not 0 <= request.output_compression <= 100:
        problems.append(_("Compression goes from 0 to 100."))
    return problems


def _price(model: str, usage: Usage, provider_id: str | None) -> float | None:
    if provider_id is None:
        return None
    try:
        return float(calc_price(usage, model, provider_id=provider_id).total_price)
    except LookupError:
        return None


def estimate_cost(request: ImageRequest, provider_id: str | None) -> float | None:
    """Cost before generating: prompt tokens plus the image tokens of the quality and size, per image."""
    quality = "medium" if request.quality == "auto" else request.quality
    size = "1024x1024" if request.size == "auto" else request.size
    image_tokens = _IMAGE_TOKENS[quality].get(size, _IMAGE_TOKENS[quality]["1024x1024"]) * request.n
    usage = Usage(input_tokens=count_text(request.prompt, "gpt-4o"), output_tokens=image_tokens,
                  output_image_tokens=image_tokens)
    return _price(request.model, usage, provider_id)


@dataclass
class ImageResult:
    """Generated images (bytes) with what they cost; `cost_estimated` when the response carried no usage."""

    images: list[bytes]
    mime: str
    cost_usd: float | None
    cost_estimated: bool
    request_id: str
    revised_prompts: list[str | None] = field(default_factory=list)


def generate(provider: Provider, request: ImageRequest, context: CallContext, log: CallLog) -> ImageResult:
    """Generate through the gate (page `images`, images = count, tokens, cost, latency); PromptLabError on failure."""
    request = replace(request, edit=False)
    return _through_gate(provider, request, context, log, lambda c: c.images.generate(**request.api_params()),
                         {"images": asdict(request)})


@dataclass(frozen=True)
class Upload:
    """An uploaded image that passed the checks: its bytes, kind (png | jpeg | webp) and pixel size."""

    data: bytes
    kind: str
    width: int | None = None
    height: int | None = None


def _sniff(data: bytes) -> str | None:
    for magic, kind in _MAGIC:
        if data.startswith(magic):
            return kind
    return "webp" if data[:4] == b"RIFF" and data[8:12] == b"WEBP" else None


def check_upload(data: bytes, what: str = "image") -> Upload:
    """The uploaded bytes as an image to edit, or PromptLabError with one sentence: at most 20 MB, PNG, JPEG or
    WebP by content (Pillow parses the header and verifies the file), at most 40 million pixels."""
    refused = _("The {what} must be a PNG, JPEG or WebP image of at most 20 MB and 40 million pixels.").format(
        what=what)
    if not data or len(data) > MAX_UPLOAD_BYTES:
        raise PromptLabError("bad_request", refused)
    try:
        from PIL import Image
    except ImportError:  # without Pillow the magic bytes decide
        kind = _sniff(data)
        if kind is None:
            raise PromptLabError("bad_request", refused) from None
        return Upload(data, kind)
    try:
        with Image.open(io.BytesIO(data)) as img:
            kind = (img.format or "").lower()
            width, height = img.size
            if kind not in UPLOAD_KINDS or width * height > MAX_UPLOAD_PIXELS:
                raise PromptLabError("bad_request", refused)
            img.verify()  # a truncated or corrupt file is refused here, not by the provider
    except PromptLabError:
        raise
    except Exception:  # any Pillow failure (not an image, decompression bomb, corrupt) is the same refusal
        raise PromptLabError("bad_request", refused) from None
    return Upload(data, kind, width, height)


def edit(provider: Provider, request: ImageRequest, image: Upload, mask: Upload | None, context: CallContext,
         log: CallLog) -> ImageResult:
    """Edit an uploaded image (with an optional mask: a PNG of the same size whose transparent pixels mark
    what to change) through the gate, costed like a generation; PromptLabError on failure."""
    request = replace(request, edit=True)
    if mask is not None and (mask.kind != "png" or (mask.width, mask.height) != (image.width, image.height)):
        raise PromptLabError("bad_request", _("The mask must be a PNG of the same size as the image."))
    files: dict[str, Any] = {"image": (f"image.{image.kind}", image.data, MIME[image.kind])}
    if mask is not None:
        files["mask"] = ("mask.png", mask.data, "image/png")
    texts = {"images": asdict(request), "edit": {"image_bytes": len(image.data), "image_kind": image.kind,
                                                 "mask": mask is not None}}  # never the bytes themselves
    return _through_gate(provider, request, context, log, lambda c: c.images.edit(**files, **request.api_params()),
                         texts)


def _through_gate(provider: Provider, request: ImageRequest, context: CallContext, log: CallLog,
                  call: Callable[[Any], Any], logged: dict[str, Any]) -> ImageResult:
    if provider.kind == "local":
        raise PromptLabError("no_images", _("The offline model cannot make images: add an OpenAI key in Settings "
                                          "(or point OPENAI_BASE_URL at a server with an images endpoint)."))
    problems = validate(request)
    if problems:
        raise PromptLabError("bad_request", problems[0])
    estimate = estimate_cost(request, provider.pricing_id)

    custom_ensure_loaded(log.engine)
    per_image = image_price(provider.pricing_id, request.model)

    def describe(response: Any, record: CallRecord) -> None:
        record.images = len(response.data or [])
        if per_image is not None:  # a custom price per image (Settings) wins over the token price
            record.cost_usd = per_image * record.images
            usage = getattr(response, "usage", None)
            if usage is not None:
                record.input_tokens, record.output_tokens = usage.input_tokens, usage.output_tokens
            return
        usage = getattr(response, "usage", None)
        if usage is not None:
            details = getattr(usage, "input_tokens_details", None)
            record.input_tokens, record.output_tokens = usage.input_tokens, usage.output_tokens
            record.cost_usd = _price(request.model, Usage(
                input_tokens=usage.input_tokens, input_image_tokens=getattr(details, "image_tokens", None) or None,
                output_tokens=usage.output_tokens, output_image_tokens=usage.output_tokens), provider.pricing_id)
        else:
            record.cost_usd, record.tokens_estimated = estimate, True

    response, record = logged_call(provider, context, log, call, model=request.model, operation="images",
                                   describe=describe, texts=CallTexts(logged),
                                   endpoint="images.edit" if request.edit else "images.generate")
    images = [base64.b64decode(item.b64_json) for item in response.data or [] if item.b64_json]
    if not images:
        raise PromptLabError("malformed", _("The provider answered without image data: try again."))
    return ImageResult(images, MIME.get(request.output_format, "image/png"), record.cost_usd,
                       record.tokens_estimated, record.request_id,
                       [getattr(item, "revised_prompt", None) for item in response.data])
