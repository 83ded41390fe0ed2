"""Images: parameter validation, cost, generation through the gate, the gallery, and the page (AppTest)."""
import hashlib
import io
from pathlib import Path

import pytest
from PIL import Image
from streamlit.testing.v1 import AppTest

from core.base.errors import PromptLabError
from core.calls.gate import CallContext
from core.images.gallery import Gallery
from core.images.generation import ImageRequest, estimate_cost, generate, image_models, validate
from core.llm.providers import Provider
from tests.conftest import TEST_KEY
from tests.loopback_server import Script

APP = str(Path(__file__).resolve().parents[2] / "app.py")


def content_id(data: bytes, mimetype: str, filename: str | None = None) -> str:
    """A media id as Streamlit computes it from a file alone (blake2b-128 of the length, the bytes, the type and
    the file name; files up to 1 MiB): what anyone holding the image could compute."""
    digest = hashlib.blake2b(digest_size=16)
    digest.update(f"{len(data)}:".encode())
    digest.update(data)
    digest.update(mimetype.encode())
    if filename is not None:
        digest.update(filename.encode())
    return digest.hexdigest()


REFUSAL = Script(path="/v1/images/generations", status=400, error_code="moderation_blocked",
                 error_message="Your request was rejected by the safety system. safety_violations=[violence].")


def test_validation():
    assert validate(ImageRequest("gpt-image-1", "a cat")) == []
    assert "Write a prompt" in validate(ImageRequest("gpt-image-1", " "))[0]
    assert any("1 to 10" in p for p in validate(ImageRequest("gpt-image-1", "x", n=11)))
    assert any("size '512x512'" in p for p in validate(ImageRequest("gpt-image-1", "x", size="512x512")))
    assert any("transparent" in p for p in validate(ImageRequest("gpt-image-1", "x", background="transparent",
                                                                 output_format="jpeg")))
    params = ImageRequest("gpt-image-1", "x", output_format="webp", output_compression=70).api_params()
    assert params["output_compression"] == 70
    assert "output_compression" not in ImageRequest("gpt-image-1", "x", output_compression=70).api_params()
    assert image_models(["gpt-4o", "gpt-image-1", "dall-e-3"]) == ["gpt-image-1"]


def test_cost_estimate_by_quality_size_and_count():
    low = estimate_cost(ImageRequest("gpt-image-1", "a cat", quality="low", size="1024x1024"), "openai")
    high = estimate_cost(ImageRequest("gpt-image-1", "a cat", quality="high", size="1536x1024", n=2), "openai")
    assert low == pytest.approx(272 * 40e-6 + 2 * 5e-6, rel=0.05)  # 272 image tokens at $40/M
    assert high == pytest.approx(2 * 6208 * 40e-6, rel=0.01)
    assert estimate_cost(ImageRequest("gpt-image-1", "a cat"), None) is None


def test_generate_logs_and_prices_from_usage(provider, ctx, log):
    openai_provider = Provider("openai", provider.base_url, TEST_KEY, timeout_s=5, max_retries=0)
    result = generate(openai_provider, ImageRequest("gpt-image-1", "a blue square", n=2, output_format="jpeg"),
                      CallContext("images"), log)
    assert len(result.images) == 2 and Image.open(io.BytesIO(result.images[0])).format == "JPEG"
    assert result.mime == "image/jpeg" and not result.cost_estimated
    rec = log.get(result.request_id)
    assert rec.page == "images" and rec.images == 2 and rec.output_tokens == 544 and rec.input_tokens == 10
    assert rec.cost_usd == pytest.approx(result.cost_usd) and result.cost_usd > 0


@pytest.mark.parametrize("script, kind, words", [
    (REFUSAL, "content_policy", "safety_violations=[violence]"),
    (Script(path="/v1/images/generations", status=400, error_message="Invalid size '9x9'.", error_code=None),
     "unsupported_size", "size"),
    (Script(path="/v1/images/generations", status=429), "rate_limited", "429"),
    (Script(path="/v1/images/generations", first_byte_delay=1.0), "timeout", "0.3 s"),
])
def test_image_errors_are_one_sentence_and_logged(server, log, script, kind, words):
    server.push(script)
    provider = Provider("compatible", server.base_url, TEST_KEY, timeout_s=0.3, max_retries=0)
    with pytest.raises(PromptLabError) as info:
        generate(provider, ImageRequest("gpt-image-1", "a storm"), CallContext("images"), log)
    assert info.value.kind == kind and words in info.value.message
    assert log.recent(1)[0].error_type == kind and log.recent(1)[0].page == "images"


def test_local_provider_cannot_make_images(log):
    with pytest.raises(PromptLabError) as info:
        generate(Provider("local"), ImageRequest("gpt-image-1", "x"), CallContext("images"), log)
    assert info.value.kind == "no_images" and "Settings" in info.value.message


def test_gallery_keeps_searches_and_deletes(provider, log, db_url, tmp_path):
    gallery = Gallery(db_url, tmp_path)
    request = ImageRequest("gpt-image-1", "A lighthouse at night", n=3)
    kept = gallery.add(request, generate(provider, request, CallContext("images"), log), "ana")
    assert len(kept) == 3 and all(Path(k.path).exists() for k in kept)
    again = Gallery(db_url, tmp_path)  # a restart
    images, total = again.search("LIGHTHOUSE")
    assert total == 3 and images[0].read().startswith(b"\x89PNG") and images[0].params["n"] == 3
    assert again.search("volcano") == ([], 0)
    again.delete(kept[0].id)
    assert again.search()[1] == 2 and not Path(kept[0].path).exists()


@pytest.fixture
def images_page(app_env, tmp_path, monkeypatch) -> AppTest:
    monkeypatch.setenv("PROMPTLAB_DATA_DIR", str(tmp_path / "data"))
    at = AppTest.from_file(APP, default_timeout=60).run()
    at.switch_page("pages/images.py").run()
    assert not at.exception
    return at


def test_page_generate_gallery_delete(images_page, app_env):
    at = images_page
    at.text_area(key="img_prompt").set_value("A red bicycle").run()
    at.number_input(key="img_n").set_value(2).run()
    assert any("Estimated cost" in c.value for c in at.caption)
    at.button(key="img_generate").click().run()
    assert not at.exception and not at.error
    assert len(at.get("image")) == 2  # each new image once: under "Just generated", not again in the gallery
    assert any("Images · " in c.value or "2 image(s)" in c.value for c in at.caption)
    assert not [n for n in at.number_input if n.key == "img_page"]  # one page: no page selector
    delete = next(b for b in at.button if b.key and b.key.startswith("del_new_"))
    delete.click().run()
    assert not at.exception
    assert Gallery(app_env["PROMPTLAB_DB_URL"], "unused").search()[1] == 1


def test_page_refusal_keeps_the_prompt(images_page, server):
    server.push(REFUSAL)
    images_page.text_area(key="img_prompt").set_value("something violent").run()
    images_page.button(key="img_generate").click().run()
    assert "safety system refused" in images_page.error[0].value
    assert images_page.text_area(key="img_prompt").value == "something violent"


def test_page_with_the_offline_model_says_how_to_configure(offline_env, tmp_path, monkeypatch):
    monkeypatch.setenv("PROMPTLAB_DATA_DIR", str(tmp_path))
    at = AppTest.from_file(APP, default_timeout=60).run()
    at.switch_page("pages/images.py").run()
    assert not at.exception and "cannot make images" in at.info[0].value


def test_page_variations_regenerate_with_the_same_prompt(images_page, server, app_env):
    images_page.text_area(key="img_prompt").set_value("A green kite").run()
    images_page.selectbox(key="img_quality").set_value("low").run()
    images_page.button(key="img_generate").click().run()
    next(b for b in images_page.button if b.key and b.key.startswith("var_new_")).click().run()
    assert not images_page.exception
    bodies = [r["body"] for r in server.requests if r["path"] == "/v1/images/generations"]
    assert len(bodies) == 2 and bodies[1]["prompt"] == "A green kite" and bodies[1]["quality"] == "low"
    assert Gallery(app_env["PROMPTLAB_DB_URL"], "unused").search("kite")[1] == 2


def test_the_first_click_after_typing_generates_and_an_empty_prompt_says_why(images_page, server):
    assert not images_page.button(key="img_generate").disabled  # no blur needed before the click
    images_page.button(key="img_generate").click().run()  # nothing typed: one sentence, no call
    assert images_page.error and not [r for r in server.requests if r["path"] == "/v1/images/generations"]
    images_page.text_area(key="img_prompt").set_value("A blue boat")
    images_page.button(key="img_generate").click().run()  # typed and clicked in one go
    assert [r["body"]["prompt"] for r in server.requests if r["path"] == "/v1/images/generations"] == ["A blue boat"]
    server.push(REFUSAL)
    images_page.text_area(key="img_prompt").set_value("something violent")
    images_page.button(key="img_generate").click().run()
    assert "safety system refused" in images_page.error[0].value
    assert not [s for s in images_page.subheader if s.value == "Just generated"]  # no stale images after a refusal


def test_the_pages_images_and_downloads_are_served_under_ids_no_one_can_compute(images_page, app_env, monkeypatch):
    """Row 7: Streamlit named media files by a hash of their bytes, so whoever had an image had its /media URL.
    Every file the Images page hands Streamlit (the picture, its download) gets an id that is no such hash, and
    on disk the gallery keeps random ids, not content hashes."""
    from streamlit.runtime.memory_media_file_storage import MemoryMediaFileStorage

    served: list[tuple[bytes, str, str | None, str]] = []
    original = MemoryMediaFileStorage.load_and_get_id

    def spy(self, data, mimetype, kind, filename=None):  # records what Streamlit stores, changes nothing
        file_id = original(self, data, mimetype, kind, filename)
        served.append((data, mimetype, filename, file_id))
        return file_id

    monkeypatch.setattr(MemoryMediaFileStorage, "load_and_get_id", spy)
    at = images_page
    at.text_area(key="img_prompt").set_value("A private lighthouse").run()
    at.button(key="img_generate").click().run()
    assert not at.exception and len(at.get("image")) == 1
    kinds = {mimetype for _, mimetype, _, _ in served}
    assert any(m.startswith("image/") for m in kinds) and any(f for _, _, f, _ in served)  # picture and download
    for data, mimetype, filename, file_id in served:
        assert file_id != content_id(data, mimetype, filename), (mimetype, filename)
    first = {(d, m, f): i for d, m, f, i in served}
    served.clear()
    at.run()  # a rerun of the same session: the same files keep their ids (the browser does not reload them)
    assert {(d, m, f): i for d, m, f, i in served} == first
    image = Gallery(app_env["PROMPTLAB_DB_URL"], "unused").search()[0][0]
    assert Path(image.path).stem == image.id and Path(image.path).stem != hashlib.sha256(image.read()).hexdigest()


# ----- image edits -------------------------------------------------------------------------------------------

def encoded(fmt: str, size: tuple[int, int] = (8, 8), mode: str = "RGB") -> bytes:
    out = io.BytesIO()
    Image.new(mode, size, (10, 20, 30) if mode == "RGB" else (10, 20, 30, 0)).save(out, format=fmt)
    return out.getvalue()


def test_an_edit_goes_through_the_gate_costed_and_into_the_gallery(server, log, db_url, tmp_path):
    from core.images.generation import check_upload, edit

    openai_provider = Provider("openai", server.base_url, TEST_KEY, timeout_s=5, max_retries=0)
    request = ImageRequest("gpt-image-1", "make the sky red")
    image, mask = check_upload(encoded("PNG")), check_upload(encoded("PNG", mode="RGBA"))
    result = edit(openai_provider, request, image, mask, CallContext("images"), log)
    sent = [r for r in server.requests if r["path"] == "/v1/images/edits"][-1]["body"]
    assert sent["prompt"] == "make the sky red" and sent["model"] == "gpt-image-1" and "moderation" not in sent
    assert sent["_files"]["image"][0]["head"].startswith(b"\x89PNG") and sent["_files"]["mask"][0]["size"] > 0
    rec = log.get(result.request_id)
    assert rec.page == "images" and rec.images == 1 and rec.input_tokens == 75 and rec.output_tokens == 272
    assert rec.cost_usd == pytest.approx(result.cost_usd) and result.cost_usd > 0 and not result.cost_estimated
    logged = log.texts(result.request_id).request
    assert logged["edit"] == {"image_bytes": len(image.data), "image_kind": "png", "mask": True}
    kept = Gallery(db_url, tmp_path).add(ImageRequest("gpt-image-1", "make the sky red", edit=True), result, None)
    assert kept[0].params["edit"] is True and Path(kept[0].path).read_bytes() == result.images[0]


@pytest.mark.parametrize("data", [
    b"",  # nothing
    b"GIF89a" + b"\0" * 64,  # a format the edits endpoint does not take
    b"<svg xmlns='http://www.w3.org/2000/svg'/>",  # script-bearing text posing as an image
    b"\x89PNG\r\n\x1a\n" + b"\0" * 64,  # PNG magic, corrupt body
    b"\x89PNG\r\n\x1a\n" + b"\0" * (20 * 1024 * 1024),  # over 20 MB
], ids=["empty", "gif", "svg", "corrupt-png", "over-20-MB"])
def test_an_upload_that_is_not_a_bounded_png_jpeg_or_webp_is_refused_in_one_sentence(data):
    from core.images.generation import check_upload

    with pytest.raises(PromptLabError, match="must be a PNG, JPEG or WebP image of at most 20 MB"):
        check_upload(data)


def test_a_decompression_bomb_and_a_mismatched_mask_are_refused(server, log):
    from core.images.generation import check_upload, edit

    with pytest.raises(PromptLabError, match="40 million pixels"):
        check_upload(_huge_png())
    openai_provider = Provider("openai", server.base_url, TEST_KEY, timeout_s=5, max_retries=0)
    with pytest.raises(PromptLabError, match="mask must be a PNG of the same size"):
        edit(openai_provider, ImageRequest("gpt-image-1", "x"), check_upload(encoded("JPEG")),
             check_upload(encoded("PNG", size=(4, 4))), CallContext("images"), log)
    assert not [r for r in server.requests if r["path"] == "/v1/images/edits"]  # nothing was sent


def _huge_png() -> bytes:
    """A tiny file that claims 7000×7000 pixels: under Pillow's own bomb limit, over ours."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
    header = struct.pack(">IIBBBBB", 7000, 7000, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"")) + chunk(b"IEND", b"")


def test_page_edits_an_uploaded_image_into_the_gallery(images_page, server, app_env):
    at = images_page
    at.radio(key="img_mode").set_value("edit").run()
    at.text_area(key="img_prompt").set_value("Make the sky red").run()
    at.file_uploader(key="img_edit_image").set_value(("photo.png", encoded("PNG"), "image/png")).run()
    at.button(key="img_edit").click().run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    assert [r for r in server.requests if r["path"] == "/v1/images/edits"]
    assert len(at.get("image")) == 1
    kept = Gallery(app_env["PROMPTLAB_DB_URL"], "unused").search()[0]
    assert len(kept) == 1 and kept[0].params["edit"] is True and kept[0].prompt == "Make the sky red"
    assert any(c.value.startswith("edit · gpt-image") for c in at.caption)


def test_page_refuses_a_disguised_upload_in_one_sentence_and_keeps_the_prompt(images_page, server):
    at = images_page
    at.radio(key="img_mode").set_value("edit").run()
    at.text_area(key="img_prompt").set_value("Make the sky red").run()
    at.file_uploader(key="img_edit_image").set_value(("photo.png", b"<svg onload='x'/>", "image/png")).run()
    at.button(key="img_edit").click().run()
    assert not at.exception
    assert "must be a PNG, JPEG or WebP image" in at.error[0].value
    assert at.text_area(key="img_prompt").value == "Make the sky red"
    assert not [r for r in server.requests if r["path"] == "/v1/images/edits"]
