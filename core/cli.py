"""Every command line of PromptLab, in one place and one style (argparse). The documented commands keep their
names: `python -m core.calllog …`, `python -m core.access hash`, `python -m core.config`, `python -m
core.model_file` each hand over to a function here, so the library modules below never import this one back.
"""
from __future__ import annotations

import argparse
import getpass
import json
import os
import sys
from datetime import date


def calllog_main(argv: list[str] | None = None) -> int:
    """`python -m core.calllog import|export|generate|tail` on the log at PROMPTLAB_DB_URL."""
    from core import interchange, synthetic
    from core.calllog import CallLog, record_values
    from core.config import load_settings

    parser = argparse.ArgumentParser(prog="python -m core.calllog", description="PromptLab's call log")
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
    args = parser.parse_args(argv)
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


def access_main(argv: list[str] | None = None) -> int:
    """`python -m core.access hash`: the hash for PROMPTLAB_PASSWORD_HASH (the password from the terminal or stdin)."""
    from core.access import hash_password

    parser = argparse.ArgumentParser(prog="python -m core.access", description="PromptLab's access gate")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("hash", help="read a password and print its hash for PROMPTLAB_PASSWORD_HASH")
    parser.parse_args(argv)
    password = getpass.getpass("Password: ") if sys.stdin.isatty() else sys.stdin.readline().rstrip("\n")
    print(hash_password(password))
    return 0


def config_main(argv: list[str] | None = None) -> int:
    """`python -m core.config`: the README's configuration table."""
    from core.config import settings_table_markdown

    argparse.ArgumentParser(prog="python -m core.config", description="print the README's settings table") \
        .parse_args(argv)
    print(settings_table_markdown())
    return 0


def model_file_main(argv: list[str] | None = None) -> int:
    """`python -m core.model_file [MODELS_DIR]`: fetch the default offline model now (e.g. in an image build)."""
    from core.errors import PromptLabError
    from core.model_file import ensure_default_model

    parser = argparse.ArgumentParser(prog="python -m core.model_file",
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
