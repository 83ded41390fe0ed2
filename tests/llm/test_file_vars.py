"""core.llm.file_vars: where an attachment variable goes (promptfoo's JSON chat parts, or after the user text),
its stored form, its digest in keys."""
from __future__ import annotations

import hashlib

from core.evals.assertions import render
from core.llm import file_vars
from core.llm.attachments import check_attachment
from core.llm.responses_api import input_items
from tests.loopback_server import tiny_png

IMAGE = check_attachment("cat.png", tiny_png())


def test_promptfoo_json_parts_take_the_data_uri_in_both_spellings():
    for url in ("{{image}}", "data:image/png;base64,{{ image }}"):
        template = [{"role": "user", "content": [{"type": "text", "text": "What is this {{thing}}?"},
                                                 {"type": "image_url", "image_url": {"url": url, "detail": "low"}}]}]
        (message,) = file_vars.place_files(template, {"image": IMAGE, "thing": "animal"}, render)
        assert message["content"] == [
            {"type": "text", "text": "What is this animal?"},
            {"type": "image_url", "image_url": {"url": IMAGE.data_uri(), "detail": "low"}}]


def test_a_responses_shaped_prompt_part_is_placed_too():
    template = [{"role": "user", "content": [{"type": "input_image", "image_url": "{{image}}"}]}]
    (message,) = file_vars.place_files(template, {"image": IMAGE}, render)
    _, items = input_items([message])
    assert items[0]["content"] == [{"type": "input_image", "image_url": IMAGE.data_uri(), "detail": "auto"}]


def test_the_simple_rule_once_per_message_and_system_mentions_go_to_the_last_user_message():
    template = [{"role": "system", "content": "Read {{image}} carefully."},
                {"role": "user", "content": "first"},
                {"role": "user", "content": "{{image}} and again {{image}}"}]
    system, first, last = file_vars.place_files(template, {"image": IMAGE}, render)
    assert system["content"] == "Read [cat.png] carefully." and first["content"] == "first"
    assert last["content"] == [{"type": "text", "text": "[cat.png] and again [cat.png]"},
                               {"type": "image_url", "image_url": {"url": IMAGE.data_uri()}}]
    (only,) = file_vars.place_files([{"role": "user", "content": "no files here"}], {"image": IMAGE}, render)
    assert only["content"] == "no files here"  # a file var nobody names is not sent


def test_refs_and_digests_never_carry_the_bytes():
    ref = file_vars.plain_vars({"image": IMAGE, "q": "hi"})
    assert ref == {"image": {"file": "cat.png", "media_type": "image/png", "size": len(IMAGE.data),
                             "sha256": IMAGE.sha256, "width": 8, "height": 8}, "q": "hi"}
    assert file_vars.is_ref(ref["image"])
    digested = file_vars.digested({"messages": [{"url": IMAGE.data_uri()}], "text": "plain"})
    assert digested == {"messages": [{"url": f"image/png;sha256:{hashlib.sha256(IMAGE.data).hexdigest()}"}],
                        "text": "plain"}
