"""Test sets have an owner (issue 23 row 8): bob cannot save a newer version of alice's set — with a python
assertion in it or not — nor read it unless she shares it; an admin may do both; sets saved before owners existed
are readable by everyone and changed by admins only. Runs on SQLite and PostgreSQL."""
from __future__ import annotations

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from core.base.db import MIGRATIONS, dispose_engine, engine_for
from core.evals import store as eval_store
from core.evals.assertions import Assertion
from core.evals.config import TestCase
from core.evals.store import EvalStore

CASES = [TestCase(vars={"q": "refund window?"}, assertions=[Assertion(type="icontains", value="days")])]
PLANTED = [TestCase(vars={"q": "x"}, assertions=[Assertion(type="python", value="__import__('os').system('id')")])]


def test_another_users_set_cannot_be_changed_and_is_private_until_shared(db_url):
    alice, bob, root = EvalStore(db_url, "alice"), EvalStore(db_url, "bob"), EvalStore(db_url, "root", admin=True)
    alice.save_set("refunds", CASES, "alice")
    assert bob.set_names() == [] and bob.set_history("refunds") == [] and bob.latest_set("refunds") is None
    for tests in (PLANTED, CASES):  # the attack: a newer version of alice's set, with a python assertion or not
        with pytest.raises(eval_store.TestSetRefused, match="not yours to change|Only an admin"):
            bob.save_set("refunds", tests, "bob")
        with pytest.raises(eval_store.TestSetRefused):
            bob.share_set("refunds", True)
    assert [v.version for v in alice.set_history("refunds")] == [1]
    assert alice.latest_set("refunds").tests == CASES and alice.latest_set("refunds").owner == "alice"

    alice.share_set("refunds", True)  # her explicit choice
    assert bob.set_names() == ["refunds"] and bob.latest_set("refunds").tests == CASES
    assert not bob.may_change(bob.latest_set("refunds")) and alice.may_change(alice.latest_set("refunds"))
    with pytest.raises(eval_store.TestSetRefused, match="not yours to change"):
        bob.save_set("refunds", CASES, "bob")  # shared is readable, not writable

    saved = root.save_set("refunds", PLANTED, "root")  # an admin may (code included)
    assert saved.version == 2 and saved.owner == "alice" and saved.shared
    alice.save_set("refunds", CASES, "alice")  # saving again keeps her choice
    assert alice.latest_set("refunds").shared and alice.latest_set("refunds").version == 3
    alice.share_set("refunds", False)
    assert bob.set_names() == [] and [v.version for v in root.set_history("refunds")] == [3, 2, 1]


def test_a_non_admin_may_not_plant_code_even_in_a_set_of_their_own(db_url):
    bob = EvalStore(db_url, "bob")
    with pytest.raises(eval_store.TestSetRefused, match="Only an admin may save test cases with python"):
        bob.save_set("bobs", PLANTED, "bob", shared=True)
    assert EvalStore(db_url, "root", admin=True).set_names() == []
    assert bob.save_set("bobs", CASES, "bob", shared=True).shared  # without code, and shared by choice
    assert EvalStore(db_url, "alice").set_names() == ["bobs"]


def test_sets_saved_before_owners_are_readable_by_all_and_changed_by_admins(db_url):
    """A database migrated up to m013 holds a set; the owners' migration leaves it ownerless and shared."""
    dispose_engine(db_url)
    raw = sa.create_engine(db_url)
    names = [name for name, _ in MIGRATIONS]
    upto = names.index("m014_eval_set_owners")
    with raw.begin() as conn:
        conn.execute(sa.text("CREATE TABLE _migrations (name TEXT PRIMARY KEY, applied_at TEXT)"))
        for name, fn in MIGRATIONS[:upto]:
            fn(conn)
            conn.execute(sa.text("INSERT INTO _migrations (name, applied_at) VALUES (:n, 'then')"), {"n": name})
        _insert_old_set(conn)
    raw.dispose()
    engine_for(db_url)  # applies the rest
    bob, root = EvalStore(db_url, "bob"), EvalStore(db_url, "root", admin=True)
    old = bob.latest_set("legacy")
    assert old is not None and old.owner is None and old.shared and old.tests == CASES
    with pytest.raises(eval_store.TestSetRefused):
        bob.save_set("legacy", CASES, "bob")
    assert root.save_set("legacy", CASES, "root").version == 2


def _insert_old_set(conn: Connection) -> None:
    from core.evals.config import tests_to_jsonl

    conn.execute(sa.text("INSERT INTO eval_sets (id, name, version, author, note, created_at, body) "
                         "VALUES ('old', 'legacy', 1, 'alice', NULL, '2026-01-01', :b)"), {"b": tests_to_jsonl(CASES)})
