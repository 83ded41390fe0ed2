"""Under each reply in Chat: its caption, 👍 / 👎 (kept with the saved conversation) and "Add to a test set" — the
turn becomes a test case whose metadata carries the thumbs and the user's note (core.evals.traffic)."""
from __future__ import annotations

import streamlit as st

from core.base.i18n import _
from core.chat import conversation as chat
from core.evals.store import EvalStore, TestSetRefused
from core.evals.traffic import add_turns_to_set
from core.formats.rendering import plain
from core.records.privacy import text_policy
from pages._workbench import Workbench

THUMBS = {1: "up", 0: "down"}  # st.feedback's values


def draw_reply_footer(conv: chat.Conversation, index: int, message: chat.Message, wb: Workbench) -> None:
    row = st.container(horizontal=True, gap="small", vertical_alignment="center")
    row.caption(chat.turn_caption(message))
    default = next((v for v, r in THUMBS.items() if r == message.rating), None)
    with row:
        value = st.feedback("thumbs", key=f"thumbs_{conv.id}_{index}", default=default)
    rating = THUMBS.get(value) if value is not None else None
    if rating != message.rating:
        chat.rate_reply(conv, index, rating, message.rating_note)
        wb.conversations.save(conv, wb.user)
    with row.popover("🧪", help=_("Add this turn to a test set")):
        note = st.text_input(_("Why (kept with the case)"), value=message.rating_note or "",
                             key=f"thumbs_note_{conv.id}_{index}")
        name = st.text_input(_("Test set"), key=f"turn_set_{conv.id}_{index}",
                             placeholder=_("a new or existing set of yours"))
        if st.button(_("Add to the test set"), key=f"turn_add_{conv.id}_{index}", disabled=not name.strip()):
            if message.rating and note != (message.rating_note or ""):
                chat.rate_reply(conv, index, message.rating, note)
                wb.conversations.save(conv, wb.user)
            try:
                added = add_turns_to_set(EvalStore(wb.settings.db_url, wb.user, wb.admin), name,
                                         [m.to_dict() for m in conv.messages], conv.id, user=wb.user,
                                         model=message.model, text_policy=text_policy(wb.log.engine),
                                         turns=[index], system_prompt=conv.system_prompt)
                st.success(_("“{name}” v{version}: {added} new cases.").format(
                    name=plain(added.version.name), version=added.version.version, added=added.added))
            except (TestSetRefused, ValueError) as err:
                st.error(plain(err))
