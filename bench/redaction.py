"""Benchmark: redaction quality and speed, before (the regular expressions of an earlier commit) and after.

Quality: the labelled span corpus of tests/pii_spans.py (hand-written cases including issue 23's, generated
formats of several countries and vendors, hard negatives), scored by span and kind: a labelled span counts as found
when detections of its kind cover all of it; a detection is correct when it overlaps a labelled span of its kind.
Speed: a typical 2 KB chat message (about 2,000 characters) (prose, a code block, numbers, one e-mail), median of many runs, chars/s.
`python bench/redaction.py [--baseline REV]`. Last line: `RESULT redaction_recall_claimed <r> precision <p>`.
"""
from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
import types
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from core.policy.pii import find_pii  # noqa: E402
from core.policy.redaction import redact  # noqa: E402
from tests.pii_spans import KINDS, Score, corpus, is_claimed, score  # noqa: E402

BASELINE = "e284fb9"  # the last commit with the regular-expression redaction (issue 23 measured it)

MESSAGE = (
    "Hi! I'm trying to get the evaluation harness working again after upgrading to version 2.10.1.0 of our internal "
    "toolkit, and I'm stuck. The run started at 1733312345678 (epoch ms) and failed after 312 cases with a timeout. "
    "Here's the relevant part of the config:\n\n```yaml\nproviders:\n  - id: openai:gpt-4o-2024-08-06\n    config:\n"
    "      temperature: 0.2\n      max_tokens: 1024\n  - id: openai:gpt-4o-mini\nprompts:\n  - file://prompts/"
    "summarise.txt\ntests:\n  - vars:\n      article: file://data/articles.csv\n    assert:\n      - type: "
    "contains\n        value: summary\n```\n\nThe error says `RateLimitError: 429 Too Many Requests` on roughly "
    "every fifth call, even though our limit should be 5,000 requests per minute. I looked at the dashboard and "
    "usage peaked at 1,250 RPM, so we are nowhere near it. Could the retries be stacking up? We use exponential "
    "backoff with a base of 0.5 s and a cap of 30 s, and 6 attempts. Also, the results CSV has 3 columns "
    "(case_id, score, latency_ms) but the report expects 4; is there a migration I missed between 2.9 and 2.10? "
    "Our team lead, Maria, said the same config worked in October. If you need the full logs I can send them to "
    "you directly, or you can reach the on-call engineer at ops-team@example.com. Thanks a lot for looking into "
    "this, and sorry for the long message! One more thing: the package sk-transformers-utils-extended is pinned "
    "to 1.4.2 in requirements.txt; could that conflict with the new tokenizer? The commit that changed it is "
    "9fceb02d0ae598e95dc970b74767f19372d61af8. For context, the same suite ran fine on the staging cluster last "
    "Tuesday (build 10.0.19045.3803, Python 3.11.7), and the dashboard showed p95 latency around 1.8 s with 0.4% "
    "errors, so something between then and now changed; I'd rather not roll back the whole release if we can avoid "
    "it, because the new prompt templates fixed two customer complaints about truncated summaries.\n\n另外，中文的测试用例也有同样的问题：大约每五个请求就有一个超时，"
    "平均延迟从 800 毫秒涨到了 2.3 秒。麻烦帮忙看看是不是重试策略的问题，谢谢！"
)


STDLIB = ("email.message", "json", "http.client", "asyncio.tasks", "argparse", "datetime", "ipaddress", "logging",
          "subprocess", "urllib.parse", "collections", "decimal", "string", "textwrap", "unittest.mock", "pathlib",
          "zipfile", "tarfile", "csv", "sqlite3", "smtplib", "ssl", "socket", "uuid", "hashlib", "base64", "random",
          "statistics", "calendar", "locale")


def ordinary_text_detections() -> tuple[int, list[tuple[str, str, str]]]:
    import importlib
    import inspect
    import re
    po = (ROOT / "locales" / "zh_CN" / "LC_MESSAGES" / "messages.po").read_text(encoding="utf-8")
    texts = [m.group(1) for m in re.finditer(r'^(?:msgid|msgstr) "(.+)"', po, re.M)]
    for name in STDLIB:
        texts += [d for _, obj in inspect.getmembers(importlib.import_module(name)) if (d := inspect.getdoc(obj))]
    seen: dict[tuple[str, str], str] = {}
    for text in texts:
        for f in find_pii(text):
            seen.setdefault((f.kind, f.text), text[max(0, f.start - 30):f.end + 15].replace("\n", " "))
    return sum(map(len, texts)), [(k, v, c) for (k, v), c in seen.items()]


def baseline_module(rev: str) -> types.ModuleType:
    source = subprocess.run(["git", "show", f"{rev}:core/policy/redaction.py"], cwd=ROOT, capture_output=True, text=True,
                            check=True).stdout
    module = types.ModuleType("safety_baseline")
    sys.modules[module.__name__] = module  # dataclasses look their module up
    exec(compile(source, f"{rev}:core/policy/redaction.py", "exec"), module.__dict__)  # noqa: S102 - our own earlier source
    return module


def baseline_detector(module: types.ModuleType):
    """The old redact() reports (kind, matched text); find each in the text, in order, to get its span."""
    def detect(text: str) -> list[tuple[str, int, int]]:
        spans: list[tuple[str, int, int]] = []
        for kind, value in module.redact(text).findings:
            pos = 0
            while (i := text.find(value, pos)) >= 0:
                if not any(a < i + len(value) and i < b for _, a, b in spans):
                    spans.append((kind, i, i + len(value)))
                    break
                pos = i + 1
        return spans
    return detect


def detect_now(text: str) -> list[tuple[str, int, int]]:
    return [(f.kind, f.start, f.end) for f in find_pii(text)]


def per_message_ms(fn, text: str, runs: int = 300) -> tuple[float, float]:
    """(fastest, median) ms per message; the fastest is the machine's best case (noise only ever adds time)."""
    fn(text)
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn(text)
        times.append(time.perf_counter() - t0)
    return min(times) * 1000, statistics.median(times) * 1000


def table(before: Score, after: Score) -> str:
    lines = [f"{'kind':<10}{'spans':>6}  {'recall before':>13}{'after':>8}  {'precision before':>16}{'after':>8}"
             f"  {'detections before/after':>24}"]
    for kind in KINDS:
        b, a = before.kinds.get(kind), after.kinds[kind]
        b_rec = f"{b.recall:.2f}" if b and b.gold else "–"
        b_prec = f"{b.precision:.2f}" if b and b.detections else "–"
        lines.append(f"{kind:<10}{a.gold:>6}  {b_rec:>13}{a.recall:>8.2f}  {b_prec:>16}{a.precision:>8.2f}"
                     f"  {(b.detections if b else 0):>12}/{a.detections}")
    tb, ta = before.total(), after.total()
    lines.append(f"{'all':<10}{ta.gold:>6}  {tb.recall:>13.2f}{ta.recall:>8.2f}  {tb.precision:>16.2f}"
                 f"{ta.precision:>8.2f}  {tb.detections:>12}/{ta.detections}")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--baseline", default=BASELINE, help="git revision whose core/policy/redaction.py is 'before'")
    parser.add_argument("--show", type=int, default=15, help="misses and false alarms to list")
    args = parser.parse_args()
    cases = corpus()
    old = baseline_module(args.baseline)
    before, after = score(baseline_detector(old), cases), score(detect_now, cases)
    n_spans = sum(len(c.spans) for c in cases)
    print(f"corpus: {len(cases)} snippets, {n_spans} labelled spans, {sum(not c.spans for c in cases)} negatives")
    print(table(before, after))
    cb, ca = before.claimed(), after.claimed()
    print(f"claimed formats ({ca.gold} spans): recall {cb.recall:.3f} → {ca.recall:.3f}, "
          f"precision {cb.precision:.3f} → {ca.precision:.3f}")
    print("\nrecall per format (before → after; * = not claimed):")
    for fmt in sorted(after.formats):
        b, a = before.formats.get(fmt), after.formats[fmt]
        mark = " " if is_claimed(fmt) else "*"
        print(f"  {fmt:<24}{mark}{a.gold:>4}  {(b.recall if b else 0):.2f} → {a.recall:.2f}")
    print(f"\nmisses after ({len(after.misses)}):")
    for fmt, value, snippet in after.misses[:args.show]:
        print(f"  {fmt}: {value!r} in {snippet[:90]!r}")
    print(f"false alarms after ({len(after.false_alarms)}):")
    for kind, value, snippet in after.false_alarms[:args.show]:
        print(f"  {kind}: {value!r} in {snippet[:90]!r}")
    print(f"\nthroughput on a {len(MESSAGE)}-character chat message (300 runs each, alternating):")
    for label, fn in (("before", old.redact), ("after", redact), ("before", old.redact), ("after", redact)):
        fastest, median = per_message_ms(fn, MESSAGE)
        print(f"  {label:<6} fastest {fastest:.2f} ms ({len(MESSAGE) / fastest * 1000:,.0f} chars/s), "
              f"median {median:.2f} ms ({len(MESSAGE) / median * 1000:,.0f} chars/s)")
    t_new = min(per_message_ms(redact, MESSAGE)[0] for _ in range(2))
    unseen_chars, unseen = ordinary_text_detections()
    print(f"\ndetections in {unseen_chars:,} characters of ordinary text nobody tuned against (the zh_CN catalogue's "
          f"English and Chinese sentences, docstrings of {len(STDLIB)} stdlib modules): {len(unseen)}, each listed "
          f"once (example addresses, IPs and authors' names in docstrings are real finds):")
    for kind, value, context in unseen:
        print(f"  {kind}: {value!r}  …{context}…")
    print(f"RESULT redaction_recall_claimed {ca.recall:.3f} precision {ca.precision:.3f} "
          f"ms_per_2kb_message {t_new:.2f}")


if __name__ == "__main__":
    main()
