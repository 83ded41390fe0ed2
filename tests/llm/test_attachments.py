"""Attachments: checked by content, image-token forecast against OpenAI's documented examples, both wire shapes."""
from __future__ import annotations

import base64
import io

import pytest
from PIL import Image

from core.base.errors import PromptLabError
from core.llm import attachments as att


def _image(fmt: str, size: tuple[int, int] = (40, 30)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, (200, 10, 10)).save(buf, format=fmt)
    return buf.getvalue()


def pdf_bytes(pages: int = 2, user_password: str | None = None, owner_password: str | None = None) -> bytes:
    """A real PDF written by pypdf (blank US-letter pages), optionally encrypted."""
    from pypdf import PdfWriter
    writer = PdfWriter()
    for _ in range(pages):
        writer.add_blank_page(612, 792)
    if user_password is not None:
        writer.encrypt(user_password=user_password, owner_password=owner_password)
    buf = io.BytesIO()
    writer.write(buf)
    return buf.getvalue()


_PDF = pdf_bytes()


@pytest.mark.parametrize("fmt,media", [("PNG", "image/png"), ("JPEG", "image/jpeg"),
                                       ("WEBP", "image/webp"), ("GIF", "image/gif")])
def test_images_are_recognised_by_content_not_name(fmt, media):
    got = att.check_attachment("misnamed.txt", _image(fmt))
    assert got.media_type == media and (got.width, got.height) == (40, 30)


def test_unsupported_type_is_one_sentence():
    with pytest.raises(PromptLabError) as err:
        att.check_attachment("photo.png", _image("BMP"))
    assert err.value.kind == "attachment_type" and "photo.png" in err.value.message
    with pytest.raises(PromptLabError):
        att.check_attachment("notes.png", b"just text")


def test_thirty_megabyte_image_is_refused():
    with pytest.raises(PromptLabError) as err:
        att.check_attachment("big.png", _image("PNG") + b"\0" * (30 * 1024 * 1024))
    assert err.value.kind == "attachment_too_large" and "20 MB" in err.value.message


def test_pdfs_good_corrupt_and_encrypted():
    good = att.check_attachment("invoice.pdf", _PDF)
    assert good.media_type == "application/pdf" and good.pages == 2
    for cut in (60, len(_PDF) // 2, len(_PDF) - 10):  # truncated anywhere, even just its trailer
        with pytest.raises(PromptLabError) as err:
            att.check_attachment("cut.pdf", _PDF[:cut])
        assert err.value.kind == "attachment_pdf_corrupt" and "cut.pdf" in err.value.message
    with pytest.raises(PromptLabError) as err:  # a PDF header over garbage
        att.check_attachment("junk.pdf", b"%PDF-1.7\n" + bytes(range(256)) * 40)
    assert err.value.kind == "attachment_pdf_corrupt"
    with pytest.raises(PromptLabError) as err:
        att.check_attachment("locked.pdf", pdf_bytes(1, user_password="s3cret"))
    assert err.value.kind == "attachment_pdf_locked" and "password" in err.value.message
    # Only an owner password (printing restricted): it opens without one, as in any viewer, so it is accepted.
    assert att.check_attachment("restricted.pdf", pdf_bytes(3, user_password="", owner_password="own")).pages == 3


def test_tile_rule_matches_openai_examples():
    # OpenAI vision guide: 1024×1024 high = 765; 2048×4096 high = 1105; 4096×8192 low = 85.
    assert att.image_tokens("gpt-4o", 1024, 1024, "high") == 765
    assert att.image_tokens("gpt-4o-2024-08-06", 2048, 4096, "high") == 1105
    assert att.image_tokens("gpt-4o", 4096, 8192, "low") == 85
    assert att.image_tokens("gpt-4o-mini", 1024, 1024, "low") == 2833
    # gpt-5 bills tiles at 70 / 140: 1024×1024 high = 70 + 4 × 140; its mini bills patches.
    assert att.image_tokens("gpt-5", 1024, 1024, "high") == 630
    assert att.image_tokens("gpt-5-2025-08-07", 512, 512, "low") == 70
    assert att.image_tokens("gpt-5-mini", 1024, 1024) == 1659
    # A small image is never scaled up: 128×64 is one tile (255 on gpt-4o, as the community's table measured).
    assert att.image_tokens("gpt-4o", 128, 64, "high") == 255
    assert att.image_tokens("gpt-4.1", 128, 64, "low") == 85


def test_patch_rule_matches_openai_examples():
    # 1024×1024 → 1024 patches; 1800×2400 → 1452 patches (downscaled under 1536).
    assert att.image_patches(1024, 1024) == 1024
    assert att.image_patches(1800, 2400) == 1452
    assert att.image_tokens("gpt-4.1-mini", 1024, 1024) == 1659  # ceil(1024 × 1.62)
    assert att.image_tokens("o4-mini", 1800, 2400) == 2498  # ceil(1452 × 1.72)
    assert att.image_tokens("some-local-model", 10, 10) is None


def test_both_wire_shapes_and_store_round_trip():
    image = att.check_attachment("a.png", _image("PNG"))
    pdf = att.check_attachment("b.pdf", _PDF)
    uri = "data:image/png;base64," + base64.b64encode(image.data).decode()
    assert att.chat_part(image) == {"type": "image_url", "image_url": {"url": uri}}
    assert att.responses_part(image)["image_url"] == uri
    assert att.responses_part(image)["type"] == "input_image"
    assert att.chat_part(pdf)["file"]["filename"] == "b.pdf"
    assert att.chat_part(pdf)["file"]["file_data"].startswith("data:application/pdf;base64,")
    assert att.responses_part(pdf)["type"] == "input_file"
    for one in (image, pdf):
        stored = att.to_stored(one)
        assert "http" not in str(stored)
        assert att.from_stored(stored) == one
    tampered = dict(att.to_stored(image), sha256="0" * 64)
    with pytest.raises(ValueError):
        att.from_stored(tampered)


def test_which_models_take_images():
    assert att.takes_images("openai", "gpt-4o-mini") and att.takes_images("openai", "o4-mini")
    assert not att.takes_images("openai", "gpt-3.5-turbo") and not att.takes_images("openai", "o3-mini")
    assert not att.takes_images("local", "smollm2")  # the offline model takes none
    assert att.takes_images("compatible", "anything")  # a compatible server answers for itself
    err = att.no_vision_error("gpt-3.5-turbo")
    assert err.kind == "no_vision" and "gpt-3.5-turbo" in err.message


def test_a_no_vision_server_error_is_recognised():
    from openai import BadRequestError, OpenAI

    from tests.loopback_server import LoopbackServer, no_vision_script
    server = LoopbackServer().start()
    try:
        server.push(no_vision_script())
        client = OpenAI(base_url=server.base_url, api_key="sk-test")
        image = att.check_attachment("a.png", _image("PNG"))
        with pytest.raises(BadRequestError) as err:
            client.chat.completions.create(model="echo-1", messages=[{"role": "user", "content": [
                {"type": "text", "text": "what is this?"}, att.chat_part(image)]}])
        assert att.looks_like_no_vision(str(err.value))
        assert not att.looks_like_no_vision("rate limit reached")
        assert server.content_parts()[0][1]["image_url"]["url"] == image.data_uri()
    finally:
        server.stop()


def test_a_thumbnail_is_small_whatever_the_upload():
    big = att.check_attachment("photo.jpg", _image("JPEG", (4000, 3000)))
    small = Image.open(io.BytesIO(att.thumbnail(big)))
    assert small.size == (320, 240) and small.format == "PNG"
    gif = att.check_attachment("anim.gif", _image("GIF", (64, 32)))
    assert Image.open(io.BytesIO(att.thumbnail(gif))).size == (64, 32)  # never enlarged
