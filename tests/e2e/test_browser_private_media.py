"""Row 7 of issue 23 in a real browser: a generated image's `/media/…` URL cannot be computed from the image, nor
reused by another session, and a client with no cookies cannot fetch a URL it worked out from the bytes."""
from __future__ import annotations

import os
import urllib.error
import urllib.request

import pytest

from tests.browser import CHROMIUM, IDLE, StreamlitApp, screenshot
from tests.images.test_images import content_id

if not os.path.exists(CHROMIUM) and os.environ.get("PROMPTLAB_SKIP_BROWSER") == "1":
    pytest.skip("PROMPTLAB_SKIP_BROWSER=1 and no Chromium", allow_module_level=True)

sync_api = pytest.importorskip("playwright.sync_api")

USERS = {"alice": "alice pw", "bob": "bob pw"}


def fetch_without_cookies(url: str) -> tuple[int, bytes, str]:
    """GET from a client with no cookies and no session: status, body, content type."""
    try:
        with urllib.request.urlopen(url, timeout=10) as r:
            return r.status, r.read(), r.headers.get("Content-Type", "")
    except urllib.error.HTTPError as err:
        return err.code, b"", ""


def test_a_generated_images_url_cannot_be_computed_from_it_nor_reused_by_another_user(browser, app_env, tmp_path):
    from core.policy.access import hash_password

    env = {**app_env, "PROMPTLAB_DATA_DIR": str(tmp_path / "data"),
           "PROMPTLAB_USERS": ",".join(f"{u}:{hash_password(p, iterations=1000)}" for u, p in USERS.items())}
    running = StreamlitApp(env)
    contexts = []
    try:
        def generate_as(name: str) -> tuple[object, str]:
            context = browser.new_context(viewport={"width": 1400, "height": 1000})
            contexts.append(context)
            pg = context.new_page()
            pg.goto(f"{running.url}/images")
            pg.wait_for_selector(IDLE, timeout=60_000)
            pg.get_by_label("User name").fill(name)
            pg.get_by_role("textbox", name="Password").fill(USERS[name])
            pg.get_by_role("button", name="Sign in").click()
            prompt = pg.locator("textarea[aria-label='Prompt']")
            prompt.wait_for(timeout=30_000)  # signed in: the Images page
            pg.wait_for_selector(IDLE, timeout=30_000)
            prompt.fill(f"{name}'s private lighthouse")
            pg.keyboard.press("Tab")
            pg.wait_for_selector(IDLE, timeout=30_000)
            pg.get_by_role("button", name="✨ Generate").click()
            pg.wait_for_selector("[data-testid='stImage'] img", timeout=30_000)
            pg.wait_for_selector(IDLE, timeout=30_000)
            assert pg.locator("[data-testid='stImage'] img").count() == 1  # her own image only
            return pg, pg.locator("[data-testid='stImage'] img").first.get_attribute("src") or ""

        alice, alice_src = generate_as("alice")
        assert "/media/" in alice_src
        # The image as bob would have it (the loopback server hands everyone the same picture): he computes the
        # URL Streamlit would give it, and fetches that with no cookies.
        status, image, mimetype = fetch_without_cookies(running.url + alice_src[alice_src.index("/media/"):])
        assert status == 200 and image  # (alice's own URL: a capability only her session was handed)
        served_id, extension = os.path.splitext(alice_src.rsplit("/", 1)[1])
        guessed = content_id(image, mimetype.split(";")[0].strip())
        status, body, _ = fetch_without_cookies(f"{running.url}/media/{guessed}{extension}")
        assert (status, image in body) == (404, False)  # the URL computed from the image serves nothing
        assert served_id != guessed  # alice's id is not a hash of her image

        bob, bob_src = generate_as("bob")  # the very same bytes, in another session
        bob_id = os.path.splitext(bob_src.rsplit("/", 1)[1])[0]
        assert bob_id != served_id and bob_id != guessed  # his URL tells him nothing about hers
        assert "alice's private lighthouse" not in bob.inner_text("[data-testid='stMain']")
        screenshot(alice, "images-private-media")
    finally:
        for context in contexts:
            context.close()
        running.stop()
