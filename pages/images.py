"""Images: generate with the gpt-image models (every parameter they take), edit an uploaded image (with an optional
mask), see the cost, keep a gallery."""
from dataclasses import replace

import streamlit as st

from core.base.errors import PromptLabError
from core.base.i18n import N_, _, ngettext
from core.images.gallery import Gallery
from core.images.generation import (
    BACKGROUNDS,
    MODERATION,
    ImageRequest,
    check_upload,
    edit,
    estimate_cost,
    generate,
    image_models,
    model_spec,
    validate,
)
from core.llm.pricing import format_cost
from pages._widgets import available_model_ids
from pages._workbench import workbench

# The API's option values as a person reads them (the values themselves are sent as they are).
OPTION_LABELS = {"1536x1024": N_("1536×1024 landscape"), "1024x1536": N_("1024×1536 portrait"),
                 "1024x1024": N_("1024×1024 square"), "auto": N_("auto"), "low": N_("low"), "medium": N_("medium"),
                 "high": N_("high"), "opaque": N_("opaque"), "transparent": N_("transparent")}

wb = workbench()
state = st.session_state
gallery = Gallery(wb.settings.db_url, wb.settings.data_dir)
st.title(_("🖼️ Images"))
variation = False
if "img_pending" in state:  # "generate variations": load the image's settings before the widgets are drawn
    state.update(state.pop("img_pending"))
    variation = True

if wb.provider.kind == "local":
    st.info(_("The offline model cannot make images. Add an OpenAI key in Settings (or set OPENAI_BASE_URL to a "
            "server with an images endpoint) to generate; the gallery below still works."))
else:
    models = image_models(available_model_ids(wb))
    editing = st.radio(_("Mode"), ["generate", "edit"], key="img_mode", horizontal=True,
                       format_func=lambda m: _("Generate") if m == "generate" else _("Edit an image")) == "edit"
    left, right = st.columns([3, 2])
    prompt = left.text_area(_("Prompt"), key="img_prompt", height=150,
                            placeholder=_("A watercolour lighthouse in a storm, seen from the sea"))
    if editing:
        source = left.file_uploader(_("Image to edit (PNG, JPEG or WebP, up to 20 MB)"),
                                    type=["png", "jpg", "jpeg", "webp"], key="img_edit_image")
        mask_file = left.file_uploader(_("Mask (optional: a PNG of the same size; transparent where to edit)"),
                                       type=["png"], key="img_edit_mask")
    with right:
        model = st.selectbox(_("Model"), models, key="img_model")
        spec = model_spec(model)
        c1, c2 = st.columns(2)
        size = c1.selectbox(_("Size"), spec.sizes, key="img_size",
                            format_func=lambda s: _(OPTION_LABELS[s]) if s in OPTION_LABELS else s)
        quality = c2.selectbox(_("Quality"), spec.qualities, key="img_quality",
                               format_func=lambda q: _(OPTION_LABELS[q]) if q in OPTION_LABELS else q)
        n = c1.number_input(_("Images"), 1, spec.max_n, 1, key="img_n")
        background = c2.selectbox(_("Background"), [b for b in BACKGROUNDS if b in spec.backgrounds], key="img_bg",
                                  format_func=lambda b: _(OPTION_LABELS[b]) if b in OPTION_LABELS else b)
        fmt = c1.selectbox(_("Format"), spec.formats, key="img_format")
        compression = c2.slider(_("Compression"), 0, 100, 85, key="img_compression", disabled=fmt == "png",
                                help=_("JPEG and WebP only"))
        moderation = st.selectbox(_("Moderation"), MODERATION, key="img_moderation",
                                  disabled=not spec.moderation or editing,
                                  format_func=lambda m: _(OPTION_LABELS[m]) if m in OPTION_LABELS else m)
    request = ImageRequest(model, prompt, int(n), size, quality, background, fmt,
                           compression if fmt != "png" else None, moderation)
    problems = validate(request)
    estimate = estimate_cost(request, wb.provider.pricing_id)
    st.caption(_("Estimated cost: {cost} for {n} image(s) — the actual cost comes from the response's usage.").format(
        cost=format_cost(estimate), n=int(n)))
    for problem in problems[1 if not prompt.strip() else 0:]:
        st.warning(problem)
    # Never disabled for an empty prompt: the box commits its text on blur, so a click straight after typing would
    # meet a disabled button. The click itself re-checks (the value is current by then).
    label, key = (_("✏️ Edit image"), "img_edit") if editing else (_("✨ Generate"), "img_generate")
    clicked = st.button(label, type="primary", disabled=bool(problems[1 if not prompt.strip() else 0:]), key=key)
    if clicked and problems:
        state.img_error, state.img_last = problems[0], []
    elif clicked and editing and source is None:
        state.img_error, state.img_last = _("Upload the image to edit."), []
    elif clicked or (variation and not problems):
        with st.spinner(_("Editing…") if editing else _("Generating…")):
            try:
                if editing:
                    # Checked by content here, before any bytes leave: size, format, pixels; one sentence if not.
                    image = check_upload(source.getvalue(), _("image"))
                    mask = check_upload(mask_file.getvalue(), _("mask")) if mask_file is not None else None
                    result = edit(wb.provider, request, image, mask, wb.context("images", ["edit"]), wb.log)
                    request = replace(request, edit=True)
                else:
                    result = generate(wb.provider, request, wb.context("images"), wb.log)
                state.img_last = [img.id for img in gallery.add(request, result, wb.user)]
                state.img_error = None
                # The numbers are kept, the sentence is written when shown: a language switch rewrites it.
                state.img_note = (len(result.images), result.cost_usd, result.cost_estimated)
            except PromptLabError as err:
                state.img_error = err.message  # the prompt stays in its box
                state.img_last = []  # a refusal leaves no stale "Just generated"
    if state.get("img_error"):
        st.error(state.img_error)


def show(image, key: str) -> None:
    """One image card: picture, download, copy prompt, variations, delete."""
    st.image(image.read(), width="stretch")
    cost = format_cost(image.cost_usd) + (" est." if image.cost_estimated else "")
    edited = (_("edit") + " · ") if image.params.get("edit") else ""
    st.caption(f"{edited}{image.model} · {image.params.get('size')} · {image.params.get('quality')} · {cost} · "
               f"{image.created_at[:16].replace('T', ' ')}")
    a, b, c = st.columns(3)
    a.download_button("⬇", image.read(), image.file_name, image.mime, key=f"dl_{key}", help=_("Download"))
    if b.button("🔁", key=f"var_{key}", help=_("Generate variations: same prompt and settings, new sample"),
                disabled=wb.provider.kind == "local"):
        state.img_pending = {"img_prompt": image.prompt, "img_model": image.model, "img_mode": "generate",
                             **{f"img_{k}": image.params[p] for k, p in (("size", "size"), ("quality", "quality"),
                                                                         ("n", "n"), ("bg", "background"),
                                                                         ("format", "output_format"))}}
        st.rerun()
    if c.button("🗑", key=f"del_{key}", help=_("Delete")):
        gallery.delete(image.id, wb.user, wb.admin)
        st.rerun()
    with st.expander(_("Prompt")):
        st.code(image.prompt, language=None, wrap_lines=True)  # the code block has a copy button


last = [img for img in (gallery.get(i, wb.user, wb.admin) for i in state.get("img_last", [])) if img]
if last:
    st.subheader(_("Just generated"))
    if state.get("img_note"):
        count, cost, estimated = state.img_note
        st.caption(ngettext("{n} image · {cost}", "{n} images · {cost}", count).format(
            n=count, cost=format_cost(cost) + (_(" (estimated)") if estimated else "")))
    new_cols = st.columns(4)  # same card size as the gallery, whatever the count
    for i, img in enumerate(last):
        with new_cols[i % 4]:
            show(img, f"new_{img.id}")

st.subheader(_("Gallery"))
query = st.text_input(_("Search prompts"), key="img_search")
page_size = 12
page = st.session_state.get("img_page", 1)
images, total = gallery.search(query, page_size, (page - 1) * page_size, user=wb.user, admin=wb.admin)
if total > page_size:  # a page selector only when there is more than one page
    st.number_input(_('Page (of {pages}, {total} images)').format(
        pages=-(-total // page_size), total=total), 1, -(-total // page_size),
                    key="img_page")
just_shown = {img.id for img in last}
images = [img for img in images if img.id not in just_shown]  # each image once: above, or here
if not images and not just_shown:
    st.caption(_("No images yet.") if not query else _("No image prompt matches that search."))
cols = st.columns(4)
for i, img in enumerate(images):
    with cols[i % 4]:
        show(img, f"gal_{img.id}")
