"""Shareable reports: a conversation, a compare run, an eval run or an Analytics period as ONE self-contained HTML
file, for "can you send me that?" after a demo.

What the file promises, and how:
- **Opens offline, loads nothing.** Styles are inline, Plotly's library is embedded once (charts stay interactive),
  and a Content-Security-Policy forbids every fetch (`default-src 'none'`): a reply that holds `<img src=https://…>`
  is escaped text anyway, and even a slip would be blocked by the browser rather than phone home.
- **No key, nothing redaction would remove.** Every text that came from a person or a model (messages, outputs,
  model ids, user names, tags) passes `safety.redact` and `errors.scrub_secrets` (with the configured key) before it
  is escaped; numbers are formatted by us.
- **Says how it was made.** A header lists the time range and filters (Analytics), the persona and model
  (conversation), the configurations (runs), and when the file was made.

`python -m core report conversation|run|analytics …` writes the same files for scripts (see core/cli.py); every
report is written in the UI language it is given (`language=`, `--lang zh_CN`), never in whatever language happens
to be current where the file is finally built (a download runs outside the page's run).
"""
from __future__ import annotations

import html
import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import plotly.graph_objects as go
import plotly.io as pio
from plotly.offline import get_plotlyjs

from core.analytics.charts import CHART_CONFIG, comparable, figures, kpi_cards
from core.analytics.dashboard import Dashboard, Filters
from core.base import i18n
from core.base.clock import utc_now_iso
from core.base.errors import scrub_secrets
from core.base.i18n import _
from core.calls.metrics import metrics_caption
from core.chat.conversation import (
    Conversation,
    Message,
    attachment_label,
    export_name,
    file_slug,
    status_label,
    system_message,
    totals,
    totals_caption,
    turn_heading,
)
from core.chat.personas import language_label, persona_by_id
from core.evals.results import cases_failures_first, config_summaries, paired_comparisons, pass_matrix
from core.evals.store import SavedEvalRun
from core.formats.columns import page_name
from core.llm import file_vars
from core.llm.pricing import format_cost_total
from core.playground.library import SavedRun
from core.playground.matrix import CURRENT_DRAFT, CellResult
from core.policy.redaction import redact, redact_value

# Inline styles and scripts only; no fetch of any kind (images only as data: URLs, which Plotly's "download
# as PNG" makes). The library is embedded, so 'unsafe-inline' is what lets it run.
CSP = ("default-src 'none'; script-src 'unsafe-inline' 'unsafe-eval'; style-src 'unsafe-inline'; "
       "img-src data: blob:; font-src data:")
PLOTLY_SCRIPT_ID = "plotly-library"

_STYLE = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,"Noto Sans","PingFang SC","Microsoft YaHei",sans-serif;
 margin:0 auto;max-width:1100px;padding:24px;color:#1f2430;background:#fff;line-height:1.5}
h1{font-size:1.6rem;margin:0 0 4px} h2{font-size:1.2rem;margin:28px 0 8px;border-bottom:1px solid #e3e6ee}
.meta{color:#5b6275;font-size:.9rem} .meta dt{font-weight:600;display:inline} .meta dd{display:inline;margin:0 12px 0 4px}
.turn{border:1px solid #e3e6ee;border-radius:10px;padding:10px 14px;margin:10px 0}
.turn.user{background:#f5f7fb} .role{font-weight:600;font-size:.85rem;color:#5b6275;margin-bottom:4px}
.text{white-space:pre-wrap;word-wrap:break-word;margin:0;font-family:inherit}
.caption{color:#5b6275;font-size:.82rem;margin-top:6px}
details.thinking{color:#5b6275;font-size:.9rem;margin-bottom:6px} details.thinking summary{cursor:pointer}
table{border-collapse:collapse;width:100%;font-size:.9rem;margin:8px 0} th,td{border:1px solid #e3e6ee;padding:6px 8px;
 text-align:left;vertical-align:top} th{background:#f5f7fb} td.num{text-align:right;font-variant-numeric:tabular-nums}
.kpis{display:grid;grid-template-columns:repeat(auto-fill,minmax(160px,1fr));gap:10px}
.kpi{border:1px solid #e3e6ee;border-radius:10px;padding:8px 12px} .kpi .label{font-size:.8rem;color:#5b6275}
.kpi .value{font-size:1.35rem;font-weight:600} .kpi .delta{font-size:.8rem;color:#5b6275}
.charts{display:grid;grid-template-columns:repeat(auto-fit,minmax(460px,1fr));gap:12px}
.pass{color:#13795b;font-weight:600} .fail{color:#b42318;font-weight:600}
footer{margin-top:32px;color:#8a90a2;font-size:.8rem}
.attachments{display:flex;flex-wrap:wrap;gap:8px;margin-top:6px} .attachment{margin:0}
.attachment img{max-width:240px;max-height:240px;border:1px solid #e3e6ee;border-radius:6px}
.attachment figcaption,.chip{font-size:.8rem;color:#5b6275}
.chip{border:1px solid #e3e6ee;border-radius:12px;padding:2px 10px;align-self:flex-start}
"""


@dataclass(frozen=True)
class Report:
    """A finished report: its suggested file name and the HTML."""

    file_name: str
    html: str


class _Clean:
    """Makes text from people and models safe to share: redacted, secrets removed, HTML-escaped."""

    def __init__(self, secrets: Iterable[str | None] = ()):
        self.secrets = [s for s in secrets if s]

    def text(self, value: object) -> str:
        """Redacted and scrubbed, not yet escaped (for chart data that Plotly escapes itself)."""
        return scrub_secrets(redact(str(value)).text, self.secrets) if value is not None else ""

    def __call__(self, value: object) -> str:
        return html.escape(self.text(value))

    def data(self, value: Any) -> Any:
        """Every string inside JSON-like data."""
        cleaned = redact_value(value)
        if self.secrets:
            cleaned = json.loads(scrub_secrets(json.dumps(cleaned), self.secrets))
        return cleaned


def _page(title: str, meta: list[tuple[str, str]], body: str, *, clean: _Clean, with_plotly: bool = False) -> str:
    """The whole document: head with the CSP and styles, the title, the "how it was made" list, the body."""
    made = [*meta, (_("Made"), utc_now_iso()[:19].replace("T", " ") + " UTC")]
    meta_html = "".join(f"<dt>{html.escape(k)}:</dt><dd>{v}</dd>" for k, v in made)
    library = (f'<script id="{PLOTLY_SCRIPT_ID}" type="text/javascript">{get_plotlyjs()}</script>'
               if with_plotly else "")
    return (f'<!DOCTYPE html><html lang="{i18n.language().replace("_", "-")}"><head><meta charset="utf-8">'
            f'<meta http-equiv="Content-Security-Policy" content="{CSP}">'
            f'<meta name="viewport" content="width=device-width, initial-scale=1">'
            f"<title>{clean(title)}</title><style>{_STYLE}</style>{library}</head><body>"
            f"<h1>{clean(title)}</h1><dl class=\"meta\">{meta_html}</dl>{body}"
            + "<footer>" + html.escape(_("Made with PromptLab · a self-contained file: it loads nothing from the "
                                         "network.")) + "</footer>"
            "</body></html>")


def _table(header: list[str], rows: list[list[str]], numeric: frozenset[int] = frozenset()) -> str:
    """An HTML table; cells are already-escaped HTML."""
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f'<td class="num">{c}</td>' if i in numeric else f"<td>{c}</td>"
                                    for i, c in enumerate(row)) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _h2(text: str) -> str:
    return f"<h2>{html.escape(text)}</h2>"


# ----- conversation --------------------------------------------------------------------------------------------------
def conversation_report(conversation: Conversation, secrets: Iterable[str | None] = (), *,
                        language: str | None = None) -> Report:
    """See `_conversation_report`; written in `language` (a UI language code), else in the current one."""
    with i18n.speaking(language):
        return _conversation_report(conversation, secrets)


def _conversation_report(conversation: Conversation, secrets: Iterable[str | None] = ()) -> Report:
    """The conversation with its persona, system prompt, and each reply's model, tokens, cost and latency."""
    clean = _Clean(secrets)
    persona = persona_by_id(conversation.persona_id)
    models = list(dict.fromkeys(m.model for m in conversation.messages if m.model))
    meta = [(_("Persona"), clean(_(persona.name) if persona else _("Custom system prompt"))),
            (_("Models"), clean(", ".join(models) or _("none yet"))),
            (_("Reply language"), clean(language_label(conversation.language))),
            (_("Started"), clean(conversation.created_at[:19].replace("T", " ") + " UTC")),
            (_("Totals"), clean(totals_caption(totals(conversation))))]
    parts = []
    system = system_message(conversation)
    if system:
        parts.append(_h2(_("System prompt")) + f'<div class="turn"><pre class="text">{clean(system)}</pre></div>')
    parts.append(_h2(_("Conversation")))
    for m in conversation.messages:
        role = _("You") if m.role == "user" else clean(turn_heading(m)) if m.role == "tool" else \
            _("Assistant") + " · " + clean(m.model or _("unknown model"))
        caption = []
        if m.metrics is not None:
            caption.append(clean(metrics_caption(m.metrics)))
        if m.status != "ok":
            caption.append(f"<b>{clean(status_label(m.status))}</b>")
        if m.note:
            caption.append(clean(f"↪ {m.note}"))
        caption_html = f'<div class="caption">{" · ".join(caption)}</div>' if caption else ""
        calls = "".join('<pre class="text">' + clean(_("Tool call: {name}").format(name=c.get("name") or "?"))
                        + "\n" + clean(c.get("arguments") or "") + "</pre>" for c in m.tool_calls)  # text only
        # the reasoning summary, collapsed above the reply as on the page (no script needed: <details> folds)
        heading = html.escape(_("Thinking"))
        thinking = (f'<details class="thinking"><summary>{heading}</summary>'
                    f'<pre class="text">{clean(m.thinking)}</pre></details>') if m.thinking else ""
        parts.append(f'<div class="turn {m.role}"><div class="role">{role}</div>{thinking}'
                     f'<pre class="text">{clean(m.content)}</pre>{_attachments_html(m, clean)}{calls}'
                     f'{caption_html}</div>')
    return Report(export_name(conversation, "html"),
                  _page(conversation.title or _("Conversation"), meta, "".join(parts), clean=clean))


def _attachments_html(message: Message, clean: _Clean) -> str:
    """A turn's images embedded as data: URIs (the CSP allows nothing else: the reader's browser fetches nothing),
    each PDF as a chip with its name and pages. The pixels are the user's own upload and cannot be redacted."""
    items = []
    for a in message.attachments:
        label = clean(attachment_label(a))
        if a.is_image:
            items.append(f'<figure class="attachment"><img src="{html.escape(a.data_uri())}" alt="{label}">'
                         f'<figcaption>{label}</figcaption></figure>')
        else:
            items.append(f'<span class="chip">📄 {label}</span>')
    return f'<div class="attachments">{"".join(items)}</div>' if items else ""


# ----- compare run (Playground) ---------------------------------------------------------------------------------
def _cell_row(result: CellResult, clean: _Clean) -> list[str]:
    m = result.metrics
    output = result.text or (f"[{result.error}]" if result.error else "")
    if result.tool_calls:
        output += ("\n" if output else "") + json.dumps(clean.data(result.tool_calls), ensure_ascii=False)
    for call in result.builtin_calls:  # what the server searched for (text only; links are never made live)
        output += f"\n[{call.get('type')}: {call.get('query') or ''}]"
    version = _(CURRENT_DRAFT) if result.spec.version == CURRENT_DRAFT else result.spec.version
    heading = html.escape(_("Thinking"))
    thinking = (f'<details class="thinking"><summary>{heading}</summary><pre class="text">'
                f'{clean(result.thinking)}</pre></details>') if result.thinking else ""
    measured = " · ".join(p for p in (metrics_caption(m) if m else "", result.api or "") if p)
    return [clean(version), clean(result.spec.model),
            clean(_("default") if result.spec.temperature is None else f"{result.spec.temperature:g}"),
            clean(f"#{result.spec.repeat}"),
            f'{thinking}<pre class="text">{clean(output)}</pre>', clean(result.status), clean(measured)]


def compare_report(run: SavedRun, secrets: Iterable[str | None] = (), *, language: str | None = None) -> Report:
    """See `_compare_report`; written in `language` (a UI language code), else in the current one."""
    with i18n.speaking(language):
        return _compare_report(run, secrets)


def _compare_report(run: SavedRun, secrets: Iterable[str | None] = ()) -> Report:
    """A Playground compare run: one row per cell (prompt version × model × temperature) with its output and
    measurements."""
    clean = _Clean(secrets)
    costs = [r.metrics.cost_usd for r in run.results if r.metrics]
    priced = [c for c in costs if c is not None]
    meta = [(_("Run"), clean(run.name)), (_("Saved"), clean(run.created_at[:19].replace("T", " ") + " UTC")),
            (_("Cells"), str(len(run.results))),
            (_("Cost"), clean(format_cost_total(sum(priced), len(costs) - len(priced))))]
    rows = [_cell_row(r, clean) for r in run.results]
    body = _h2(_("Cells")) + _table([_("Prompt version"), _("Model"), _("Temperature"), _("Repeat"), _("Output"),
                                         _("Status"), _("Measured")], rows)
    return Report(f"compare-{file_slug(run.name, 'run')}-{run.created_at[:10]}.html",
                  _page(_("Compare run: {name}").format(name=run.name), meta, body, clean=clean))


# ----- eval run -----------------------------------------------------------------------------------------------------
def eval_report(run: SavedEvalRun, secrets: Iterable[str | None] = (), *, language: str | None = None) -> Report:
    """See `_eval_report`; written in `language` (a UI language code), else in the current one."""
    with i18n.speaking(language):
        return _eval_report(run, secrets)


def _eval_report(run: SavedEvalRun, secrets: Iterable[str | None] = ()) -> Report:
    """An eval run: the pass-rate matrix, each configuration's cost / tokens / latency, and every case with its
    output and verdict (failures first)."""
    clean = _Clean(secrets)
    s = run.summary
    meta = [(_("Run"), clean(run.name)), (_("Saved"), clean(run.created_at[:19].replace("T", " ") + " UTC")),
            (_("Cells"), str(s.get("cells", len(run.rows)))),
            (_("Passed"), _("{passed} of {graded}").format(passed=s.get("passed", 0),
                                                          graded=s.get("graded", len(run.rows)))),
            (_("Cost"), clean(format_cost_total(s.get("cost_usd"), s.get("unpriced_calls") or 0)))]
    matrix = pass_matrix(run.rows)
    matrix_html = _table([_("Prompt"), *[str(c) for c in matrix.columns]],
                         [[clean(p), *[clean(v) for v in row]] for p, row in zip(matrix.index, matrix.values,
                                                                                  strict=True)])
    configs = _table([_("Prompt"), _("Provider"), _("Passed"), _("Cost"), _("Tokens in / out"), _("Median latency")],
                     [[clean(c.prompt), clean(c.provider), clean(f"{c.passed}/{c.total}"),
                       clean(format_cost_total(c.cost_usd, c.unpriced)),
                       clean(f"{c.input_tokens:,} / {c.output_tokens:,}"),
                       clean("–" if c.latency_median_ms is None else f"{c.latency_median_ms / 1000:.2f} s")]
                      for c in config_summaries(run.rows)], numeric=frozenset({2, 3, 4, 5}))
    case_rows = []
    for r in cases_failures_first(run.rows):
        verdict = ('<span class="fail">' + _("error") if r.get("error") else
                   '<span class="pass">' + _("pass") if r.get("pass") else
                   '<span class="fail">' + _("fail")) + "</span>"
        # an image or PDF variable as its file chip (name, size, digest): results never carry the bytes
        vars_text = json.dumps(clean.data(file_vars.chipped(r.get("vars") or {})), ensure_ascii=False)
        case_rows.append([clean(r.get("test_index", "")), clean(r.get("prompt", "")), clean(r.get("provider", "")),
                          f'<pre class="text">{clean(vars_text)}</pre>',
                          f'<pre class="text">{clean(r.get("output") or r.get("error") or "")}</pre>',
                          verdict, clean(r.get("reason") or "")])
    comparisons = paired_comparisons(run.rows)
    paired = (_h2(_("Paired comparisons (McNemar)"))
              + _table([_("A"), _("B"), _("Cases"), _("B better"), _("B worse"), _("p-value"), _("Reading")],
                       [[clean(c.label_a), clean(c.label_b), str(c.pairs), str(len(c.b_better)), str(len(c.b_worse)),
                         f"{c.p_value:.2g}", clean(c.sentence())] for c in comparisons],
                       numeric=frozenset({2, 3, 4, 5})) if comparisons else "")
    body = (_h2(_("Pass rate (interval: 95%)")) + matrix_html + _h2(_("Configurations")) + configs + paired
            + _ratings_html(s.get("ratings") or [], clean) + _h2(_("Cases, failures first"))
            + _table([_("Case"), _("Prompt"), _("Provider"), _("Variables"), _("Output"), _("Verdict"), _("Reason")],
                     case_rows))
    return Report(f"eval-{file_slug(run.name, 'run')}-{run.created_at[:10]}.html",
                  _page(_("Eval run: {name}").format(name=run.name), meta, body, clean=clean))


def _ratings_html(pairs: list[dict[str, Any]], clean: _Clean) -> str:
    """People's blind side-by-side votes (results.json's `summary.ratings`): B's win rate with ties left out, its
    interval, the sign test, and Cohen's kappa of every two raters."""
    if not pairs:
        return ""
    rows = []
    for p in pairs:
        low, high = p["interval_95"]
        rate = "–" if p["b_win_rate"] is None else f"{p['b_win_rate']:.0%} ({low:.0%}–{high:.0%})"
        kappas = "; ".join(f"{' / '.join(a['raters'])}: {'–' if a['kappa'] is None else format(a['kappa'], '.2f')} "
                           f"({a['shared_cases']})" for a in p["agreement"])
        rows.append([clean(p["a"]), clean(p["b"]), str(p["rated_cases"]), str(p["b_wins"]), str(p["a_wins"]),
                     str(p["ties"]), clean(rate), f"{p['sign_test_p']:.2g}", clean(kappas or "–")])
    return _h2(_("Human ratings (blind, side by side)")) + _table(
        [_("A"), _("B"), _("Cases rated"), _("B preferred"), _("A preferred"), _("Ties"),
         _("B win rate (95%, ties left out)"), _("Sign test p"), _("Cohen's kappa (shared cases)")],
        rows, numeric=frozenset({2, 3, 4, 5, 7}))


# ----- analytics ----------------------------------------------------------------------------------------------------
def describe_filters(filters: Filters) -> list[tuple[str, str]]:
    """The period and every filter a report was made with, as (label, text) pairs."""
    period = f"{i18n.day(filters.start)} – {i18n.day(filters.end)} (UTC)"
    chosen = [(_("Period"), period)]
    for label, values in ((_("Providers"), filters.providers), (_("Models"), filters.models),
                          (_("Pages"), tuple(page_name(p) for p in filters.pages)), (_("Users"), filters.users),
                          (_("Statuses"), filters.statuses), (_("Tags"), filters.tags)):
        chosen.append((label, ", ".join(values) if values else _("all")))
    return chosen


def _figure_html(fig: go.Figure, div_id: str, clean: _Clean) -> str:
    """One interactive chart, its data and labels redacted; the library is embedded once in the page head."""
    spec = clean.data(json.loads(pio.to_json(fig)))
    return pio.to_html(spec, include_plotlyjs=False, full_html=False, div_id=div_id,
                       config={**CHART_CONFIG, "responsive": True})


def analytics_file_name(filters: Filters) -> str:
    return f"promptlab-analytics-{filters.start:%Y-%m-%d}-to-{filters.end:%Y-%m-%d}.html"


def analytics_report(dashboard: Dashboard, filters: Filters, secrets: Iterable[str | None] = (), *,
                     language: str | None = None) -> Report:
    """See `_analytics_report`; written in `language` (a UI language code), else in the current one."""
    with i18n.speaking(language):
        return _analytics_report(dashboard, filters, secrets)


def _analytics_report(dashboard: Dashboard, filters: Filters, secrets: Iterable[str | None] = ()) -> Report:
    """An Analytics period: the KPI cards (with the change against the previous period, when comparable) and every
    chart, interactive."""
    clean = _Clean(secrets)
    meta = [(label, clean(text)) for label, text in describe_filters(filters)]
    if not comparable(dashboard.current, dashboard.previous):
        meta.append((_("Compared with"), _("no comparable previous period")))
    else:
        meta.append((_("Compared with"), clean(_("the {days} days before").format(days=filters.days))))
    cards = "".join(f'<div class="kpi"><div class="label">{clean(c.label)}</div>'
                    f'<div class="value">{clean(c.value)}</div>'
                    f'<div class="delta">{clean(c.delta or "")}</div></div>'
                    for c in kpi_cards(dashboard.current, dashboard.previous))
    charts = ""
    if dashboard.current.calls:
        charts = "".join(f'<div class="chart">{_figure_html(fig, f"chart-{key}", clean)}</div>'
                         for key, fig in figures(dashboard).items())
        charts = _h2(_("Charts")) + f'<div class="charts">{charts}</div>'
    else:
        charts = "<p>" + html.escape(_("No calls match these filters.")) + "</p>"
    body = _h2(_("Key figures")) + f'<div class="kpis">{cards}</div>{charts}'
    return Report(analytics_file_name(filters), _page(_("PromptLab analytics"), meta, body, clean=clean,
                                                      with_plotly=bool(dashboard.current.calls)))
