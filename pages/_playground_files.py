"""The Playground's "Files": images and PDFs uploaded as variables, each a {{variable}} named after its file
(invoice.pdf → {{invoice}}), checked by content, shown as a thumbnail or a file chip. They are inputs of this
screen only: saved prompt versions keep the {{names}}, not the files (core.playground.draft.Draft.files)."""
from __future__ import annotations

import streamlit as st

from core.base.errors import PromptLabError
from core.base.i18n import _
from core.llm.attachments import UPLOAD_EXTENSIONS, Attachment, check_attachment
from core.llm.file_vars import var_names


def files_editor(template_names: list[str]) -> dict[str, Attachment]:
    """The uploader and what it holds: {variable name: attachment}; a refused file is one sentence beside it."""
    state = st.session_state
    uploads = st.file_uploader(
        _("Files as variables (images, PDFs)"), type=UPLOAD_EXTENSIONS, accept_multiple_files=True, key="pg_files",
        help=_("Each file becomes a variable named after it: invoice.pdf is {{invoice}}. It is sent as an image or "
               "file part after the user message's text. Files are not saved with prompt versions."))
    checked = state.setdefault("pg_files_checked", {})  # upload id → Attachment, or the sentence refusing it
    files: dict[str, Attachment] = {}
    uploads = list(uploads or [])
    for name, upload in zip(var_names([u.name for u in uploads]), uploads, strict=True):
        if upload.file_id not in checked:
            try:
                checked[upload.file_id] = check_attachment(upload.name, upload.getvalue())
            except PromptLabError as err:
                checked[upload.file_id] = err.message
        got = checked[upload.file_id]
        if isinstance(got, str):
            st.warning(got)
            continue
        files[name] = got
    if files:
        columns = st.columns(min(4, len(files)))
        for i, (name, attachment) in enumerate(files.items()):
            with columns[i % len(columns)]:
                slot = "{{" + name + "}}"
                if attachment.is_image:
                    st.image(attachment.data, width=96)
                    st.caption(f"{slot} · {attachment.width}×{attachment.height}")
                else:
                    st.caption(f"📄 {slot} · {attachment.name}")
                if name not in template_names:
                    st.caption(_("not sent: write {slot} in the message").format(slot=slot))
    state["pg_file_vars"] = files
    return files
