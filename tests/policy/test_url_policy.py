"""User-chosen URLs (core/policy/url_policy.py) and what a choice may carry (core/llm/provider_choice.py): the server's key
goes only to its configured endpoint; a non-admin reaches public addresses only, unless the admins allow-list more;
the check holds on every request (redirects, a name that re-resolves); an answer that is not OpenAI's JSON is one
sentence. Requests go through the real SDK to the project's loopback server; names are resolved by a table where a
test needs a name to point somewhere (a public address cannot be reached from a test)."""
from __future__ import annotations

import pytest

from core.base.config import load_settings
from core.base.errors import PromptLabError
from core.calls.gate import CallContext, ChatRequest, ChatStream, list_models
from core.llm.provider_choice import ProviderForm, override_for, url_policy_for
from core.llm.providers import Provider, resolve_provider
from core.policy.access import Identity
from core.policy.url_policy import UrlPolicy, is_public, same_endpoint
from tests.conftest import TEST_KEY
from tests.loopback_server import LoopbackServer, Script

BOB = Identity("bob")
ROOT = Identity("root", admin=True)
CTX = CallContext(page="other", user="bob", tags=["test"])


@pytest.fixture
def bobs_server():
    """A server bob runs himself, on this machine: it records every request and the key that came with it."""
    own = LoopbackServer(api_key=None).start()
    yield own
    own.stop()


def keys_seen(server: LoopbackServer) -> list[str]:
    return [r["headers"].get("Authorization", "") for r in server.requests]


def guarded(url: str, policy: UrlPolicy, key: str | None = None) -> Provider:
    return Provider("compatible", url, key, timeout_s=5, max_retries=2, url_policy=policy)


# ----- addresses ------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("address", [
    "127.0.0.1", "127.8.9.10", "::1", "169.254.169.254", "fe80::1", "fe80::1%eth0", "10.1.2.3", "172.16.0.1",
    "172.31.255.255", "192.168.1.1", "fc00::1", "fd12:3456::1", "0.0.0.0", "::", "100.64.0.1", "224.0.0.1",
    "::ffff:127.0.0.1", "::ffff:169.254.169.254", "64:ff9b::7f00:1", "2002:7f00:1::1", "192.0.2.1", "198.18.0.1",
    "255.255.255.255"])
def test_loopback_link_local_private_and_reserved_addresses_are_not_public(address):
    assert not is_public(address)


@pytest.mark.parametrize("address", ["8.8.8.8", "1.1.1.1", "104.18.6.192", "2606:4700:4700::1111",
                                     "64:ff9b::808:808"])
def test_public_addresses_are(address):
    assert is_public(address)


def table(names: dict[str, list[str]]):
    """A resolver from a table (IP literals resolve to themselves), like getaddrinfo for the names it knows."""
    def resolve(host: str, port: int) -> list[str]:
        if host in names:
            return names[host]
        try:
            import ipaddress
            return [str(ipaddress.ip_address(host))]
        except ValueError:
            raise OSError(f"unknown host {host}") from None
    return resolve


def test_only_http_urls_to_public_addresses_unless_allow_listed():
    policy = UrlPolicy(resolve=table({"api.example.com": ["104.18.6.192"], "metadata.internal": ["169.254.169.254"],
                                      "split.example.com": ["104.18.6.192", "10.0.0.7"]}))
    policy.check("https://api.example.com/v1")
    for url, words in [("http://127.0.0.1:9/v1", "127.0.0.1"), ("http://169.254.169.254/latest/meta-data", "169.254"),
                       ("http://metadata.internal/v1", "169.254.169.254"), ("http://[::1]:8080/v1", "::1"),
                       ("http://2130706433/v1", "not on the public internet"),  # 127.0.0.1 as one number
                       ("http://split.example.com/v1", "10.0.0.7"),  # every address counts, not just the first
                       ("file:///etc/passwd", "Only http"), ("gopher://api.example.com/", "Only http"),
                       ("http:///v1", "names no host"), ("http://nowhere.invalid/v1", "Could not find")]:
        with pytest.raises(PromptLabError) as refused:
            UrlPolicy(resolve=policy.resolve if "2130706433" not in url else lambda h, p: ["127.0.0.1"]).check(url)
        assert refused.value.kind == "url_refused" and words in refused.value.message, url


def test_the_admins_allow_list_takes_url_prefixes_hosts_and_networks():
    resolve = table({"ollama.lan": ["192.168.1.20"], "vllm.lan": ["10.0.0.5"], "gpu.lan": ["10.20.3.4"]})
    policy = UrlPolicy.from_settings("http://ollama.lan:11434/v1, vllm.lan:8000 ,10.20.0.0/16,", ())
    policy = UrlPolicy(policy.allowed, resolve)
    policy.check("http://ollama.lan:11434/v1")
    policy.check("http://OLLAMA.lan:11434/v1/models")
    policy.check("http://vllm.lan:8000/anything")
    policy.check("http://gpu.lan:1234/v1")
    for url in ["http://ollama.lan:11434/v1x", "http://ollama.lan:11435/v1", "https://ollama.lan:11434/v1",
                "http://vllm.lan:8001/v1", "http://127.0.0.1:11434/v1"]:
        with pytest.raises(PromptLabError):
            policy.check(url)


def test_the_configured_endpoints_are_allowed_and_only_an_admin_chooses_freely():
    settings = load_settings(environ={"OPENAI_BASE_URL": "http://127.0.0.1:8000/v1", "PROMPTLAB_USERS": "x:y",
                                      "PROMPTLAB_ALLOWED_BASE_URLS": "http://127.0.0.1:11434"})
    assert url_policy_for(settings, ROOT) is None
    policy = url_policy_for(settings, BOB)
    assert policy is not None and policy.allowed == ("http://127.0.0.1:11434", "http://127.0.0.1:8000/v1")
    policy.check("http://127.0.0.1:8000/v1/models")
    with pytest.raises(PromptLabError):
        policy.check("http://127.0.0.1:8001/v1")


def test_same_endpoint_ignores_case_default_port_and_trailing_slash_only():
    assert same_endpoint("https://API.openai.com:443/v1/", None)
    assert same_endpoint("http://h:80/v1", "http://h/v1/")
    assert not same_endpoint("http://h/v1", "https://h/v1") and not same_endpoint("http://h/v1", "http://h/v2")
    assert not same_endpoint("http://h.evil/v1", "http://h/v1")


# ----- every request is checked ---------------------------------------------------------------------------------

def test_a_refused_address_gets_one_sentence_and_no_request_at_once(log, bobs_server):
    """Row 6: the server made a request to its own loopback and to the metadata address for a plain user."""
    for url in [bobs_server.base_url, "http://169.254.169.254/v1"]:
        provider = guarded(url, UrlPolicy())
        with pytest.raises(PromptLabError) as refused:
            list_models(provider, CTX, log)
        assert refused.value.kind == "url_refused" and "only an admin can allow it" in refused.value.message
        stream = ChatStream(provider, ChatRequest("gpt-4o-mini", [{"role": "user", "content": "hi"}]), CTX, log)
        assert "".join(stream) == "" and stream.outcome.error.kind == "url_refused"
    assert bobs_server.requests == []
    assert {r.error_type for r in log.recent(10)} == {"url_refused"}  # logged like any failed call


def test_a_name_that_re_resolves_to_loopback_after_the_check_reaches_nothing(log, bobs_server):
    """DNS rebinding: the name was public when the URL was chosen and points at 127.0.0.1 when the call is made."""
    port = bobs_server.httpd.server_address[1]
    answers = iter([["104.18.6.192"], ["127.0.0.1"]])
    policy = UrlPolicy(resolve=lambda host, p: next(answers))
    url = f"http://rebind.example:{port}/v1"
    policy.check(url)  # when chosen
    with pytest.raises(PromptLabError) as refused:
        list_models(guarded(url, policy), CTX, log)
    assert "127.0.0.1" in refused.value.message and bobs_server.requests == []


def test_the_connection_goes_to_the_checked_address_with_the_name_kept(log, bobs_server):
    """Pinned: an allow-listed name is connected to at the address that was checked; the Host header keeps it."""
    port = bobs_server.httpd.server_address[1]
    policy = UrlPolicy(("models.lan",), table({"models.lan": ["::1", "127.0.0.1"]}))  # ::1 has no listener here
    assert "echo-1" in list_models(guarded(f"http://models.lan:{port}/v1", policy), CTX, log)
    assert bobs_server.requests[0]["headers"]["Host"] == f"models.lan:{port}"


def test_a_redirect_to_a_refused_address_is_not_followed(log, server, bobs_server):
    server.push(Script(path="/v1/models", redirect_to=f"{bobs_server.base_url}/models"))
    policy = UrlPolicy((server.base_url,))  # the admins allowed this one, not bob's
    with pytest.raises(PromptLabError) as refused:
        list_models(guarded(server.base_url, policy, TEST_KEY), CTX, log)
    assert refused.value.kind == "url_refused"
    assert len(server.requests) == 1 and bobs_server.requests == []


# ----- answers that are not OpenAI's JSON -----------------------------------------------------------------------

@pytest.mark.parametrize("body,content_type", [
    (b"# HELP promptlab_calls_total Calls\n# TYPE promptlab_calls_total counter\npromptlab_calls_total 3\n",
     "text/plain; version=0.0.4"),
    (b"<!doctype html><html><body>Welcome to nginx!</body></html>", "text/html"),
    (b'{"data": 5}', "application/json"), (b'{"data": [5]}', "application/json"),
    (b'{"data": [{"name": "no id"}]}', "application/json"), (b"[1, 2]", "application/json")])
def test_a_model_list_that_is_not_openai_json_is_one_sentence(log, server, body, content_type):
    """Row 6: Test connection against the metrics port crashed the handler ("Something unexpected … AttributeError")."""
    server.push(Script(path="/v1/models", raw_body=body, content_type=content_type))
    with pytest.raises(PromptLabError) as failed:
        list_models(Provider("compatible", server.base_url, TEST_KEY, timeout_s=5, max_retries=0), CTX, log)
    assert failed.value.kind == "malformed" and "not valid OpenAI JSON" in failed.value.message


@pytest.mark.parametrize("event", [b'{"choices": 5}', b"[1, 2]", b'"text"', b'{"choices": [{"delta": 5}]}',
                                   b'{"choices": [{"index": 0, "delta": {"content": 5}}]}',
                                   b'{"choices": [{"index": 0, "delta": {"content": "hi"}, "finish_reason": "stop"}],'
                                   b' "usage": 5}'])
def test_a_stream_of_odd_chunks_is_one_sentence_never_an_exception(log, server, event):
    server.push(Script(raw_body=b"data: " + event + b"\n\ndata: [DONE]\n\n", content_type="text/event-stream"))
    provider = Provider("compatible", server.base_url, TEST_KEY, timeout_s=5, max_retries=0)
    stream = ChatStream(provider, ChatRequest("gpt-4o-mini", [{"role": "user", "content": "hi"}]), CTX, log)
    assert all(isinstance(piece, str) for piece in stream)
    assert stream.outcome.status == "error" and stream.outcome.error.kind == "malformed"


# ----- what a choice in Settings may carry ----------------------------------------------------------------------

@pytest.fixture
def configured():
    return load_settings(environ={"OPENAI_API_KEY": TEST_KEY, "OPENAI_BASE_URL": "https://api.example.com/v1",
                                  "AZURE_OPENAI_API_KEY": "azure-server-key-0000", "PROMPTLAB_PROVIDER": "compatible",
                                  "AZURE_OPENAI_ENDPOINT": "https://corp.openai.azure.com"})


def choose(form: ProviderForm, configured, actor: Identity) -> Provider:
    policy = UrlPolicy(resolve=table({"bob.example.net": ["93.184.215.14"], "api.example.com": ["104.18.6.192"]}))
    return resolve_provider(configured.with_overrides(**override_for(form, configured, actor, policy)))


def test_a_plain_user_pointing_elsewhere_never_carries_the_servers_key(configured):
    """Row 1: "leave empty to keep the current key" sent the server's key to bob's URL."""
    mine = choose(ProviderForm("compatible", "http://bob.example.net/v1"), configured, BOB)
    assert mine.base_url == "http://bob.example.net/v1" and not mine.api_key  # called with no key
    for form in [ProviderForm("openai", "http://bob.example.net/v1"),
                 ProviderForm("azure", "https://bob.example.net", api_version="2024-10-21")]:
        with pytest.raises(PromptLabError) as refused:
            choose(form, configured, BOB)
        assert refused.value.kind == "key_required" and "Type a key for this endpoint" in refused.value.message
    typed = choose(ProviderForm("openai", "http://bob.example.net/v1", " sk-bobs-own-key-1234 "), configured, BOB)
    assert typed.api_key == "sk-bobs-own-key-1234"


def test_the_servers_key_stays_with_its_configured_endpoint_and_admins_may_switch_with_it(configured):
    same = choose(ProviderForm("openai", "https://API.example.com/v1/"), configured, BOB)
    assert same.api_key == TEST_KEY and same.kind == "openai"  # the configured endpoint: its key is fine there
    assert choose(ProviderForm("compatible"), configured, BOB).api_key == TEST_KEY  # empty URL: the configured one
    assert choose(ProviderForm("azure"), configured, BOB).api_key == "azure-server-key-0000"
    root = choose(ProviderForm("compatible", "http://127.0.0.1:9/v1"), configured, ROOT)
    assert root.api_key == TEST_KEY and root.base_url == "http://127.0.0.1:9/v1"  # admin-only, any URL
    assert choose(ProviderForm("local", "http://bob.example.net/v1"), configured, BOB).kind == "local"


def test_a_plain_users_choice_of_an_internal_url_is_refused_when_made(configured):
    for url in ["http://127.0.0.1:9100/metrics", "http://169.254.169.254/latest", "ftp://bob.example.net/"]:
        with pytest.raises(PromptLabError) as refused:
            choose(ProviderForm("compatible", url, "sk-bobs-own-key-1234"), configured, BOB)
        assert refused.value.kind == "url_refused"


# ----- eval configs ---------------------------------------------------------------------------------------------

def test_an_eval_configs_api_base_url_passes_the_same_policy(log, server, bobs_server):
    from core.evals.config import ProviderSpec
    from core.evals.run import ProviderResolver

    configured = Provider("compatible", server.base_url, TEST_KEY, timeout_s=5, max_retries=0)
    resolver = ProviderResolver(load_settings(environ={}), configured, url_policy=UrlPolicy((server.base_url,)))
    spec = ProviderSpec(id="openai:chat:gpt-4o-mini", model="gpt-4o-mini", config={"apiBaseUrl": bobs_server.base_url})
    foreign = resolver(spec)
    assert foreign.api_key is None  # never the configured key
    stream = ChatStream(foreign, ChatRequest("gpt-4o-mini", [{"role": "user", "content": "hi"}]), CTX, log)
    assert "".join(stream) == "" and stream.outcome.error.kind == "url_refused"
    assert bobs_server.requests == []
    assert resolver(ProviderSpec(id="x", model="gpt-4o-mini", config={"apiBaseUrl": server.base_url + "/"})) \
        is configured  # the configured endpoint, written with a slash: its own provider and key
