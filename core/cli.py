"""Every command line of PromptLab, in one place and one style (argparse): `python -m core COMMAND …` (core/__main__.py)
with the commands in `COMMANDS`. It sits above every package and nothing in core/ imports it; the old spellings
(`python -m core.calllog …`) are tiny shims that run `python -m core` by module name (runpy), importing nothing of
core (tests/test_architecture.py).
"""
from __future__ import annotations

import argparse
import getpass
import json
import os
import sys
import time
from collections.abc import Callable
from datetime import date
from typing import Any


def calllog_main(argv: list[str] | None = None) -> int:
    """`python -m core calls import|export|generate|tail|reconcile` on the log at PROMPTLAB_DB_URL."""
    from core.base.config import load_settings
    from core.calls import interchange, synthetic
    from core.calls.log import CallLog, record_values

    parser = argparse.ArgumentParser(prog="python -m core calls", description="PromptLab's call log")
    sub = parser.add_subparsers(dest="command", required=True)
    imp = sub.add_parser("import", help="append the calls of a JSONL file")
    imp.add_argument("file")
    exp = sub.add_parser("export", help="write calls to FILE (.jsonl, .csv or .parquet)")
    exp.add_argument("file")
    exp.add_argument("--since", type=date.fromisoformat, help="first day (UTC, inclusive), YYYY-MM-DD")
    exp.add_argument("--until", type=date.fromisoformat, help="last day (UTC, inclusive), YYYY-MM-DD")
    gen = sub.add_parser("generate", help="add realistic synthetic calls (demos, benchmarks)")
    gen.add_argument("--calls", type=int, required=True)
    gen.add_argument("--days", type=int, default=30)
    gen.add_argument("--seed", type=int, default=0)
    tail = sub.add_parser("tail", help="print the newest calls as JSON lines")
    tail.add_argument("-n", type=int, default=20)
    rec = sub.add_parser("reconcile", help="compare the log with OpenAI's Usage and Costs (OPENAI_ADMIN_KEY)")
    rec.add_argument("--since", type=date.fromisoformat, required=True, help="first day (UTC), YYYY-MM-DD")
    rec.add_argument("--until", type=date.fromisoformat, required=True, help="last day (UTC, inclusive)")
    rec.add_argument("--json", action="store_true", help="print a JSON list instead of the table")
    args = parser.parse_args(argv)
    if args.command == "reconcile":
        return _reconcile(args)
    log = CallLog(load_settings().db_url)
    if args.command == "import":
        try:
            report = interchange.import_jsonl(args.file, log)
        except OSError as exc:
            print(f"cannot read {args.file}: {exc.strerror}", file=sys.stderr)
            return 2
        print(report.summary())
    elif args.command == "export":
        try:
            n = interchange.export(log, args.file, args.since, args.until)
        except ValueError as exc:
            print(str(exc), file=sys.stderr)
            return 2
        print(f"exported {n} calls to {args.file}")
    elif args.command == "generate":
        print(f"generated {synthetic.generate(log, args.calls, args.days, args.seed)} calls")
    else:
        for record in reversed(log.recent(args.n)):
            print(json.dumps(record_values(record)))
    return 0


def _reconcile(args: argparse.Namespace) -> int:
    from core.analytics import reconcile
    from core.base.config import load_settings
    from core.base.errors import PromptLabError
    from core.calls.log import CallLog
    from core.llm.pricing import format_cost_total

    settings = load_settings()
    try:
        client = reconcile.admin_client(settings.openai_admin_key or "", settings.openai_base_url,
                                        settings.timeout_s)
        result = reconcile.fetch(client, CallLog(settings.db_url).engine, args.since, args.until)
    except PromptLabError as err:
        print(err.message, file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(result.json_rows(), indent=2))
        return 0
    print(f"{'day':10s} {'model':28s} {'requests':>17s} {'input tokens':>23s} {'output tokens':>23s} "
          f"{'tracked $':>10s} {'billed $':>10s}  explanation")
    for r in result.json_rows():  # each row's own billed dollars; a day's unattributed rest on its own row
        cost = "unpriced" if r["tracked_cost_usd"] is None else f"{r['tracked_cost_usd']:.4f}"
        billed = "–" if r["billed_cost_usd"] is None else f"{r['billed_cost_usd']:.4f}"
        print(f"{r['day']:10s} {r['model'][:28]:28s} {r['tracked_requests']:>8,}/{r['billed_requests']:<8,} "
              f"{r['tracked_input_tokens']:>11,}/{r['billed_input_tokens']:<11,} "
              f"{r['tracked_output_tokens']:>11,}/{r['billed_output_tokens']:<11,} {cost:>10s} {billed:>10s}  "
              f"{r['explanation']}")
    print()
    for d in result.day_totals():
        tracked = format_cost_total(d["tracked_cost_usd"], d["unpriced_rows"])
        print(f"{d['day']:10s} tracked {tracked} of billed ${d['billed_cost_usd']:.4f}")
    coverage = "–" if result.coverage is None else f"{result.coverage:.1%}"
    print(f"tracked {format_cost_total(result.tracked_cost_usd, result.unpriced_rows)} of billed "
          f"${result.billed_cost_usd:.4f}: coverage {coverage}")
    return 0


def access_main(argv: list[str] | None = None) -> int:
    """`python -m core access hash`: the hash for PROMPTLAB_PASSWORD_HASH (the password from the terminal or stdin)."""
    from core.policy.access import BlankPasswordError, hash_password

    parser = argparse.ArgumentParser(prog="python -m core access", description="PromptLab's access gate")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("hash", help="read a password and print its hash for PROMPTLAB_PASSWORD_HASH")
    parser.parse_args(argv)
    password = getpass.getpass("Password: ") if sys.stdin.isatty() else sys.stdin.readline().rstrip("\r\n")
    try:
        print(hash_password(password))
    except BlankPasswordError as err:
        print(err, file=sys.stderr)
        return 1
    return 0


def config_main(argv: list[str] | None = None) -> int:
    """`python -m core config`: the README's configuration table."""
    from core.base.config import settings_table_markdown

    argparse.ArgumentParser(prog="python -m core config", description="print the README's settings table") \
        .parse_args(argv)
    print(settings_table_markdown())
    return 0


def model_file_main(argv: list[str] | None = None) -> int:
    """`python -m core model-file [MODELS_DIR]`: fetch the default offline model now (e.g. in an image build)."""
    from core.base.errors import PromptLabError
    from core.llm.model_file import ensure_default_model

    parser = argparse.ArgumentParser(prog="python -m core model-file",
                                     description="fetch the default offline model (SmolLM2-135M-Instruct)")
    parser.add_argument("models_dir", nargs="?", help="default: PROMPTLAB_MODELS_DIR, else <data dir>/models")
    args = parser.parse_args(argv)
    models_dir = args.models_dir or os.environ.get("PROMPTLAB_MODELS_DIR") or os.path.join(
        os.environ.get("PROMPTLAB_DATA_DIR", "data"), "models")
    try:
        print(ensure_default_model(models_dir))
    except PromptLabError as err:
        print(err.message, file=sys.stderr)
        return 1
    return 0


def evals_main(argv: list[str] | None = None) -> int:
    """`python -m core evals run CONFIG.yaml`: run a promptfoo-format eval through the gate; exit 0 when every case
    passes, 100 when some fail, 1 on an error (promptfoo's convention)."""
    from sqlalchemy.exc import SQLAlchemyError

    from core.base.config import load_settings
    from core.base.errors import PromptLabError
    from core.calls.gate import CallContext
    from core.calls.log import CallLog
    from core.evals.config import OPERATOR, EvalConfigError, load_config
    from core.evals.run import EvalRun, ProviderResolver, exit_code, key_notes, summary_table
    from core.evals.store import EvalStore
    from core.llm.pricing import format_cost_total
    from core.llm.providers import resolve_provider

    parser = argparse.ArgumentParser(prog="python -m core evals", description="PromptLab evals (promptfoo configs)")
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="run CONFIG (promptfoo YAML) and print a summary table")
    run.add_argument("config")
    run.add_argument("--output", help="write every cell's result and a summary to this JSON file")
    run.add_argument("--junit-xml", metavar="PATH", help="write JUnit XML (a test case per cell) for a CI's test view")
    run.add_argument("--promptfoo-json", metavar="PATH",
                     help="write the results in promptfoo's results.json shape (version 3)")
    run.add_argument("--repeat", type=int, default=1, help="run each cell N times (1-20)")
    run.add_argument("--concurrency", type=int, default=8, help="calls at once (default 8)")
    run.add_argument("--compare", nargs=2, type=int, action="append", metavar=("A", "B"),
                     help="McNemar between configurations A and B (row numbers of the table; repeatable); "
                          "default: every two that differ in their prompt or their provider only")
    run.add_argument("--batch", action="store_true",
                     help="send the cells through OpenAI's Batch API (half the price, results within 24 h) and "
                          "wait, polling; Ctrl-C leaves the batch running (resume with `evals poll RUN_ID`)")
    run.add_argument("--poll-interval", type=float, default=30.0, help="seconds between polls (--batch; default 30)")
    run.add_argument("--on-failure", choices=["live", "report"], default="live",
                     help="lines that fail or never run in the batch: retried live (default) or reported as failed")
    poll = sub.add_parser("poll", help="resume polling a stored batch run until it ends")
    poll.add_argument("run_id")
    poll.add_argument("--poll-interval", type=float, default=30.0, help="seconds between polls (default 30)")
    poll.add_argument("--cancel", action="store_true", help="cancel the batch; the lines that finished are kept")
    args = parser.parse_args(argv)
    if args.command == "poll":
        return _evals_poll(args)
    try:
        config = load_config(args.config)
        configs = len(config.prompts) * len(config.providers)
        if any(not 1 <= n <= configs for pair in args.compare or [] for n in pair):  # before any call is paid
            raise ValueError(f"--compare takes row numbers of the table, 1 to {configs}")
        settings = load_settings()
        resolver = ProviderResolver(settings, resolve_provider(settings), dict(os.environ))
        for note in config.notes + key_notes(config, resolver):
            print(f"note: {note}", file=sys.stderr)
        evaluation = EvalRun(config, resolver,
                             CallContext("evals", settings.user, "cli"), CallLog(settings.db_url),
                             repeat=args.repeat, concurrency=args.concurrency, actor=OPERATOR)
        # The same durable path as the page: the run is stored as its cells finish (and listed on the page).
        store = EvalStore(settings.db_url)
        if args.batch:
            from core.evals.batch import submit

            sent = submit(evaluation, store, user=settings.user, secrets=settings.secret_values,
                          on_failure=args.on_failure)
            if sent.live is None:
                print(f"batch run {sent.run_id} submitted: polling every {args.poll_interval:g} s")
                return _follow_batch(sent.run_id, args.poll_interval, settings, resolver, args)
            print(f"note: {sent.note}", file=sys.stderr)  # no Batch API there: the run went live
        else:
            evaluation.start_stored(store, user=settings.user, secrets=settings.secret_values)
    except PromptLabError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    except (EvalConfigError, ValueError, OSError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    except SQLAlchemyError as err:  # its text may hold the database URL's password: the kind is enough
        print(f"error: the database at PROMPTLAB_DB_URL cannot be written ({type(err).__name__})", file=sys.stderr)
        return 1
    try:
        evaluation.wait()
    except KeyboardInterrupt:  # Ctrl-C: what finished stays stored, and the run can be resumed on the page
        evaluation.cancel()
        evaluation.wait(60)
        evaluation.finish()
        print(f"cancelled: run {evaluation.id} keeps its {evaluation.progress()[0]} finished cells",
              file=sys.stderr)
        return 130
    evaluation.finish()
    print(summary_table(evaluation, args.compare))
    summary = evaluation.summary()
    print(f"{summary['passed']} passed, {summary['failed']} failed, {summary['errors']} errors · "
          f"{format_cost_total(summary['cost_usd'], summary['unpriced_calls'])} · run {evaluation.id}")
    saved = store.run(evaluation.id)  # as stored: without the keys in play, under the text policy
    if _write_outputs(args, saved, evaluation, config.notes):
        return 1
    return exit_code(evaluation)


def _write_outputs(args: argparse.Namespace, saved: Any, evaluation: Any, notes: list[str]) -> bool:
    """--output / --junit-xml / --promptfoo-json from the stored run (else the run in memory); True on an error."""
    from core.evals import ci

    rows = saved.rows if saved else evaluation.rows()
    run_id, name = (saved.id, saved.name) if saved else (evaluation.id, evaluation.name)
    outputs = {args.output: lambda: saved.to_json() if saved else evaluation.to_json(),
               args.junit_xml: lambda: ci.junit_xml(rows, f"PromptLab eval {name or run_id}"),
               args.promptfoo_json: lambda: ci.promptfoo_json(
                   rows, run_id=run_id, timestamp=saved.created_at if saved else "", notes=notes)}
    for path, build in outputs.items():
        if not path:
            continue
        try:
            with open(path, "w", encoding="utf-8") as f:
                f.write(build())
        except OSError as err:
            print(f"error: cannot write {path}: {err.strerror}", file=sys.stderr)
            return True
    return False


def _follow_batch(run_id: str, interval: float, settings: Any, resolver: Any, args: argparse.Namespace,
                  cancel: bool = False) -> int:
    """Poll a batch run until it ends, a line of progress per poll; then the table, the notes, the exit code."""
    from core.base.errors import PromptLabError
    from core.calls.gate import CallContext
    from core.calls.log import CallLog
    from core.evals.batch import Poller
    from core.evals.config import OPERATOR
    from core.evals.run import rows_table
    from core.evals.store import EvalStore
    from core.llm.pricing import format_cost_total

    store = EvalStore(settings.db_url)
    poller = Poller(store, resolver, CallContext("evals", settings.user, "cli"), CallLog(settings.db_url),
                    actor=OPERATOR, secrets=tuple(settings.secret_values))
    try:
        if cancel:
            poller.cancel(run_id)
        while True:
            shown = poller.poll(run_id)
            if shown is None:
                print(f"error: no batch run {run_id} in the database", file=sys.stderr)
                return 1
            print(f"batch {shown.status}: {shown.completed}/{shown.total} lines done, {shown.failed} failed · "
                  f"polled {shown.polled_at or '-'}", flush=True)
            if shown.finished:
                break
            time.sleep(interval)
    except PromptLabError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"stopped polling: the batch keeps running; resume with `python -m core evals poll {run_id}`",
              file=sys.stderr)
        return 130
    for note in shown.notes:
        print(f"note: {note}", file=sys.stderr)
    saved = store.run(run_id)
    assert saved is not None
    print(rows_table(saved.rows, getattr(args, "compare", None)))
    summary = saved.summary
    print(f"{summary['passed']} passed, {summary['failed']} failed, {summary['errors']} errors · "
          f"{format_cost_total(summary['cost_usd'], summary['unpriced_calls'])} · run {run_id} ({saved.status})")
    if _write_outputs(args, saved, None, saved.config.notes):
        return 1
    return 0 if saved.status == "done" and saved.rows and all(r.get("pass") for r in saved.rows) else 100


def _evals_poll(args: argparse.Namespace) -> int:
    """`python -m core evals poll RUN_ID`: pick a stored batch run up (after a restart, on another machine)."""
    from core.base.config import load_settings
    from core.evals.run import ProviderResolver
    from core.llm.providers import resolve_provider

    settings = load_settings()
    resolver = ProviderResolver(settings, resolve_provider(settings), dict(os.environ))
    args.output = args.junit_xml = args.promptfoo_json = None
    return _follow_batch(args.run_id, args.poll_interval, settings, resolver, args, cancel=args.cancel)


def report_main(argv: list[str] | None = None) -> int:
    """`python -m core report conversation ID | run ID | analytics [--since --until --model …]`: one
    self-contained HTML file (see core/records/report.py), written to --output or to the report's own file name."""
    from core.analytics.dashboard import Filters
    from core.analytics.pushdown import analytics_for
    from core.base import i18n
    from core.base.config import load_settings
    from core.calls.log import CallLog
    from core.chat.store import ConversationStore
    from core.evals.store import EvalStore
    from core.playground.library import PromptLibrary
    from core.records import report

    parser = argparse.ArgumentParser(prog="python -m core report", description="Shareable HTML reports")
    # Options are accepted before and after the subcommand (the README prints `conversation ID -o FILE`): the
    # subcommands' copies have no default (SUPPRESS), so they only override the main parser's when given.
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--output", "-o", default=argparse.SUPPRESS,
                        help="file to write (default: the report's own name, here)")
    common.add_argument("--lang", choices=list(i18n.UI_LANGUAGES), default=argparse.SUPPRESS,
                        help="the report's language (default: PROMPTLAB_UI_LANGUAGE, else en)")
    parser.add_argument("--output", "-o", help="file to write (default: the report's own name, here)")
    parser.add_argument("--lang", choices=list(i18n.UI_LANGUAGES), default=argparse.SUPPRESS,
                        help="the report's language (default: PROMPTLAB_UI_LANGUAGE, else en)")
    sub = parser.add_subparsers(dest="kind", required=True)
    sub.add_parser("conversation", help="a saved chat conversation", parents=[common]).add_argument("id")
    sub.add_parser("run", help="a saved eval run or Playground compare run", parents=[common]).add_argument("id")
    ana = sub.add_parser("analytics", help="an Analytics period: KPIs and charts", parents=[common])
    ana.add_argument("--since", type=date.fromisoformat, help="first day (UTC), YYYY-MM-DD (default: 29 days ago)")
    ana.add_argument("--until", type=date.fromisoformat, help="last day (UTC, inclusive; default: today)")
    for dim in ("provider", "model", "page", "user", "status", "tag"):
        ana.add_argument(f"--{dim}", action="append", default=[], help=f"only these {dim}s (repeatable)")
    args = parser.parse_args(argv)
    settings = load_settings()
    secrets = settings.secret_values
    language = i18n.pick_language(getattr(args, "lang", None), settings.ui_language, None)
    made: report.Report | None
    if args.kind == "conversation":
        conversation = ConversationStore(settings.db_url).load(args.id, admin=True)
        made = report.conversation_report(conversation, secrets, language=language) if conversation else None
    elif args.kind == "run":
        eval_run = EvalStore(settings.db_url).run(args.id)
        if eval_run is not None:  # people's blind votes on it, a verdict like its assertions'
            from core.base.db import engine_for
            from core.evals.rating import with_ratings
            eval_run = with_ratings(engine_for(settings.db_url), eval_run)
        compare = None if eval_run else PromptLibrary(settings.db_url).run(args.id)
        made = (report.eval_report(eval_run, secrets, language=language) if eval_run
                else report.compare_report(compare, secrets, language=language) if compare else None)
    else:
        from datetime import datetime, timedelta, timezone
        until = args.until or datetime.now(timezone.utc).date()
        filters = Filters(args.since or until - timedelta(days=29), until, tuple(args.provider), tuple(args.model),
                          tuple(args.page), tuple(args.user), tuple(args.status), tuple(args.tag))
        analytics = analytics_for(CallLog(settings.db_url))
        analytics.refresh()
        made = report.analytics_report(analytics.dashboard(filters), filters, secrets,
                                       language=language)
    if made is None:
        print(f"error: no {args.kind} with id {args.id}", file=sys.stderr)
        return 1
    path = args.output or made.file_name
    try:
        with open(path, "w", encoding="utf-8") as f:
            f.write(made.html)
    except OSError as err:
        print(f"error: cannot write {path}: {err.strerror}", file=sys.stderr)
        return 1
    print(f"wrote {path} ({len(made.html.encode()) / 1024:,.0f} KiB)")
    return 0


def redaction_table_main(argv: list[str] | None = None) -> int:
    """`python -m core redaction-table`: the README's table of what is (and is not) redacted."""
    from core.policy.redaction import redaction_table_markdown

    argparse.ArgumentParser(prog="python -m core redaction-table",
                            description="print the README's redaction table").parse_args(argv)
    print(redaction_table_markdown())
    return 0


# command -> (its function, one line of help); `python -m core` with no command lists them
COMMANDS: dict[str, tuple[Callable[[list[str] | None], int], str]] = {
    "calls": (calllog_main, "the call log: import, export, generate, tail, reconcile"),
    "evals": (evals_main, "run a promptfoo-format eval config through the gate"),
    "report": (report_main, "a conversation, a run or an Analytics period as one HTML file"),
    "access": (access_main, "hash a password for PROMPTLAB_PASSWORD_HASH / PROMPTLAB_USERS"),
    "config": (config_main, "print the README's configuration table"),
    "model-file": (model_file_main, "fetch the default offline model now"),
    "redaction-table": (redaction_table_main, "print the README's redaction table"),
}
# the old spellings, `python -m core.<module>`, kept for one release (shims at core/<module>.py, core/evals/__main__.py)
OLD_SPELLINGS = {"core.calllog": "calls", "core.evals": "evals", "core.report": "report", "core.access": "access",
                 "core.config": "config", "core.model_file": "model-file", "core.safety": "redaction-table"}


def main(argv: list[str] | None = None) -> int:
    """`python -m core COMMAND [ARGS…]`: hands ARGS to the command's own parser (each has its own --help)."""
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] in COMMANDS:
        return COMMANDS[argv[0]][0](argv[1:])
    parser = argparse.ArgumentParser(
        prog="python -m core", description="PromptLab's command line", formatter_class=argparse.RawTextHelpFormatter,
        epilog="commands:\n" + "\n".join(f"  {name:<16} {text}" for name, (_, text) in COMMANDS.items()))
    parser.add_argument("command", choices=list(COMMANDS), metavar="COMMAND")
    parser.parse_args(argv[:1])  # prints the usage (exit 2), or the help for -h (exit 0)
    return 2
