"""Private media URLs. Streamlit serves what `st.image` and `st.download_button` hand it at `/media/<id>`, to any
client, without cookies; and it names each file by a plain hash of its bytes, type and file name — so anyone who has
an image (or can guess a download) computes its URL and fetches another user's copy, on every run.

`install()` has Streamlit name them by a keyed hash instead: of the browser session and the content, under a random
key this process never shows. Within a session a file keeps its id (reruns reuse it, no reload); another session
gets another id for the same bytes; without the key nobody can compute one. The URL is still a bearer capability
(whoever is handed it can fetch it), as the session's own websocket is the only place it travels.
"""
from __future__ import annotations

import hashlib
import logging
import secrets

from streamlit.runtime import memory_media_file_storage
from streamlit.runtime.scriptrunner import get_script_run_ctx

logger = logging.getLogger(__name__)
_KEY = secrets.token_bytes(32)  # per process: the ids die with it, as Streamlit's in-memory files do


def private_file_id(data: bytes, mimetype: str, filename: str | None = None) -> str:
    """The media id Streamlit stores and serves a file under: 128 bits no one without `_KEY` can compute."""
    ctx = get_script_run_ctx()
    if ctx is None:  # produced outside a script run (a deferred download, on its click): one random id
        return secrets.token_hex(16)
    digest = hashlib.blake2b(key=_KEY, digest_size=16)
    for part in (ctx.session_id.encode(), mimetype.encode(), (filename or "").encode()):
        digest.update(len(part).to_bytes(8, "big") + part)  # length-prefixed: no two inputs run together
    digest.update(data)
    return digest.hexdigest()


def install() -> None:
    """Name every media file of this process by `private_file_id` (idempotent; before the first file is added)."""
    if not hasattr(memory_media_file_storage, "_calculate_file_id"):
        # A Streamlit that names files elsewhere: say so loudly (tests/images/test_images.py fails on it too).
        logger.critical("Streamlit's media ids could not be made private: _calculate_file_id is gone")
        return
    memory_media_file_storage._calculate_file_id = private_file_id
