"""User-facing errors: every SDK / HTTP failure is mapped here, once, to one clear sentence.

Pages only display `PromptLabError.message`; the call log stores `kind` and the scrubbed `detail`.
"""
from __future__ import annotations

import json
import re
from collections.abc import Iterable
from typing import Any
from urllib.parse import urlparse

import openai
import pydantic

from core.base.i18n import _

_KEY_PATTERN = re.compile(r"(sk-[A-Za-z0-9_\-]{6,}|Bearer\s+[A-Za-z0-9_\-\.]{8,})")


class PromptLabError(Exception):
    """A failure with the one sentence the user sees (what happened, what to do)."""

    def __init__(self, kind: str, message: str, detail: str | None = None, status_code: int | None = None):
        super().__init__(message)
        self.kind = kind
        self.message = message
        self.detail = detail or message
        self.status_code = status_code

    def __str__(self) -> str:  # the message may be scrubbed after construction
        return self.message


class StreamCutError(Exception):
    """The stream ended without a finish_reason: the connection dropped before the reply was complete."""


class MalformedResponse(Exception):
    """The server answered, but not with the JSON an OpenAI-compatible API sends (an HTML page, metrics text,
    `{"data": 5}`, a chunk whose text is a number)."""


class RefusedRequest(openai.OpenAIError):
    """A request PromptLab's own HTTP transport refused to send (an address the URL policy forbids). An OpenAIError,
    so the SDK passes it on at once instead of retrying it as a connection failure; it carries the sentence."""

    def __init__(self, error: PromptLabError):
        super().__init__(error.message)
        self.error = error


KEY_REMOVED = "[key removed]"


def without_keys(value: Any, secrets: Iterable[str | None]) -> Any:
    """Every string inside JSON-like data with the given secret values replaced (keys of mappings too): what a
    store keeps of texts a model or a user wrote, whatever the text policy."""
    known = [s for s in secrets if s and len(s) >= 6]
    if not known:
        return value

    def clean(v: Any) -> Any:
        if isinstance(v, str):
            for secret in known:
                v = v.replace(secret, KEY_REMOVED)
            return v
        if isinstance(v, list):
            return [clean(x) for x in v]
        if isinstance(v, dict):
            return {clean(k): clean(x) for k, x in v.items()}
        return v
    return clean(value)


def scrub_secrets(text: str, secrets: Iterable[str | None] = ()) -> str:
    """Remove known secrets and anything shaped like an API key or bearer token."""
    for secret in secrets:
        if secret and len(secret) >= 6:
            text = text.replace(secret, "[key removed]")
    return _KEY_PATTERN.sub("[key removed]", text)


def _server_message(exc: openai.APIStatusError) -> str:
    body = exc.body
    if isinstance(body, dict):
        inner = body.get("error", body)
        if isinstance(inner, dict) and isinstance(inner.get("message"), str):
            return inner["message"]
        if isinstance(body.get("message"), str):
            return body["message"]
    return str(exc.message)


def _image_error(status: int, code: str, said: str, model: str | None) -> PromptLabError | None:
    lowered = f"{code} {said}".lower()
    if status == 400 and ("moderation" in lowered or "content_policy" in lowered or "safety" in lowered):
        reason = said.rstrip(".") or _("no reason given")
        return PromptLabError("content_policy", _(
            "The provider's safety system refused this image ({reason}): rephrase the prompt and try again."
        ).format(reason=reason))
    if status == 400 and "size" in lowered:
        return PromptLabError("unsupported_size", _(
            "{model} does not support that size: pick one of the sizes offered for it."
        ).format(model=model or _("This model")))
    if status == 404 and "model" not in lowered:
        return PromptLabError("no_images", _("This provider has no image endpoint (404): configure OpenAI in "
                                           "Settings to generate images."))
    return None


def _status_error(exc: openai.APIStatusError, model: str | None, retries: int,
                  operation: str = "chat") -> PromptLabError:
    status = exc.status_code
    said = _server_message(exc)
    code = str(getattr(exc, "code", "") or "")
    lowered = f"{code} {said}".lower()
    if operation == "images":
        image_error = _image_error(status, code, said, model)
        if image_error is not None:
            return image_error
    if operation == "responses" and "previous_response_not_found" in lowered or (
            operation == "responses" and "previous response" in lowered and "not found" in lowered):
        # OpenAI answers 400 (some proxies 404) when a stored response expired or was never stored: the chat
        # turn sends the full history instead (core.chat.turn), so this sentence is rarely seen.
        return PromptLabError("previous_response_not_found", _(
            "The server no longer has the previous response (it expired or was not stored): send the message "
            "again with server-side state off."))
    if operation == "chat" and "v1/responses" in lowered and status in (400, 404):
        # "This model is only supported in v1/responses and not in v1/chat/completions."
        return PromptLabError("responses_only", _(
            "{model} is served only through the Responses API: choose Responses as the API.").format(
            model=model or _("This model")))
    if operation == "responses" and status == 404 and "model" not in lowered:
        # A server without /responses (most compatible servers) answers 404 with no word about the model.
        return PromptLabError("no_responses", _("This server has no Responses API (404 on /responses): choose "
                                              "Chat Completions as the API."))
    if status == 401:
        return PromptLabError("bad_key", _("The API key was rejected (401): check or replace it in Settings."))
    if status == 403:
        return PromptLabError("no_access", _("This key has no access to that model or project (403): "
                                           "pick another model or check the key's permissions."))
    if status == 404:
        return PromptLabError("unknown_model", _(
            "The model “{model}” is not available on this provider (404): pick another model."
        ).format(model=model))
    if status == 429 and "quota" in lowered:
        return PromptLabError("quota", _("This account has run out of credit (429 insufficient quota): "
                                       "add billing or use another key."))
    if status == 429:
        return PromptLabError("rate_limited", _(
            "The provider is rate-limiting this key (429), still after {retries} retries: wait a minute, then "
            "press Retry.").format(retries=retries))
    if status in (400, 413, 422) and ("context" in lowered and ("length" in lowered or "window" in lowered)
                                       or "too many tokens" in lowered or "maximum context" in lowered):
        return PromptLabError("context_too_long", _("The conversation is too long for this model's context window: "
                                                  "lower max tokens, clear the chat or pick a larger model."))
    if status in (400, 413, 422):
        sentence = said.rstrip(".") if said else _("no reason given")
        return PromptLabError("bad_request", _(
            "The provider rejected the request ({status}: {sentence}): adjust the settings and press Retry."
        ).format(status=status, sentence=sentence))
    if status >= 500:
        return PromptLabError("server_error", _(
            "The provider had a server error ({status}), still after {retries} retries: try again in a moment."
        ).format(status=status, retries=retries))
    return PromptLabError("http_error", _(
        "The provider answered with HTTP {status}: press Retry, or check Settings if it persists."
    ).format(status=status))


def to_user_error(exc: BaseException, *, secrets: Iterable[str | None] = (), model: str | None = None,
                  timeout_s: float | None = None, retries: int = 2, operation: str = "chat") -> PromptLabError:
    """Map any exception from a model call to a PromptLabError; secrets never reach its text.

    `operation` ("chat", "images", …) lets the same HTTP status read right for the endpoint that answered.
    """
    if isinstance(exc, PromptLabError):
        return exc
    if isinstance(exc, RefusedRequest):
        return exc.error
    if isinstance(exc, openai.APIStatusError):
        err = _status_error(exc, model, retries, operation)
        err.status_code = exc.status_code
        err.detail = f"HTTP {exc.status_code}: {_server_message(exc)}"
    elif isinstance(exc, openai.APITimeoutError):
        limit = f"{timeout_s:g} s" if timeout_s else _("the time limit")
        err = PromptLabError("timeout", _(
            "The model did not answer within {limit}: press Retry, or pick a faster model."
        ).format(limit=limit))
    elif isinstance(exc, openai.APIConnectionError):
        host = urlparse(str(exc.request.url)).netloc if getattr(exc, "request", None) else _("the provider")
        err = PromptLabError("connection", _(
            "Could not connect to {host}: check the base URL in Settings and that the server is running."
        ).format(host=host))
    elif isinstance(exc, StreamCutError):
        err = PromptLabError("stream_cut", _("The reply was cut off before it finished (the connection dropped): "
                                           "the partial text is kept; press Retry for a complete one."))
    elif isinstance(exc, (json.JSONDecodeError, openai.APIResponseValidationError, pydantic.ValidationError,
                          MalformedResponse)):
        err = PromptLabError("malformed", _("The server sent a response that is not valid OpenAI JSON: "
                                          "check that the base URL points at an OpenAI-compatible API."))
    elif isinstance(exc, openai.APIError):
        err = PromptLabError("server_error", _("The provider reported an error in the middle of the reply: "
                                             "press Retry."))
    else:
        err = PromptLabError("unexpected", _(
            "Something unexpected went wrong ({error_type}): press Retry; the details are in the call log."
        ).format(error_type=type(exc).__name__))
    if err.detail == err.message:
        err.detail = f"{type(exc).__name__}: {exc}"
    err.detail = scrub_secrets(err.detail, secrets)
    err.message = scrub_secrets(err.message, secrets)
    return err
