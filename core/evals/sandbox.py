"""Code an admin's eval config holds (python and javascript assertions) runs in a separate process: an empty
environment, a scratch working directory removed afterwards, its own process group killed whole when it ends or
runs too long, and its answer and errors read back only up to a size. The runners (core.evals.assertions,
core.evals.javascript) add what their language needs (resource limits, blocked modules) inside the child."""
from __future__ import annotations

import os
import signal
import subprocess
import tempfile
from dataclasses import dataclass


@dataclass(frozen=True)
class Finished:
    """How the child ended: its exit code and what it wrote (each cut to the size asked for)."""

    returncode: int
    stdout: str
    stderr: str


def run_contained(argv: list[str], payload: str, *, timeout_s: float, output_bytes: int, prefix: str,
                  too_long: str) -> Finished:
    """Run `argv` with `payload` on its stdin; RuntimeError(`too_long`) when it outlives `timeout_s`."""
    with tempfile.TemporaryDirectory(prefix=prefix) as scratch:
        answer_path, errors_path = os.path.join(scratch, ".answer"), os.path.join(scratch, ".errors")
        with open(answer_path, "wb") as answer, open(errors_path, "wb") as errors:
            process = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=answer, stderr=errors, cwd=scratch,
                                       env={}, start_new_session=True)
            try:
                process.communicate(payload.encode("utf-8"), timeout=timeout_s)
            except subprocess.TimeoutExpired:
                raise RuntimeError(too_long) from None
            finally:
                kill_group(process)
        with open(answer_path, "rb") as answer:
            stdout = answer.read(output_bytes + 1).decode("utf-8", errors="replace")
        with open(errors_path, "rb") as errors:
            stderr = errors.read(output_bytes + 1).decode("utf-8", errors="replace")
    return Finished(process.returncode, stdout, stderr)


def kill_group(process: subprocess.Popen[bytes]) -> None:
    """End the child and anything it started (its own process group), whatever happened."""
    if hasattr(os, "killpg"):
        try:
            os.killpg(process.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
    else:
        process.kill()
    process.wait()
