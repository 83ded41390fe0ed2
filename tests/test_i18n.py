"""The interface language (core/base/i18n.py): every shown string is marked, extracted and translated; the compiled
catalog matches its source; placeholders survive translation; the language belongs to one session; numbers and
dates follow the language. The whole app in 中文 is driven in a real browser in tests/e2e/test_browser_i18n.py."""
from __future__ import annotations

import ast
import contextvars
import re
import string
import threading
from datetime import date
from pathlib import Path

import pytest
from babel.messages.extract import extract_from_dir
from babel.messages.mofile import read_mo
from babel.messages.pofile import read_po

from core.base import i18n
from core.base.i18n import _, ngettext

ROOT = Path(__file__).resolve().parent.parent
PO = ROOT / "locales" / "zh_CN" / "LC_MESSAGES" / "messages.po"
MO = PO.with_suffix(".mo")
KEYWORDS = {"_": None, "N_": None, "ngettext": (1, 2)}

# Calls that put text on the screen, and the keyword arguments that are text too.
UI_CALLS = {"title", "header", "subheader", "caption", "markdown", "info", "warning", "error", "success", "toast",
            "button", "download_button", "form_submit_button", "text_input", "text_area", "number_input",
            "selectbox", "multiselect", "slider", "toggle", "checkbox", "radio", "date_input", "popover", "expander",
            "tabs", "metric", "spinner", "chat_input", "file_uploader", "link_button", "page_link", "Page",
            "NumberColumn", "TextColumn", "SelectboxColumn", "CheckboxColumn"}
UI_KEYWORDS = {"help", "placeholder", "label", "title"}
WORDS = re.compile(r"[A-Za-z]{2,}")
# Shown as they are in every language: the product's name, examples of JSON a user types.
AS_IS = {"PromptLab", " (UTC), ", '{"type": "object", …}', '[{"name": "lookup_order", "parameters": {"type": "object", …}}]'}


def extracted() -> dict:
    """What Babel extracts from the app with the project's babel.cfg."""
    method_map = [("app.py", "python"), ("pages/**.py", "python"), ("core/**.py", "python")]
    found = {}
    for _path, _line, message, _comments, _context in extract_from_dir(str(ROOT), method_map, keywords=KEYWORDS):
        found[tuple(message) if isinstance(message, list) else message] = True
    return found


def catalog():
    with PO.open("rb") as f:
        return read_po(f, locale="zh_CN")


def test_every_marked_string_is_translated_in_the_chinese_catalog():
    messages = catalog()
    missing = []
    for msgid in extracted():
        key = msgid[0] if isinstance(msgid, tuple) else msgid
        entry = messages.get(key)
        translated = entry is not None and not entry.fuzzy and (
            all(entry.string) if isinstance(entry.string, tuple) else bool(entry.string))
        if not translated:
            missing.append(key)
    assert missing == [], f"not translated in {PO.relative_to(ROOT)}: {missing}"


def fields(text: str) -> set[str]:
    return {name for _lit, name, _spec, _conv in string.Formatter().parse(text) if name is not None}


def test_translations_keep_every_placeholder():
    wrong = []
    for entry in catalog():
        if not entry.id:
            continue
        ids = entry.id if isinstance(entry.id, tuple) else (entry.id,)
        strings = entry.string if isinstance(entry.string, tuple) else (entry.string,)
        for text in strings:
            if text and fields(text) != fields(ids[-1]):
                wrong.append((ids[0], text))
    assert wrong == []


def test_the_compiled_catalog_is_the_source_catalog():
    """`pybabel compile -d locales` was run after the last edit of the .po (the app reads the .mo)."""
    with MO.open("rb") as f:
        compiled = {tuple(m.id) if isinstance(m.id, list) else m.id: tuple(m.string) if isinstance(m.string, list)
                    else m.string for m in read_mo(f) if m.id}
    source = {m.id: tuple(m.string) if isinstance(m.string, list) else m.string for m in catalog()
              if m.id and m.string}
    assert compiled == source


def literal_parts(node: ast.AST) -> list[str]:
    """The literal text an expression puts on screen as it is: string constants, f-string text, both branches of
    `a if c else b`, both sides of `+` (a call such as `_()` or `plain()` is handled by what it calls)."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return [node.value]
    if isinstance(node, ast.JoinedStr):
        return [v.value for v in node.values if isinstance(v, ast.Constant)]
    if isinstance(node, ast.IfExp):
        return literal_parts(node.body) + literal_parts(node.orelse)
    if isinstance(node, ast.BinOp):
        return literal_parts(node.left) + literal_parts(node.right)
    if isinstance(node, ast.BoolOp):
        return [t for v in node.values for t in literal_parts(v)]
    return []


def test_every_string_a_page_shows_is_marked_for_translation():
    """A literal with words handed straight to a Streamlit element (label, body, help, placeholder) is English
    for everyone: it must go through _()."""
    unmarked = []
    for path in [ROOT / "app.py", *sorted((ROOT / "pages").glob("*.py"))]:
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if not isinstance(node, ast.Call):
                continue
            name = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", None)
            if name not in UI_CALLS:
                continue
            first = [] if name == "Page" else list(node.args[:1])  # st.Page's first argument is its file
            shown = first + [k.value for k in node.keywords if k.arg in UI_KEYWORDS]
            if name == "tabs" and node.args and isinstance(node.args[0], (ast.List, ast.Tuple)):
                shown = list(node.args[0].elts)
            for value in shown:
                texts = [t for t in literal_parts(value) if WORDS.search(t) and t not in AS_IS]
                if texts:
                    unmarked.append(f"{path.name}:{node.lineno} {texts[0][:50]!r}")
    assert unmarked == []


def test_the_language_is_per_session_and_travels_to_worker_threads():
    seen = {}

    def session(code: str) -> None:
        i18n.set_language(code)
        seen[code] = _("Chat")
        context = contextvars.copy_context()
        worker = threading.Thread(target=context.run, args=(lambda: seen.setdefault(f"{code}-worker", _("Chat")),))
        worker.start()
        worker.join()
    threads = [threading.Thread(target=contextvars.copy_context().run, args=(session, code))
               for code in ("zh_CN", "en")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert seen == {"zh_CN": "对话", "zh_CN-worker": "对话", "en": "Chat", "en-worker": "Chat"}
    assert i18n.language() == "en"  # this test's own context was never switched


@pytest.mark.parametrize(("chosen", "configured", "browser", "expected"), [
    (None, None, "zh-CN", "zh_CN"), (None, None, "zh", "zh_CN"), (None, None, "zh-TW", "en"),
    (None, "zh_CN", "en-US", "zh_CN"), ("en", "zh_CN", "zh-CN", "en"), (None, None, None, "en"),
    ("klingon", None, "fr-FR", "en")])
def test_the_language_chosen_then_configured_then_the_browsers(chosen, configured, browser, expected):
    assert i18n.pick_language(chosen, configured, browser) == expected


def test_plural_numbers_and_dates_follow_the_language():
    context = contextvars.copy_context()

    def in_chinese():
        i18n.set_language("zh_CN")
        return (ngettext("{n} reply", "{n} replies", 1).format(n=1), i18n.day(date(2026, 11, 20)),
                i18n.number(1234567.891, 2))
    assert context.run(in_chinese) == ("1 条回复", "2026年11月20日", "1,234,567.89")
    assert ngettext("{n} reply", "{n} replies", 1).format(n=1) == "1 reply"
    assert i18n.day(date(2026, 11, 20)) == "20 Nov 2026"


def test_a_compare_run_in_chinese_reports_its_cells_errors_in_chinese(server, log, ctx):
    """Cells run in worker threads: the session's language goes with them."""
    from core.llm.providers import Provider
    from core.playground.draft import Draft
    from core.playground.matrix import MatrixRun, expand_matrix, prepare_cell
    from tests.conftest import TEST_KEY
    from tests.loopback_server import Script

    server.push(Script(status=401, error_message="bad key"))

    def run() -> str | None:
        i18n.set_language("zh_CN")
        provider = Provider("compatible", server.base_url, TEST_KEY, max_retries=0)
        draft = Draft(model="gpt-4o-mini", user_template="hi")
        cells = [prepare_cell(spec, draft, provider) for spec in expand_matrix(["v1"], ["gpt-4o-mini"], [0.0], 1)]
        matrix = MatrixRun(cells, ctx, log, concurrency=1).start()
        matrix.wait(30)
        return matrix.results[0].error
    assert contextvars.copy_context().run(run) == "API 密钥被拒绝（401）：请在设置中检查或更换。"


def test_no_translation_call_hides_inside_an_f_string():
    """Babel cannot see `_()` inside an f-string on Python 3.11 (the f-string is one token): such a string would
    never reach the catalog."""
    import tokenize
    hidden = []
    for path in [ROOT / "app.py", *sorted((ROOT / "pages").glob("*.py")), *sorted((ROOT / "core").rglob("*.py"))]:
        with path.open("rb") as f:
            for token in tokenize.tokenize(f.readline):
                prefix = token.string[:2].lower()
                if token.type == tokenize.STRING and ("f" in prefix) and re.search(r"\b(N?_|ngettext)\(", token.string):
                    hidden.append(f"{path.name}:{token.start[0]}")
    assert hidden == []


def test_chart_days_are_written_without_english_month_names_in_chinese(log):
    from core.analytics.charts import figures
    from core.analytics.dashboard import Analytics, Filters
    from core.calls.interchange import insert_new
    from tests.analytics.test_analytics import PERIOD, SMALL_LOG

    def tick_format(log) -> str:
        insert_new(log, SMALL_LOG)
        engine = Analytics(log)
        engine.refresh()
        i18n.set_language("zh_CN")
        return figures(engine.dashboard(Filters(PERIOD.start, PERIOD.end), bucket="day"))["calls_by_day"].layout.xaxis.tickformat
    assert contextvars.copy_context().run(tick_format, log) == "%m月%d日"
