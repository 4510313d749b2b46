"""quanyu.js in a real browser (Debian's chromium through Playwright).

The pages come from a second local origin, so every request to Quanyu is cross-origin: CORS,
the snippet's stub queue, cookies across page loads, UTM and click ids, identify, batching
with fetch and the sendBeacon flush when a link takes the visitor away.
"""

from __future__ import annotations

import functools
import re
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest

from quanyu.platform import Platform
from quanyu.settings import Settings
from testkit import IN_CI, Tenant, free_port

CHROMIUM = Path("/usr/bin/chromium")
UUID4 = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")
YEAR = 365 * 24 * 3600

pytestmark = [pytest.mark.browser, pytest.mark.slow]

# The snippet exactly as docs/connectors-web-tracker.md gives it to paste, with the write key
# and load options of each test page filled in.
DOC = Path(__file__).resolve().parents[2] / "docs" / "connectors-web-tracker.md"
DOC_LOAD = 'a.load("WRITE_KEY",{host:"https://cdp.example.com"});'


def snippet(key: str, options: str) -> str:
    found = re.search(r"```html\n(<script>.*?</script>)\n```", DOC.read_text(encoding="utf-8"), re.S)
    assert found and DOC_LOAD in found.group(1), "the snippet in the docs changed: update this test"
    return found.group(1).replace(DOC_LOAD, f'a.load("{key}",{options});')


# Segment's classic snippet (4.x) with its CDN host pointed at Quanyu: the write key is only in
# the script URL.
SEGMENT_SNIPPET = """<script>
!function(){var analytics=window.analytics=window.analytics||[];if(!analytics.initialize)if(analytics.invoked)
window.console&&console.error&&console.error("Segment snippet included twice.");else{analytics.invoked=!0;
analytics.methods=["trackSubmit","trackClick","trackLink","trackForm","pageview","identify","reset","group",
"track","ready","alias","debug","page","once","off","on"];analytics.factory=function(t){return function(){
var e=Array.prototype.slice.call(arguments);e.unshift(t);analytics.push(e);return analytics}};
for(var t=0;t<analytics.methods.length;t++){var e=analytics.methods[t];analytics[e]=analytics.factory(e)}
analytics.load=function(t,e){var n=document.createElement("script");n.type="text/javascript";n.async=!0;
n.src="%(host)s/analytics.js/v1/"+t+"/analytics.min.js";var a=document.getElementsByTagName("script")[0];
a.parentNode.insertBefore(n,a);analytics._loadOptions=e};analytics.SNIPPET_VERSION="4.1.0";
analytics.load("%(key)s");analytics.page();analytics.track("Segment Snippet Loaded")}}();
</script>"""

# Counts sendBeacon calls in sessionStorage, so the next page can tell the beacon was used.
BEACON_SPY = """<script>
(function(){var real=navigator.sendBeacon.bind(navigator);navigator.sendBeacon=function(u,d){
sessionStorage.setItem("beacons",String(Number(sessionStorage.getItem("beacons")||0)+1));return real(u,d)}})();
</script>"""

LANDING = """<!doctype html><html><head><meta charset="utf-8"><link rel="icon" href="data:,"><title>春茶上新 Landing</title>
%(spy)s%(snippet)s
<script>analytics.track("Product Viewed", {sku: "TEA-01", price: 268});</script>
</head><body><a id="next" href="/signup.html">注册 Sign up</a></body></html>"""

SIGNUP = """<!doctype html><html><head><meta charset="utf-8"><link rel="icon" href="data:,"><title>注册 Sign up</title>
%(snippet)s</head><body><p>注册</p></body></html>"""

# The script tag itself, then load(): the host is where the script came from.
DIRECT_PAGE = """<!doctype html><html><head><meta charset="utf-8"><link rel="icon" href="data:,"><title>直接引用</title>
<script src="%(api)s/js/quanyu.js"></script>
<script>analytics.load("%(key)s", {flushInterval: 600000});
analytics.page("Docs", "Install", {section: "web"});
analytics.identify({plan: "free"});</script></head><body></body></html>"""

SEGMENT_PAGE = """<!doctype html><html><head><meta charset="utf-8"><link rel="icon" href="data:,"><title>Segment</title>
%(snippet)s</head><body></body></html>"""


@pytest.fixture
def chromium() -> Path:
    if not CHROMIUM.exists():
        message = (
            "/usr/bin/chromium is not installed (`make test` installs it as root: apt-get install chromium)"
        )
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)
    return CHROMIUM


@pytest.fixture
def api(settings: Settings, platform: Platform) -> Iterator[str]:
    """Quanyu in this process (uvicorn in a thread), so the test drains the pipeline itself."""
    import uvicorn

    from quanyu.api import create_app

    port = free_port()
    config = uvicorn.Config(create_app(settings, platform), host="127.0.0.1", port=port,
                            log_level="warning", access_log=False)  # fmt: skip
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="test-tracker-api", daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=30)


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:  # silence the access log
        pass


@dataclass
class Site:
    url: str
    root: Path

    def add(self, name: str, html: str) -> str:
        (self.root / name).write_text(html, encoding="utf-8")
        return f"{self.url}/{name}"


@pytest.fixture
def site(tmp_path: Path) -> Iterator[Site]:
    """A second origin serving the test pages (another port: every call to Quanyu is cross-origin)."""
    root = tmp_path / "site"
    root.mkdir()
    server = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_QuietHandler, directory=str(root)))
    thread = threading.Thread(target=server.serve_forever, name="test-tracker-site", daemon=True)
    thread.start()
    try:
        yield Site(f"http://127.0.0.1:{server.server_address[1]}", root)
    finally:
        server.shutdown()
        server.server_close()


def wait_for_events(
    platform: Platform, api: str, tenant: Tenant, expected: int, timeout: float = 30
) -> list[dict[str, Any]]:
    """Drain the pipeline until `expected` events are stored (beacons arrive on their own time)."""
    deadline = time.monotonic() + timeout
    items: list[dict[str, Any]] = []
    while time.monotonic() < deadline:
        platform.pipeline.drain()
        resp = httpx.get(f"{api}/api/v1/events", params={"limit": 100}, headers=tenant.bearer, timeout=10)
        items = resp.json()["items"]
        if len(items) >= expected:
            return items
        time.sleep(0.25)
    raise AssertionError(f"expected {expected} events, got {[(i['type'], i['event']) for i in items]}")


def launch(playwright: Any, chromium: Path, *args: str) -> Any:
    return playwright.chromium.launch(
        executable_path=str(chromium),
        headless=True,
        args=["--headless", "--no-sandbox", "--disable-gpu", *args],
    )


def test_visit_is_tracked_cross_origin_with_cookies_utm_click_ids_and_beacon(
    chromium: Path, api: str, site: Site, tenant: Tenant, platform: Platform
) -> None:
    from playwright.sync_api import sync_playwright

    # The landing page holds its events (a long interval) so only the beacon can deliver them.
    landing = site.add("landing.html", LANDING % {
        "spy": BEACON_SPY,
        "snippet": snippet(tenant.write_key, f'{{host:"{api}",flushInterval:600000}}'),
    })  # fmt: skip
    site.add("signup.html", SIGNUP % {
        "snippet": snippet(tenant.write_key, f'{{host:"{api}",flushInterval:200}}'),
    })  # fmt: skip
    query = "?utm_source=baidu&utm_medium=cpc&utm_campaign=spring_tea&utm_term=longjing&utm_content=banner_a&bd_vid=BD-123"

    errors: list[str] = []
    with sync_playwright() as p:
        browser = launch(p, chromium)
        try:
            context = browser.new_context(locale="zh-CN")
            page = context.new_page()
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda e: errors.append(str(e)))

            page.goto(landing + query)
            page.wait_for_function("window.analytics && window.analytics.initialized === true")
            first_anonymous_id = page.evaluate("analytics.user().anonymousId()")
            assert UUID4.match(first_anonymous_id)

            # Leaving through a link: pagehide sends the queued page + track with sendBeacon.
            page.click("#next")
            page.wait_for_url("**/signup.html")
            page.wait_for_function("window.analytics && window.analytics.initialized === true")
            assert page.evaluate("sessionStorage.getItem('beacons')") == "1"
            assert page.evaluate("analytics.user().anonymousId()") == first_anonymous_id

            # identify + track, sent by fetch once the 200 ms interval is up (the snippet's page()
            # may have gone in an earlier batch: wait for the one carrying "Signed Up").
            def carries_sign_up(r: Any) -> bool:
                return r.url.endswith("/v1/batch") and "Signed Up" in (r.request.post_data or "")

            with page.expect_response(carries_sign_up) as sent:
                page.evaluate("""() => {
                    analytics.identify("u-42", {email: "li@example.com", name: "李雷"});
                    analytics.track("Signed Up", {plan: "tea-club"});
                }""")
            assert sent.value.status == 200
            assert page.evaluate("analytics.user().id()") == "u-42"

            # A request that needs a preflight (JSON + Basic auth) reads its answer cross-origin.
            answer = page.evaluate(
                """([host, key, anon]) => fetch(host + "/v1/batch", {method: "POST",
                    headers: {"Content-Type": "application/json", "Authorization": "Basic " + btoa(key + ":")},
                    body: JSON.stringify({batch: [{type: "track", event: "CORS Checked", anonymousId: anon}]})
                }).then((r) => r.json())""",
                [api, tenant.write_key, first_anonymous_id],
            )
            assert answer == {"success": True, "accepted": 1, "quarantined": []}

            cookies = {c["name"]: c for c in context.cookies()}
            anon = cookies["ajs_anonymous_id"]
            assert anon["value"] == first_anonymous_id
            assert anon["sameSite"] == "Lax" and anon["path"] == "/" and not anon["httpOnly"]
            assert anon["domain"] == "127.0.0.1"  # first-party: the page's host, not Quanyu's
            assert abs(anon["expires"] - (time.time() + YEAR)) < 3600
            assert cookies["ajs_user_id"]["value"] == "u-42"
            assert abs(cookies["ajs_user_id"]["expires"] - (time.time() + YEAR)) < 3600
        finally:
            browser.close()

    assert not errors, errors
    items = wait_for_events(platform, api, tenant, expected=6)
    assert len(items) == 6, [(i["type"], i["event"]) for i in items]

    def one(kind: str, event: str | None = None, path: str | None = None) -> dict[str, Any]:
        [found] = [i for i in items if i["type"] == kind and i["event"] == event
                   and (path is None or i["context"]["page"]["path"] == path)]  # fmt: skip
        return found

    assert {i["anonymous_id"] for i in items} == {first_anonymous_id}
    assert all(UUID4.match(i["message_id"]) for i in items if i["event"] != "CORS Checked")

    landing_page = one("page", path="/landing.html")
    viewed = one("track", "Product Viewed")
    for item in (landing_page, viewed):
        ctx = item["context"]
        assert ctx["campaign"] == {"source": "baidu", "medium": "cpc", "name": "spring_tea",
                                   "term": "longjing", "content": "banner_a"}  # fmt: skip
        assert item["properties"]["bd_vid"] == "BD-123"
        assert item["utm_source"] == "baidu" and item["utm_campaign"] == "spring_tea"
        assert ctx["library"]["name"] == "quanyu.js" and ctx["library"]["version"]
        assert ctx["locale"] == "zh-CN" and "Chrome" in ctx["userAgent"]
        assert ctx["page"]["path"] == "/landing.html" and ctx["page"]["title"] == "春茶上新 Landing"
        assert ctx["page"]["search"] == query and ctx["page"]["url"] == landing + query
        assert item["user_id"] is None
    assert viewed["properties"]["sku"] == "TEA-01"
    assert landing_page["properties"]["path"] == "/landing.html"

    signup_page = one("page", path="/signup.html")
    assert signup_page["context"]["page"]["referrer"] == landing + query
    assert "campaign" not in signup_page["context"] and "bd_vid" not in signup_page["properties"]

    identify = one("identify")
    assert identify["user_id"] == "u-42" and identify["traits"]["email"] == "li@example.com"
    assert one("track", "Signed Up")["user_id"] == "u-42"
    assert one("track", "Signed Up")["properties"] == {"plan": "tea-club"}


def test_segment_snippet_pointed_at_quanyu_works(
    chromium: Path, api: str, site: Site, tenant: Tenant, platform: Platform
) -> None:
    from playwright.sync_api import sync_playwright

    url = site.add(
        "segment.html", SEGMENT_PAGE % {"snippet": SEGMENT_SNIPPET % {"host": api, "key": tenant.write_key}}
    )
    with sync_playwright() as p:
        browser = launch(p, chromium)
        try:
            page = browser.new_page()
            page.goto(url)
            page.wait_for_function("window.analytics && window.analytics.initialized === true")
            # The snippet's calls were replayed; flush() resolves once the server has answered.
            page.evaluate("analytics.track('Flushed By Hand').flush()")
        finally:
            browser.close()
    items = wait_for_events(platform, api, tenant, expected=3)
    assert sorted((i["type"], i["event"]) for i in items) == [
        ("page", None), ("track", "Flushed By Hand"), ("track", "Segment Snippet Loaded")
    ]  # fmt: skip
    assert all(i["context"]["library"]["name"] == "quanyu.js" for i in items)


def test_sub_sites_share_the_cookie_outside_secure_contexts_and_reset_forgets(
    chromium: Path, api: str, site: Site, tenant: Tenant, platform: Platform
) -> None:
    """www. and shop. of one domain (mapped to 127.0.0.1) over plain http: not a secure context,
    so no crypto.randomUUID; the cookie goes on the shared parent domain."""
    from playwright.sync_api import sync_playwright

    site.add("direct.html", DIRECT_PAGE % {"api": api, "key": tenant.write_key})
    port = site.url.rsplit(":", 1)[1]
    with sync_playwright() as p:
        browser = launch(p, chromium, "--host-resolver-rules=MAP *.quanyu.test 127.0.0.1")
        try:
            context = browser.new_context()
            page = context.new_page()
            page.goto(f"http://www.quanyu.test:{port}/direct.html")
            assert page.evaluate("[window.isSecureContext, typeof crypto.randomUUID]") == [False, "undefined"]
            first = page.evaluate("analytics.user().anonymousId()")
            assert UUID4.match(first)
            page.evaluate("analytics.flush()")
            [cookie] = [c for c in context.cookies() if c["name"] == "ajs_anonymous_id"]
            assert cookie["domain"] == ".quanyu.test" and cookie["value"] == first

            page.goto(f"http://shop.quanyu.test:{port}/direct.html")
            assert page.evaluate("analytics.user().anonymousId()") == first
            page.evaluate("analytics.flush()")

            after = page.evaluate("""() => {
                analytics.identify("u-7");
                analytics.reset();
                analytics.track("After Reset");
                return analytics.flush().then(() => [analytics.user().id(), analytics.user().anonymousId()]);
            }""")
            assert after[0] is None and UUID4.match(after[1]) and after[1] != first
            assert "ajs_user_id" not in {c["name"] for c in context.cookies()}
        finally:
            browser.close()

    items = wait_for_events(platform, api, tenant, expected=6)
    assert all(UUID4.match(i["message_id"]) for i in items)
    pages = [i for i in items if i["type"] == "page"]
    assert len(pages) == 2 and {i["anonymous_id"] for i in pages} == {first}
    for item in pages:
        assert item["name"] == "Install"
        assert item["properties"]["category"] == "Docs" and item["properties"]["section"] == "web"
    assert {i["context"]["page"]["url"].split(":")[1] for i in pages} == {
        "//www.quanyu.test",
        "//shop.quanyu.test",
    }
    anonymous_identifies = [i for i in items if i["type"] == "identify" and i["user_id"] is None]
    assert len(anonymous_identifies) == 2 and all(
        i["traits"] == {"plan": "free"} for i in anonymous_identifies
    )
    [known] = [i for i in items if i["type"] == "identify" and i["user_id"] == "u-7"]
    assert known["anonymous_id"] == first
    [reset] = [i for i in items if i["event"] == "After Reset"]
    assert reset["user_id"] is None and reset["anonymous_id"] == after[1]
