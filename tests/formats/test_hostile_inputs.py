"""Hostile inputs get one clear sentence, nothing is partly written, and the app keeps working: prompt-library
imports checked against their shape, JSON nesting bounded, JSON Schemas kept inside themselves."""
from __future__ import annotations

import json

import pytest
import sqlalchemy as sa

from core.evals.assertions import Assertion, Output, evaluate
from core.evals.config import EvalConfigError, parse_config_text
from core.playground.draft import Draft, PlaygroundError, check_json_output, validate_schema
from core.playground.library import PromptLibrary
from core.playground.tools import validate_tools

DEEP = "[" * 5000 + "]" * 5000


def export_with(draft, **item):
    return json.dumps({"prompts": [{"name": "good", "draft": Draft("gpt-4o", "s", "u").to_dict()},
                                   {"name": "x", "draft": draft, **item}]})


@pytest.mark.parametrize("draft, reason", [
    ({"model": ["x"], "system": {"a": 1}}, "model must be text"),
    ("x", "must be an object"),
    ({"model": "gpt-4o", "variables": {"a": 1}}, "variables must map names to text"),
    ({"model": "gpt-4o", "settings": {"temperature": "hot"}}, "temperature has the wrong type"),
    ({"model": "gpt-4o", "settings": {"json_schema": {"$ref": "https://attacker.example/s.json"}}}, "refers outside"),
    ({"model": "gpt-4o", "history": [{"role": "user", "content": {"a": 1}}]}, "history must be"),
])
def test_a_bad_library_import_is_rejected_whole_with_its_reason(db_url, draft, reason):
    library = PromptLibrary(db_url)
    with pytest.raises(ValueError, match=reason):
        library.import_json(export_with(draft), importer="bob")
    assert library.names() == []  # not even the good entry before it


def test_imports_are_authored_by_the_importer_and_deep_files_are_refused(db_url):
    library = PromptLibrary(db_url)
    data = {"prompts": [{"name": "p", "author": "ceo", "draft": Draft("gpt-4o", "s", "u").to_dict()}]}
    assert library.import_json(json.dumps(data), importer="bob") == 1
    assert library.history("p")[0].author == "bob"
    with pytest.raises(ValueError, match="nested more than"):
        library.import_json('{"prompts": ' + DEEP + "}", importer="bob")


def test_a_bad_row_already_stored_does_not_break_the_library(db_url):
    library = PromptLibrary(db_url)
    library.save("p", Draft("gpt-4o", "s", "u"))
    with library.engine.begin() as conn:  # what an unchecked import used to leave behind
        conn.execute(sa.text("INSERT INTO prompt_versions (id, name, version, author, note, created_at, body) "
                             "VALUES ('bad', 'p', 2, 'x', NULL, '2026-01-01', :b)"),
                     {"b": json.dumps({"model": ["x"], "system": {"a": 1}})})
    assert [v.version for v in library.history("p")] == [1] and library.get("bad") is None


def test_json_nesting_and_schema_references_are_bounded():
    with pytest.raises(PlaygroundError, match="nested more than"):
        validate_tools(DEEP)
    for schema, reason in (({"$ref": "#"}, "refers to itself"), ({"$ref": "https://x.example/s"}, "outside itself"),
                           ({"properties": {"a": {"$ref": "file:///etc/passwd"}}}, "outside itself")):
        with pytest.raises(PlaygroundError, match=reason):
            validate_schema(json.dumps(schema))
        with pytest.raises(PlaygroundError, match=reason):
            validate_tools(json.dumps({"name": "f", "parameters": schema}))
    recursive = {"$defs": {"node": {"type": "object", "properties": {"next": {"$ref": "#/$defs/node"}}}},
                 "$ref": "#/$defs/node"}
    assert validate_schema(json.dumps(recursive)) == recursive  # a recursive tree schema is fine
    assert check_json_output(DEEP, None) == (False, "The reply is nested more than 64 levels deep.")


def test_nesting_is_measured_outside_strings_only():
    from core.formats.json_guard import nested_deeper_than

    assert nested_deeper_than(DEEP, 64) and nested_deeper_than("[[[1]]]", 2) and not nested_deeper_than("[[[1]]]", 3)
    assert not nested_deeper_than(json.dumps({"a": "[[[[{{{{" * 10, "b": ["]]]]"]}), 2)  # brackets as text


def test_evals_survive_deep_outputs_and_configs():
    verdict = evaluate(Assertion(type="is-json"), Output(text=DEEP))
    assert verdict.passed is False
    assert evaluate(Assertion(type="contains-json"), Output(text="x " + DEEP)).passed is False
    bad = evaluate(Assertion(type="is-json", value={"$ref": "https://x.example/s"}), Output(text="{}"))
    assert not bad.passed and "outside itself" in bad.reason
    with pytest.raises(EvalConfigError):
        parse_config_text("a: " + "[" * 5000 + "]" * 5000)
