"""A loopback OpenAI-compatible HTTP server that the tests (and bench/) own.

It speaks /v1/models, /v1/chat/completions (plain and SSE, with `usage` when `stream_options` asks),
/v1/images/generations and /v1/images/edits (multipart; real PNG bytes), /v1/moderations, /v1/responses
(tests/loopback_responses.py), /v1/files and /v1/batches (tests/loopback_batches.py), and replays scripted
faults: any status with `Retry-After`, a slow first byte, slow chunks, a stream cut mid-reply, malformed JSON. The app reaches it through
OPENAI_BASE_URL and the real `openai` SDK.
"""
from __future__ import annotations

import base64
import hashlib
import json
import math
import re
import struct
import threading
import time
import zlib
from collections import deque
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

MODELS = ["gpt-4o-mini", "gpt-4o", "gpt-5-mini", "gpt-4.1-nano", "o4-mini", "echo-1", "text-embedding-3-small",
          "gpt-image-1"]
FLAGGED_WORDS = ("kill", "bomb")
# Served but not listed (the pickers of other tests stay as they are): a text-only model that refuses image and file
# input with OpenAI's own 400 wording.
TEXT_ONLY_MODELS = ("gpt-3.5-turbo",)
NO_VISION_MESSAGE = "Invalid content type. image_url is only supported by certain models."
# The server's stand-in for image / file input tokens (one 512-px tile on gpt-4o; a flat guess for a PDF).
IMAGE_PART_TOKENS, FILE_PART_TOKENS = 255, 500
MEDIA_PARTS = {"image_url": "image", "input_image": "image", "file": "file", "input_file": "file"}


@dataclass
class Script:
    """How the server answers one request (fields left at their defaults answer normally)."""

    path: str = "/v1/chat/completions"
    status: int | None = None            # answer with this HTTP error status
    retry_after: str | None = None       # Retry-After header on that error
    error_message: str = "scripted failure"
    error_code: str | None = None
    first_byte_delay: float = 0.0        # seconds before the status line
    chunk_delay: float = 0.0             # seconds between stream chunks
    cut_after: int | None = None         # stream: stop after N content chunks ...
    cut_mode: str = "eof"                # ... "eof": body ends cleanly without [DONE]; "drop": socket dies mid-body
    malformed: bool = False              # a body that is not JSON
    reply: str | None = None             # reply text (default: "Echo: <last user message>")
    chunks: int | None = None            # reply of exactly N chunks ("w0 w1 …")
    usage: bool = True                   # False: ignore stream_options, like some compatible servers
    cached_tokens: int = 0
    cache_write_tokens: int = 0          # prompt tokens written to the prompt cache
    reasoning_tokens: int = 0            # hidden reasoning, counted in completion_tokens as OpenAI does
    service_tier: str | None = None      # the tier the response says served it (flex, priority, default)
    finish_reason: str = "stop"
    tool_call: dict[str, str] | None = None  # answer with this tool call ({"name": …, "arguments": "<json>"})
    tool_calls: list[dict[str, str]] | None = None  # ... or with several, streamed one after the other
    when: str | None = None              # only for a request whose messages contain this text (e.g. a grader's)
    raw_body: bytes | None = None        # answer 200 with exactly these bytes (metrics text, an HTML page, odd JSON)
    content_type: str = "application/json"  # ... under this Content-Type
    redirect_to: str | None = None       # answer 307 with this Location
    reply_model: str | None = None       # the model the reply reports (OpenAI's: the dated snapshot that served it)
    reasoning_summary: str | None = None  # /v1/responses: stream this reasoning summary before the answer


def tiny_png(width: int = 8, height: int = 8, rgb: tuple[int, int, int] = (30, 144, 255)) -> bytes:
    """A real, valid PNG of one colour."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
    raw = b"".join(b"\x00" + bytes(rgb) * width for _ in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b"")


def no_vision_script() -> Script:
    """A chat request refused the way a text-only server refuses image input (HTTP 400)."""
    return Script(status=400, error_code="invalid_request_error",
                  error_message="Invalid content type. image_url is not supported by this model.")


def encode_image(png: bytes, fmt: str) -> bytes:
    """The image in the requested format (real JPEG / WebP bytes via Pillow, which Streamlit brings)."""
    if fmt not in ("jpeg", "webp"):
        return png
    import io

    from PIL import Image
    out = io.BytesIO()
    Image.open(io.BytesIO(png)).convert("RGB").save(out, format=fmt.upper())
    return out.getvalue()


def tiny_wav(seconds: float = 0.25, rate: int = 8000) -> bytes:
    """A real, valid 16-bit mono PCM WAV of silence lasting `seconds` (0 gives a header-only, zero-length file)."""
    import io
    import wave

    out = io.BytesIO()
    with wave.open(out, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(b"\x00\x00" * int(seconds * rate))
    return out.getvalue()


def _wav_seconds(data: bytes) -> float:
    """The length of a WAV upload by its header (0.0 for anything else): the server's own measure."""
    import io
    import wave

    try:
        with wave.open(io.BytesIO(data)) as w:
            return w.getnframes() / float(w.getframerate())
    except (wave.Error, EOFError, ZeroDivisionError):
        return 0.0


def _words(text: str) -> list[str]:
    pieces = text.split(" ")
    return [p + (" " if i < len(pieces) - 1 else "") for i, p in enumerate(pieces)]


def media_counts(content: Any) -> dict[str, int]:
    """How many image and file parts a message's content holds (either API's part names)."""
    counts = {"image": 0, "file": 0}
    for part in content if isinstance(content, list) else []:
        kind = MEDIA_PARTS.get(part.get("type", "")) if isinstance(part, dict) else None
        if kind:
            counts[kind] += 1
    return counts


def text_of(content: Any) -> str:
    """A message's text: the string itself, or its text parts joined (never an image's base64)."""
    if not isinstance(content, list):
        return str(content or "")
    return " ".join(p.get("text", "") for p in content if isinstance(p, dict) and "text" in p)


def echo_of(content: Any) -> str:
    """The default reply: the text, and how many images and files came with it ("Echo: hi [2 images, 1 file]"),
    so a test can read the wire shape on the page."""
    counts = media_counts(content)
    media = ", ".join(f"{n} {kind}{'s' if n > 1 else ''}" for kind, n in counts.items() if n)
    return f"Echo: {text_of(content)}" + (f" [{media}]" if media else "")


def media_tokens(content: Any) -> int:
    counts = media_counts(content)
    return counts["image"] * IMAGE_PART_TOKENS + counts["file"] * FILE_PART_TOKENS


def count_prompt_tokens(messages: list[dict[str, Any]]) -> int:
    """The server's own (deliberately simple) token count: words plus framing, and a fixed count per image or
    file part."""
    return sum(len(text_of(m.get("content", "")).split()) + media_tokens(m.get("content")) + 4
               for m in messages) + 3


def _multipart(raw: bytes, content_type: str) -> dict[str, Any]:
    """A multipart/form-data body as a dict: text fields by name, files under `_files` (name -> list of
    {filename, content_type, size, head}), so tests can see what an upload sent without keeping its bytes."""
    from email.parser import BytesParser
    from email.policy import HTTP

    message = BytesParser(policy=HTTP).parsebytes(b"Content-Type: " + content_type.encode() + b"\r\n\r\n" + raw)
    body: dict[str, Any] = {"_files": {}}
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        data = part.get_payload(decode=True) or b""
        if part.get_filename() is not None:
            if name == "file":
                body["_audio_seconds"] = _wav_seconds(data)
            body["_files"].setdefault(name, []).append({"filename": part.get_filename(), "size": len(data),
                                                        "content_type": part.get_content_type(), "head": data[:12]})
        else:
            body[name] = data.decode()
    return body


def chat_parts(body: dict[str, Any], script: Script) -> tuple[list[str], dict[str, Any], dict[str, Any]]:
    """A chat request's reply as the server answers it: (pieces of the text, usage, the fields every frame has).
    The echo ("Echo: <last user message>") unless the script says otherwise; one home for the chat route and the
    Batch API's lines (tests/loopback_batches.py)."""
    model = body.get("model", "echo-1")
    messages = body.get("messages", [])
    if script.chunks is not None:
        pieces = [f"w{i} " for i in range(script.chunks)]
    else:
        last_user = next((m for m in reversed(messages) if m.get("role") == "user"), {})
        pieces = _words(script.reply if script.reply is not None else echo_of(last_user.get("content", "")))
    completion = len(pieces) + script.reasoning_tokens
    usage = {"prompt_tokens": count_prompt_tokens(messages), "completion_tokens": completion,
             "total_tokens": count_prompt_tokens(messages) + completion,
             "prompt_tokens_details": {"cached_tokens": script.cached_tokens,
                                       "cache_write_tokens": script.cache_write_tokens},
             "completion_tokens_details": {"reasoning_tokens": script.reasoning_tokens}}
    base = {"id": "chatcmpl-loopback", "created": int(time.time()), "model": script.reply_model or model,
            "system_fingerprint": "fp_loopback", **({"service_tier": script.service_tier} if script.service_tier else {})}
    return pieces, usage, base


def chat_completion(body: dict[str, Any], script: Script | None = None) -> dict[str, Any]:
    """The non-streamed chat completion for a request (its model assumed known)."""
    script = script or Script()
    pieces, usage, base = chat_parts(body, script)
    return {**base, "object": "chat.completion", "usage": usage, "choices": [{
        "index": 0, "finish_reason": script.finish_reason, "logprobs": None,
        "message": {"role": "assistant", "content": "".join(pieces)}}]}


class _QuietServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that hangs up (Stop, timeout, closed keep-alive socket) is normal here, not a failure.
        import sys
        if not isinstance(sys.exc_info()[1], (ConnectionResetError, BrokenPipeError)):
            super().handle_error(request, client_address)


class LoopbackServer:
    """Start with `.start()`; queue faults with `.push(Script(...))`; read `.requests` to see what arrived."""

    def __init__(self, api_key: str | None = None, host: str = "127.0.0.1", port: int = 0):
        self.api_key = api_key
        self.requests: list[dict[str, Any]] = []
        # OpenAI's Usage and Costs APIs (admin key): daily buckets, served a page at a time.
        self.admin_key: str | None = None
        self.usage_buckets: list[dict[str, Any]] = []  # {"start_time", "results": [completions results]}
        self.cost_buckets: list[dict[str, Any]] = []   # {"start_time", "results": [costs results]}
        self.in_flight = 0
        self.max_in_flight = 0  # the most requests the server was answering at once
        # Seconds every request waits before it is answered (a model's fixed think time); each request's record
        # gets `handled_ms`: the server's own measure, from the request's first byte read to its last byte sent.
        self.delay = 0.0
        self._scripts: deque[Script] = deque()
        self._lock = threading.Lock()
        from tests.loopback_batches import BatchKnobs, BatchState  # the Files and Batch APIs live there
        self.batch, self.batch_state = BatchKnobs(), BatchState()
        self.httpd = _QuietServer((host, port), self._handler_class())
        self._thread: threading.Thread | None = None

    @property
    def base_url(self) -> str:
        host, port = self.httpd.server_address[:2]
        return f"http://{host}:{port}/v1"

    def start(self) -> LoopbackServer:
        self._thread = threading.Thread(target=self.httpd.serve_forever, name="loopback-openai", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def push(self, *scripts: Script) -> None:
        with self._lock:
            self._scripts.extend(scripts)

    def reset(self) -> None:
        with self._lock:
            self._scripts.clear()
            self.requests.clear()
            self.max_in_flight = 0
            self.delay = 0.0
            self.admin_key, self.usage_buckets, self.cost_buckets = None, [], []
        from tests.loopback_batches import BatchKnobs, BatchState
        self.batch, self.batch_state = BatchKnobs(), BatchState()

    def chat_requests(self) -> list[dict[str, Any]]:
        return [r["body"] for r in self.requests if r["path"] == "/v1/chat/completions"]

    def content_parts(self) -> list[list[dict[str, Any]]]:
        """The content parts of the last user message of each chat request (a plain string as one text part)."""
        out = []
        for body in self.chat_requests():
            users = [m for m in body.get("messages", []) if m.get("role") == "user"]
            content = users[-1]["content"] if users else ""
            out.append(content if isinstance(content, list) else [{"type": "text", "text": content}])
        return out

    def response_parts(self) -> list[list[dict[str, Any]]]:
        """The content parts of the last user input item of each /v1/responses request."""
        out = []
        for body in (r["body"] for r in self.requests if r["path"] == "/v1/responses"):
            given = body.get("input")
            users = [i for i in given if isinstance(i, dict) and i.get("role") == "user"] \
                if isinstance(given, list) else [{"content": given or ""}]
            content = users[-1]["content"] if users else ""
            out.append(content if isinstance(content, list) else [{"type": "input_text", "text": content}])
        return out

    def _next_script(self, path: str, body: dict[str, Any] | None = None) -> Script:
        text = json.dumps((body or {}).get("messages") or (body or {}).get("input") or "", ensure_ascii=False)
        with self._lock:
            for i, script in enumerate(self._scripts):
                if script.path == path and (script.when is None or script.when in text):
                    del self._scripts[i]
                    return script
        return Script(path=path)

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:  # keep test output clean
                pass

            def do_GET(self) -> None:
                self._counted()

            def do_POST(self) -> None:
                self._counted()

            def _counted(self) -> None:
                arrived = time.perf_counter()  # the request line has just been read
                self.record: dict[str, Any] = {}
                with server._lock:
                    server.in_flight += 1
                    server.max_in_flight = max(server.max_in_flight, server.in_flight)
                try:
                    self._dispatch()
                finally:
                    try:
                        self.wfile.flush()
                    except OSError:  # the client hung up: nothing more to send
                        pass
                    finished = time.perf_counter()
                    self.record.update(handled_ms=(finished - arrived) * 1000, arrived=arrived, finished=finished)
                    with server._lock:
                        server.in_flight -= 1

            def _dispatch(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                content_type = self.headers.get("Content-Type") or ""
                body = _multipart(raw, content_type) if content_type.startswith("multipart/form-data") else (
                    json.loads(raw) if raw else {})
                path = self.path.split("?")[0]
                # Azure OpenAI shape: /openai/deployments/{deployment}/chat/completions?api-version=…, `api-key`.
                azure = re.match(r"^/openai/deployments/([^/]+)(/.*)$", path)
                if azure:
                    body.setdefault("model", azure.group(1))
                    path = "/v1" + azure.group(2)
                elif path.startswith("/openai/"):
                    path = "/v1/" + path.removeprefix("/openai/")
                if path == "/_script":  # cross-process scripting (bench/, browser helpers)
                    server.push(*(Script(**s) for s in body))
                    return self._json(200, {"queued": len(body)})
                self.record = {"path": path, "method": self.command, "body": body, "headers": dict(self.headers),
                               "t": time.monotonic(), "chunks_sent": 0, "stream_state": None}
                server.requests.append(self.record)
                script = server._next_script(path, body)
                if script.first_byte_delay or server.delay:
                    time.sleep(script.first_byte_delay + server.delay)
                given = (self.headers.get("Authorization") or "").removeprefix("Bearer ") or self.headers.get(
                    "api-key", "")
                if path.startswith("/v1/organization/"):
                    if server.admin_key and given != server.admin_key:
                        return self._error(401, "Admin API key required.", "invalid_api_key")
                    return self._organization(path)
                if server.api_key and given != server.api_key:
                    # Real servers echo (part of) the key back: the app must scrub it.
                    return self._error(401, f"Incorrect API key provided: {given}.", "invalid_api_key")
                if script.status:
                    return self._error(script.status, script.error_message, script.error_code, script.retry_after)
                if script.redirect_to is not None:
                    return self._raw(307, b"", "text/plain", {"Location": script.redirect_to})
                if script.raw_body is not None:
                    return self._raw(200, script.raw_body, script.content_type)
                if script.malformed and not body.get("stream"):
                    return self._raw(200, b"<html>Bad gateway page, not JSON</html>", "application/json")
                routes = {"/v1/models": self._models, "/v1/chat/completions": self._chat,
                          "/v1/images/generations": self._images, "/v1/images/edits": self._edits,
                          "/v1/moderations": self._moderations,
                          "/v1/embeddings": self._embeddings, "/v1/responses": self._responses,
                          "/v1/audio/transcriptions": self._transcriptions, "/v1/audio/speech": self._speech}
                handler = routes.get(path)
                if path.startswith(("/v1/files", "/v1/batches")):
                    from tests.loopback_batches import answer as batches
                    return batches(self, server, path, body, raw, content_type)
                if handler is None:
                    return self._error(404, f"Unknown path {path}", "not_found")
                handler(body, script)

            # --- responses -------------------------------------------------------------------------
            def _raw(self, status: int, data: bytes, content_type: str, headers: dict[str, str] | None = None):
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(data)))
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(data)

            def _json(self, status: int, payload: Any, headers: dict[str, str] | None = None) -> None:
                self._raw(status, json.dumps(payload).encode(), "application/json", headers)

            def _error(self, status: int, message: str, code: str | None = None, retry_after: str | None = None):
                headers = {"Retry-After": retry_after} if retry_after else {}
                self._json(status, {"error": {"message": message, "type": "invalid_request_error",
                                              "code": code, "param": None}}, headers)

            def _models(self, body: dict[str, Any], script: Script) -> None:
                self._json(200, {"object": "list", "data": [
                    {"id": m, "object": "model", "created": 1700000000, "owned_by": "loopback"} for m in MODELS]})

            def _chat(self, body: dict[str, Any], script: Script) -> None:
                model = body.get("model", "echo-1")
                if model not in MODELS and model not in TEXT_ONLY_MODELS:
                    return self._error(404, f"The model `{model}` does not exist.", "model_not_found")
                messages = body.get("messages", [])
                if model in TEXT_ONLY_MODELS and any(any(media_counts(m.get("content")).values()) for m in messages):
                    return self._error(400, NO_VISION_MESSAGE)
                pieces, usage, base = chat_parts(body, script)
                if not body.get("stream"):
                    return self._json(200, chat_completion(body, script))
                if script.tool_call or script.tool_calls:
                    return self._stream_tool_call(base, usage, body, script)
                self._stream(base, pieces, usage, body, script)

            def _stream_tool_call(self, base: dict[str, Any], usage: dict[str, Any], body: dict[str, Any],
                                  script: Script) -> None:
                """Tool calls streamed the way OpenAI does: per call (by index) the id and name first, then the
                arguments in fragments; the first call's id is `call_loopback`, the next `call_loopback_2`…"""
                deltas: list[dict[str, Any]] = []
                for n, call in enumerate(script.tool_calls or [script.tool_call or {}]):
                    args = call["arguments"]
                    fragments = [args[i:i + 7] for i in range(0, len(args), 7)] or [""]
                    deltas.append({"index": n, "id": "call_loopback" + (f"_{n + 1}" if n else ""), "type": "function",
                                   "function": {"name": call["name"], "arguments": ""}})
                    deltas += [{"index": n, "function": {"arguments": f}} for f in fragments]
                events = [{"choices": [{"index": 0, "delta": {"role": "assistant", "content": None,
                                                              "tool_calls": [d]}, "finish_reason": None}]}
                          for d in deltas]
                events.append({"choices": [{"index": 0, "delta": {}, "finish_reason": "tool_calls"}]})
                if (body.get("stream_options") or {}).get("include_usage"):
                    events.append({"choices": [], "usage": usage})
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream")
                self.send_header("Transfer-Encoding", "chunked")
                self.end_headers()
                for e in events + ["[DONE]"]:
                    data = e if isinstance(e, str) else json.dumps({**base, **e, "object": "chat.completion.chunk"})
                    chunk = f"data: {data}\n\n".encode()
                    self.wfile.write(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n")
                self.wfile.write(b"0\r\n\r\n")

            def _stream(self, base: dict[str, Any], pieces: list[str], usage: dict[str, Any],
                        body: dict[str, Any], script: Script) -> None:
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream")
                self.send_header("Transfer-Encoding", "chunked")
                self.end_headers()

                def event(payload: Any) -> bytes:
                    data = payload if isinstance(payload, str) else json.dumps({**base, **payload,
                                                                                "object": "chat.completion.chunk"})
                    return f"data: {data}\n\n".encode()

                def send(data: bytes) -> None:
                    self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
                    self.wfile.flush()

                def delta(content: str | None, finish: str | None, role: str | None = None) -> bytes:
                    d = {"content": content} if role is None else {"role": role, "content": content}
                    return event({"choices": [{"index": 0, "delta": d, "finish_reason": finish, "logprobs": None}]})

                try:
                    send(delta("", None, role="assistant"))
                    for i, piece in enumerate(pieces):
                        if script.cut_after is not None and i >= script.cut_after:
                            if script.cut_mode == "drop":
                                self.wfile.write(b"ff\r\ndata: {\"trunc")  # half a chunk, then the socket dies
                                self.wfile.flush()
                                self.close_connection = True
                                return
                            self.wfile.write(b"0\r\n\r\n")  # the body ends cleanly, with no [DONE]
                            return
                        if script.chunk_delay:
                            time.sleep(script.chunk_delay)
                        if script.malformed:
                            send(b"data: {not json\n\n")
                            continue
                        send(delta(piece, None))
                        self.record["chunks_sent"] += 1
                    send(delta(None, script.finish_reason))
                    if script.usage and (body.get("stream_options") or {}).get("include_usage"):
                        send(event({"choices": [], "usage": usage}))
                    send(event("[DONE]"))
                    self.wfile.write(b"0\r\n\r\n")
                    self.record["stream_state"] = "completed"
                except (BrokenPipeError, ConnectionResetError):
                    self.record["stream_state"] = "aborted_by_client"  # what a Stop button does

            def _images(self, body: dict[str, Any], script: Script) -> None:
                n = int(body.get("n", 1))
                png = base64.b64encode(encode_image(tiny_png(), body.get("output_format", "png"))).decode()
                self._json(200, {"created": int(time.time()), "data": [{"b64_json": png} for _ in range(n)],
                                 "usage": {"input_tokens": 10, "output_tokens": 272 * n, "total_tokens": 10 + 272 * n,
                                           "input_tokens_details": {"text_tokens": 10, "image_tokens": 0}}})

            def _edits(self, body: dict[str, Any], script: Script) -> None:
                """An image edit (multipart): needs an image file; answers like a generation, the input image's
                tokens counted as image input."""
                if not body.get("_files", {}).get("image") and not body.get("_files", {}).get("image[]"):
                    return self._error(400, "image is required", "missing_image")
                n = int(body.get("n", 1))
                png = base64.b64encode(encode_image(tiny_png(rgb=(200, 40, 40)), body.get("output_format", "png")))
                self._json(200, {"created": int(time.time()), "data": [{"b64_json": png.decode()} for _ in range(n)],
                                 "usage": {"input_tokens": 75, "output_tokens": 272 * n, "total_tokens": 75 + 272 * n,
                                           "input_tokens_details": {"text_tokens": 10, "image_tokens": 65}}})

            def _transcriptions(self, body: dict[str, Any], script: Script) -> None:
                """A transcription (multipart, a `file` part): the scripted text; `response_format=text` answers
                plain text, otherwise JSON with usage as OpenAI gives it (tokens for gpt-4o*-transcribe, seconds
                for whisper-1, measured here from the WAV's header)."""
                files = body.get("_files", {}).get("file") or []
                if not files or not files[0]["size"]:
                    return self._error(400, "Audio file is empty or missing.", "invalid_value")
                text = script.reply if script.reply is not None else "Transcribed loopback audio"
                if body.get("response_format") == "text":
                    return self._raw(200, (text + "\n").encode(), "text/plain")
                if str(body.get("model", "")).startswith("whisper"):
                    usage: dict[str, Any] = {"type": "duration", "seconds": math.ceil(body.get("_audio_seconds", 0.0))}
                else:
                    audio_tokens = max(1, int(body.get("_audio_seconds", 0.0) * 10))
                    output_tokens = len(text.split())
                    usage = {"type": "tokens", "input_tokens": audio_tokens, "output_tokens": output_tokens,
                             "total_tokens": audio_tokens + output_tokens,
                             "input_token_details": {"text_tokens": 0, "audio_tokens": audio_tokens}}
                self._json(200, {"text": text, "usage": usage})

            def _speech(self, body: dict[str, Any], script: Script) -> None:
                """Speech: audio bytes for the requested voice and format (a real, short WAV whatever is asked:
                players and tests only need valid audio; the Content-Type follows the format)."""
                if not str(body.get("input", "")).strip():
                    return self._error(400, "input is required", "invalid_value")
                fmt = body.get("response_format", "mp3")
                types = {"mp3": "audio/mpeg", "wav": "audio/wav", "opus": "audio/ogg", "aac": "audio/aac",
                         "flac": "audio/flac", "pcm": "audio/pcm"}
                self._raw(200, tiny_wav(0.25), types.get(fmt, "application/octet-stream"))

            def _moderations(self, body: dict[str, Any], script: Script) -> None:
                inputs = body.get("input", "")
                inputs = inputs if isinstance(inputs, list) else [inputs]
                results = []
                for text in inputs:
                    flagged = any(w in str(text).lower() for w in FLAGGED_WORDS)
                    results.append({"flagged": flagged, "categories": {"violence": flagged},
                                    "category_scores": {"violence": 0.97 if flagged else 0.01}})
                self._json(200, {"id": "modr-loopback", "model": "omni-moderation-latest", "results": results})

            def _organization(self, path: str) -> None:
                """GET /v1/organization/usage/completions and /v1/organization/costs: the buckets inside
                [start_time, end_time), `limit` per page (default 7), `page` = the next bucket's index."""
                from urllib.parse import parse_qs, urlparse
                query = parse_qs(urlparse(self.path).query)
                start = int(query.get("start_time", ["0"])[0])
                end = int(query.get("end_time", [str(2**40)])[0])
                limit = int(query.get("limit", ["7"])[0])
                offset = int(query.get("page", ["0"])[0])
                source = {"/v1/organization/usage/completions": server.usage_buckets,
                          "/v1/organization/costs": server.cost_buckets}.get(path)
                if source is None:
                    return self._error(404, f"Unknown path {path}", "not_found")
                kind = "organization.usage.completions.result" if "usage" in path else "organization.costs.result"
                chosen = [b for b in sorted(source, key=lambda b: b["start_time"]) if start <= b["start_time"] < end]
                page = chosen[offset:offset + limit]
                data = [{"object": "bucket", "start_time": b["start_time"], "end_time": b["start_time"] + 86_400,
                         "results": [{"object": kind, **r} for r in b["results"]]} for b in page]
                more = offset + limit < len(chosen)
                self._json(200, {"object": "page", "data": data, "has_more": more,
                                 "next_page": str(offset + limit) if more else None})

            def _responses(self, body: dict[str, Any], script: Script) -> None:
                from tests.loopback_responses import respond  # the Responses API's wire shapes live there
                respond(self, body, script, MODELS, self._error, self._json)

            def _embeddings(self, body: dict[str, Any], script: Script) -> None:
                """Deterministic bag-of-words vectors: texts sharing words are similar, as with real embeddings."""
                inputs = body.get("input", "")
                inputs = inputs if isinstance(inputs, list) else [inputs]
                data = []
                for i, text in enumerate(inputs):
                    vector = [0.0] * 64
                    for word in re.findall(r"\w+", str(text).lower()):
                        vector[int(hashlib.sha256(word.encode()).hexdigest(), 16) % 64] += 1.0
                    if body.get("encoding_format") == "base64":
                        encoded: Any = base64.b64encode(struct.pack(f"<{len(vector)}f", *vector)).decode()
                    else:
                        encoded = vector
                    data.append({"object": "embedding", "index": i, "embedding": encoded})
                tokens = sum(len(str(t).split()) for t in inputs)
                self._json(200, {"object": "list", "model": body.get("model"), "data": data,
                                 "usage": {"prompt_tokens": tokens, "total_tokens": tokens}})

        return Handler


if __name__ == "__main__":  # run standalone: python -m tests.loopback_server [port]
    import sys
    srv = LoopbackServer(port=int(sys.argv[1]) if len(sys.argv) > 1 else 8765).start()
    print(f"loopback OpenAI-compatible server on {srv.base_url}", flush=True)
    threading.Event().wait()
