"""The offline model's child process: llama.cpp's own OpenAI-compatible server (the `xllamacpp` wheel) on a
loopback port it picks. Run by `core.llm.local_model` as `python -m core.llm.local_server`; never imported by the app.

Protocol with the parent: settings come in the environment; the first line on stdout is JSON, either
`{"address": "http://127.0.0.1:PORT", "pid": N}` or `{"error": "…"}`; the child serves until its stdin closes
(the parent exited or let it go), so it can never outlive the Streamlit server that started it.
"""
from __future__ import annotations

import json
import os
import sys


def _reply(**fields: object) -> None:
    try:
        sys.stdout.write(json.dumps(fields) + "\n")
        sys.stdout.flush()
    except BrokenPipeError:  # the parent is gone before the model loaded: nobody to serve
        os._exit(0)


def serve() -> int:
    path = os.environ["PROMPTLAB_LOCAL_GGUF"]
    try:
        import xllamacpp  # the native runtime lives only in this process
    except ImportError as exc:
        _reply(error=f"the xllamacpp package is not installed ({exc})")
        return 2
    params = xllamacpp.CommonParams()
    params.model.path = path
    params.model_alias = {os.environ.get("PROMPTLAB_LOCAL_ALIAS", "local")}  # a set of names
    params.hostnames = ["127.0.0.1"]
    params.port = 0  # the OS picks a free port; the server reports it
    # A secret per child: any web page in the user's browser could otherwise post to this loopback port.
    params.api_keys = [os.environ["PROMPTLAB_LOCAL_TOKEN"]]
    params.n_parallel = 1  # one generation at a time; the parent queues the rest (and shows it)
    params.n_ctx = 0  # the model's own context window from the GGUF metadata
    params.cache_prompt = False  # a reused prefix changes the numerics: the same seed must give the same reply
    params.endpoint_metrics = True
    params.ui = False
    params.verbosity = int(os.environ.get("PROMPTLAB_LOCAL_VERBOSITY", "1"))
    try:
        server = xllamacpp.Server(params)
    except Exception as exc:  # a bad file: say so to the parent in one line
        _reply(error=f"{type(exc).__name__}: {exc}")
        return 3
    _reply(address=server.listening_address, pid=os.getpid())
    sys.stdin.read()  # until the parent closes the pipe or dies
    os._exit(0)  # skip native destructors: the process is going away anyway


if __name__ == "__main__":
    sys.exit(serve())
