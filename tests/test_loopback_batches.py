"""The loopback server's Files and Batch APIs through the real openai SDK: every object parses with the SDK's own
types (FileObject, Batch), a batch completes after the configured polls with the chat route's echo in its output,
failing lines land in the error file, expiry keeps partial output, cancel, and a server without the Batch API."""
from __future__ import annotations

import json

import openai
import pytest
from openai.types import Batch, FileObject
from openai.types.chat import ChatCompletion

from tests.conftest import TEST_KEY


def client(server) -> openai.OpenAI:
    return openai.OpenAI(api_key=TEST_KEY, base_url=server.base_url, max_retries=0)


def lines(n: int, model: str = "gpt-4o-mini") -> bytes:
    return "".join(json.dumps({"custom_id": f"c{i}", "method": "POST", "url": "/v1/chat/completions",
                               "body": {"model": model, "messages": [{"role": "user", "content": f"q{i}"}]}}) + "\n"
                   for i in range(n)).encode()


def submit(server, data: bytes) -> tuple[openai.OpenAI, Batch]:
    c = client(server)
    uploaded = c.files.create(file=("in.jsonl", data), purpose="batch")
    assert isinstance(uploaded, FileObject) and uploaded.purpose == "batch" and uploaded.bytes == len(data)
    batch = c.batches.create(input_file_id=uploaded.id, endpoint="/v1/chat/completions", completion_window="24h")
    return c, batch


def jsonl(c: openai.OpenAI, file_id: str | None) -> list[dict]:
    return [json.loads(x) for x in c.files.content(file_id).text.splitlines()] if file_id else []


def test_a_batch_completes_after_its_polls_with_the_echo_of_each_line(server):
    server.batch.polls = 3
    c, batch = submit(server, lines(3))
    assert batch.status == "validating" and batch.input_file_id
    seen = [c.batches.retrieve(batch.id) for _ in range(3)]
    assert [b.status for b in seen] == ["in_progress", "in_progress", "completed"]
    done = Batch.model_validate(seen[-1].model_dump())
    assert done.request_counts is not None and (done.request_counts.completed, done.request_counts.failed) == (3, 0)
    assert done.error_file_id is None
    out = jsonl(c, done.output_file_id)
    assert [o["custom_id"] for o in out] == ["c0", "c1", "c2"]
    first = ChatCompletion.model_validate(out[0]["response"]["body"])
    assert out[0]["response"]["status_code"] == 200 and out[0]["error"] is None
    assert first.choices[0].message.content == "Echo: q0" and first.usage and first.usage.prompt_tokens > 0


def test_failing_lines_go_to_the_error_file(server):
    server.batch.polls, server.batch.fail_ids = 1, {"c1"}
    c, batch = submit(server, lines(3))
    done = c.batches.retrieve(batch.id)
    assert done.status == "completed" and done.request_counts.failed == 1
    errors = jsonl(c, done.error_file_id)
    assert [(e["custom_id"], e["response"]["status_code"]) for e in errors] == [("c1", 400)]
    assert [o["custom_id"] for o in jsonl(c, done.output_file_id)] == ["c0", "c2"]


def test_an_expired_batch_keeps_partial_output_and_reports_the_rest_as_expired(server):
    server.batch.polls, server.batch.expire_after = 1, 2
    c, batch = submit(server, lines(5))
    done = c.batches.retrieve(batch.id)
    assert done.status == "expired" and done.expired_at
    assert len(jsonl(c, done.output_file_id)) == 2
    assert {e["error"]["code"] for e in jsonl(c, done.error_file_id)} == {"batch_expired"}


def test_cancel_moves_through_cancelling_and_keeps_the_lines_that_finished(server):
    server.batch.polls, server.batch.done_before_cancel = 5, 1
    c, batch = submit(server, lines(3))
    assert c.batches.cancel(batch.id).status == "cancelling"
    done = c.batches.retrieve(batch.id)
    assert done.status == "cancelled" and len(jsonl(c, done.output_file_id)) == 1
    with pytest.raises(openai.ConflictError):
        c.batches.cancel(batch.id)


def test_a_bad_input_file_fails_the_batch_with_its_lines_named(server):
    c, batch = submit(server, b'{"custom_id": "a"}\nnot json\n')
    assert batch.status == "failed" and batch.errors and [e.line for e in batch.errors.data] == [1, 2]


def test_a_server_without_the_batch_api_answers_404(server):
    server.batch.supported = False
    with pytest.raises(openai.NotFoundError):
        client(server).files.create(file=("in.jsonl", lines(1)), purpose="batch")
