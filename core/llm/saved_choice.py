"""The provider each user chose in Settings, kept in the database (`user_settings`), so a restart, a reload or another
replica behind the load balancer brings it back.

What is kept is the form the user filled in (kind, base URL, API version, key), not the settings it led to: every
session that restores it runs it through `override_for` again, so a user who lost the admin role, or a URL the
allow-list no longer allows, gets nothing they may not have now.

A key the user typed is never stored in plain text: it is encrypted (AES-GCM, pycryptodomex) with a key derived from
the server's secret, PROMPTLAB_SECRET_KEY, and bound to the user (a row copied to another user does not decrypt).
Without that secret the key is not stored at all: the choice is kept without it and the user is asked for it again,
with the reason (`KEY_NOT_KEPT`).
"""
from __future__ import annotations

import base64
import hashlib
import json
import logging
import os
from dataclasses import dataclass
from datetime import datetime, timezone

import sqlalchemy as sa
from Cryptodome.Cipher import AES
from sqlalchemy.engine import Engine

from core.base.errors import scrub_secrets
from core.base.i18n import _
from core.llm.provider_choice import ProviderForm

logger = logging.getLogger(__name__)
SECRET_ENV = "PROMPTLAB_SECRET_KEY"
SETTING = "provider_choice"


def key_not_kept() -> str:
    """Why a typed key is asked for again (one sentence)."""
    return _("Your key was not kept: keys are stored only encrypted, and this server has no PROMPTLAB_SECRET_KEY to "
             "encrypt them with, so type it again after a restart or on another server (an admin can set it).")


@dataclass(frozen=True)
class SavedChoice:
    """A user's stored choice; `key_missing` when they typed a key that could not be stored or read back."""

    form: ProviderForm
    key_missing: bool = False


def _cipher_key() -> bytes | None:
    secret = os.environ.get(SECRET_ENV, "")
    if not secret.strip():
        return None
    # The secret is an operator's random string of any length: hashed to the 256-bit key AES wants.
    return hashlib.sha256(b"promptlab/provider-key/v1\0" + secret.encode()).digest()


def encrypt(key_text: str, user: str) -> str | None:
    """The key encrypted for this user's row (None without a server secret)."""
    key = _cipher_key()
    if key is None:
        return None
    cipher = AES.new(key, AES.MODE_GCM)
    cipher.update(user.encode())  # bound to its user: another user's row cannot take it over
    sealed, tag = cipher.encrypt_and_digest(key_text.encode())
    return "v1:" + base64.b64encode(bytes(cipher.nonce) + tag + sealed).decode()


def decrypt(stored: str, user: str) -> str | None:
    """The key back, or None (no secret, another secret, another user's row, a damaged value)."""
    key = _cipher_key()
    if key is None or not stored.startswith("v1:"):
        return None
    raw = base64.b64decode(stored[3:])
    cipher = AES.new(key, AES.MODE_GCM, nonce=raw[:16])
    cipher.update(user.encode())
    try:
        return cipher.decrypt_and_verify(raw[32:], raw[16:32]).decode()
    except ValueError:
        return None


def save_choice(engine: Engine, user: str, form: ProviderForm) -> bool:
    """Keep this user's choice (replacing the last); False when it has a typed key that could not be kept."""
    typed = (form.api_key or "").strip()
    sealed = encrypt(typed, user) if typed else None
    body = {"kind": form.kind, "base_url": form.base_url, "api_version": form.api_version,
            "key": sealed, "key_typed": bool(typed)}
    with engine.begin() as conn:
        conn.execute(sa.text("DELETE FROM user_settings WHERE user_id = :u AND key = :k"), {"u": user, "k": SETTING})
        conn.execute(sa.text("INSERT INTO user_settings (user_id, key, value, updated_at) VALUES (:u, :k, :v, :t)"),
                     {"u": user, "k": SETTING, "v": json.dumps(body),
                      "t": datetime.now(timezone.utc).isoformat()})
    return not typed or sealed is not None


def load_choice(engine: Engine, user: str) -> SavedChoice | None:
    """This user's stored choice, its key decrypted (None when they have none, or the database cannot be read: the
    configured provider then, as after a restart)."""
    try:
        with engine.connect() as conn:
            raw = conn.execute(sa.text("SELECT value FROM user_settings WHERE user_id = :u AND key = :k"),
                               {"u": user, "k": SETTING}).scalar()
    except sa.exc.SQLAlchemyError as exc:
        logger.warning("provider choice not read: %s", scrub_secrets(repr(exc)))
        return None
    if not raw:
        return None
    body = json.loads(raw)
    key = decrypt(body["key"], user) if body.get("key") else None
    form = ProviderForm(body["kind"], body.get("base_url"), key, body.get("api_version"))
    return SavedChoice(form, key_missing=bool(body.get("key_typed")) and key is None)


def forget_choice(engine: Engine, user: str) -> None:
    with engine.begin() as conn:
        conn.execute(sa.text("DELETE FROM user_settings WHERE user_id = :u AND key = :k"), {"u": user, "k": SETTING})
