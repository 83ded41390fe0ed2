"""The provider a browser chose, kept across a reload (core/llm/provider_choice.py): bound to its user, expiring,
bounded, never in the URL or on disk. The reload itself is driven in a real browser in tests/e2e/test_browser.py."""
from __future__ import annotations

import pytest

from core.formats.cookies import cookie_script
from core.llm.provider_choice import COOKIE_NAME, TTL_S, ProviderChoices

TYPED = {"provider": "compatible", "openai_base_url": "http://127.0.0.1:9/v1", "openai_api_key": "sk-typed-1234"}


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_choice_comes_back_for_its_user_only():
    choices = ProviderChoices()
    token = choices.remember("ana", TYPED)
    assert choices.recall(token, "ana") == TYPED
    assert choices.recall(token, "ben") is None  # a cookie copied to another user's browser opens nothing
    assert choices.recall("guessed-token", "ana") is None
    assert len(token) >= 40 and choices.remember("ana", TYPED) != token  # random, not derived from the choice


def test_changing_the_choice_keeps_the_token_and_another_user_gets_a_new_one():
    choices = ProviderChoices()
    token = choices.remember("ana", TYPED)
    assert choices.remember("ana", {"provider": "local"}, token) == token
    assert choices.recall(token, "ana") == {"provider": "local"}
    stolen = choices.remember("ben", {"provider": "local"}, token)  # ben cannot overwrite ana's entry
    assert stolen != token and choices.recall(token, "ana") == {"provider": "local"}


def test_a_choice_unused_for_a_day_is_forgotten_and_use_keeps_it_alive():
    clock = Clock()
    choices = ProviderChoices(ttl_s=100, clock=clock)
    kept, dropped = choices.remember("ana", TYPED), choices.remember("ben", TYPED)
    clock.now += 90
    assert choices.recall(kept, "ana") == TYPED
    clock.now += 90
    assert choices.recall(kept, "ana") == TYPED and choices.recall(dropped, "ben") is None
    assert len(choices) == 1


def test_the_store_is_bounded_least_recently_used_out_first():
    choices = ProviderChoices(max_choices=3)
    tokens = [choices.remember(f"u{i}", TYPED) for i in range(3)]
    choices.recall(tokens[0], "u0")
    choices.remember("u3", TYPED)
    assert len(choices) == 3 and choices.recall(tokens[1], "u1") is None and choices.recall(tokens[0], "u0")


def test_forget_and_the_returned_copy_cannot_change_the_store():
    choices = ProviderChoices()
    token = choices.remember("ana", TYPED)
    got = choices.recall(token, "ana")
    got["openai_api_key"] = "changed"
    assert choices.recall(token, "ana") == TYPED
    choices.forget(token)
    assert choices.recall(token, "ana") is None


def test_the_cookie_holds_only_the_token_and_refuses_anything_else():
    script = cookie_script(COOKIE_NAME, "abc_DEF-123", int(TTL_S))
    assert f"{COOKIE_NAME}=abc_DEF-123" in script and "SameSite=Strict" in script and "sk-" not in script
    assert "Max-Age=0" in cookie_script(COOKIE_NAME, None, 0)
    with pytest.raises(ValueError):
        cookie_script(COOKIE_NAME, 'x"; alert(1); "', 60)
