"""Everything a person takes away from the 中文 UI is in 中文 (issue 28, rows 3 and 4): the shared HTML files, built
lazily when their download is clicked — in the server's request thread, where the session's language is not set —
the Markdown export, CSV headers, reconcile explanations, the what-if table; and menus relabelled at once when the
language is switched mid-session. English words are found with tests/zh_probe.py (as the browser test does); model
output and data (model ids, what the user typed) are left out of the check."""
from __future__ import annotations

import contextvars
import csv
import html
import io
import json
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pandas as pd
import pytest
from streamlit.runtime.media_file_manager import MediaFileManager
from streamlit.testing.v1 import AppTest

from core.analytics import reconcile
from core.analytics.reconcile import Usage
from core.base import i18n
from core.calls.log import CallLog
from core.calls.synthetic import generate
from core.chat import conversation as chat
from core.formats.exports import to_csv
from tests.loopback_server import MODELS
from tests.pages.test_evals_page import CONFIG as EVAL_CONFIG
from tests.zh_probe import english_words

APP = str(Path(__file__).resolve().parent.parent / "app.py")
DATA = {*MODELS, "gpt-4o-mini", "gpt-4o", "gpt-4.1-mini", "gpt-4.1", "gpt-5-mini", "gpt-5", "o4-mini", "Echo"}


@contextmanager
def reading_in(code: str) -> Iterator[None]:
    """This test's thread reads (and AppTest formats the menus it sends back) in `code`, as a browser in it does."""
    before = i18n.language()
    i18n.set_language(code)
    try:
        yield
    finally:
        i18n.set_language(before)


def english(text: str, data: set[str] = frozenset()) -> list[str]:  # type: ignore[assignment]
    """English words in `text` that are not part of the data shown in it."""
    known = DATA | set(data)
    return [w for w in english_words(text) if not any(w in d for d in known)]


def visible_text(document: str) -> str:
    """A report's text as its reader sees it, without scripts, styles and the <pre> blocks that hold model output,
    prompts and variables (data, shown as it was written)."""
    doc = re.sub(r"<(script|style)[^>]*>.*?</\1>", " ", document, flags=re.DOTALL)
    doc = re.sub(r'<pre class="text">.*?</pre>', " ", doc, flags=re.DOTALL)
    return html.unescape(re.sub(r"<[^>]+>", " ", doc))


@pytest.fixture
def downloads(monkeypatch) -> dict[str, Callable[[], object]]:
    """The deferred download callables the pages register, by file name (Streamlit's own registry, spied on)."""
    made: dict[str, Callable[[], object]] = {}
    original = MediaFileManager.add_deferred

    def spy(self, data_callable, mimetype, coordinates, file_name=None, **kwargs):
        made[file_name or ""] = data_callable
        return original(self, data_callable, mimetype, coordinates, file_name=file_name, **kwargs)
    monkeypatch.setattr(MediaFileManager, "add_deferred", spy)
    return made


def clicked(downloads: dict[str, Callable[[], object]], suffix: str) -> str:
    """The file the server builds when the download is clicked: in a fresh context, as in its request thread."""
    name = next(n for n in downloads if n.endswith(suffix))
    data = contextvars.Context().run(downloads[name])
    return data.decode() if isinstance(data, bytes) else str(data)


def shown_choices(at: AppTest) -> dict[str, str]:
    """What the browser shows in each menu: its choice travels as the label, kept until the server sends a new one."""
    shown = {sb.id: sb.options[sb.index] for sb in at.selectbox if sb.value is not None and sb.options}
    for bg in at.get("button_group"):  # a segmented control: its choice travels as its label too
        labels = [o.content for o in bg.proto.options]
        if bg.indices:
            shown[bg.proto.id] = labels[bg.indices[0]]
    return shown


def stale_menus(at: AppTest, before: dict[str, str]) -> list[str]:
    """Menus that, after a run, still show a label the run no longer offers (the browser's view of the switch)."""
    stale = []
    for sb in at.selectbox:
        shown = sb.proto.raw_value if sb.proto.set_value else before.get(sb.id)
        if shown is not None and shown not in sb.proto.options:
            stale.append(f"{sb.key or sb.label}: {shown!r}")
    for bg in at.get("button_group"):
        labels = [o.content for o in bg.proto.options]
        for label in bg.proto.raw_values if bg.proto.set_value else [before.get(bg.proto.id)]:
            if label is not None and label not in labels:
                stale.append(f"{bg.proto.label}: {label!r}")
    return stale


def switch_to_chinese(at: AppTest) -> dict[str, str]:
    before = shown_choices(at)
    at.selectbox(key="ui_language").set_value("zh_CN").run()
    assert not at.exception, at.exception
    return before


def menu_words(at: AppTest, data: set[str] = frozenset()) -> list[str]:  # type: ignore[assignment]
    """English in the labels and options of the page's menus (read as the browser in 中文 reads them)."""
    text = "\n".join([sb.label for sb in at.selectbox] + [o for sb in at.selectbox for o in sb.proto.options]
                     + [ms.label for ms in at.multiselect] + [b.label for b in at.button]
                     + [o.content for bg in at.get("button_group") for o in bg.proto.options])
    languages = {"English", "Español", "Français", "Deutsch", "Português", "Italiano"}  # each in its own name
    # Model ids and OpenAI's voice names (alloy, nova…) are names, shown as the API spells them.
    named = {o for sb in at.selectbox if "odel" in (sb.key or "") or sb.key == "chat_voice" for o in sb.proto.options}
    return english(text, languages | named | set(data))


# ----- row 4: menus switch at once; the Chat page and its artefacts ------------------------------------------------
def test_chat_in_chinese_mid_session_menus_markdown_and_shared_html(app_env, server, downloads):
    at = AppTest.from_file(APP, default_timeout=60).run()
    at.chat_input[0].set_value("Where is my parcel?").run()
    assert not at.exception, at.exception
    before = switch_to_chinese(at)
    with reading_in("zh_CN"):  # the browser now reads the page in 中文
        assert stale_menus(at, before) == []  # "General assistant", "Auto" no longer shown after the switch
        assert menu_words(at, {"Where is my parcel?"}) == []  # the conversation's title is what was typed
        assert at.selectbox(key="persona_id").proto.options[0] == "通用助手"

    data = {"Where is my parcel?", "Echo: Where is my parcel?"}
    page = clicked(downloads, ".html")  # built when clicked, outside the page's run
    assert 'lang="zh-CN"' in page and "<h2>对话</h2>" in page
    assert english(visible_text(page), data) == []
    conversation = at.session_state["conversation"]
    with reading_in("zh_CN"):
        markdown = chat.export_markdown(conversation)
    assert "## 你" in markdown and "## 系统提示词" in markdown
    sent = chat.system_message(conversation) or ""  # the system prompt is data sent to the model
    assert english(markdown.replace(sent, "").replace("Where is my parcel?", ""), data) == []


# ----- the Analytics page: menus, table headers, what-if, CSV and the shared HTML -----------------------------------
def test_analytics_in_chinese_mid_session(app_env, downloads):
    generate(CallLog(app_env["PROMPTLAB_DB_URL"]), 300, days=20, seed=4)
    at = AppTest.from_file(APP, default_timeout=60).run()
    at.switch_page("pages/analytics.py").run()
    at.button_group(key="an_charts").set_value("speed").run()  # a chart group chosen: its label travels too
    assert not at.exception, at.exception
    before = switch_to_chinese(at)
    with reading_in("zh_CN"):
        assert stale_menus(at, before) == []  # "30 days" became "30 天" at once, "Latency and speed" "延迟与速度"
        assert menu_words(at) == []
        calls = at.dataframe(key="an_calls").value
        whatif = at.dataframe[0].value  # the what-if table, drawn before the calls
    headers = " ".join(map(str, [*calls.columns, *whatif.columns]))
    assert english(headers) == [], headers
    assert "None" not in calls.astype(str).to_numpy().ravel().tolist()  # empty text cells are empty
    users = set(calls.iloc[:, list(calls.columns).index("用户")].astype(str)) if "用户" in calls.columns else set()

    page = clicked(downloads, ".html")
    assert 'lang="zh-CN"' in page and "关键指标" in page
    assert english(visible_text(page), users | {"all"}) == []
    header = next(csv.reader(io.StringIO(clicked(downloads, ".csv"))))
    assert english(" ".join(header)) == [], header


# ----- eval results and Playground compare: the shared HTML --------------------------------------------------------
def test_eval_results_share_in_chinese(app_env, server, downloads):
    at = AppTest.from_file(APP, default_timeout=60).run()
    switch_to_chinese(at)
    with reading_in("zh_CN"):  # the browser, in 中文, sends back the menus' labels it shows
        at.switch_page("pages/evals.py").run()
        at.text_area(key="eval_yaml").set_value(EVAL_CONFIG).run()
        at.button(key="eval_run").click().run()
    assert not at.exception, at.exception
    page = clicked(downloads, ".html")
    assert 'lang="zh-CN"' in page and "通过率" in page
    # What stays as it is: prompts, provider ids, variables, outputs and promptfoo's verdict reasons (docs/I18N.md).
    table_cells = re.findall(r"<td>(.*?)</td>", page, flags=re.DOTALL)
    text = visible_text(page)
    for cell in table_cells:
        text = text.replace(html.unescape(re.sub(r"<[^>]+>", " ", cell)), " ")
    run_name = next(n for n in downloads if n.endswith(".html"))[:-5]
    assert english(text, {run_name}) == []


def test_playground_compare_share_and_csv_in_chinese(app_env, server, downloads):
    at = AppTest.from_file(APP, default_timeout=60).run()
    switch_to_chinese(at)
    with reading_in("zh_CN"):
        at.switch_page("pages/playground.py").run()
        at.text_area(key="pg_user").set_value("Where is my parcel?").run()
        at.multiselect(key="pg_cmp_models").set_value(["gpt-4o-mini", "gpt-4o"]).run()
        at.button(key="pg_cmp_run").click().run()
    assert not at.exception, at.exception
    page = clicked(downloads, ".html")
    assert 'lang="zh-CN"' in page
    name = next(n for n in downloads if n.endswith(".html"))[:-5]
    assert english(visible_text(page), {name, "v1", "ok"}) == []
    # The CSV download beside it (built at render time, in the session's language) has human headers.
    from core.formats.columns import (
        for_people,  # (new in issue 28: imported here so the rest of the file runs on older code)
    )

    name, results = at.session_state["pg_matrix_box"]["last"]
    with reading_in("zh_CN"):
        header = next(csv.reader(io.StringIO(to_csv(for_people(pd.DataFrame([r.row() for r in results]))) or "")))
    assert "实际作答模型" in header and english(" ".join(header)) == [], header
    # And the tables on screen (results, stability) have the same human headers, not snake_case ids.
    assert tables_english(at) == []


def tables_english(at) -> list[str]:
    """English words in the column headers of every table the page shows: a column's configured label where it has
    one (what the browser draws, e.g. the prices editor's), else its name."""
    headers = []
    for frame in at.dataframe:
        config = json.loads(frame.proto.columns or "{}")
        headers += [str((config.get(str(c)) or {}).get("label") or c) for c in frame.value.columns]
    with reading_in("zh_CN"):
        return english(" ".join(headers))


@pytest.mark.parametrize("page", ["pages/settings.py", "pages/playground.py"])
def test_tables_on_screen_have_chinese_headers(app_env, page):
    at = AppTest.from_file(APP, default_timeout=60).run()
    switch_to_chinese(at)
    with reading_in("zh_CN"):
        at.switch_page(page).run()
    assert not at.exception, at.exception
    if page.endswith("playground.py"):  # the library's version table, once a prompt is saved
        from core.playground.draft import Draft
        from core.playground.library import PromptLibrary

        PromptLibrary(app_env["PROMPTLAB_DB_URL"]).save("returns", Draft(model="gpt-4o-mini", user_template="hi"),
                                                         "tester")
        with reading_in("zh_CN"):
            at.run()
    else:  # the audit log's table, once a line is in it
        from core.calls.log import CallLog
        from core.policy.audit import audit

        audit(CallLog(app_env["PROMPTLAB_DB_URL"]).engine, "tester", "export", "tester", {"calls": 1})
        with reading_in("zh_CN"):
            at.run()
    assert len(at.dataframe) >= 1
    assert tables_english(at) == []


# ----- core: reconcile notes and the report command ----------------------------------------------------------------
def test_reconcile_explanations_in_chinese():
    tracked = Usage(day="2026-11-01", model="gpt-4o", requests=3, input_tokens=5, output_tokens=7, cost_usd=None)
    billed = Usage(day="2026-11-01", model="gpt-4o", requests=10, batch_requests=2, tier_requests={"flex": 3})
    stored = [reconcile._explain(tracked, billed), reconcile._explain(billed, tracked),
              reconcile._explain(tracked, Usage(day="d", model="m", requests=3)),
              reconcile._explain(Usage(day="d", model="m", requests=3), Usage(day="d", model="m", requests=3))]
    assert stored[-1] == reconcile.MATCHES and "Batch API requests" in stored[0]  # stored and --json: English
    with reading_in("zh_CN"):
        shown = [reconcile.explanation_text(s) for s in stored]
    assert shown[-1] == "一致" and "2 个 Batch API 请求" in shown[0] and "flex" in shown[0]
    assert english(" ".join(shown), {"flex"}) == [], shown


def test_the_report_command_writes_chinese_with_lang(tmp_path, sqlite_url, monkeypatch):
    from core.chat.personas import persona_by_id
    from core.chat.store import ConversationStore
    from core.cli import report_main

    conversation = chat.new_conversation(persona_by_id("returns_agent"))
    chat.add_user_message(conversation, "Where is my parcel?")
    ConversationStore(sqlite_url).save(conversation, "ana")
    monkeypatch.setenv("PROMPTLAB_DB_URL", sqlite_url)
    out = tmp_path / "c.html"
    assert report_main(["-o", str(out), "conversation", conversation.id, "--lang", "zh_CN"]) == 0
    assert 'lang="zh-CN"' in out.read_text() and "电商退换货客服" in out.read_text()
    assert report_main(["-o", str(out), "--lang", "en", "conversation", conversation.id]) == 0
    assert 'lang="en"' in out.read_text()


@pytest.mark.parametrize("page", ["pages/playground.py", "pages/images.py", "pages/evals.py", "pages/settings.py"])
def test_every_menu_switches_at_once(app_env, page):
    at = AppTest.from_file(APP, default_timeout=60).run()
    at.switch_page(page).run()
    assert not at.exception, at.exception
    before = switch_to_chinese(at)
    with reading_in("zh_CN"):
        assert stale_menus(at, before) == []
        assert menu_words(at) == []
