"""The Playground's draft: the prompt being edited (system, user template, variables, history) and its
request settings, checked when imported; what each model accepts; the messages and parameters it sends;
a draft rebuilt from a logged request (replay).
"""
from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any

import jsonschema

from core.base.i18n import _
from core.formats import json_guard
from core.llm import file_vars
from core.llm.attachments import Attachment
from core.llm.local_model import is_local_model
from core.llm.providers import Provider, is_reasoning_model, request_params
from core.llm.responses_api import RESPONSES_KINDS, choose_api

_VARIABLE = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}")
REASONING_EFFORTS = ("minimal", "low", "medium", "high")


class PlaygroundError(ValueError):
    """Bad playground input, with the sentence shown to the user."""


@dataclass
class RunSettings:
    """The request parameters a playground run sets (None = leave to the model's default)."""

    temperature: float | None = 1.0
    top_p: float | None = None
    max_tokens: int | None = 512
    stop: list[str] = field(default_factory=list)
    presence_penalty: float | None = None
    frequency_penalty: float | None = None
    seed: int | None = None
    response_format: str = "text"  # text | json_object | json_schema
    json_schema: dict[str, Any] | None = None
    tools: list[dict[str, Any]] = field(default_factory=list)
    tool_choice: str = "auto"  # auto | none | required | <function name>
    reasoning_effort: str | None = None
    service_tier: str | None = None  # auto | default | flex | priority (None = not sent)
    api: str = "auto"  # auto | responses | chat: which OpenAI API runs it (core.llm.responses_api.choose_api)
    # OpenAI's hosted tools, Responses API only: "web_search", "web_search_preview", "file_search" (which searches
    # the vector stores named in `vector_store_ids`)
    builtin_tools: list[str] = field(default_factory=list)
    vector_store_ids: list[str] = field(default_factory=list)


SERVICE_TIERS = ("auto", "default", "flex", "priority")
_NUMBER = (int, float)
_SETTING_TYPES: dict[str, tuple[type, ...]] = {
    "temperature": _NUMBER, "top_p": _NUMBER, "max_tokens": (int,), "stop": (list,), "presence_penalty": _NUMBER,
    "frequency_penalty": _NUMBER, "seed": (int,), "response_format": (str,), "json_schema": (dict,),
    "tools": (list,), "tool_choice": (str,), "reasoning_effort": (str,),
    "service_tier": (str,), "api": (str,), "builtin_tools": (list,), "vector_store_ids": (list,)}
BUILT_IN_TOOLS = ("web_search", "web_search_preview", "file_search")


@dataclass
class Draft:
    """What the playground edits and the prompt library stores: prompt, variables, parameters, model."""

    model: str
    system: str = ""
    user_template: str = ""
    variables: dict[str, str] = field(default_factory=dict)
    settings: RunSettings = field(default_factory=RunSettings)
    history: list[dict[str, Any]] = field(default_factory=list)  # earlier turns (a replayed call's)
    # Image / PDF variables ({{invoice}} → the uploaded file), sent as content parts (core.llm.file_vars). Not part
    # of the stored form: a saved version or an export keeps the prompt, not megabytes of inputs — the {{names}}
    # stay in the prompt and the files are uploaded again (see `to_dict`).
    files: dict[str, Attachment] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(replace(self, files={}))
        del data["files"]
        return data

    @classmethod
    def checked(cls, data: Any, where: str = "The draft") -> Draft:
        """A draft from untrusted data (an imported file): every field's type checked, one sentence if wrong."""
        if not isinstance(data, dict):
            raise ValueError(_('{where} must be an object with model, system, user_template…').format(where=where))
        for key in ("model", "system", "user_template"):
            if key in data and not isinstance(data[key], str):
                raise ValueError(_('{where}: {key} must be text.').format(where=where, key=key))
        if not isinstance(data.get("model"), str) or not data["model"].strip():
            raise ValueError(_('{where} needs a model (text).').format(where=where))
        variables = data.get("variables") or {}
        if not isinstance(variables, dict) or not all(isinstance(k, str) and isinstance(v, str)
                                                      for k, v in variables.items()):
            raise ValueError(_('{where}: variables must map names to text.').format(where=where))
        history = data.get("history") or []
        if not isinstance(history, list) or not all(isinstance(m, dict) and isinstance(m.get("role"), str)
                                                    and _history_content_ok(m) for m in history):
            raise ValueError(_('{where}: history must be a list of {{role, content}} messages with text.').format(
                where=where))
        settings = data.get("settings") or {}
        if not isinstance(settings, dict):
            raise ValueError(_('{where}: settings must be an object.').format(where=where))
        for name, expected in _SETTING_TYPES.items():
            value = settings.get(name)
            if value is not None and (isinstance(value, bool) or not isinstance(value, expected)):
                raise ValueError(_('{where}: setting {name} has the wrong type.').format(where=where, name=name))
        if not all(isinstance(s, str) for s in settings.get("stop") or []):
            raise ValueError(_('{where}: stop sequences must be text.').format(where=where))
        if not all(isinstance(t, dict) for t in settings.get("tools") or []):
            raise ValueError(_('{where}: tools must be objects.').format(where=where))
        if not all(isinstance(t, str) for t in [*(settings.get("builtin_tools") or []),
                                                 *(settings.get("vector_store_ids") or [])]):
            raise ValueError(_('{where}: built-in tools and vector store ids must be text.').format(where=where))
        if settings.get("json_schema") is not None:
            json_guard.check_refs(settings["json_schema"], f"{where}'s JSON schema")
        return cls.from_dict(data)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Draft:
        known = {f.name for f in fields(RunSettings)}
        settings = RunSettings(**{k: v for k, v in (data.get("settings") or {}).items() if k in known})
        return cls(model=data["model"], system=data.get("system", ""), user_template=data.get("user_template", ""),
                   variables=dict(data.get("variables") or {}), settings=settings,
                   history=list(data.get("history") or []))


def _history_content_ok(message: dict[str, Any]) -> bool:
    """Text content; an assistant turn that only calls tools may have none (its `tool_calls` must be a list)."""
    if isinstance(message.get("content"), str):
        return True
    return message.get("content") is None and isinstance(message.get("tool_calls"), list)


def template_variables(template: str) -> list[str]:
    """The {{names}} a template uses, in order of first appearance."""
    return list(dict.fromkeys(_VARIABLE.findall(template)))


def fill_template(template: str, variables: dict[str, Any]) -> str:
    """Replace {{name}} with its value; a variable without a value is an error, not a silent blank."""
    missing = [v for v in template_variables(template) if v not in variables]
    if missing:
        raise PlaygroundError(_('Give a value for {variables} in the variables table.').format(
            variables=', '.join('{{' + m + '}}' for m in missing)))
    return _VARIABLE.sub(lambda m: str(variables[m.group(1)]), template)


def messages_for(draft: Draft) -> list[dict[str, Any]]:
    """The chat messages a draft sends: system, any replayed history, then the filled-in user message."""
    messages: list[dict[str, Any]] = [{"role": "system", "content": draft.system}] if draft.system.strip() else []
    messages += draft.history
    variables: dict[str, Any] = {**draft.variables, **draft.files}
    user = file_vars.place_files([{"role": "user", "content": draft.user_template}], variables, fill_template)[0]
    if user["content"] if isinstance(user["content"], list) else user["content"].strip():
        messages.append(user)
    if not any(m["role"] == "user" for m in messages):
        raise PlaygroundError(_("Write a user message to send."))
    return messages


def unsupported_controls(provider_kind: str, model: str) -> dict[str, str]:
    """Controls this model does not accept, each with the reason shown beside it."""
    reasons: dict[str, str] = {}
    if is_reasoning_model(model):
        for control in ("temperature", "top_p", "presence_penalty", "frequency_penalty", "stop"):
            reasons[control] = _("reasoning models fix sampling and do not take this")
    else:
        reasons["reasoning_effort"] = _("only reasoning models (o-series, gpt-5) take a reasoning effort")
    if provider_kind == "local" or is_local_model(model):
        reasons["tools"] = _("the offline model cannot call tools")
        reasons["reasoning_effort"] = _("the offline model has no reasoning effort")
        reasons["service_tier"] = _("the offline model has no service tier")
    return reasons


def builtin_tools_off(provider_kind: str, api_choice: str, model: str) -> str | None:
    """Why OpenAI's built-in tools (web / file search) cannot run with this provider and API, None when they can."""
    if provider_kind == "local" or is_local_model(model):
        return _("the offline model has no built-in tools")
    if provider_kind not in RESPONSES_KINDS:
        return _("built-in tools run on OpenAI and Azure only; a compatible server has none")
    if choose_api(provider_kind, api_choice, model) != "responses":
        return _("built-in tools need the Responses API: choose Responses as the API")
    return None


def builtin_tool_params(s: RunSettings) -> list[dict[str, Any]]:
    """The hosted tools as the Responses API takes them; file search without a vector store is a PlaygroundError."""
    tools: list[dict[str, Any]] = []
    for name in s.builtin_tools:
        if name not in BUILT_IN_TOOLS:
            raise PlaygroundError(_("Unknown built-in tool: {name}.").format(name=name))
        if name == "file_search":
            if not s.vector_store_ids:
                raise PlaygroundError(_("File search needs the id of at least one vector store (vs_…)."))
            tools.append({"type": "file_search", "vector_store_ids": list(s.vector_store_ids)})
        else:
            tools.append({"type": name})
    return tools


def validate_schema(text: str) -> dict[str, Any]:
    """A JSON Schema for structured output, checked before sending."""
    try:
        schema = json_guard.loads(text, "The JSON schema")
        json_guard.check_refs(schema, "The JSON schema")
        jsonschema.Draft202012Validator.check_schema(schema)
    except json_guard.JSONShapeError as exc:
        raise PlaygroundError(str(exc)) from None
    except json.JSONDecodeError as exc:
        raise PlaygroundError(_('The JSON schema is not valid JSON (line {lineno}: {msg}).').format(
            lineno=exc.lineno, msg=exc.msg)) from None
    except jsonschema.SchemaError as exc:
        raise PlaygroundError(_('The JSON schema is not valid ({message}).').format(message=exc.message)) from None
    return schema


def check_json_output(text: str, schema: dict[str, Any] | None) -> tuple[bool, str | None]:
    """Is the reply valid JSON (and valid against the schema)? Returns (valid, the first error)."""
    try:
        value = json_guard.loads(text, "The reply")
    except json.JSONDecodeError as exc:
        return False, f"not JSON: {exc.msg} at line {exc.lineno}"
    except json_guard.JSONShapeError as exc:
        return False, str(exc)
    if schema is None:
        return True, None
    try:
        error = jsonschema.exceptions.best_match(jsonschema.Draft202012Validator(schema).iter_errors(value))
    except RecursionError:
        return False, "the schema recursed without end on this reply"
    if error is None:
        return True, None
    where = "/".join(str(p) for p in error.absolute_path) or "(root)"
    return False, f"{where}: {error.message}"


def build_params(provider: Provider, model: str, s: RunSettings) -> dict[str, Any]:
    """The request parameters for this provider and model; controls the model does not accept are left out."""
    skip = unsupported_controls(provider.kind, model)
    extra: dict[str, Any] = {}
    for name in ("top_p", "presence_penalty", "frequency_penalty", "seed"):
        value = getattr(s, name)
        if value is not None and name not in skip:
            extra[name] = value
    if s.stop and "stop" not in skip:
        extra["stop"] = s.stop[:4]
    if s.response_format == "json_object":
        extra["response_format"] = {"type": "json_object"}
    elif s.response_format == "json_schema" and s.json_schema and "json_schema" not in skip:
        extra["response_format"] = {"type": "json_schema", "json_schema": {
            "name": "output", "schema": s.json_schema, "strict": False}}
    if s.tools and "tools" not in skip:
        extra["tools"] = list(s.tools)
        extra["tool_choice"] = s.tool_choice if s.tool_choice in ("auto", "none", "required") else {
            "type": "function", "function": {"name": s.tool_choice}}
    hosted = builtin_tool_params(s) if builtin_tools_off(provider.kind, s.api, model) is None else []
    if hosted:  # sent only where they run (Responses on OpenAI / Azure); elsewhere the editor says why not
        extra["tools"] = [*extra.get("tools", []), *hosted]
    if s.reasoning_effort and "reasoning_effort" not in skip:
        extra["reasoning_effort"] = s.reasoning_effort
    if s.service_tier in SERVICE_TIERS and "service_tier" not in skip:
        extra["service_tier"] = s.service_tier
    temperature = None if "temperature" in skip else s.temperature
    return request_params(provider, model, temperature=temperature, max_tokens=s.max_tokens, **extra)


def replay_draft(request: dict[str, Any]) -> Draft:
    """A draft that re-sends a logged request: its model, messages and parameters."""
    messages = list(request.get("messages") or [])
    system = messages.pop(0)["content"] if messages and messages[0].get("role") == "system" else ""
    last_user = max((i for i, m in enumerate(messages) if m.get("role") == "user"), default=None)
    # The user box takes the last user message only when it ends the request: a call that went on after tool
    # calls ends with `tool` turns, and its messages replay in their order.
    ends_with_user = last_user is not None and last_user == len(messages) - 1
    user = messages.pop()["content"] if ends_with_user else ""
    if isinstance(user, list):  # text and image / file parts: the log keeps a file's digest, not its bytes, so
        # the text is replayed and the files are uploaded again
        user = "\n".join(p.get("text", "") for p in user if isinstance(p, dict) and p.get("type") == "text")
    fmt = request.get("response_format") or {}
    tool_choice = request.get("tool_choice", "auto")
    settings = RunSettings(
        temperature=request.get("temperature"), top_p=request.get("top_p"),
        max_tokens=request.get("max_completion_tokens") or request.get("max_tokens"),
        stop=[request["stop"]] if isinstance(request.get("stop"), str) else list(request.get("stop") or []),
        presence_penalty=request.get("presence_penalty"), frequency_penalty=request.get("frequency_penalty"),
        seed=request.get("seed"), response_format=fmt.get("type", "text"),
        json_schema=(fmt.get("json_schema") or {}).get("schema"), tools=list(request.get("tools") or []),
        tool_choice=tool_choice if isinstance(tool_choice, str) else tool_choice["function"]["name"],
        reasoning_effort=request.get("reasoning_effort"), service_tier=request.get("service_tier"))
    # {{name}} in a replayed message is literal text: each such variable is given itself as its value.
    literal = {name: "{{" + name + "}}" for name in template_variables(str(user))}
    return Draft(model=request.get("model", ""), system=system, user_template=str(user), variables=literal,
                 settings=settings, history=messages)
