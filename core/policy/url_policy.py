"""Which addresses a URL chosen by a user may reach (the Settings provider switch, an eval config's `apiBaseUrl`).

For anyone but an admin: http(s) only, and only addresses on the public internet — never loopback, link-local (the
cloud metadata service at 169.254.169.254), private, unspecified or other reserved ranges — unless the admins list
the URL, host or network in PROMPTLAB_ALLOWED_BASE_URLS (the endpoints configured in the environment are allowed
too: an admin chose them). The check is made when the URL is chosen, for a sentence at once, and again by the HTTP
transport on every request, redirects included, against the addresses the name resolves to at that moment; the
connection then goes to the address that was checked, so a name that re-resolves to 127.0.0.1 after the first check
(DNS rebinding) reaches nothing.
"""
from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import httpx2

from core.base.errors import PromptLabError, RefusedRequest
from core.base.i18n import _

# host, port -> the IP addresses a connection could go to.
Resolver = Callable[[str, int], list[str]]
DEFAULT_PORTS = {"http": 80, "https": 443}
OPENAI_ENDPOINT = "https://api.openai.com/v1"
# Translation prefixes that carry an IPv4 address inside an IPv6 one (NAT64 well-known prefix).
_NAT64 = ipaddress.ip_network("64:ff9b::/96")


class SystemResolver:
    """Every address the system's resolver gives for a host (an IP literal gives itself). An object, not a function,
    so a Provider holding a policy stays hashable for Streamlit's caches."""

    def __call__(self, host: str, port: int) -> list[str]:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        return list(dict.fromkeys(str(info[4][0]) for info in infos))

    def __eq__(self, other: object) -> bool:
        return isinstance(other, SystemResolver)

    def __hash__(self) -> int:
        return hash(SystemResolver)

    def __reduce__(self) -> tuple[type, tuple[()]]:  # what Streamlit's cache hashes (and pickle rebuilds it from)
        return SystemResolver, ()


def is_public(address: str) -> bool:
    """True for an address on the public internet; False for loopback, link-local, private (RFC 1918, fc00::/7),
    shared (100.64/10), unspecified, multicast, reserved and documentation ranges, and for IPv6 forms that wrap
    such an IPv4 address (mapped, 6to4, NAT64)."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])  # fe80::1%eth0: the zone does not change the range
    if isinstance(ip, ipaddress.IPv6Address):
        embedded = ip.ipv4_mapped or ip.sixtofour or (
            ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF) if ip in _NAT64 else None)
        if embedded is not None:
            return is_public(str(embedded))
    return ip.is_global and not ip.is_multicast


@dataclass(frozen=True)
class _Origin:
    """Where a URL goes: scheme, host (lower case, no trailing dot), port (the scheme's default filled in), path."""

    scheme: str
    host: str
    port: int
    path: str

    @classmethod
    def parse(cls, url: str) -> _Origin:
        """Parsed with the HTTP client's own parser, so the check and the connection read the same host; raises
        PromptLabError for what is not an http(s) URL with a host."""
        try:
            parsed = httpx2.URL(url)
        except (httpx2.InvalidURL, TypeError, ValueError):
            raise PromptLabError("url_refused", _("“{url}” is not a valid URL.").format(url=url)) from None
        if parsed.scheme not in DEFAULT_PORTS:
            raise PromptLabError("url_refused", _("Only http:// and https:// URLs can be used (not “{url}”).").format(
                url=url))
        if not parsed.host:
            raise PromptLabError("url_refused", _("“{url}” names no host.").format(url=url))
        return cls(parsed.scheme, parsed.host.lower().rstrip("."), parsed.port or DEFAULT_PORTS[parsed.scheme],
                   parsed.path.rstrip("/"))

    def under(self, prefix: _Origin) -> bool:
        """Same scheme, host and port, and the path at or below the prefix's (`/v1` covers `/v1/models`, not
        `/v1x`)."""
        return ((self.scheme, self.host, self.port) == (prefix.scheme, prefix.host, prefix.port)
                and (self.path == prefix.path or self.path.startswith(prefix.path + "/")))


def same_endpoint(a: str | None, b: str | None) -> bool:
    """Whether two base URLs are the same endpoint (scheme, host, port and path; case of the host, a default port
    and a trailing slash do not count). None is OpenAI's own endpoint."""
    try:
        return _Origin.parse(a or OPENAI_ENDPOINT) == _Origin.parse(b or OPENAI_ENDPOINT)
    except PromptLabError:
        return (a or OPENAI_ENDPOINT) == (b or OPENAI_ENDPOINT)


@dataclass(frozen=True)
class UrlPolicy:
    """The rule for the URLs one non-admin session chooses: public addresses, plus what the admins allow."""

    allowed: tuple[str, ...] = ()  # URL prefixes, host[:port] names and networks (PROMPTLAB_ALLOWED_BASE_URLS)
    resolve: Resolver = field(default_factory=SystemResolver, compare=False)

    @classmethod
    def from_settings(cls, allowed_base_urls: str | None, configured: Iterable[str | None] = ()) -> UrlPolicy:
        """The admins' list (comma-separated) plus the endpoints configured in the environment."""
        entries = [e.strip() for e in (allowed_base_urls or "").split(",") if e.strip()]
        return cls(tuple(dict.fromkeys([*entries, *(c for c in configured if c)])))

    def check(self, url: str) -> None:
        """Raise PromptLabError (one sentence) unless a request to `url` may be sent."""
        self.addresses_for(url)

    def addresses_for(self, url: str) -> list[str]:
        """The checked addresses a request to `url` may connect to; PromptLabError when it may not be sent."""
        origin = _Origin.parse(url)
        try:
            addresses = self.resolve(origin.host, origin.port)
        except (OSError, UnicodeError):
            addresses = []
        if not addresses:
            raise PromptLabError("url_refused", _("Could not find the host {host}: check the URL.").format(
                host=origin.host))
        if self._listed(origin, addresses):
            return addresses
        for address in addresses:  # every one: a name with one public and one private address is refused
            if not is_public(address):
                raise PromptLabError("url_refused", _(
                    "{host} is not on the public internet ({address}: a loopback, private or link-local address): "
                    "only an admin can allow it, in PROMPTLAB_ALLOWED_BASE_URLS.").format(
                    host=origin.host, address=address))
        return addresses

    def _listed(self, origin: _Origin, addresses: list[str]) -> bool:
        for entry in self.allowed:
            if "://" in entry:
                try:
                    if origin.under(_Origin.parse(entry)):
                        return True
                except PromptLabError:
                    continue  # a malformed entry allows nothing
                continue
            try:  # a network: every address the name resolves to must be inside it
                network = ipaddress.ip_network(entry, strict=False)
                if all(ipaddress.ip_address(a.split("%", 1)[0]) in network for a in addresses):
                    return True
                continue
            except ValueError:
                pass
            try:  # host or host:port
                listed = _Origin.parse(f"{origin.scheme}://{entry}")
            except PromptLabError:
                continue
            if listed.host == origin.host and (":" not in entry.rsplit("]", 1)[-1] or listed.port == origin.port):
                return True
        return False

    def http_client(self) -> httpx2.Client:
        """An HTTP client for the SDK whose every request passes this policy (see `GuardedTransport`)."""
        from openai import DefaultHttpxClient
        from openai._constants import DEFAULT_CONNECTION_LIMITS

        # No proxy from the environment: the check must see the address the connection really goes to.
        return DefaultHttpxClient(transport=GuardedTransport(self, httpx2.HTTPTransport(
            limits=DEFAULT_CONNECTION_LIMITS, trust_env=False)), trust_env=False)


class GuardedTransport(httpx2.BaseTransport):
    """Sends a request only to an address the policy permits, and pins the connection to that checked address
    (the Host header and TLS keep the name: certificates are verified against it). A refusal is a `RefusedRequest`,
    which the SDK passes on without retrying and the gate shows as its sentence."""

    def __init__(self, policy: UrlPolicy, inner: httpx2.BaseTransport):
        self.policy, self._inner = policy, inner

    def handle_request(self, request: httpx2.Request) -> httpx2.Response:
        try:
            addresses = self.policy.addresses_for(str(request.url))
        except PromptLabError as err:
            raise RefusedRequest(err) from None
        host = request.url.host
        if _literal(host) is not None:
            return self._inner.handle_request(request)
        named = request.url
        for i, address in enumerate(addresses):  # as the system's connect would: the next address if one is down
            request.extensions = {**request.extensions, "sni_hostname": host}
            request.url = named.copy_with(host=address.split("%", 1)[0])
            try:
                return self._inner.handle_request(request)
            except httpx2.ConnectError:
                if i == len(addresses) - 1:
                    raise
            finally:
                request.url = named  # what the SDK and its error messages see is the name
        raise AssertionError("unreachable: addresses_for never returns an empty list")

    def close(self) -> None:
        self._inner.close()


def _literal(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        return None
