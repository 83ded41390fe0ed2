"""Chat's images and PDFs: what the chat input's files become, the tray of files waiting for the next message,
and the thumbnails a turn shows in the history.

A file that fails its check (type, 20 MB, a damaged or locked PDF) is named in one sentence; the typed text goes
back into the box and the files that passed stay in the tray above it. The chat input cannot be given files back
(only text), so the tray is what saves the user from attaching the good ones again: they fix or drop the bad one
and press Enter. The same holds when the model takes no images: the text and the tray wait for another model.
"""
from __future__ import annotations

from typing import Any

import streamlit as st

from core.base.i18n import _, ngettext
from core.chat.conversation import attachment_label
from core.formats.rendering import model_markdown, plain
from core.llm import attachments as files
from core.llm.attachments import Attachment

UPLOAD_EXTENSIONS = files.UPLOAD_EXTENSIONS
PENDING = "chat_pending_files"  # the checked attachments waiting for the next message (session state)


def pending() -> list[Attachment]:
    return st.session_state.setdefault(PENDING, [])


def clear_pending() -> None:
    st.session_state[PENDING] = []


def read_input(value: Any, starter: str | None, errors: dict[str, Any]) -> tuple[str | None, list[Attachment]]:
    """(the text sent, or None when nothing was; every attachment it goes with). New files are checked by core
    (`check_uploads`) and join the tray; a bad one stops the send: its sentence shown, the text back in the box."""
    if value is None:
        return starter, list(pending()) if starter is not None else []
    text, uploads = value.text or "", list(getattr(value, "files", None) or [])
    good, problems = files.check_uploads([(f.name, f.getvalue()) for f in uploads])
    known = {a.sha256 for a in pending()}
    pending().extend(a for a in good if a.sha256 not in known)
    if problems:
        errors["message"], st.session_state.chat_restore = " ".join(problems), text
        st.rerun()
    return text, list(pending())


def draw_tray(model: str, provider_kind: str) -> None:
    """The files waiting for the next message, each with ✕; what they will cost on `model`, or why they cannot go."""
    waiting = pending()
    if not waiting:
        return
    row = st.container(horizontal=True, gap="small")
    for i, attachment in enumerate(waiting):
        if row.button(f"📎 {attachment.name} ✕", key=f"chat_unattach_{i}_{attachment.sha256[:8]}",
                      help=_("Remove this attachment")):
            del waiting[i]
            st.rerun()
    if not files.takes_images(provider_kind, model):
        st.caption(files.no_vision_error(model).message)
        return
    tokens, uncounted = files.forecast(model, waiting, provider_kind)
    parts = [ngettext("{n} attachment goes with your next message", "{n} attachments go with your next message",
                      len(waiting)).format(n=len(waiting))]
    if tokens:
        parts.append(_("≈{tokens:,} image tokens on {model}").format(tokens=tokens, model=plain(model)))
    if uncounted:
        parts.append(ngettext("{n} counted by the server only", "{n} counted by the server only",
                              uncounted).format(n=uncounted))
    st.caption(" · ".join(parts))


def draw_attachments(attachments: list[Attachment]) -> None:
    """A turn's images as thumbnails and its PDFs as chips (name, pages), from the bytes the conversation keeps:
    they survive a reload and never point at a remote URL."""
    if not attachments:
        return
    row = st.container(horizontal=True, gap="small")
    for attachment in attachments:
        if attachment.is_image:
            row.image(files.thumbnail(attachment), width=160, caption=attachment.name)
        else:
            row.caption(f"📄 {plain(attachment_label(attachment))}")


def show_sent(text: str, attachments: list[Attachment]) -> None:
    """The user's turn as just sent (its reply streams below it); the tray is empty again."""
    clear_pending()
    with st.chat_message("user"):
        st.markdown(model_markdown(text))
        draw_attachments(attachments)
