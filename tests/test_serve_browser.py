"""The service's pages in a real browser (headless Chromium via Selenium): sunbursts, recommendations, posting an
event, and the API documentation (Swagger UI, ReDoc) rendered with no request leaving the service."""

from __future__ import annotations

import shutil
import threading
import time
from pathlib import Path

import pytest

pytest.importorskip("fastapi")
pytest.importorskip("faiss")
webdriver = pytest.importorskip("selenium.webdriver")

from serve_helpers import ROOT, free_port, make_service  # noqa: E402

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"
KEY = "browser-test-key-0123456789abcdef0123"
DOCS = ROOT / "docs" / "examples"
SCREENSHOT = DOCS / "serve_page.png"  # a user with several interests

pytestmark = pytest.mark.skipif(not (Path(CHROMIUM).exists() and Path(CHROMEDRIVER).exists()),
                                reason="chromium and chromedriver are not installed (apt-get install chromium chromium-driver)")


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """The app under uvicorn in a thread, on a free loopback port."""
    import uvicorn

    from arborec.serve import create_app, hash_api_key

    service, data = make_service(f"sqlite:///{tmp_path_factory.mktemp('browser') / 's.db'}", hash_api_key(KEY))
    port = free_port()
    demo = service.settings.model_copy(update={"public_reads": True})  # the page looks users up without a key
    srv = uvicorn.Server(uvicorn.Config(create_app(service, demo), host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    while not srv.started:
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}", service, data
    srv.should_exit = True
    thread.join(timeout=5)


@pytest.fixture(scope="module")
def browser():
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    options = Options()
    options.binary_location = CHROMIUM
    options.set_capability("goog:loggingPrefs", {"performance": "ALL"})  # network events, to see what is fetched
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=1400,900"):
        options.add_argument(arg)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    yield driver
    driver.quit()


def test_page_shows_interests_and_recommendations_and_posts_events(server, browser):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    url, service, data = server
    tree = service.catalog.tree
    # a user with several top-level interests makes a readable sunburst
    user = max(service.base_histories, key=lambda u: len(set(tree.codes[service.base_histories[u], 1])))
    browser.get(f"{url}/?user={user}")
    wait = WebDriverWait(browser, 20)
    wait.until(lambda d: len(d.find_elements(By.CSS_SELECTOR, "#rec-list li")) == 10)
    for term in ("long", "short"):  # plotly drew a sunburst: one slice path per node
        wait.until(lambda d, t=term: len(d.find_elements(By.CSS_SELECTOR, f"#sunburst-{t} g.slice")) >= 3)
    first = browser.find_element(By.CSS_SELECTOR, "#rec-list li")
    reason = first.find_element(By.CLASS_NAME, "reason").text
    assert reason.startswith(("a recent interest:", "one of your lasting interests:", "related to")), reason
    assert "liked" not in first.text and "cosine" not in first.text
    wait.until(lambda d: len(d.find_elements(By.CSS_SELECTOR, "#recent-list li")) == 10)  # recent events beside
    wait.until(lambda d: len(d.find_elements(By.CSS_SELECTOR, "#segment-table tr.mine")) == 1)  # own segment marked
    note_before = browser.find_element(By.ID, "profile-note").text
    n_before = int(note_before.split()[0])

    # click a recommendation (fills the form), post it as a purchase, watch the profile update
    first.click()
    item = browser.find_element(By.ID, "event-item").get_attribute("value")
    assert item == first.get_attribute("data-item")
    browser.find_element(By.ID, "api-key").send_keys(KEY)
    browser.find_element(By.ID, "event-button").click()
    wait.until(ec.text_to_be_present_in_element((By.ID, "profile-note"), f"{n_before + 1} events"))
    items_now = [li.get_attribute("data-item") for li in browser.find_elements(By.CSS_SELECTOR, "#rec-list li")]
    assert item not in items_now  # the posted item is now history, filtered out
    assert service.user(user).n_events == n_before + 1
    for term in ("long", "short"):  # the sunbursts were redrawn, not lost
        wait.until(lambda d, t=term: len(d.find_elements(By.CSS_SELECTOR, f"#sunburst-{t} g.slice")) >= 3)
    time.sleep(1.0)  # let plotly finish its transition before the screenshot

    SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
    _full_page_screenshot(browser, SCREENSHOT)
    assert SCREENSHOT.stat().st_size > 20_000


def _full_page_screenshot(browser, path: Path, width: int = 1400) -> None:
    """The whole page (not only the window) at ``width`` CSS pixels."""
    height = browser.execute_script("return document.documentElement.scrollHeight")
    browser.set_window_size(width, min(max(height + 20, 600), 4000))
    browser.execute_script("window.scrollTo(0, 0)")
    time.sleep(0.8)  # plotly redraws on resize
    browser.save_screenshot(str(path))
    browser.set_window_size(1400, 900)


def _slice_colours(browser, term: str) -> set[str]:
    from selenium.webdriver.common.by import By

    return {p.get_attribute("style").split("fill:")[1].split(";")[0].strip()
            for p in browser.find_elements(By.CSS_SELECTOR, f"#sunburst-{term} g.slice path.surface")}


def test_one_interest_user_gets_several_colours_and_readable_labels(server, browser):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    url, service, data = server
    tree = service.catalog.tree
    single = [u for u, h in service.base_histories.items() if len(set(tree.codes[h, 0])) == 1
              and len(set(tree.codes[h, 1])) >= 2]
    assert single, "the synthetic data has users with one top-level interest"
    browser.get(f"{url}/?user={single[0]}")
    wait = WebDriverWait(browser, 20)
    wait.until(lambda d: len(d.find_elements(By.CSS_SELECTOR, "#sunburst-long g.slice")) >= 3)
    time.sleep(0.8)
    assert len(_slice_colours(browser, "long")) >= 3  # grey centre + one hue per level-2 interest
    sizes = [float(t.value_of_css_property("font-size").rstrip("px"))
             for t in browser.find_elements(By.CSS_SELECTOR, "#sunburst-long g.slice text")
             if t.text.strip()]
    assert sizes and min(sizes) >= 11  # no 6-7 px labels: a wedge too thin shows none (the table names it)
    assert len(browser.find_elements(By.CSS_SELECTOR, "#top-interests tr")) >= 3
    _full_page_screenshot(browser, DOCS / "serve_one_interest.png")


def test_cold_start_and_item_search_and_narrow_window(server, browser):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    url, service, data = server
    browser.get(f"{url}/?user=a-new-visitor")
    wait = WebDriverWait(browser, 20)
    wait.until(ec.text_to_be_present_in_element((By.ID, "strategy"), "new visitor"))
    reasons = [r.text for r in browser.find_elements(By.CSS_SELECTOR, "#rec-list .reason")]
    assert reasons and all(r.startswith("popular in ") for r in reasons)
    assert "popular-in-segments" not in browser.find_element(By.TAG_NAME, "body").text
    title = service.catalog.titles[5]
    browser.find_element(By.ID, "search").send_keys(title.split()[0])
    browser.find_element(By.ID, "search-button").click()
    wait.until(lambda d: len(d.find_elements(By.CSS_SELECTOR, "#search-list li[data-item]")) >= 1)
    hit = browser.find_element(By.CSS_SELECTOR, "#search-list li[data-item]")
    hit.click()
    assert browser.find_element(By.ID, "event-item").get_attribute("value") == hit.get_attribute("data-item")
    _full_page_screenshot(browser, DOCS / "serve_cold_start.png")

    tree = service.catalog.tree
    user = max(service.base_histories, key=lambda u: len(set(tree.codes[service.base_histories[u], 1])))
    browser.set_window_size(420, 900)
    try:
        browser.get(f"{url}/?user={user}")
        wait.until(lambda d: len(d.find_elements(By.CSS_SELECTOR, "#rec-list li")) == 10)
        time.sleep(0.8)
        width = browser.execute_script("return document.documentElement.scrollWidth")
        inner = browser.execute_script("return window.innerWidth")
        assert width <= inner  # nothing wider than the window: no sideways scrolling
        charts = [browser.find_element(By.ID, f"sunburst-{t}").rect for t in ("long", "short")]
        assert charts[1]["y"] >= charts[0]["y"] + charts[0]["height"] - 1  # stacked, not side by side
        height = browser.execute_script("return document.documentElement.scrollHeight")
        browser.set_window_size(420, min(height + 20, 4000))
        browser.execute_script("window.scrollTo(0, 0)")
        time.sleep(0.8)
        browser.save_screenshot(str(DOCS / "serve_narrow_420px.png"))
    finally:
        browser.set_window_size(1400, 900)


def test_page_reports_refused_writes(server, browser):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    url, service, data = server
    browser.get(f"{url}/?user=someone-new")
    wait = WebDriverWait(browser, 20)
    wait.until(ec.text_to_be_present_in_element((By.ID, "strategy"), "new visitor"))
    browser.find_element(By.ID, "event-item").send_keys(service.catalog.item_ids[0])
    browser.find_element(By.ID, "event-button").click()  # no API key typed
    wait.until(ec.text_to_be_present_in_element((By.ID, "status"), "401"))
    assert service.user("someone-new") is None


def test_api_docs_render_from_local_assets(server, browser):
    import httpx
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    url, service, _ = server
    paths = httpx.get(f"{url}/openapi.json").json()["paths"]
    operations = {(method.upper(), path) for path, ops in paths.items() for method in ops}
    browser.get_log("performance")  # drop the network events of earlier tests
    browser.get(f"{url}/docs")
    wait = WebDriverWait(browser, 30)
    wait.until(lambda d: len(d.find_elements(By.CSS_SELECTOR, ".opblock")) >= len(operations))
    shown = {(b.find_element(By.CSS_SELECTOR, ".opblock-summary-method").text,
              b.find_element(By.CSS_SELECTOR, ".opblock-summary-path").get_attribute("data-path"))
             for b in browser.find_elements(By.CSS_SELECTOR, ".opblock")}
    assert shown == operations  # Swagger UI rendered every operation of the schema
    _assert_nothing_left_the_service(browser, url, expect=("swagger-ui-bundle.js", "swagger-ui.css"))

    browser.get(f"{url}/redoc")
    wait.until(lambda d: "ingest one event or a batch" in d.find_element(By.TAG_NAME, "body").text)
    _assert_nothing_left_the_service(browser, url, expect=("redoc.standalone.js",))


def _assert_nothing_left_the_service(browser, url: str, expect: tuple[str, ...]) -> None:
    """Every request the page made since the last check went to the service, or was blocked by the browser
    before leaving (ReDoc's own logo, refused by the page's Content-Security-Policy)."""
    import json

    sent, blocked = {}, set()
    for entry in browser.get_log("performance"):
        message = json.loads(entry["message"])["message"]
        if message["method"] == "Network.requestWillBeSent":
            sent[message["params"]["requestId"]] = message["params"]["request"]["url"]
        elif message["method"] == "Network.loadingFailed" and message["params"].get("blockedReason"):
            blocked.add(message["params"]["requestId"])
    outside = [u for rid, u in sent.items() if not u.startswith((url, "data:", "blob:")) and rid not in blocked]
    assert not outside, outside
    assert all(any(u.endswith(name) for u in sent.values()) for name in expect), sorted(sent.values())
