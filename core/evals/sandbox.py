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


def limits_prelude(*, cpu_s: int, output_bytes: int, open_files: int, memory_bytes: int | None = None) -> str:
    """The child's first lines (a fresh, single-threaded Python; set here rather than in a `preexec_fn`, which
    Python documents as unsafe with threads): resource limits with soft = hard, so the code cannot raise them again;
    then, where the kernel allows it, a user and a network namespace of its own — no network, and the parent's
    /proc/<pid>/environ and memory out of reach. Best effort: containers often forbid unshare."""
    limits = [f"(resource.RLIMIT_CPU, {cpu_s})", *([f"(resource.RLIMIT_AS, {memory_bytes})"] if memory_bytes else []),
              f"(resource.RLIMIT_FSIZE, {output_bytes})", f"(resource.RLIMIT_NOFILE, {open_files})",
              "(resource.RLIMIT_CORE, 0)"]
    return f"""
try:
    import resource
except ImportError:  # not POSIX: the parent's time limit only
    resource = None
if resource is not None:
    for which, value in ({", ".join(limits)}):
        hard = resource.getrlimit(which)[1]
        value = value if hard == resource.RLIM_INFINITY else min(value, hard)
        resource.setrlimit(which, (value, value))
try:
    import ctypes
    ctypes.CDLL(None, use_errno=True).unshare(0x10000000 | 0x40000000)  # CLONE_NEWUSER | CLONE_NEWNET
except (OSError, AttributeError):
    pass
"""


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
