"""The offline model as a child process: one llama.cpp server (`core/llm/local_server.py`) per GGUF file for the whole
Streamlit server, started on first use, reached through the same `openai` SDK client as any compatible server.

A native crash (SIGILL, SIGSEGV, OOM kill) takes only the child: the reply in progress ends with one sentence, the
next request starts a fresh child, and every other browser session keeps working. Generations run one at a time;
the others wait in a first-come queue that the caller can leave (Stop) while waiting.
"""
from __future__ import annotations

import json
import os
import secrets
import signal
import subprocess
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx2
import openai

from core.base.errors import PromptLabError
from core.base.i18n import N_, _, ngettext
from core.llm import model_file

LOCAL_PREFIX = "local/"
CRASHED_SENTENCE = N_("The offline model stopped unexpectedly — try again.")
# Loading SmolLM2 takes about a second; a big GGUF on a slow disk much longer.
START_TIMEOUT_S = 120.0
SERVICE_TIMEOUT_S = 10.0  # the server's own quick endpoints (models, template, tokenize)
# After a streamed read that had to wait for the model, the reader sleeps this long so the next tokens gather in
# the socket and are read in one wake-up (bench/local_model.py measures why; below the ~50 ms one notices).
READ_BATCH_S = 0.04
_WAITED_S = 0.001  # a read that took longer than this waited for the network (a buffered one takes microseconds)
COUNT_CACHE_SIZE = 4096  # remembered prompt counts per model file
_PROJECT_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

# Called while a request waits for its turn: (seconds waited, generations ahead). It may raise to give up.
QueueWait = Callable[[float, int], None]


def is_local_model(model: str | None) -> bool:
    return model is not None and model.startswith(LOCAL_PREFIX)


def model_id_for(path: str | None) -> str:
    """The id pickers and the log show: `local/<file name without .gguf>`, or the default model's name."""
    return LOCAL_PREFIX + model_file.model_name_for(path)


def crashed_error(detail: str) -> PromptLabError:
    return PromptLabError("local_model_crashed", _(CRASHED_SENTENCE), detail=detail)


def _exit_description(code: int) -> str:
    if code < 0:
        try:
            return f"killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exited with status {code}"


def queue_sentence(waited_s: float, ahead: int) -> str:
    """What a request waiting for the offline model shows."""
    others = ngettext("{n} other request", "{n} other requests", ahead).format(n=ahead)
    return _("⏳ Waiting for the offline model (busy with {others})… {seconds:.0f} s — Stop leaves the "
             "queue.").format(others=others, seconds=waited_s)


class GenerationQueue:
    """First come, first served: one generation at a time; a waiter may leave the queue (Stop) at any time."""

    def __init__(self, poll_s: float = 0.25):
        self._cond = threading.Condition()
        self._busy = False
        self._waiters: deque[object] = deque()
        self._poll_s = poll_s

    def ahead(self) -> int:
        """How many generations a request arriving now would wait for."""
        with self._cond:
            return len(self._waiters) + int(self._busy)

    def acquire(self, on_wait: QueueWait | None = None) -> None:
        """Wait for this request's turn. `on_wait` runs about every poll interval while waiting; whatever it
        raises (a Stop, a cancelled run) takes the request out of the queue and propagates."""
        me, started = object(), time.monotonic()
        with self._cond:
            self._waiters.append(me)
        try:
            while True:
                with self._cond:
                    if not self._busy and self._waiters[0] is me:
                        self._waiters.popleft()
                        self._busy = True
                        return
                    ahead = self._waiters.index(me) + int(self._busy)
                if on_wait is not None:
                    on_wait(time.monotonic() - started, ahead)
                with self._cond:
                    self._cond.wait(self._poll_s)
        except BaseException:
            with self._cond:
                if me in self._waiters:
                    self._waiters.remove(me)
                self._cond.notify_all()
            raise

    def release(self) -> None:
        with self._cond:
            self._busy = False
            self._cond.notify_all()


class _BatchedStream(httpx2.SyncByteStream):
    """A streamed body read in batches: after each read that waited for the model, pause `pause_s`."""

    def __init__(self, inner: httpx2.SyncByteStream, pause_s: float, sleep: Callable[[float], None] = time.sleep):
        self._inner, self._pause_s, self._sleep = inner, pause_s, sleep

    def __iter__(self) -> Iterator[bytes]:
        chunks = iter(self._inner)
        while True:
            started = time.monotonic()
            chunk = next(chunks, None)
            if chunk is None:
                return
            yield chunk
            if time.monotonic() - started > _WAITED_S:
                self._sleep(self._pause_s)

    def close(self) -> None:
        self._inner.close()


class BatchedReads(httpx2.BaseTransport):
    """The child's HTTP transport: event streams are read in batches of tokens, not one wake-up per token.

    On a small machine llama.cpp's compute threads use every core, and each wake-up of this process to take one
    token preempts one of them, which stalls the other at the next barrier. Per token that was ~300 µs of CPU here,
    against ~15 µs for the SDK's parsing of the same chunks with warm caches; read in batches it is ~145 µs, and the
    model keeps its cores (bench/local_model.py). Other bodies (JSON) pass through untouched."""

    def __init__(self, inner: httpx2.BaseTransport, pause_s: float = READ_BATCH_S,
                 sleep: Callable[[float], None] = time.sleep):
        self._inner, self._pause_s, self._sleep = inner, pause_s, sleep

    def handle_request(self, request: httpx2.Request) -> httpx2.Response:
        response = self._inner.handle_request(request)
        if response.headers.get("content-type", "").startswith("text/event-stream") and self._pause_s > 0:
            assert isinstance(response.stream, httpx2.SyncByteStream)
            response.stream = _BatchedStream(response.stream, self._pause_s, self._sleep)
        return response

    def close(self) -> None:
        self._inner.close()


def _child_http_client() -> httpx2.Client:
    """The SDK's default client, reading streams in batches; never through a proxy (the child is on loopback)."""
    from openai._constants import DEFAULT_CONNECTION_LIMITS
    return openai.DefaultHttpxClient(transport=BatchedReads(httpx2.HTTPTransport(limits=DEFAULT_CONNECTION_LIMITS)),
                                     trust_env=False)


@dataclass
class _Child:
    """One running server process and the SDK clients that reach it (one per timeout, sharing one connection
    pool)."""

    process: subprocess.Popen
    base_url: str
    token: str
    http: httpx2.Client = field(default_factory=_child_http_client)
    _clients: dict[float, openai.OpenAI] = field(default_factory=dict)

    def client(self, timeout_s: float = SERVICE_TIMEOUT_S) -> openai.OpenAI:
        """The SDK client with this timeout. Strict response validation: each streamed chunk is checked by
        pydantic-core (~3 µs) instead of the SDK's lenient pure-Python builder (~60 µs). That CPU is taken from
        the model's own threads on a small machine, so it showed as ~3 % fewer tokens/s (bench/local_model.py).
        Safe here because the server is always the llama.cpp build this project ships. Built here rather than by
        `with_options`, which drops the strict flag."""
        if timeout_s not in self._clients:
            self._clients[timeout_s] = openai.OpenAI(
                base_url=f"{self.base_url}/v1", api_key=self.token, max_retries=0, timeout=timeout_s,
                http_client=self.http, _strict_response_validation=True)
        return self._clients[timeout_s]


class LocalRuntime:
    """The child process serving one GGUF file: started on first use, restarted after it dies."""

    def __init__(self, model_path: str | None, models_dir: str):
        self.model_path, self.models_dir = model_path, models_dir
        self.model_id = model_id_for(model_path)
        self.queue = GenerationQueue()
        self._lock = threading.Lock()
        self._child: _Child | None = None
        self._context_window: int | None = None
        self._counts: dict[str, int] = {}  # prompt tokens by request (the tokenizer is the file's: never stale)

    def file_on_disk(self) -> bool:
        """Whether the GGUF is here already (a page render may start the model, but never waits on a download)."""
        return model_file.locate(self.model_path, self.models_dir) is not None

    def file_description(self) -> str:
        """Which GGUF this runtime serves, for Settings: the path, or where the default model will be fetched."""
        return self.model_path or model_file.locate(None, self.models_dir) or (
            f"{model_file.bundled_path(self.models_dir)} (downloaded on first use)")

    # -- the child process -------------------------------------------------------------------------------------
    def _start(self) -> _Child:
        path = model_file.resolve(self.model_path, self.models_dir)  # may fetch the default model once
        token = secrets.token_urlsafe(24)
        env = {**os.environ, "PROMPTLAB_LOCAL_GGUF": path, "PROMPTLAB_LOCAL_ALIAS": self.model_id,
               "PROMPTLAB_LOCAL_TOKEN": token, "PYTHONPATH": _PROJECT_ROOT}
        log_path = os.path.join(self.models_dir, "offline-model.log")
        try:
            os.makedirs(self.models_dir, exist_ok=True)
            stderr: Any = open(log_path, "ab")
        except OSError:
            stderr = subprocess.DEVNULL  # a read-only data dir must not stop the model
        try:
            # Own session: a Ctrl+C in the terminal reaches Streamlit, which then closes our stdin pipe.
            process = subprocess.Popen([sys.executable, "-m", "core.llm.local_server"], cwd=_PROJECT_ROOT, env=env,
                                       stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=stderr,
                                       start_new_session=True)
        except OSError as exc:
            raise self._load_error(f"the model process could not be started: {exc}") from None
        finally:
            if stderr is not subprocess.DEVNULL:
                stderr.close()
        hello = self._read_hello(process)
        if "address" not in hello:
            process.kill()
            process.wait()
            raise self._load_error(hello.get("error") or "the model process gave no address")
        return _Child(process, hello["address"], token)

    @staticmethod
    def _read_hello(process: subprocess.Popen) -> dict[str, Any]:
        """The child's first stdout line, or why there is none (it died, or took too long)."""
        result: dict[str, Any] = {}

        def read() -> None:
            line = process.stdout.readline() if process.stdout else b""
            try:
                result.update(json.loads(line or b"{}"))
            except ValueError:
                result["error"] = f"unexpected output {line[:200]!r}"

        reader = threading.Thread(target=read, daemon=True)
        reader.start()
        reader.join(START_TIMEOUT_S)
        if reader.is_alive():
            return {"error": f"the model did not load within {START_TIMEOUT_S:.0f} s"}
        if not result and process.poll() is not None:
            return {"error": f"the model process {_exit_description(process.returncode)} while loading"}
        return result

    def _load_error(self, why: str) -> PromptLabError:
        return PromptLabError("local_model_unavailable",
                              _("The offline model could not be loaded ({why}): set PROMPTLAB_LOCAL_MODEL to another "
                                "GGUF file, or add an OpenAI key in Settings.").format(why=why.rstrip('.')),
                              detail=f"{why}: {self.model_path or 'default model'}")

    def child(self) -> _Child:
        """The running child, started (or restarted after a crash) if needed; raises PromptLabError."""
        with self._lock:
            if self._child is None or self._child.process.poll() is not None:
                if self._child is not None:
                    self._child.http.close()  # its connections led to a dead process
                self._child = self._start()
            return self._child

    def warm_up(self) -> None:
        """Start the child and have it generate one token, so that the first reply of a session is as fast as the
        next (issue 28: the first message waited 4–8 s for the model to start). Silent on failure: the first real
        request tries again and says why."""
        try:
            self.client(START_TIMEOUT_S).chat.completions.create(
                model=self.model_id, messages=[{"role": "user", "content": "Hi"}], max_tokens=1, temperature=0)
        except (PromptLabError, openai.APIError):
            pass

    def warm_up_in_background(self) -> threading.Thread | None:
        """`warm_up()` on a daemon thread, when the model file is here (a page render never waits on a download)."""
        if not self.file_on_disk():
            return None
        thread = threading.Thread(target=self.warm_up, name="offline-model-warm-up", daemon=True)
        thread.start()
        return thread

    def running(self) -> bool:
        with self._lock:
            return self._child is not None and self._child.process.poll() is None

    def pid(self) -> int | None:
        with self._lock:
            return self._child.process.pid if self._child is not None else None

    def client(self, timeout_s: float) -> openai.OpenAI:
        return self.child().client(timeout_s)

    def crash(self, wait_s: float = 2.0) -> PromptLabError | None:
        """The crash sentence if the child has died (a dropped connection is how a crash first shows)."""
        with self._lock:
            child = self._child
        if child is None:
            return None
        try:
            code = child.process.wait(timeout=wait_s)
        except subprocess.TimeoutExpired:
            return None
        return crashed_error(f"offline model process {_exit_description(code)}")

    def stop(self) -> None:
        """End the child (tests, shutdown): closing its stdin lets it exit by itself; kill if it does not."""
        with self._lock:
            child, self._child = self._child, None
        if child is None:
            return
        try:
            if child.process.stdin:
                child.process.stdin.close()
            child.process.wait(timeout=5)
        except (OSError, subprocess.TimeoutExpired):
            child.process.kill()
            child.process.wait()
        finally:
            child.http.close()

    # -- what the model knows about itself ------------------------------------------------------------------------
    def _post(self, endpoint: str, body: dict[str, Any]) -> dict[str, Any]:
        child = self.child()
        try:
            # These endpoints sit at the server root, beside /v1: an absolute URL keeps the SDK's auth and errors.
            reply: dict[str, Any] = child.client().post(
                f"{child.base_url}/{endpoint}", body=body, cast_to=dict)
            return reply
        except openai.APIError as exc:
            raise self.crash(0.5) or PromptLabError(
                "local_model_unavailable", _("The offline model could not count tokens: try again."),
                detail=str(exc)) from None

    def context_window(self) -> int:
        """Context length from the GGUF metadata (`n_ctx_train`), kept across restarts."""
        if self._context_window is None:
            child = self.child()
            try:
                listing: dict[str, Any] = child.client().get("/models", cast_to=dict)
                self._context_window = int(listing["data"][0]["meta"]["n_ctx_train"])
            except (openai.APIError, KeyError, IndexError, TypeError, ValueError) as exc:
                raise PromptLabError("local_model_unavailable",
                                     _("The offline model did not report its context window: try again."),
                                     detail=f"{type(exc).__name__}: {exc}") from None
        return self._context_window

    def count_prompt_tokens(self, messages: list[dict[str, Any]]) -> int:
        """Prompt tokens exactly as the server builds them: its chat template, then its tokenizer. Remembered:
        every chat rerun plans its context message by message, and the same messages come back each time."""
        key = json.dumps(messages, sort_keys=True, ensure_ascii=False)
        with self._lock:
            known = self._counts.get(key)
        if known is not None:
            return known
        prompt = self._post("apply-template", {"messages": messages})["prompt"]
        count = self.count_text_tokens(prompt)
        with self._lock:
            if len(self._counts) >= COUNT_CACHE_SIZE:
                self._counts.pop(next(iter(self._counts)))  # the oldest first
            self._counts[key] = count
        return count

    def count_text_tokens(self, text: str) -> int:
        return len(self._post("tokenize", {"content": text, "parse_special": True})["tokens"])


_runtimes: dict[tuple[str | None, str], LocalRuntime] = {}
_runtimes_lock = threading.Lock()


def runtime(model_path: str | None, models_dir: str) -> LocalRuntime:
    """The process-wide runtime for a GGUF file (None = the default model): one child per file per server."""
    key = (os.path.abspath(model_path) if model_path else None, os.path.abspath(models_dir))
    with _runtimes_lock:
        if key not in _runtimes:
            _runtimes[key] = LocalRuntime(model_path, models_dir)
        return _runtimes[key]


def stop_all() -> None:
    with _runtimes_lock:
        runtimes = list(_runtimes.values())
    for r in runtimes:
        r.stop()
