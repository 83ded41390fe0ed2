"""The loopback server's /v1/responses route: the Responses API's event sequence, streamed and not.

Kept beside tests/loopback_server.py (which only routes here) so the wire shapes of one endpoint live in one file:
response.created → in_progress → per output item (reasoning summary, message text, function calls) its added /
delta / done events → response.completed with usage (cached and reasoning tokens), each with its sequence_number.
Faults come from the same `Script` as the chat route: cut stream, malformed events, slow chunks.
"""
from __future__ import annotations

import json
import threading
import time
import uuid
from typing import Any, Callable

# Responses the server created with `store` true, by id: the input items and the answer, which a later request's
# `previous_response_id` continues (OpenAI keeps them 30 days; here, for the process).
STORED: dict[str, list[dict[str, Any]]] = {}
_current = threading.local()  # the id of the response being answered on this thread


def input_text(body: dict[str, Any]) -> str:
    """The newest user text of a Responses request (`input` a string or a list of items), with how many images
    and files came with it, as the chat route echoes them."""
    from tests.loopback_server import echo_of
    given = body.get("input", "")
    if isinstance(given, str):
        return given
    for item in reversed(given or []):
        if item.get("role") == "user" and item.get("type", "message") == "message":
            return echo_of(item.get("content", "")).removeprefix("Echo: ")
    return ""


def count_input_tokens(body: dict[str, Any]) -> int:
    """Words of the instructions and every input item, like the chat route's count (an image or file part counted
    as the chat route counts it, never its base64)."""
    from tests.loopback_server import media_tokens, text_of
    given = body.get("input") or ""
    items = given if isinstance(given, list) else [{"content": given}]
    media = sum(media_tokens(i.get("content")) for i in items if isinstance(i, dict))
    plain = [{**i, "content": text_of(i["content"])} if isinstance(i, dict) and isinstance(i.get("content"), list)
             else i for i in items]
    return len(json.dumps([body.get("instructions") or "", plain]).split()) + 3 + media


def _response(body: dict[str, Any], model: str, status: str, output: list[dict[str, Any]],
              usage: dict[str, Any] | None) -> dict[str, Any]:
    return {"id": getattr(_current, "id", "resp_loopback"), "object": "response", "created_at": int(time.time()), "status": status,
            "model": model, "output": output, "parallel_tool_calls": True, "tool_choice": body.get("tool_choice", "auto"),
            "tools": body.get("tools", []), "instructions": body.get("instructions"), "error": None,
            "incomplete_details": None, "metadata": {}, "temperature": body.get("temperature", 1.0),
            "top_p": body.get("top_p", 1.0), "max_output_tokens": body.get("max_output_tokens"),
            "previous_response_id": body.get("previous_response_id"), "reasoning": body.get("reasoning"),
            "text": body.get("text") or {"format": {"type": "text"}}, "truncation": "disabled",
            "usage": usage, "user": None, "store": body.get("store", True)}


def plan(body: dict[str, Any], script: Any, model: str) -> tuple[list[dict[str, Any]], list[dict[str, Any]],
                                                                    dict[str, Any]]:
    """(events between in_progress and completed, the final output items, usage)."""
    if script.chunks is not None:
        pieces = [f"w{i} " for i in range(script.chunks)]
    else:
        text = script.reply if script.reply is not None else f"Echo: {input_text(body)}"
        pieces = [w + " " for w in text.split(" ")]
        pieces[-1] = pieces[-1][:-1]
    events: list[dict[str, Any]] = []
    output: list[dict[str, Any]] = []
    summary = getattr(script, "reasoning_summary", None)
    if summary is not None:
        index = len(output)
        item = {"type": "reasoning", "id": "rs_loopback", "summary": []}
        events.append({"type": "response.output_item.added", "output_index": index, "item": item})
        ids = {"item_id": item["id"], "output_index": index, "summary_index": 0}
        events.append({"type": "response.reasoning_summary_part.added", **ids,
                       "part": {"type": "summary_text", "text": ""}})
        for word in [w + " " for w in summary.split(" ")][:-1] + [summary.split(" ")[-1]]:
            events.append({"type": "response.reasoning_summary_text.delta", **ids, "delta": word})
        events.append({"type": "response.reasoning_summary_text.done", **ids, "text": summary})
        events.append({"type": "response.reasoning_summary_part.done", **ids,
                       "part": {"type": "summary_text", "text": summary}})
        done = {**item, "summary": [{"type": "summary_text", "text": summary}]}
        events.append({"type": "response.output_item.done", "output_index": index, "item": done})
        output.append(done)
    citations = _searches(body, events, output)  # built-in web / file search, when the request has the tool
    calls = script.tool_calls or ([script.tool_call] if script.tool_call else [])
    if not calls:
        index = len(output)
        item = {"type": "message", "id": "msg_loopback", "status": "in_progress", "role": "assistant", "content": []}
        ids = {"item_id": item["id"], "output_index": index, "content_index": 0}
        events.append({"type": "response.output_item.added", "output_index": index, "item": item})
        events.append({"type": "response.content_part.added", **ids,
                       "part": {"type": "output_text", "text": "", "annotations": []}})
        for piece in pieces:
            events.append({"type": "response.output_text.delta", **ids, "delta": piece, "logprobs": [],
                           "_content": True})
        text = "".join(pieces)
        annotations = [{**c, "start_index": 0, "end_index": len(text)} for c in citations]
        for n, annotation in enumerate(annotations):
            events.append({"type": "response.output_text.annotation.added", **ids, "annotation_index": n,
                           "annotation": annotation})
        part = {"type": "output_text", "text": text, "annotations": annotations, "logprobs": []}
        events.append({"type": "response.output_text.done", **ids, "text": text, "logprobs": []})
        events.append({"type": "response.content_part.done", **ids, "part": part})
        done = {**item, "status": "completed", "content": [part]}
        events.append({"type": "response.output_item.done", "output_index": index, "item": done})
        output.append(done)
    for n, call in enumerate(calls):
        index = len(output)
        suffix = f"_{n + 1}" if n else ""
        item = {"type": "function_call", "id": "fc_loopback" + suffix, "call_id": "call_loopback" + suffix,
                "name": call["name"], "arguments": "", "status": "in_progress"}
        events.append({"type": "response.output_item.added", "output_index": index, "item": item})
        args = call["arguments"]
        for i in range(0, len(args), 7):
            events.append({"type": "response.function_call_arguments.delta", "item_id": item["id"],
                           "output_index": index, "delta": args[i:i + 7], "_content": True})
        events.append({"type": "response.function_call_arguments.done", "item_id": item["id"],
                       "output_index": index, "arguments": args, "name": call["name"]})
        done = {**item, "arguments": args, "status": "completed"}
        events.append({"type": "response.output_item.done", "output_index": index, "item": done})
        output.append(done)
    prompt = count_input_tokens(body)
    completion = len(pieces) + script.reasoning_tokens
    usage = {"input_tokens": prompt, "input_tokens_details": {"cached_tokens": script.cached_tokens,
                                                             "cache_write_tokens": script.cache_write_tokens},
             "output_tokens": completion, "output_tokens_details": {"reasoning_tokens": script.reasoning_tokens},
             "total_tokens": prompt + completion}
    return events, output, usage


def answer(handler: Any, body: dict[str, Any], script: Any, models: list[str],
           error: Callable[..., None], reply_json: Callable[..., None]) -> None:
    """Answer one POST /v1/responses on `handler` (the loopback server's request handler)."""
    from tests.loopback_server import NO_VISION_MESSAGE, TEXT_ONLY_MODELS, media_counts
    model = body.get("model", "echo-1")
    if model not in models and model not in TEXT_ONLY_MODELS:
        return error(404, f"The model `{model}` does not exist.", "model_not_found")
    given = body.get("input")
    if model in TEXT_ONLY_MODELS and isinstance(given, list) and any(
            isinstance(i, dict) and any(media_counts(i.get("content")).values()) for i in given):
        return error(400, NO_VISION_MESSAGE)
    events, output, usage = plan(body, script, script.reply_model or model)
    if not body.get("stream"):
        return reply_json(200, _response(body, script.reply_model or model, "completed", output, usage))
    _stream(handler, body, script, script.reply_model or model, events, output, usage)


def _stream(handler: Any, body: dict[str, Any], script: Any, model: str, events: list[dict[str, Any]],
            output: list[dict[str, Any]], usage: dict[str, Any]) -> None:
    handler.send_response(200)
    handler.send_header("Content-Type", "text/event-stream")
    handler.send_header("Transfer-Encoding", "chunked")
    handler.end_headers()
    sequence = 0

    def send(payload: dict[str, Any] | bytes) -> None:
        nonlocal sequence
        if isinstance(payload, bytes):
            data = payload
        else:
            payload = {k: v for k, v in payload.items() if not k.startswith("_")}
            data = f"event: {payload['type']}\ndata: {json.dumps({**payload, 'sequence_number': sequence})}\n\n"
            data = data.encode()  # type: ignore[assignment]
            sequence += 1
        handler.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
        handler.wfile.flush()

    try:
        send({"type": "response.created", "response": _response(body, model, "in_progress", [], None)})
        send({"type": "response.in_progress", "response": _response(body, model, "in_progress", [], None)})
        content = 0
        for event in events:
            if event.get("_content"):
                if script.cut_after is not None and content >= script.cut_after:
                    if script.cut_mode == "drop":
                        handler.wfile.write(b"ff\r\nevent: response.output_text.delta\ndata: {\"trunc")
                        handler.wfile.flush()
                        handler.close_connection = True
                        return
                    handler.wfile.write(b"0\r\n\r\n")  # the body ends cleanly, with no response.completed
                    return
                if script.chunk_delay:
                    time.sleep(script.chunk_delay)
                if script.malformed:
                    send(b"event: response.output_text.delta\ndata: {not json\n\n")
                    continue
                content += 1
                handler.record["chunks_sent"] += 1
            send(event)
        send({"type": "response.completed",
              "response": _response(body, model, "completed", output, usage if script.usage else None)})
        handler.wfile.write(b"0\r\n\r\n")
        handler.record["stream_state"] = "completed"
    except (BrokenPipeError, ConnectionResetError):
        handler.record["stream_state"] = "aborted_by_client"


def _searches(body: dict[str, Any], events: list[dict[str, Any]], output: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The hosted tools' calls, as OpenAI streams them when the request lists the tool: a web_search_call item
    (added → web_search_call.in_progress → searching → completed → done, its action the query) and a
    file_search_call item (the same steps, its queries); returns the url_citation annotations the answer carries."""
    query = input_text(body) or "query"
    citations: list[dict[str, Any]] = []
    for tool in body.get("tools") or []:
        kind = tool.get("type", "") if isinstance(tool, dict) else ""
        if kind.startswith("web_search"):
            call, prefix = "web_search_call", "ws"
            fields: dict[str, Any] = {"action": {"type": "search", "query": query}}
            citations.append({"type": "url_citation", "url": "https://example.com/loopback-source",
                              "title": "Loopback source"})
        elif kind == "file_search":
            call, prefix = "file_search_call", "fs"
            fields = {"queries": [query], "results": None}
        else:
            continue
        index = len(output)
        item = {"type": call, "id": f"{prefix}_loopback_{index}", "status": "in_progress", **fields}
        events.append({"type": "response.output_item.added", "output_index": index, "item": item})
        for step in ("in_progress", "searching", "completed"):
            events.append({"type": f"response.{call}.{step}", "item_id": item["id"], "output_index": index})
        done = {**item, "status": "completed"}
        events.append({"type": "response.output_item.done", "output_index": index, "item": done})
        output.append(done)
    return citations


def previous_not_found(previous: str) -> dict[str, Any]:
    """OpenAI's answer to a `previous_response_id` it does not have (expired, never stored): HTTP 400 with this body
    (as reported from the real API, e.g. maximhq/bifrost#2441)."""
    return {"error": {"message": f"Previous response with id '{previous}' not found.",
                      "type": "invalid_request_error", "param": "previous_response_id",
                      "code": "previous_response_not_found"}}


def respond(handler: Any, body: dict[str, Any], script: Any, models: list[str],
            error: Callable[..., None], reply_json: Callable[..., None]) -> None:
    """POST /v1/responses with server-side state: a `previous_response_id` continues a stored response (its items
    come before this request's input, so they count as input tokens, as OpenAI bills them) or is refused as
    unknown; a response made with `store` (true unless sent false) is kept under its id."""
    previous = body.get("previous_response_id")
    if previous and previous not in STORED:
        return reply_json(400, previous_not_found(previous))
    given = body.get("input") or []
    given = [{"role": "user", "content": given}] if isinstance(given, str) else list(given)
    full = {**body, "input": STORED.get(previous, []) + given} if previous else body
    _current.id = f"resp_{uuid.uuid4().hex[:24]}"
    try:
        answer(handler, full, script, models, error, reply_json)
        if body.get("store", True) and body.get("model", "echo-1") in models:
            _events, output, _usage = plan(full, script, script.reply_model or body.get("model", "echo-1"))
            said = "".join(p.get("text", "") for item in output if item.get("type") == "message"
                           for p in item.get("content", []))
            STORED[_current.id] = list(full["input"] if isinstance(full["input"], list) else given) + [
                {"role": "assistant", "content": said}]
    finally:
        del _current.id
