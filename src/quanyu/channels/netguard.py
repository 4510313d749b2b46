"""Outbound HTTP guard: webhooks and HTTP-based providers never reach the platform's own network.

A channel URL is typed by a workspace user, so without a guard a webhook could read the cloud
metadata service (169.254.169.254), the database on 10.x or an admin port on localhost (SSRF).
`check_url` resolves the host and refuses any address that is not plainly public, unless an
operator explicitly allows its CIDR (on-prem targets, tests). `guarded_post` checks at send time,
then connects to exactly the address it checked (the URL is rewritten to the IP while the Host
header, TLS SNI and certificate check keep the name), so a DNS answer that changes between check and
connect (DNS rebinding) cannot redirect the request; every redirect hop is checked the same way.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import httpx
import orjson

from quanyu.channels.base import ChannelConfigError

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

_SCHEMES = ("http", "https")
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")
# Methods a redirect turns into GET (what browsers and httpx do); 307/308 keep method and body.
_REDIRECTS = (301, 302, 303, 307, 308)
# At most this many of the checked addresses are tried when the first ones refuse the connection.
_MAX_ADDRESSES = 3


class PrivateAddressError(ChannelConfigError):
    """The URL points at an address or scheme outbound requests may not reach."""


class UnresolvableHostError(ChannelConfigError):
    """The host name does not resolve (now): a send treats it as a connection failure."""


def parse_allow(allow: Iterable[str]) -> list[IPNetwork]:
    """The allow list as networks; a bad entry is a `ChannelConfigError` naming it."""
    networks: list[IPNetwork] = []
    for entry in allow:
        try:
            networks.append(ipaddress.ip_network(str(entry).strip(), strict=False))
        except ValueError as exc:
            raise ChannelConfigError(
                f"允许列表中的网段无效：{entry!r} / invalid CIDR in the allow list: {entry!r} ({exc})"
            ) from None
    return networks


def _embedded_v4(ip: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    # IPv6 forms that carry an IPv4 address the packet really goes to.
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip.sixtofour is not None:
        return ip.sixtofour
    if ip.teredo is not None:
        return ip.teredo[1]
    if ip in _NAT64:
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return None


def is_blocked(ip: IPAddress) -> bool:
    """True for anything but a plainly public unicast address."""
    if isinstance(ip, ipaddress.IPv6Address):
        inner = _embedded_v4(ip)
        if inner is not None and (ip.ipv4_mapped is not None or ip in _NAT64):
            # Only the IPv4 address matters; NAT64 of a public address is how IPv6-only hosts reach it.
            return is_blocked(inner)
        if inner is not None and is_blocked(inner):  # 6to4 / Teredo towards a private address
            return True
        if ip.is_site_local:
            return True
    # `is_global` alone misses multicast (global scope) and, on older Pythons, some ranges:
    # the explicit flags keep the rule readable and version-proof. 100.64/10 (CGNAT) is not global.
    return (
        not ip.is_global
        or ip.is_private
        or ip.is_loopback
        or ip.is_link_local
        or ip.is_multicast
        or ip.is_reserved
        or ip.is_unspecified
    )


def _allowed(ip: IPAddress, networks: Sequence[IPNetwork]) -> bool:
    candidates: list[IPAddress] = [ip]
    if isinstance(ip, ipaddress.IPv6Address):
        inner = _embedded_v4(ip)
        if inner is not None:
            candidates.append(inner)
    return any(c in net for c in candidates for net in networks if c.version == net.version)


def resolve(host: str, port: int) -> list[IPAddress]:
    """Every address the host resolves to, in the resolver's order (tests replace this function)."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP)
    except (socket.gaierror, UnicodeError) as exc:
        raise UnresolvableHostError(f"无法解析主机名 {host} / cannot resolve host {host}: {exc}") from None
    seen: list[IPAddress] = []
    for family, _type, _proto, _name, sockaddr in infos:
        if family not in (socket.AF_INET, socket.AF_INET6):
            continue
        ip = ipaddress.ip_address(str(sockaddr[0]).split("%", 1)[0])
        if ip not in seen:
            seen.append(ip)
    if not seen:
        raise UnresolvableHostError(f"主机名 {host} 没有地址 / host {host} has no address")
    return seen


def _parse(url: str | httpx.URL) -> httpx.URL:
    try:
        parsed = httpx.URL(url)
    except (httpx.InvalidURL, TypeError, ValueError) as exc:
        raise ChannelConfigError(f"URL 无效 / invalid URL {str(url)!r}: {exc}") from None
    if parsed.scheme not in _SCHEMES:
        raise PrivateAddressError(
            f"只允许 http/https 地址，已拒绝 {parsed.scheme or '(无)'}: / only http(s) URLs are allowed, "
            f"refusing scheme {parsed.scheme or '(none)'!r}"
        )
    if not parsed.raw_host:
        raise ChannelConfigError(f"URL 缺少主机名 / URL has no host: {str(url)!r}")
    return parsed


def check_url(url: str | httpx.URL, allow: Sequence[str] = ()) -> list[IPAddress]:
    """The addresses `url` may be sent to, or `PrivateAddressError` if any of them is not public.

    Every resolved address must pass (the connection could use any of them). `allow` is a list of
    CIDRs ("127.0.0.1/32", "10.20.0.0/16") explicitly permitted. A name that does not resolve raises
    `UnresolvableHostError`; a malformed URL a plain `ChannelConfigError`.
    """
    parsed = _parse(url)
    networks = parse_allow(allow)
    host = parsed.raw_host.decode("ascii")
    port = parsed.port or (443 if parsed.scheme == "https" else 80)
    try:
        literal: IPAddress | None = ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        literal = None
    addresses = [literal] if literal is not None else resolve(host, port)
    for ip in addresses:
        if is_blocked(ip) and not _allowed(ip, networks):
            where = f"{host}（{ip}）" if literal is None else str(ip)
            where_en = f"{host} ({ip})" if literal is None else str(ip)
            raise PrivateAddressError(
                f"目标 {where} 是内网、回环、链路本地或保留地址，已拒绝；如确需访问，请把该网段加入允许列表"
                f" / refusing {where_en}: a private, loopback, link-local or reserved address "
                f"(add its CIDR to the allow list to permit it)"
            )
    return addresses


def _send_pinned(
    client: httpx.Client,
    method: str,
    url: httpx.URL,
    ip: IPAddress,
    headers: Mapping[str, str],
    content: bytes | None,
    timeout: float,
) -> httpx.Response:
    # The request goes to the checked IP; Host and the TLS server name stay the original host, so
    # virtual hosting and certificate verification work as if the name had been dialled. (The pool
    # keys connections by IP: a later hop to another name on the same IP may reuse a TLS connection
    # verified for the first name. The guard's decision is per address, so that is no way around it.)
    name = url.raw_host.decode("ascii")
    authority = f"[{name}]" if ":" in name else name
    if url.port is not None:  # httpx drops the scheme's default port
        authority += f":{url.port}"
    request = client.build_request(
        method,
        url.copy_with(host=str(ip)),
        headers={**headers, "Host": authority},
        content=content,
        timeout=timeout,
        extensions={"sni_hostname": name} if url.scheme == "https" else {},
    )
    return client.send(request, follow_redirects=False)


def guarded_post(
    url: str,
    *,
    json: Any = None,
    body: bytes | None = None,
    headers: Mapping[str, str] | None = None,
    allow: Sequence[str] = (),
    timeout: float = 10.0,
    max_redirects: int = 3,
    client: httpx.Client | None = None,
) -> httpx.Response:
    """POST to `url` after `check_url`, connecting only to checked addresses; redirects are followed
    by hand (each hop checked again) up to `max_redirects`.

    Pass `body` (raw bytes, sent as is) or `json` (serialised here). `client` lets a batch reuse one
    connection pool; it should be made with `trust_env=False` so no proxy resolves names behind the
    guard (the default client here is). Raises `PrivateAddressError` / `UnresolvableHostError` /
    `ChannelConfigError` before any byte is sent to a refused hop, `httpx.TooManyRedirects` past the
    limit, and httpx's transport errors (`ConnectError` means nothing was written on that hop).
    """
    if body is None and json is not None:
        body = orjson.dumps(json)
    send_headers = dict(headers or {})
    if body is not None and json is not None and not any(k.lower() == "content-type" for k in send_headers):
        send_headers["Content-Type"] = "application/json"
    own = client is None
    active = client or httpx.Client(trust_env=False, follow_redirects=False)
    try:
        method, current, content = "POST", _parse(url), body
        for hop in range(max_redirects + 1):
            addresses = check_url(current, allow)
            response = _try_addresses(active, method, current, addresses, send_headers, content, timeout)
            location = response.headers.get("location")
            if response.status_code not in _REDIRECTS or not location:
                return response
            if hop == max_redirects:
                response.close()
                raise httpx.TooManyRedirects(
                    f"重定向次数超过 {max_redirects} / more than {max_redirects} redirects",
                    request=response.request,
                )
            response.close()
            target = _parse(current.join(location))
            if response.status_code == 303 or (response.status_code in (301, 302) and method == "POST"):
                method, content = "GET", None
                send_headers = {k: v for k, v in send_headers.items() if k.lower() != "content-type"}
            if (target.scheme, target.raw_host, target.port) != (
                current.scheme,
                current.raw_host,
                current.port,
            ):
                # Credentials meant for one origin are not handed to another.
                private = ("authorization", "proxy-authorization", "cookie")
                send_headers = {k: v for k, v in send_headers.items() if k.lower() not in private}
            current = target
        raise AssertionError("unreachable")  # pragma: no cover - the loop returns or raises
    finally:
        if own:
            active.close()


def _try_addresses(
    client: httpx.Client,
    method: str,
    url: httpx.URL,
    addresses: Sequence[IPAddress],
    headers: Mapping[str, str],
    content: bytes | None,
    timeout: float,
) -> httpx.Response:
    # Like a dialler's fallback: a refused connection wrote nothing, so the next address is safe.
    last: httpx.TransportError | None = None
    for ip in addresses[:_MAX_ADDRESSES]:
        try:
            return _send_pinned(client, method, url, ip, headers, content, timeout)
        except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
            last = exc
    assert last is not None
    raise last
