"""Eval configs in promptfoo's format, read and written: prompts, providers, defaultTest, tests (inline or from
CSV / YAML / JSONL files) and the grader (`defaultTest.options.provider`). What PromptLab does not support is named
in `EvalConfig.notes`, one sentence each, never dropped silently. Test sets also travel alone as CSV (promptfoo's
`__expected` columns), JSONL or YAML.

What a config may reach is decided here: its `file://` references read only through `ConfigFiles` (nothing for a
pasted config, the files uploaded with it, or the command line's own folder), every document is read within
`core.formats.parse_limits`, and code in it (python or javascript assertions) is refused unless whoever runs it is an admin.
"""
from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path, PurePosixPath
from typing import Any

import yaml

from core.base.errors import PromptLabError
from core.base.i18n import _
from core.evals.assertions import CODE_TYPES, MODEL_GRADED, PROMPTFOO_TYPES, SUPPORTED, Assertion, split_values
from core.formats import json_guard, parse_limits
from core.llm import file_vars
from core.llm.attachments import MAX_ATTACHMENT_BYTES, Attachment, check_attachment
from core.policy.access import Identity

# The config a new Evals page starts with (%s: the default model).
EXAMPLE_CONFIG = """description: Refund answers
prompts:
  - "Answer in one sentence: {{question}}"
  - "You are a support agent. Reply briefly and politely: {{question}}"
providers:
  - openai:chat:%s
defaultTest:
  assert:
    - type: not-icontains
      value: sorry
tests:
  - description: refund window
    vars: {question: "How long do I have to return shoes?"}
    assert:
      - {type: icontains, value: days}
  - description: no refund for gift cards
    vars: {question: "Can I return a gift card?"}
    assert:
      - {type: icontains-any, value: [no, not]}
"""

# promptfoo provider ids PromptLab runs: OpenAI's chat API (and any compatible server via apiBaseUrl).
_PROVIDER_ID = re.compile(r"^openai:(?:chat:|responses:)?(?P<model>.+)$")
CONFIG_KEYS = {"temperature", "max_tokens", "max_completion_tokens", "top_p", "seed", "stop", "presence_penalty",
               "frequency_penalty", "response_format", "tools", "tool_choice", "reasoning_effort"}
PROVIDER_KEYS = CONFIG_KEYS | {"apiBaseUrl", "apiKeyEnvar"}
ASSERTION_KEYS = {"type", "value", "threshold", "weight", "metric", "provider"}
TEST_KEYS = {"vars", "assert", "description", "threshold", "options", "metadata"}
TOP_KEYS = {"description", "prompts", "providers", "tests", "defaultTest"}
# Types whose threshold promptfoo defaults to 0.75 (similar: 0.8) when they come from a CSV "__expected" string.
_CSV_THRESHOLD_TYPES = {"answer-relevance", "classifier", "context-faithfulness", "context-recall",
                        "context-relevance", "cost", "latency", "levenshtein", "perplexity-score", "perplexity",
                        "rouge-n", "similar", "starts-with"}
_CSV_TYPES = re.compile(r"^(not-)?(%s)(?:\((\d+(?:\.\d+)?)\))?(?::([\s\S]*))?$" % "|".join(
    sorted(map(re.escape, PROMPTFOO_TYPES), key=len, reverse=True)))
_JS_FILES = (".js", ".cjs", ".mjs", ".ts", ".cts", ".mts")


class EvalConfigError(ValueError):
    """A config that cannot be read: the sentence says where and why."""


@dataclass(frozen=True, kw_only=True)
class PromptSpec:
    """One prompt: plain text (sent as the user message) or chat-format messages; `{{var}}` slots in either."""

    label: str
    text: str | None = None
    messages: list[dict[str, Any]] | None = None  # content text, or content parts (image_url parts with {{slots}})

    def to_config(self) -> Any:
        if self.messages is not None:
            return {"raw": json.dumps(self.messages, ensure_ascii=False), "label": self.label}
        return self.text if self.label == self.text else {"raw": self.text, "label": self.label}


@dataclass(frozen=True, kw_only=True)
class ProviderSpec:
    """A provider as written in the config (`id` is kept exactly: results name it) and the model it runs."""

    id: str
    model: str
    label: str | None = None
    config: dict[str, Any] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return self.label or self.id

    @property
    def api(self) -> str:
        """The API its cells use: promptfoo's `openai:responses:<model>` is the Responses API, the rest chat."""
        return "responses" if self.id.startswith("openai:responses:") else "chat"

    @property
    def api_base_url(self) -> str | None:
        return self.config.get("apiBaseUrl")

    def params(self) -> dict[str, Any]:
        """Request parameters the config sets (sampling, output format, tools)."""
        return {k: v for k, v in self.config.items() if k in CONFIG_KEYS}

    def to_config(self) -> Any:
        if not self.config and not self.label:
            return self.id
        out: dict[str, Any] = {"id": self.id}
        if self.label:
            out["label"] = self.label
        if self.config:
            out["config"] = dict(self.config)
        return out


@dataclass(frozen=True, kw_only=True)
class TestCase:
    """One case: variables, assertions, a description, an optional score threshold."""

    __test__ = False  # not a pytest class, whatever its name
    vars: dict[str, Any] = field(default_factory=dict)
    assertions: list[Assertion] = field(default_factory=list)
    description: str = ""
    threshold: float | None = None
    # promptfoo's filterable `metadata`; PromptLab keeps where a case came from here (`source`: the call or the
    # conversation turn, `rating`, `note`, `model`): it travels with the case and never reaches the prompt.
    metadata: dict[str, Any] = field(default_factory=dict)

    def to_config(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if self.description:
            out["description"] = self.description
        # An image or PDF variable as the reference it came from (the bytes are not part of a config).
        out["vars"] = {k: f"file://{v.name}" if isinstance(v, Attachment) else v for k, v in self.vars.items()}
        if self.assertions:
            out["assert"] = [a.to_dict() for a in self.assertions]
        if self.threshold is not None:
            out["threshold"] = self.threshold
        if self.metadata:
            out["metadata"] = dict(self.metadata)
        return out


@dataclass(kw_only=True)
class EvalConfig:
    """A whole eval: which prompts, on which providers, against which cases, graded by which model."""

    description: str = ""
    prompts: list[PromptSpec] = field(default_factory=list)
    providers: list[ProviderSpec] = field(default_factory=list)
    tests: list[TestCase] = field(default_factory=list)
    default_test: TestCase = field(default_factory=TestCase)
    grader: str | None = None  # defaultTest.options.provider
    notes: list[str] = field(default_factory=list)  # what was not supported, one sentence each

    def cases(self) -> list[TestCase]:
        """The tests as run: defaultTest's vars under each test's, its assertions first (promptfoo's order)."""
        d = self.default_test
        return [TestCase(vars={**d.vars, **t.vars}, assertions=[*d.assertions, *t.assertions],
                         description=t.description,
                         threshold=t.threshold if t.threshold is not None else d.threshold) for t in self.tests]

    @property
    def needs_grader(self) -> bool:
        """Whether any case has a model-graded assertion (the run then asks a grader model)."""
        return any(a.base_type in MODEL_GRADED for t in self.cases() for a in t.assertions)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if self.description:
            out["description"] = self.description
        out["prompts"] = [p.to_config() for p in self.prompts]
        out["providers"] = [p.to_config() for p in self.providers]
        default = self.default_test.to_config()
        if not self.default_test.vars:
            default.pop("vars", None)
        if self.grader:
            default["options"] = {"provider": self.grader}
        if default:
            out["defaultTest"] = default
        out["tests"] = [t.to_config() for t in self.tests]
        return out


def to_yaml(config: EvalConfig) -> str:
    """The config in promptfoo's YAML (what `promptfoo eval -c` reads)."""
    return yaml.safe_dump(config.to_dict(), sort_keys=False, allow_unicode=True, width=120)


# ----- reading ------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ConfigFiles:
    """What a config's `file://` references may read. Nothing, by default: a config typed or pasted into the page
    must not reach the server's files. A config uploaded with other files reads those, found by their name alone,
    so no path leads anywhere else. The command line (run by the server's operator, on their own machine) reads
    the config's folder, as promptfoo does."""

    uploaded: Mapping[str, bytes] = field(default_factory=dict)
    folder: Path | None = None
    # A stored run's config, read back: its image / PDF variables stay `file://<name>` (their bytes were not
    # stored), and `EvalRun` refuses to send such a case.
    stored: bool = False

    def read(self, ref: str) -> tuple[str, str]:
        """(file name, text) for a `file://` reference, or EvalConfigError saying why this config may not read it."""
        where = ref.removeprefix("file://")
        name = PurePosixPath(where.replace("\\", "/")).name
        if self.folder is not None:
            path = Path(where)
            path = path if path.is_absolute() else self.folder / path
            try:
                parse_limits.check_size(path.stat().st_size, parse_limits.UPLOADED_BYTES, path.name)  # unread
                return path.name, path.read_text(encoding="utf-8")
            except OSError as err:
                raise EvalConfigError(_('{ref} could not be read: {why}').format(
                    ref=ref, why=err.strerror or err)) from None
            except parse_limits.LimitExceeded as err:
                raise EvalConfigError(str(err)) from None
        if not self.uploaded:
            raise EvalConfigError(_('{ref}: a config typed or pasted here reads no files — upload the config '
                                    'together with the files it names.').format(ref=ref))
        if name not in self.uploaded:
            raise EvalConfigError(_('{ref}: no file named “{name}” was uploaded with the config (uploaded: '
                                    '{names}).').format(ref=ref, name=name, names=", ".join(sorted(self.uploaded))))
        data = self.uploaded[name]
        try:
            parse_limits.check_size(data, parse_limits.UPLOADED_BYTES, name)
        except parse_limits.LimitExceeded as err:
            raise EvalConfigError(str(err)) from None
        return name, data.decode("utf-8", errors="replace")

    def read_attachment(self, ref: str) -> Attachment:
        """An image or PDF a `file://` variable names, read by the same rules as `read` (a pasted config reads
        nothing; an uploaded one only the files uploaded with it, by name; the command line its folder), then
        checked by its content (`check_attachment`: type, 20 MB, a readable unlocked PDF)."""
        where = ref.removeprefix("file://")
        try:
            if self.folder is None:
                name = PurePosixPath(where.replace("\\", "/")).name
                if name not in self.uploaded:
                    self.read(ref)  # raises the sentence saying why this config may not read it
                return check_attachment(name, self.uploaded[name])
            path = Path(where)
            path = path if path.is_absolute() else self.folder / path
            size = path.stat().st_size
            if size > MAX_ATTACHMENT_BYTES:  # refused unread
                raise file_vars.too_large(path.name, size)
            return check_attachment(path.name, path.read_bytes())
        except OSError as err:
            raise EvalConfigError(_('{ref} could not be read: {why}').format(
                ref=ref, why=err.strerror or err)) from None
        except PromptLabError as err:
            raise EvalConfigError(err.message) from None


NO_FILES = ConfigFiles()
STORED = ConfigFiles(stored=True)
# The operator at the command line: it is their machine, so their configs may run code.
OPERATOR = Identity("operator", admin=True)


def uploaded_config(files: Mapping[str, bytes]) -> str:
    """Which of the files uploaded together is the config: the only YAML file, or the one with a top-level
    `prompts:` (the others are its cases)."""
    names = [n for n in files if PurePosixPath(n).suffix in (".yaml", ".yml")]
    if len(names) > 1:
        names = [n for n in names if re.search(rb"^prompts\s*:", files[n], re.M)]
    if len(names) != 1:
        raise EvalConfigError(_("Upload one config (the YAML file with prompts and providers) together with the "
                                "files it names."))
    return names[0]


def config_text_from_uploads(files: Mapping[str, bytes]) -> str:
    """The text of the config among files uploaded together (`uploaded_config`), once its size is allowed."""
    name = uploaded_config(files)
    try:
        parse_limits.check_size(files[name], parse_limits.PASTED_BYTES, name)
    except parse_limits.LimitExceeded as err:
        raise EvalConfigError(str(err)) from None
    return files[name].decode("utf-8", errors="replace")


def load_config(path: str | Path) -> EvalConfig:
    """Read a promptfoo config file (the command line); `file://` references are relative to its folder."""
    path = Path(path)
    files = ConfigFiles(folder=path.parent)
    name, text = files.read(path.name)
    return _counted(parse_config(_yaml(text, name, parse_limits.UPLOADED_BYTES), files, actor=OPERATOR))


def _yaml(text: str, name: str | None = None, max_bytes: int = parse_limits.PASTED_BYTES) -> Any:
    name = name or _("The config")
    try:
        return parse_limits.load_yaml(text, name, max_bytes)
    except parse_limits.LimitExceeded as err:
        raise EvalConfigError(str(err)) from None
    except RecursionError:
        raise EvalConfigError(_('{name} is nested too deeply to read.').format(name=name)) from None
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f" (line {mark.line + 1})" if mark is not None else ""
        problem = getattr(err, "problem", None) or "it cannot be parsed"
        raise EvalConfigError(_('{name} is not valid YAML{where}: {problem}.').format(
            name=name, where=where, problem=problem)) from None


def parse_config_text(text: str, files: ConfigFiles = NO_FILES, *, actor: Identity | None = None,
                      max_bytes: int = parse_limits.PASTED_BYTES) -> EvalConfig:
    """A config from the page's text box (`files`: what its `file://` references may read — the files uploaded
    with it, else none; `actor`: who will run it, see `parse_config`)."""
    return _counted(parse_config(_yaml(text, max_bytes=max_bytes), files, actor=actor))


def _counted(config: EvalConfig) -> EvalConfig:
    """A config from text or files holds at most MAX_CASES cases, inline and from its files together. (A stored
    run's config, read back from the database, is not counted again.)"""
    _cases_limit(len(config.tests), _("The config"))
    return config


def parse_config(data: Any, files: ConfigFiles = NO_FILES, *, actor: Identity | None = None) -> EvalConfig:
    """A config from its parsed YAML. `actor`: who will run it — a config with code in it (python, javascript) is
    refused here unless they are an admin, and `EvalRun` refuses it again before anything runs. None: the config
    is only read (a stored run's)."""
    try:
        config = _parse_config(data, files)
    except (TypeError, AttributeError) as err:  # a value of the wrong kind somewhere deep in the mapping
        raise EvalConfigError(_('The config has an entry of the wrong kind ({why}).').format(why=err)) from None
    if actor is not None:
        refuse_code([config.default_test], actor, "defaultTest")
        refuse_code(config.tests, actor)
    return config


def refuse_code(tests: Iterable[TestCase], actor: Identity | None, where: str | None = None) -> None:
    """Python and JavaScript assertions run code on the server: only an admin's may (without an access gate everyone
    is one). None is nobody in particular, and is refused too."""
    if actor is not None and actor.admin:
        return
    for i, test in enumerate(tests, 1):
        for a in test.assertions:
            if a.base_type in CODE_TYPES:
                raise EvalConfigError(_('{where}: “{type}” assertions run code on the server, and only an admin may '
                                        'run code here.').format(where=where or test.description or f"test {i}",
                                                                 type=a.type))


def _parse_config(data: Any, files: ConfigFiles) -> EvalConfig:
    if not isinstance(data, dict):
        raise EvalConfigError(_("The config must be a mapping with prompts, providers and tests."))
    notes: list[str] = []
    for key in sorted(set(data) - TOP_KEYS, key=str):
        notes.append(_('Top-level “{key}” is not supported by PromptLab and was ignored.').format(key=key))
    prompts = _prompts(data.get("prompts"), files, notes)
    providers = _providers(data.get("providers"), notes)
    default_raw = data.get("defaultTest") or {}
    if isinstance(default_raw, str):
        default_raw = _load_file(default_raw, files)[1]
    default = _test(default_raw, "defaultTest", notes) if default_raw else TestCase()
    grader = None
    options = default_raw.get("options") if isinstance(default_raw, dict) else None
    if isinstance(options, dict):
        provider = options.get("provider")
        grader = provider.get("id") if isinstance(provider, dict) else provider
        for key in sorted(set(options) - {"provider"}, key=str):
            notes.append(_('defaultTest option “{key}” is not supported and was ignored.').format(key=key))
    tests = _tests(data.get("tests"), files, notes)
    default = _with_files(default, "defaultTest", files)
    tests = with_files(tests, files)
    if not prompts:
        raise EvalConfigError(_("The config has no prompts."))
    if not providers:
        raise EvalConfigError(_("The config has no providers PromptLab can run."))
    return EvalConfig(description=str(data.get("description") or ""), prompts=prompts, providers=providers,
                      tests=tests, default_test=default, grader=grader, notes=notes)


def with_files(tests: list[TestCase], files: ConfigFiles) -> list[TestCase]:
    """Cases read apart from their config (the page's edited case table) with their image and PDF variables read
    by the config's file rules."""
    return [_with_files(t, t.description or f"test {i}", files) for i, t in enumerate(tests, 1)]


def _with_files(test: TestCase, where: str, files: ConfigFiles) -> TestCase:
    """The test with each `file://` image or PDF variable read as an `Attachment` (promptfoo loads such vars; a
    stored run's config names them as `file://<name>` again). Other `file://` vars stay text (`_test` notes them)."""
    loaded: dict[str, Any] = {}
    for name, value in test.vars.items() if not files.stored else ():
        if isinstance(value, str) and value.startswith("file://") and file_vars.is_attachment_name(value):
            try:
                loaded[name] = files.read_attachment(value)
            except EvalConfigError as err:
                raise EvalConfigError(_('{where}, variable “{name}”: {why}').format(
                    where=where, name=name, why=err)) from None
    return replace(test, vars={**test.vars, **loaded}) if loaded else test


def _load_file(ref: str, files: ConfigFiles) -> tuple[str, Any]:
    """(file name, content): YAML and JSON files parsed (within the limits), others as text."""
    name, text = files.read(ref)
    suffix = PurePosixPath(name).suffix
    if suffix in (".yaml", ".yml"):
        return name, _yaml(text, name, parse_limits.UPLOADED_BYTES)
    if suffix == ".json":
        try:
            return name, json_guard.loads(text, name)
        except json_guard.JSONShapeError as err:
            raise EvalConfigError(str(err)) from None
        except json.JSONDecodeError as err:
            raise EvalConfigError(_('{name} is not valid JSON (line {line}): {msg}.').format(
                name=name, line=err.lineno, msg=err.msg)) from None
    return name, text


def _prompt_from_text(text: str, label: str) -> PromptSpec:
    stripped = text.strip()
    if stripped.startswith("["):
        try:
            messages = json_guard.loads(stripped)
        except (json.JSONDecodeError, json_guard.JSONShapeError):  # not chat messages: the prompt is the text
            messages = None
        if isinstance(messages, list) and all(isinstance(m, dict) and "role" in m for m in messages):
            return PromptSpec(label=label, messages=[{"role": m["role"], "content": _chat_content(m.get("content"))}
                                                     for m in messages])
    return PromptSpec(label=label, text=text)


def _chat_content(content: Any) -> Any:
    """A chat prompt message's content: text, or a list of parts (kept as parts — an `image_url` part's URL may
    be an image variable's slot); anything else as its text."""
    if isinstance(content, list) and all(isinstance(p, dict) and isinstance(p.get("type"), str) for p in content):
        return content
    return "" if content is None else str(content)


def _prompts(raw: Any, files: ConfigFiles, notes: list[str]) -> list[PromptSpec]:
    items = raw if isinstance(raw, list) else [raw] if raw else []
    out: list[PromptSpec] = []
    for item in items:
        label = None
        if isinstance(item, dict):
            label = item.get("label")
            ref = item.get("raw") or item.get("id") or item.get("file")
            if ref is None:
                notes.append(_("A prompt without raw text or a file was skipped."))
                continue
            item = ref
        if not isinstance(item, str):
            notes.append(_("A prompt that is not text was skipped."))
            continue
        if item.startswith("file://"):
            if PurePosixPath(item).suffix in (".py", ".js", ".ts", ".mjs", ".cjs"):
                notes.append(_('{item}: prompt functions are not supported; the prompt was skipped.').format(item=item))
                continue
            name, content = _load_file(item, files)
            if PurePosixPath(name).suffix == ".json" and isinstance(content, list):
                out.append(_prompt_from_text(json.dumps(content), label or name))
            elif isinstance(content, str):
                # promptfoo: a text file may hold several prompts separated by a line of three dashes.
                parts = [p.strip() for p in re.split(r"^---\s*$", content, flags=re.M) if p.strip()]
                for i, part in enumerate(parts):
                    out.append(_prompt_from_text(part, label or (name if len(parts) == 1 else f"{name}#{i + 1}")))
            else:
                notes.append(_('{item}: not a prompt PromptLab can read; skipped.').format(item=item))
            continue
        if "{%" in item or re.search(r"\{\{[^}]*\|", item):
            notes.append(_("Nunjucks tags and filters are not supported: only {{variable}} slots are filled."))
        out.append(_prompt_from_text(item, label or item))
    return out


def _providers(raw: Any, notes: list[str]) -> list[ProviderSpec]:
    items = raw if isinstance(raw, list) else [raw] if raw else []
    out: list[ProviderSpec] = []
    for item in items:
        if isinstance(item, str):
            item = {"id": item}
        if not isinstance(item, dict) or not isinstance(item.get("id"), str):
            notes.append(_("A provider without an id was skipped."))
            continue
        provider_id = item["id"]
        match = _PROVIDER_ID.match(provider_id)
        if not match or provider_id.startswith(("openai:embedding", "openai:image",
                                                "openai:assistant", "openai:realtime", "openai:completion")):
            notes.append(_('Provider “{provider_id}” is not supported (PromptLab runs openai:chat:<model> and '
                           'openai:<model>); it was skipped.').format(
                provider_id=provider_id))
            continue
        config = dict(item.get("config") or {})
        for key in sorted(set(config) - PROVIDER_KEYS):
            notes.append(_('Provider “{provider_id}”: config “{key}” is not supported and was ignored.').format(
                provider_id=provider_id, key=key))
            config.pop(key)
        for key in sorted(set(item) - {"id", "label", "config"}):
            notes.append(_('Provider “{provider_id}”: “{key}” is not supported and was ignored.').format(
                provider_id=provider_id, key=key))
        out.append(ProviderSpec(id=provider_id, model=match.group("model"), label=item.get("label"),
                                config=config))
    return out


def _assertion(raw: Any, where: str, notes: list[str]) -> Assertion | None:
    if isinstance(raw, str):
        raw = assertion_from_string(raw).to_dict()
    if not isinstance(raw, dict) or not isinstance(raw.get("type"), str):
        notes.append(_('{where}: an assertion without a type was skipped.').format(where=where))
        return None
    kind = raw["type"]
    skipped = skipped_note(where, kind)
    if skipped is not None:
        notes.append(skipped)
        return None
    for key in sorted(set(raw) - ASSERTION_KEYS):
        notes.append(_('{where}: assertion option “{key}” ({kind}) is not supported and was ignored.').format(
            where=where, key=key, kind=kind))
    provider = raw.get("provider")
    return Assertion(type=kind, value=raw.get("value"), threshold=_number(raw.get("threshold"), where, "threshold"),
                     weight=_number(raw.get("weight", 1.0), where, "weight"), metric=raw.get("metric"),
                     provider=provider.get("id") if isinstance(provider, dict) else provider)


def skipped_note(where: str, kind: str) -> str | None:
    """The run's note for an assertion PromptLab does not run here (one per assertion skipped), None when it runs:
    a type it does not support, or JavaScript on a server without Node.js."""
    from core.evals.javascript import node

    base = kind.removeprefix("not-")
    if base not in SUPPORTED:
        return _('{where}: assertion type “{kind}” is not supported; it was skipped.').format(where=where, kind=kind)
    if base == "javascript" and node() is None:
        return _('{where}: a “{kind}” assertion needs Node.js 20 or later on the server, which is not installed; it '
                 'was skipped.').format(where=where, kind=kind)
    return None


def _number(value: Any, where: str, key: str) -> Any:
    """A threshold or weight as a number (None stays None), or one sentence."""
    if value is None:
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        raise EvalConfigError(_('{where}: {key} must be a number, not “{value}”.').format(
            where=where, key=key, value=str(value)[:40])) from None


def _test(raw: Any, where: str, notes: list[str]) -> TestCase:
    if not isinstance(raw, dict):
        raise EvalConfigError(_('{where} must be a mapping with vars and assert.').format(where=where))
    for key in sorted(set(raw) - TEST_KEYS, key=str):
        notes.append(_('{where}: “{key}” is not supported and was ignored.').format(where=where, key=key))
    listed = raw.get("assert") or []
    if not isinstance(listed, list):
        raise EvalConfigError(_('{where}: assert must be a list of assertions.').format(where=where))
    assertions = [a for a in (_assertion(r, where, notes) for r in listed) if a is not None]
    options = raw.get("options") or {}
    grader = options.get("provider") if isinstance(options, dict) else None
    grader = grader.get("id") if isinstance(grader, dict) else grader
    if grader and where != "defaultTest":  # this test's grader, for its model-graded assertions without their own
        assertions = [replace(a, provider=a.provider or grader) if a.base_type in MODEL_GRADED else a
                      for a in assertions]
    for key in sorted(set(options) - {"provider"}) if isinstance(options, dict) and where != "defaultTest" else []:
        notes.append(_('{where}: option “{key}” is not supported and was ignored.').format(where=where, key=key))
    metadata = raw.get("metadata") or {}
    if not isinstance(metadata, dict):
        raise EvalConfigError(_('{where}: metadata must be a mapping of names to values.').format(where=where))
    variables = raw.get("vars") or {}
    if not isinstance(variables, dict):
        raise EvalConfigError(_('{where}: vars must be a mapping of names to values.').format(where=where))
    for name, value in variables.items():
        if isinstance(value, str) and value.startswith("file://") and not file_vars.is_attachment_name(value):
            notes.append(_('{where}: variable “{name}” names a file ({value}); PromptLab does not load files into '
                           'variables, so it is sent as written.').format(where=where, name=name, value=value))
    return TestCase(vars=dict(variables), assertions=assertions, description=str(raw.get("description") or ""),
                    threshold=_number(raw.get("threshold"), where, "threshold"), metadata=dict(metadata))


def _tests(raw: Any, files: ConfigFiles, notes: list[str]) -> list[TestCase]:
    items = raw if isinstance(raw, list) else [raw] if raw else []
    out: list[TestCase] = []
    for item in items:
        if isinstance(item, str):
            if PurePosixPath(item).suffix not in (".csv", ".jsonl", ".yaml", ".yml", ".json"):
                raise EvalConfigError(_('{item}: tests come from .csv, .jsonl, .yaml or .json files.').format(
                    item=item))
            name, content = _load_file(item, files)
            suffix = PurePosixPath(name).suffix
            if suffix == ".csv":
                out.extend(tests_from_csv(content, notes, what=name))
            elif suffix == ".jsonl":
                out.extend(tests_from_jsonl(content, notes, what=name))
            elif isinstance(content, list):
                _cases_limit(len(content), name)
                out.extend(_test(t, f"{name} test {i + 1}", notes) for i, t in enumerate(content))
            else:
                raise EvalConfigError(_('{item}: a YAML or JSON test file holds a list of tests.').format(item=item))
        else:
            out.append(_test(item, f"test {len(out) + 1}", notes))
    return out


def _cases_limit(count: int, what: str, max_cases: int = parse_limits.MAX_CASES) -> None:
    try:
        parse_limits.check_cases(count, what, max_cases)
    except parse_limits.LimitExceeded as err:
        raise EvalConfigError(str(err)) from None


def assertion_from_string(expected: str) -> Assertion:
    """A CSV `__expected` cell, as promptfoo 0.121.20 reads it (its `assertionFromString`): `javascript:` / `fn:` /
    `eval:` (or a .js file) is JavaScript, `grade:` / `llm-rubric:` a rubric, `python:` (or a .py file) Python,
    `type: value` / `not-type(threshold): value` any type promptfoo knows — one PromptLab does not run is then
    skipped with a note by the caller, never read as text to equal — and anything else the exact text to equal."""
    expected = expected.strip()
    path = expected[7:] if expected.startswith("file://") else ""
    if expected.startswith(("javascript:", "fn:", "eval:")) or path.split(":", 1)[0].endswith(_JS_FILES):
        return Assertion(type="javascript", value=expected.split(":", 1)[1].strip() if not path else expected)
    if expected.startswith(("grade:", "llm-rubric:")):
        return Assertion(type="llm-rubric", value=expected.split(":", 1)[1])
    if expected.startswith("python:") or path.endswith(".py") or ".py:" in path:
        return Assertion(type="python", value=expected[7:].strip())
    match = _CSV_TYPES.match(expected)
    if not match:
        return Assertion(type="equals", value=expected)
    negated, kind, threshold, value = match.groups()
    full = f"not-{kind}" if negated else kind
    if kind in ("contains-any", "contains-all", "icontains-any", "icontains-all"):
        return Assertion(type=full, value=split_values(value) if value else value)
    if kind in ("is-json", "contains-json"):
        return Assertion(type=full, value=value)
    if kind in _CSV_THRESHOLD_TYPES:
        return Assertion(type=full, value=value.strip() if value else value,
                         threshold=float(threshold) if threshold else 0.8 if kind == "similar" else 0.75)
    return Assertion(type=full, value=value.strip() if value else value,
                     threshold=float(threshold) if threshold else None)


def _assertion_to_string(a: Assertion) -> str | None:
    """The CSV cell for an assertion, or None when it needs more than a cell holds (weight, metric, grader)."""
    if a.weight != 1.0 or a.provider or isinstance(a.value, dict):
        return None
    value = a.value
    if isinstance(value, list):
        value = ",".join(f'"{v}"' if "," in str(v) else str(v) for v in value)
    if a.type == "equals" and isinstance(value, str) and assertion_from_string(value).type == "equals":
        return value
    head = a.type + (f"({a.threshold:g})" if a.threshold is not None else "")
    return head if value is None else f"{head}:{value}"


# ----- test sets alone ---------------------------------------------------------------------------------------
def _bounded_text(text: str, what: str, max_bytes: int) -> None:
    try:
        parse_limits.check_size(text, max_bytes, what)
    except parse_limits.LimitExceeded as err:
        raise EvalConfigError(str(err)) from None


def tests_from_csv(text: str, notes: list[str] | None = None, *, what: str | None = None,
                   max_bytes: int = parse_limits.UPLOADED_BYTES) -> list[TestCase]:
    """promptfoo's CSV: one column per variable; `__expected`, `__expected1`… assertion cells; `__description`,
    `__threshold`, `__metric`. Refused whole beyond the size or case limits (parse_limits)."""
    notes = notes if notes is not None else []
    what = what or _("The CSV")
    _bounded_text(text, what, max_bytes)
    reader = csv.DictReader(io.StringIO(text.lstrip("\ufeff")))
    out: list[TestCase] = []
    try:
        for row in reader:
            _cases_limit(len(out) + 1, what)
            out.append(_csv_case(row, _("{what} row {n}").format(what=what, n=len(out) + 1), notes))
    except csv.Error as err:  # e.g. a cell longer than the csv module's field limit (128 KiB)
        raise EvalConfigError(_('{what} cannot be read (line {line}): {why}.').format(
            what=what, line=reader.line_num, why=err)) from None
    return out


def _csv_case(row: dict[str | Any, Any], where: str, notes: list[str]) -> TestCase:
    from core.formats.exports import restore  # here, as in tests_to_csv: reading a config needs no pandas

    variables: dict[str, Any] = {}
    metadata: dict[str, Any] = {}
    assertions, description, threshold, metric = [], "", None, None
    for key, value in row.items():
        # A cell our own Cases CSV quoted against spreadsheet formulas reads back as it was written.
        key, value = restore((key or "").strip()), restore(value or "")
        if key.startswith("__expected"):
            if value.strip():
                assertions.append(assertion_from_string(value))
        elif key == "__description":
            description = value
        elif key == "__threshold":
            threshold = _number(value, where, "__threshold") if value.strip() else None
        elif key == "__metric":
            metric = value or None
        elif key.startswith("__metadata:"):  # promptfoo's `__metadata:<name>` columns
            if value:
                metadata[key.split(":", 1)[1]] = value
        elif key.startswith("__"):
            notes.append(_('CSV column “{key}” is not supported and was ignored.').format(key=key))
        else:
            variables[key] = value
    if metric:
        assertions = [replace(a, metric=metric) for a in assertions]
    kept = []
    for a in assertions:
        skipped = skipped_note(where, a.type)
        if skipped is None:
            kept.append(a)
        else:
            notes.append(skipped)
    return TestCase(vars=variables, assertions=kept, description=description, threshold=threshold,
                    metadata=metadata)


def tests_to_csv(tests: list[TestCase]) -> str:
    """The test set as promptfoo's CSV, every cell through the one spreadsheet-formula neutraliser (a case's text
    is whoever wrote it: `=HYPERLINK(…)` must not run in the spreadsheet of whoever downloads it). A case whose
    assertions a cell cannot hold raises: use YAML or JSONL."""
    from core.formats.exports import rows_to_csv

    names = list(dict.fromkeys(k for t in tests for k in t.vars))
    width = max((len(t.assertions) for t in tests), default=0)
    meta = list(dict.fromkeys(k for t in tests for k in t.metadata))
    header = [*names, *(["__expected"] if width else []), *[f"__expected{i}" for i in range(2, width + 1)],
              "__description", "__threshold", *[f"__metadata:{k}" for k in meta]]
    rows = [header]
    for i, t in enumerate(tests):
        cells = []
        for a in t.assertions:
            cell = _assertion_to_string(a)
            if cell is None:
                raise EvalConfigError(_('Case {case} has an assertion a CSV cell cannot hold ({type} with a '
                                        'weight, grader or object value): export YAML or JSONL instead.').format(
                    case=i + 1, type=a.type))
            cells.append(cell)
        rows.append([_cell(t.vars.get(n, "")) for n in names] + cells + [""] * (width - len(cells))
                    + [t.description, "" if t.threshold is None else f"{t.threshold:g}"]
                    + [_cell(t.metadata.get(k, "")) for k in meta])
    return rows_to_csv(rows)


def _cell(value: Any) -> str:
    if isinstance(value, Attachment):  # an image or PDF variable as the reference it came from
        return f"file://{value.name}"
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


def tests_from_jsonl(text: str, notes: list[str] | None = None, *, what: str | None = None,
                     max_bytes: int = parse_limits.UPLOADED_BYTES,
                     max_cases: int = parse_limits.MAX_CASES) -> list[TestCase]:
    notes = notes if notes is not None else []
    what = what or _("The JSONL file")
    _bounded_text(text, what, max_bytes)
    out: list[TestCase] = []
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        _cases_limit(len(out) + 1, what, max_cases)
        try:
            raw = json_guard.loads(line, _("Line {n}").format(n=n))
        except json_guard.JSONShapeError as err:
            raise EvalConfigError(str(err)) from None
        except json.JSONDecodeError as err:
            raise EvalConfigError(_('Line {n} is not JSON: {msg}.').format(n=n, msg=err.msg)) from None
        out.append(_test(raw, f"line {n}", notes))
    return out


def tests_to_jsonl(tests: list[TestCase]) -> str:
    return "".join(json.dumps(t.to_config(), ensure_ascii=False) + "\n" for t in tests)


def tests_from_yaml(text: str, notes: list[str] | None = None, *, what: str | None = None,
                    max_bytes: int = parse_limits.UPLOADED_BYTES) -> list[TestCase]:
    notes = notes if notes is not None else []
    what = what or _("The YAML file")
    data = _yaml(text, what, max_bytes)
    items = data.get("tests") if isinstance(data, dict) else data
    if not isinstance(items, list):
        raise EvalConfigError(_("A YAML test set is a list of tests (or a mapping with `tests`)."))
    _cases_limit(len(items), what)
    try:
        return [_test(t, f"test {i + 1}", notes) for i, t in enumerate(items)]
    except (TypeError, AttributeError) as err:
        raise EvalConfigError(_('{what} has an entry of the wrong kind ({why}).').format(what=what, why=err)) from None


def tests_to_yaml(tests: list[TestCase]) -> str:
    return yaml.safe_dump([t.to_config() for t in tests], sort_keys=False, allow_unicode=True, width=120)


def tests_from_file(name: str, data: bytes) -> list[TestCase]:
    """Cases from an imported file, read by its extension (CSV, JSONL, else YAML) once its size is allowed. Any
    problem is one EvalConfigError whose sentence names the file."""
    reader = {"csv": tests_from_csv, "jsonl": tests_from_jsonl}.get(name.rsplit(".", 1)[-1], tests_from_yaml)
    try:
        parse_limits.check_size(len(data), parse_limits.UPLOADED_BYTES, name)  # before decoding it
        return reader(data.decode("utf-8", errors="replace"), what=name)
    except ValueError as err:  # EvalConfigError and the limits' LimitExceeded; their sentences may name it already
        raise EvalConfigError(str(err) if name in str(err) else f"{name}: {err}") from None
