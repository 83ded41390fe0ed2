"""The loopback server's Files and Batch APIs, shaped as OpenAI's: `POST /v1/files` (multipart, purpose `batch`),
`GET /v1/files/{id}` and `/v1/files/{id}/content`, `POST /v1/batches`, `GET /v1/batches/{id}`,
`POST /v1/batches/{id}/cancel`.

A batch moves validating → in_progress → (finalizing) → completed after `BatchKnobs.polls` retrieves; its lines are
answered by the chat route's own echo (`chat_completion`). Knobs: lines that fail (their custom_ids: a 400 in the
error file), expiry after N lines (status expired; the rest `batch_expired` in the error file), a server without
the Batch API (404 on /files and /batches), how many lines a cancel lets finish. `tests/test_loopback_batches.py`
parses every object with the SDK's own types.
"""
from __future__ import annotations

import json
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

TERMINAL = ("completed", "failed", "expired", "cancelled")
FAIL_MESSAGE = "scripted line failure"  # the error of a line in BatchKnobs.fail_ids


@dataclass
class BatchKnobs:
    """How the server's batches behave (reset with the server)."""

    supported: bool = True            # False: /v1/files and /v1/batches answer 404, like most compatible servers
    polls: int = 2                    # retrieves until a batch is completed (the first shows in_progress)
    fail_ids: set[str] = field(default_factory=set)  # custom_ids whose line fails (400 in the error file)
    expire_after: int | None = None   # expire once this many lines ran: partial output, the rest batch_expired
    done_before_cancel: int = 1       # lines that finish before a cancel takes effect
    refuse: str | None = None         # fail every batch at validation with this message (line 1)


@dataclass
class BatchState:
    """The server's files and batches."""

    files: dict[str, dict[str, Any]] = field(default_factory=dict)
    batches: dict[str, dict[str, Any]] = field(default_factory=dict)
    polls: dict[str, int] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)


def _file_object(f: dict[str, Any]) -> dict[str, Any]:
    return {"id": f["id"], "object": "file", "bytes": len(f["data"]), "created_at": f["created_at"],
            "filename": f["filename"], "purpose": f["purpose"], "status": "processed", "expires_at": None,
            "status_details": None}


def _store_file(state: BatchState, data: bytes, filename: str, purpose: str) -> dict[str, Any]:
    f = {"id": f"file-{uuid.uuid4().hex[:24]}", "data": data, "filename": filename, "purpose": purpose,
         "created_at": int(time.time())}
    state.files[f["id"]] = f
    return f


def _upload(raw: bytes, content_type: str) -> tuple[bytes, str, str] | None:
    """(file bytes, filename, purpose) of a multipart upload; None when it has no file part."""
    from email.parser import BytesParser
    from email.policy import HTTP

    message = BytesParser(policy=HTTP).parsebytes(b"Content-Type: " + content_type.encode() + b"\r\n\r\n" + raw)
    data, filename, purpose = None, "", ""
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        payload = part.get_payload(decode=True) or b""
        if name == "file":
            data, filename = payload, part.get_filename() or "upload"
        elif name == "purpose":
            purpose = payload.decode()
    return None if data is None else (data, filename, purpose)


def _line_result(line: dict[str, Any], models: list[str]) -> tuple[int, dict[str, Any]]:
    from tests.loopback_server import chat_completion

    body = line.get("body") or {}
    if body.get("model") not in models:
        return 404, {"error": {"message": f"The model `{body.get('model')}` does not exist.",
                               "type": "invalid_request_error", "param": None, "code": "model_not_found"}}
    return 200, chat_completion({**body, "stream": False})


def _finish(state: BatchState, knobs: BatchKnobs, batch: dict[str, Any], models: list[str], status: str,
            run: int | None) -> None:
    """Run `run` lines (all when None), write the output and error files, and end the batch in `status`."""
    lines = [json.loads(x) for x in state.files[batch["input_file_id"]]["data"].decode().splitlines() if x.strip()]
    out, errors, completed, failed = [], [], 0, 0
    for n, line in enumerate(lines):
        ident = f"batch_req_{uuid.uuid4().hex[:24]}"
        if run is not None and n >= run:  # never ran: how OpenAI reports such lines
            code = "batch_expired" if status == "expired" else "batch_cancelled"
            errors.append({"id": ident, "custom_id": line.get("custom_id"), "response": None,
                           "error": {"code": code, "message": f"This request could not be executed before the "
                                                              f"batch was {status}."}})
            failed += 1
            continue
        if line.get("custom_id") in knobs.fail_ids:
            code, body = 400, {"error": {"message": FAIL_MESSAGE, "type": "invalid_request_error",
                                         "param": None, "code": "scripted"}}
        else:
            code, body = _line_result(line, models)
        record = {"id": ident, "custom_id": line.get("custom_id"),
                  "response": {"status_code": code, "request_id": f"req_{uuid.uuid4().hex[:16]}", "body": body},
                  "error": None}
        (out if code == 200 else errors).append(record)
        completed, failed = completed + (code == 200), failed + (code != 200)
    now = int(time.time())

    def jsonl(records: list[dict[str, Any]]) -> bytes:
        return "".join(json.dumps(r) + "\n" for r in records).encode()
    if out:
        batch["output_file_id"] = _store_file(state, jsonl(out), f"{batch['id']}_output.jsonl", "batch_output")["id"]
    if errors:
        batch["error_file_id"] = _store_file(state, jsonl(errors), f"{batch['id']}_error.jsonl", "batch_output")["id"]
    batch["request_counts"] = {"total": len(lines), "completed": completed, "failed": failed}
    batch["status"] = status
    batch[f"{status}_at"] = now
    if status == "completed":
        batch["finalizing_at"] = now


def _validate(data: bytes, endpoint: str) -> list[dict[str, Any]]:
    """The input file's problems, as the Batch API lists them in `errors.data` (line numbers from 1)."""
    problems: list[dict[str, Any]] = []
    seen: set[str] = set()
    for n, text in enumerate(data.decode(errors="replace").splitlines(), 1):
        if not text.strip():
            continue
        try:
            line = json.loads(text)
        except ValueError:
            problems.append({"code": "invalid_json_line", "line": n, "message": "This line is not valid JSON.",
                             "param": None})
            continue
        missing = [k for k in ("custom_id", "method", "url", "body") if k not in line]
        if missing or line.get("method") != "POST" or line.get("url") != endpoint or line["custom_id"] in seen:
            problems.append({"code": "invalid_request", "line": n, "param": (missing or ["url"])[0],
                             "message": "A line needs custom_id (unique), method POST, the batch's url and a body."})
        seen.add(line.get("custom_id"))
    return problems


def answer(handler: Any, server: Any, path: str, body: dict[str, Any], raw: bytes, content_type: str) -> None:
    """Answer one /v1/files… or /v1/batches… request on the loopback server's handler."""
    from tests.loopback_server import MODELS

    knobs, state = server.batch, server.batch_state
    if not knobs.supported:
        return handler._error(404, f"Unknown path {path}", "not_found")
    parts = path.strip("/").split("/")  # v1, files|batches, [id], [content|cancel]
    method = handler.command
    with state.lock:
        if parts[1] == "files":
            if method == "POST" and len(parts) == 2:
                upload = _upload(raw, content_type) if content_type.startswith("multipart/form-data") else None
                if upload is None:
                    return handler._error(400, "A file is required.", "missing_file")
                data, filename, purpose = upload
                if purpose != "batch":
                    return handler._error(400, "purpose must be batch here.", "invalid_purpose")
                return handler._json(200, _file_object(_store_file(state, data, filename, purpose)))
            f = state.files.get(parts[2]) if len(parts) > 2 else None
            if f is None:
                return handler._error(404, f"No such File object: {parts[2] if len(parts) > 2 else ''}",
                                      "not_found")
            if len(parts) == 4 and parts[3] == "content":
                return handler._raw(200, f["data"], "application/octet-stream")
            return handler._json(200, _file_object(f))
        if method == "POST" and len(parts) == 2:  # create
            source = state.files.get(body.get("input_file_id", ""))
            if source is None:
                return handler._error(400, "input_file_id does not name an uploaded file.", "invalid_file")
            if body.get("completion_window") != "24h":
                return handler._error(400, "completion_window must be 24h.", "invalid_value")
            now = int(time.time())
            batch: dict[str, Any] = {
                "id": f"batch_{uuid.uuid4().hex[:24]}", "object": "batch", "endpoint": body.get("endpoint"),
                "errors": None, "input_file_id": source["id"], "completion_window": "24h", "status": "validating",
                "output_file_id": None, "error_file_id": None, "created_at": now, "in_progress_at": None,
                "expires_at": now + 86_400, "finalizing_at": None, "completed_at": None, "failed_at": None,
                "expired_at": None, "cancelling_at": None, "cancelled_at": None,
                "request_counts": {"total": 0, "completed": 0, "failed": 0}, "metadata": body.get("metadata")}
            problems = _validate(source["data"], str(body.get("endpoint")))
            if knobs.refuse:
                problems.append({"code": "invalid_request", "line": 1, "message": knobs.refuse, "param": None})
            if problems:
                batch.update(status="failed", failed_at=now, errors={"object": "list", "data": problems})
            state.batches[batch["id"]] = batch
            state.polls[batch["id"]] = 0
            return handler._json(200, batch)
        batch = state.batches.get(parts[2]) if len(parts) > 2 else None
        if batch is None:
            return handler._error(404, f"No batch found with id '{parts[2] if len(parts) > 2 else ''}'.",
                                  "not_found")
        if method == "POST" and len(parts) == 4 and parts[3] == "cancel":
            if batch["status"] in TERMINAL:
                return handler._error(409, f"Cannot cancel a batch with status {batch['status']}.", "conflict")
            batch.update(status="cancelling", cancelling_at=int(time.time()))
            return handler._json(200, batch)
        # retrieve: each one moves the batch on
        state.polls[batch["id"]] += 1
        if batch["status"] == "cancelling":
            _finish(state, knobs, batch, MODELS, "cancelled", knobs.done_before_cancel)
        elif batch["status"] not in TERMINAL:
            if state.polls[batch["id"]] >= knobs.polls:
                if knobs.expire_after is not None:
                    _finish(state, knobs, batch, MODELS, "expired", knobs.expire_after)
                else:
                    _finish(state, knobs, batch, MODELS, "completed", None)
            else:
                lines = sum(1 for x in state.files[batch["input_file_id"]]["data"].splitlines() if x.strip())
                batch.update(status="in_progress", in_progress_at=batch["in_progress_at"] or int(time.time()),
                             request_counts={"total": lines, "completed": 0, "failed": 0})
        return handler._json(200, batch)
