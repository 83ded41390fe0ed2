"""Benchmark: the README's set-up command on a fresh machine — `pip install -r requirements.txt` into a new virtual
environment with pip's cache disabled (every wheel comes from the package index), then the first start's fetch of
the offline model (`python -m core model-file`, also without cache) into an empty models directory.

That nothing is built from source is checked by tests/test_install.py (`--only-binary=:all: --dry-run`).
Target: install_seconds <= 120 where the registry answers at normal speed (it was 540 s with llama-cpp-python).
Last lines: `RESULT install_seconds <s>` and `RESULT model_fetch_seconds <s>`.
"""
from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="promptlab-install-") as tmp:
        env_dir = Path(tmp) / "venv"
        venv.EnvBuilder(with_pip=True).create(env_dir)
        python = env_dir / ("Scripts" if os.name == "nt" else "bin") / "python"
        quiet = {**os.environ, "PIP_NO_CACHE_DIR": "1", "PIP_DISABLE_PIP_VERSION_CHECK": "1"}
        started = time.perf_counter()
        subprocess.run([str(python), "-m", "pip", "install", "--quiet", "-r",
                        str(ROOT / "requirements.txt")], env=quiet, check=True)
        install_s = time.perf_counter() - started
        # The app imports and its runtime loads in the new environment.
        subprocess.run([str(python), "-c", "import streamlit, openai, tiktoken, genai_prices, xllamacpp, duckdb"],
                       env=quiet, check=True)
        started = time.perf_counter()
        subprocess.run([str(python), "-m", "core", "model-file", str(Path(tmp) / "models")], env=quiet, cwd=ROOT,
                       check=True, stdout=subprocess.DEVNULL)
        fetch_s = time.perf_counter() - started
        size_mb = sum(f.stat().st_size for f in env_dir.rglob("*") if f.is_file()) / 1e6
    print(f"fresh venv: {size_mb:.0f} MB installed with no pip cache, nothing compiled")
    print(f"RESULT install_seconds {install_s:.1f}")
    print(f"RESULT model_fetch_seconds {fetch_s:.1f}")


if __name__ == "__main__":
    sys.exit(main())
