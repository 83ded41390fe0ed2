"""promptfoo's `javascript` assertions (also written `fn:` / `eval:` in a CSV cell), run with Node.js the way
promptfoo 0.121.20 runs them: the code is a function body of `(output, context)`; one line is an expression whose
value is returned (a leading `const x = …;` kept before it); the value is a boolean, a number (a score: passes
above 0, or at the threshold) or a {pass, score, reason} object.

Code from a config runs on the server: only an admin's config gets here (core/evals/config.py `refuse_code`, and
`EvalRun`). It runs in a separate Node process under Node's permission model (no file system, no child processes,
no workers), with an empty environment, a scratch working directory, limits on CPU (10 s), heap, files written and
open files set before Node starts, its own process group (killed whole after 10 s) and, where the kernel allows, no
network. Without Node on the server, the assertion is skipped with a note (config.py) — never run any other way.
"""
from __future__ import annotations

import functools
import json
import re
import shutil
import subprocess
import sys
from typing import Any

from core.evals.sandbox import limits_prelude, run_contained

TIMEOUT_S = 10
HEAP_MB = 512
OUTPUT_BYTES = 8 << 20

# Run by a fresh Python (isolated mode) that sets the limits, leaves the network where it can, then becomes Node.
_TRAMPOLINE = "import os, sys\n" + limits_prelude(cpu_s=TIMEOUT_S, output_bytes=OUTPUT_BYTES, open_files=256) + \
    "os.execv(sys.argv[1], sys.argv[1:])\n"

# Node's side: read {body, output, context} from stdin, call the function, write {result} or {error}.
_RUNNER = """
const chunks = [];
process.stdin.on('data', (c) => chunks.push(c));
process.stdin.on('end', async () => {
  const p = JSON.parse(Buffer.concat(chunks).toString('utf8'));
  let answer;
  try {
    const fn = new Function('output', 'context', 'process', p.body);
    const result = await Promise.resolve(fn(p.output, p.context, { env: {} }));
    const grading = typeof result === 'object' && result !== null && typeof result.pass === 'boolean'
      && typeof result.score === 'number' && typeof result.reason === 'string';
    if (typeof result === 'boolean' || typeof result === 'number' || grading) {
      answer = { result };
    } else {
      answer = { error: `Custom function must return a boolean, number, or GradingResult object. Got type ${
        typeof result}: ${JSON.stringify(result)}` };
    }
  } catch (err) {
    answer = { error: `Custom function threw error: ${err && err.message ? err.message : String(err)}` };
  }
  process.stdout.write(JSON.stringify(answer));
});
"""


@functools.lru_cache(maxsize=1)
def node() -> tuple[str, list[str]] | None:
    """Node.js on this server and its permission flag, or None (then javascript assertions are skipped)."""
    path = shutil.which("node")
    if path is None:
        return None
    try:
        version = subprocess.run([path, "--version"], capture_output=True, text=True, timeout=10, env={}).stdout
        major = int(re.match(r"v(\d+)", version.strip()).group(1))  # type: ignore[union-attr]
    except (OSError, subprocess.SubprocessError, AttributeError, ValueError):
        return None
    if major < 20:  # no permission model: code would reach the file system
        return None
    return path, ["--permission" if major >= 23 else "--experimental-permission", "--no-warnings",
                  f"--max-old-space-size={HEAP_MB}"]


def _last_statement_semicolon(code: str) -> int:
    single = double = template = False
    last = -1
    for i, ch in enumerate(code):
        escaped = False
        j = i - 1
        while j >= 0 and code[j] == "\\":
            escaped, j = not escaped, j - 1
        if not escaped:
            if ch == "'" and not double and not template:
                single = not single
            elif ch == '"' and not single and not template:
                double = not double
            elif ch == "`" and not single and not double:
                template = not template
        if ch == ";" and not (single or double or template):
            last = i
    return last


def function_body(code: str) -> str:
    """promptfoo's reading of an assertion's code: several lines are a function body; one line is an expression
    (returned), after any leading `const` / `let` / `var` statements."""
    code = code.rstrip()
    if "\n" in code:
        return code
    trimmed = re.sub(r";+\s*$", "", code.strip())
    if re.match(r"^(const|let|var)\s", trimmed):
        last = _last_statement_semicolon(trimmed)
        if last != -1:
            expression = trimmed[last + 1:].strip()
            if expression:
                return f"{trimmed[:last + 1]} return {expression}"
        return trimmed
    return f"return {trimmed}"


def run_javascript(code: str, output: str, context: dict[str, Any]) -> Any:
    """The value the code returned; RuntimeError with promptfoo's sentence when it threw, returned something else,
    ran too long or Node is missing."""
    found = node()
    if found is None:
        raise RuntimeError("JavaScript assertions need Node.js 20 or later on the server")
    path, flags = found
    payload = json.dumps({"body": function_body(code), "output": output, "context": context}, default=str)
    done = run_contained([sys.executable, "-I", "-c", _TRAMPOLINE, path, *flags, "-e", _RUNNER], payload,
                         timeout_s=TIMEOUT_S, output_bytes=OUTPUT_BYTES, prefix="promptlab-js-",
                         too_long=f"Custom function ran longer than {TIMEOUT_S} s")
    stdout, stderr = done.stdout, done.stderr
    try:
        data = json.loads(stdout)
    except json.JSONDecodeError:
        last = (stderr.strip().splitlines() or [f"Node exited with {done.returncode}"])[-1]
        raise RuntimeError(f"Custom function failed: {last}") from None
    if "error" in data:
        raise RuntimeError(str(data["error"]))
    return data.get("result")
