"""Eval configs in promptfoo's format, read and written: prompts, providers, defaultTest, tests (inline or from
CSV / YAML / JSONL files) and the grader (`defaultTest.options.provider`). What PromptLab does not support is named
in `EvalConfig.notes`, one sentence each, never dropped silently. Test sets also travel alone as CSV (promptfoo's
`__expected` columns), JSONL or YAML.
"""
from __future__ import annotations

import csv
import io
import json
import re
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import yaml

from core.eval_assertions import MODEL_GRADED, SUPPORTED, Assertion, split_values
from core.i18n import _

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
_PROVIDER_ID = re.compile(r"^openai:(?:chat:)?(?P<model>.+)$")
CONFIG_KEYS = {"temperature", "max_tokens", "max_completion_tokens", "top_p", "seed", "stop", "presence_penalty",
               "frequency_penalty", "response_format", "tools", "tool_choice", "reasoning_effort"}
PROVIDER_KEYS = CONFIG_KEYS | {"apiBaseUrl", "apiKeyEnvar"}
ASSERTION_KEYS = {"type", "value", "threshold", "weight", "metric", "provider"}
TEST_KEYS = {"vars", "assert", "description", "threshold", "options", "metadata"}
TOP_KEYS = {"description", "prompts", "providers", "tests", "defaultTest"}
# Types whose threshold promptfoo defaults to 0.75 when they come from a CSV "__expected" string.
_CSV_THRESHOLD_TYPES = {"answer-relevance", "cost", "latency", "levenshtein", "starts-with"}


class EvalConfigError(ValueError):
    """A config that cannot be read: the sentence says where and why."""


@dataclass(frozen=True, kw_only=True)
class PromptSpec:
    """One prompt: plain text (sent as the user message) or chat-format messages; `{{var}}` slots in either."""

    label: str
    text: str | None = None
    messages: list[dict[str, str]] | None = None

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

    def to_config(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if self.description:
            out["description"] = self.description
        out["vars"] = dict(self.vars)
        if self.assertions:
            out["assert"] = [a.to_dict() for a in self.assertions]
        if self.threshold is not None:
            out["threshold"] = self.threshold
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
def load_config(path: str | Path) -> EvalConfig:
    """Read a promptfoo config file; `file://` references are relative to its folder."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as err:
        raise EvalConfigError(_('{name} could not be read: {why}.').format(
            name=path.name, why=err.strerror or err)) from None
    return parse_config(_yaml(text, path.name), path.parent)


def _yaml(text: str, name: str = "The config") -> Any:
    try:
        return yaml.safe_load(text)
    except RecursionError:
        raise EvalConfigError(_('{name} is nested too deeply to read.').format(name=name)) from None
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f" (line {mark.line + 1})" if mark is not None else ""
        problem = getattr(err, "problem", None) or "it cannot be parsed"
        raise EvalConfigError(_('{name} is not valid YAML{where}: {problem}.').format(
            name=name, where=where, problem=problem)) from None


def parse_config_text(text: str, base_dir: str | Path | None = None) -> EvalConfig:
    return parse_config(_yaml(text), Path(base_dir) if base_dir else None)


def parse_config(data: Any, base_dir: Path | None = None) -> EvalConfig:
    if not isinstance(data, dict):
        raise EvalConfigError(_("The config must be a mapping with prompts, providers and tests."))
    notes: list[str] = []
    for key in sorted(set(data) - TOP_KEYS):
        notes.append(_('Top-level “{key}” is not supported by PromptLab and was ignored.').format(key=key))
    prompts = _prompts(data.get("prompts"), base_dir, notes)
    providers = _providers(data.get("providers"), notes)
    default_raw = data.get("defaultTest") or {}
    if isinstance(default_raw, str):
        default_raw = _load_file(default_raw, base_dir)
    default = _test(default_raw, "defaultTest", notes) if default_raw else TestCase()
    grader = None
    options = default_raw.get("options") if isinstance(default_raw, dict) else None
    if isinstance(options, dict):
        provider = options.get("provider")
        grader = provider.get("id") if isinstance(provider, dict) else provider
        for key in sorted(set(options) - {"provider"}):
            notes.append(_('defaultTest option “{key}” is not supported and was ignored.').format(key=key))
    tests = _tests(data.get("tests"), base_dir, notes)
    if not prompts:
        raise EvalConfigError(_("The config has no prompts."))
    if not providers:
        raise EvalConfigError(_("The config has no providers PromptLab can run."))
    return EvalConfig(description=str(data.get("description") or ""), prompts=prompts, providers=providers,
                      tests=tests, default_test=default, grader=grader, notes=notes)


def _file_path(ref: str, base_dir: Path | None) -> Path:
    path = Path(ref.removeprefix("file://"))
    return path if path.is_absolute() or base_dir is None else base_dir / path


def _load_file(ref: str, base_dir: Path | None) -> Any:
    path = _file_path(ref, base_dir)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as err:
        raise EvalConfigError(_('{ref} could not be read: {why}').format(ref=ref, why=err.strerror or err)) from None
    if path.suffix in (".yaml", ".yml"):
        return yaml.safe_load(text)
    if path.suffix == ".json":
        return json.loads(text)
    return text


def _prompt_from_text(text: str, label: str) -> PromptSpec:
    stripped = text.strip()
    if stripped.startswith("["):
        try:
            messages = json.loads(stripped)
        except json.JSONDecodeError:
            messages = None
        if isinstance(messages, list) and all(isinstance(m, dict) and "role" in m for m in messages):
            return PromptSpec(label=label, messages=[{"role": m["role"], "content": str(m.get("content", ""))}
                                                     for m in messages])
    return PromptSpec(label=label, text=text)


def _prompts(raw: Any, base_dir: Path | None, notes: list[str]) -> list[PromptSpec]:
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
            path = _file_path(item, base_dir)
            if path.suffix in (".py", ".js", ".ts", ".mjs", ".cjs"):
                notes.append(_('{item}: prompt functions are not supported; the prompt was skipped.').format(item=item))
                continue
            content = _load_file(item, base_dir)
            if path.suffix == ".json" and isinstance(content, list):
                out.append(_prompt_from_text(json.dumps(content), label or path.name))
            elif isinstance(content, str):
                # promptfoo: a text file may hold several prompts separated by a line of three dashes.
                parts = [p.strip() for p in re.split(r"^---\s*$", content, flags=re.M) if p.strip()]
                for i, part in enumerate(parts):
                    name = label or (path.name if len(parts) == 1 else f"{path.name}#{i + 1}")
                    out.append(_prompt_from_text(part, name))
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
        if not match or provider_id.startswith(("openai:embedding", "openai:image", "openai:responses",
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
    if kind.removeprefix("not-") not in SUPPORTED:
        notes.append(_('{where}: assertion type “{kind}” is not supported; it was skipped.').format(
            where=where, kind=kind))
        return None
    for key in sorted(set(raw) - ASSERTION_KEYS):
        notes.append(_('{where}: assertion option “{key}” ({kind}) is not supported and was ignored.').format(
            where=where, key=key, kind=kind))
    provider = raw.get("provider")
    return Assertion(type=kind, value=raw.get("value"),
                     threshold=float(raw["threshold"]) if raw.get("threshold") is not None else None,
                     weight=float(raw.get("weight", 1.0)), metric=raw.get("metric"),
                     provider=provider.get("id") if isinstance(provider, dict) else provider)


def _test(raw: Any, where: str, notes: list[str]) -> TestCase:
    if not isinstance(raw, dict):
        raise EvalConfigError(_('{where} must be a mapping with vars and assert.').format(where=where))
    for key in sorted(set(raw) - TEST_KEYS):
        notes.append(_('{where}: “{key}” is not supported and was ignored.').format(where=where, key=key))
    assertions = [a for a in (_assertion(r, where, notes) for r in raw.get("assert") or []) if a is not None]
    options = raw.get("options") or {}
    grader = options.get("provider") if isinstance(options, dict) else None
    grader = grader.get("id") if isinstance(grader, dict) else grader
    if grader and where != "defaultTest":  # this test's grader, for its model-graded assertions without their own
        assertions = [replace(a, provider=a.provider or grader) if a.base_type in MODEL_GRADED else a
                      for a in assertions]
    for key in sorted(set(options) - {"provider"}) if isinstance(options, dict) and where != "defaultTest" else []:
        notes.append(_('{where}: option “{key}” is not supported and was ignored.').format(where=where, key=key))
    if raw.get("metadata"):
        notes.append(_('{where}: metadata is not used by PromptLab (kept out of the run).').format(where=where))
    variables = raw.get("vars") or {}
    if not isinstance(variables, dict):
        raise EvalConfigError(_('{where}: vars must be a mapping of names to values.').format(where=where))
    threshold = raw.get("threshold")
    return TestCase(vars=dict(variables), assertions=assertions, description=str(raw.get("description") or ""),
                    threshold=float(threshold) if threshold is not None else None)


def _tests(raw: Any, base_dir: Path | None, notes: list[str]) -> list[TestCase]:
    items = raw if isinstance(raw, list) else [raw] if raw else []
    out: list[TestCase] = []
    for item in items:
        if isinstance(item, str):
            path = _file_path(item, base_dir)
            text = _load_file(item, base_dir)
            if path.suffix == ".csv":
                out.extend(tests_from_csv(text, notes))
            elif path.suffix == ".jsonl":
                out.extend(tests_from_jsonl(text, notes))
            elif isinstance(text, list):
                out.extend(_test(t, f"{path.name} test {i + 1}", notes) for i, t in enumerate(text))
            else:
                raise EvalConfigError(_('{item}: tests come from .csv, .jsonl, .yaml or .json files.').format(
                    item=item))
            continue
        out.append(_test(item, f"test {len(out) + 1}", notes))
    return out


def assertion_from_string(expected: str) -> Assertion:
    """A CSV `__expected` cell, as promptfoo reads it: `type: value`, `not-type(threshold): value`, the shorthands
    `grade:` / `llm-rubric:` and `python:`, or else the exact text the output must equal."""
    expected = expected.strip()
    if expected.startswith(("grade:", "llm-rubric:")):
        return Assertion(type="llm-rubric", value=expected.split(":", 1)[1])
    if expected.startswith("python:"):
        return Assertion(type="python", value=expected[7:].strip())
    types = "|".join(sorted(map(re.escape, SUPPORTED), key=len, reverse=True))
    match = re.match(rf"^(not-)?({types})(?:\((\d+(?:\.\d+)?)\))?(?::([\s\S]*))?$", expected)
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
                         threshold=float(threshold) if threshold else 0.75)
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
def tests_from_csv(text: str, notes: list[str] | None = None) -> list[TestCase]:
    """promptfoo's CSV: one column per variable; `__expected`, `__expected1`… assertion cells; `__description`,
    `__threshold`, `__metric`."""
    notes = notes if notes is not None else []
    reader = csv.DictReader(io.StringIO(text.lstrip("\ufeff")))
    out = []
    for row in reader:
        variables: dict[str, Any] = {}
        assertions, description, threshold, metric = [], "", None, None
        for key, value in row.items():
            key, value = (key or "").strip(), value or ""
            if key.startswith("__expected"):
                if value.strip():
                    assertions.append(assertion_from_string(value))
            elif key == "__description":
                description = value
            elif key == "__threshold":
                threshold = float(value) if value.strip() else None
            elif key == "__metric":
                metric = value or None
            elif key.startswith("__"):
                notes.append(_('CSV column “{key}” is not supported and was ignored.').format(key=key))
            else:
                variables[key] = value
        if metric:
            assertions = [replace(a, metric=metric) for a in assertions]
        for a in assertions:
            if a.base_type not in SUPPORTED:
                notes.append(_('CSV: assertion type “{type}” is not supported; it was skipped.').format(type=a.type))
        out.append(TestCase(vars=variables, assertions=[a for a in assertions if a.base_type in SUPPORTED],
                            description=description, threshold=threshold))
    return out


def tests_to_csv(tests: list[TestCase]) -> str:
    """The test set as promptfoo's CSV, every cell through the one spreadsheet-formula neutraliser (a case's text
    is whoever wrote it: `=HYPERLINK(…)` must not run in the spreadsheet of whoever downloads it). A case whose
    assertions a cell cannot hold raises: use YAML or JSONL."""
    from core.exports import rows_to_csv

    names = list(dict.fromkeys(k for t in tests for k in t.vars))
    width = max((len(t.assertions) for t in tests), default=0)
    header = [*names, *(["__expected"] if width else []), *[f"__expected{i}" for i in range(2, width + 1)],
              "__description", "__threshold"]
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
                    + [t.description, "" if t.threshold is None else f"{t.threshold:g}"])
    return rows_to_csv(rows)


def _cell(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


def tests_from_jsonl(text: str, notes: list[str] | None = None) -> list[TestCase]:
    notes = notes if notes is not None else []
    out = []
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            raw = json.loads(line)
        except json.JSONDecodeError as err:
            raise EvalConfigError(_('Line {n} is not JSON: {msg}.').format(n=n, msg=err.msg)) from None
        out.append(_test(raw, f"line {n}", notes))
    return out


def tests_to_jsonl(tests: list[TestCase]) -> str:
    return "".join(json.dumps(t.to_config(), ensure_ascii=False) + "\n" for t in tests)


def tests_from_yaml(text: str, notes: list[str] | None = None) -> list[TestCase]:
    notes = notes if notes is not None else []
    data = yaml.safe_load(text)
    items = data.get("tests") if isinstance(data, dict) else data
    if not isinstance(items, list):
        raise EvalConfigError(_("A YAML test set is a list of tests (or a mapping with `tests`)."))
    return [_test(t, f"test {i + 1}", notes) for i, t in enumerate(items)]


def tests_to_yaml(tests: list[TestCase]) -> str:
    return yaml.safe_dump([t.to_config() for t in tests], sort_keys=False, allow_unicode=True, width=120)
