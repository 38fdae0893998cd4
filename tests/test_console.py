"""The web console in a real headless Chromium over a real `photon` server process.

Sign-in, the streams pages, the live tail while events are emitted over HTTP, the emit form,
projections (a good one's value, a bad one's error), consumers, server and backup pages; a
screenshot of each main page (docs/console/*.png); no browser console errors; axe-core finds
no serious or critical violation on any main page; the main actions work from the keyboard.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from selenium.webdriver import Chrome
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys

from tests.browser import console_errors, find, start_browser, wait_for
from tests.live import ServerProcess

SHOTS = Path(__file__).parent.parent / "docs" / "console"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    root = tmp_path_factory.mktemp("console")
    (root / "projections").mkdir()
    proc = ServerProcess(
        root,
        ["-rest.host", "127.0.0.1", "-rest.port", "0", "-events.port", "0", "-sqlite.path", str(root / "p.db")],
    )
    try:
        yield proc
    finally:
        proc.terminate()


@pytest.fixture(scope="module")
def http(server: ServerProcess) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, headers={"Authorization": f"Token {server.token()}"}, timeout=30) as client:
        yield client


@pytest.fixture(scope="module")
def browser(server: ServerProcess) -> Iterator[Chrome]:
    driver, profile = start_browser()
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


@pytest.fixture
def signed_in(browser: Chrome, server: ServerProcess) -> Iterator[Chrome]:
    """The browser on the console, signed in; afterwards, no console error may have been logged."""
    browser.get(server.url + "/#/streams")
    if browser.execute_script("return sessionStorage.getItem('photon.token')") is None:
        sign_in(browser)
    console_errors(browser)  # start clean
    yield browser
    errors = console_errors(browser)
    assert not errors, f"browser console errors: {errors}"


def sign_in(driver: Chrome, password: str = "p4010n") -> None:
    user = find(driver, "#user")
    user.clear()
    user.send_keys("admin")
    field = find(driver, "#password")
    field.clear()
    field.send_keys(password)
    field.send_keys(Keys.ENTER)


def emit(http: httpx.Client, events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    response = http.post("/api/event", json=events)
    assert response.status_code == 200, response.text
    stored: list[dict[str, Any]] = response.json()
    return stored


def go(driver: Chrome, server: ServerProcess, route: str) -> None:
    """Open a console page with a fresh load (a change of the hash alone may not re-render a page)."""
    driver.get("about:blank")
    driver.get(server.url + "/#" + route)


def text(driver: Chrome, css: str) -> str:
    return find(driver, css).text


def shot(driver: Chrome, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    time.sleep(0.2)  # let the last frame paint
    driver.save_screenshot(str(SHOTS / f"{name}.png"))


def test_sign_in_refuses_a_wrong_password_then_keeps_the_token(browser: Chrome, server: ServerProcess) -> None:
    browser.get(server.url + "/")
    browser.execute_script("sessionStorage.clear()")
    browser.get(server.url + "/#/streams")
    sign_in(browser, "wrong")
    assert "Wrong user name or password" in text(browser, ".alert.error")
    shot(browser, "sign-in")
    console_errors(browser)  # the refused /auth/token answer (401) is logged by the browser itself
    sign_in(browser)
    find(browser, "nav a[aria-current=page][data-section=streams]")
    browser.refresh()  # the token is kept for the session
    find(browser, "nav a[aria-current=page][data-section=streams]")
    assert not browser.find_elements(By.CSS_SELECTOR, "#password")
    assert not console_errors(browser)


def test_streams_list_filters_pages_and_groups_by_category(
    signed_in: Chrome, server: ServerProcess, http: httpx.Client
) -> None:
    driver = signed_in
    emit(http, [{"stream-name": f"account-{i:03d}", "event-type": "opened", "payload": {"i": i}} for i in range(130)])
    emit(http, [{"stream-name": "orders-1", "event-type": "placed", "payload": {"sku": "X1"}}])
    go(driver, server, "/streams")
    wait_for(lambda: len(driver.find_elements(By.CSS_SELECTOR, "#streams-table tbody tr")) == 100, what="a first page")
    find(driver, "#next-page").click()
    wait_for(lambda: "account-100" in text(driver, "#streams-table"), what="the second page")
    search = find(driver, "input[type=search]")
    search.send_keys("orders")
    wait_for(lambda: len(driver.find_elements(By.CSS_SELECTOR, "#streams-table tbody tr")) == 1, what="the filter")
    assert "orders-1" in text(driver, "#streams-table")
    shot(driver, "streams")
    go(driver, server, "/streams?view=categories")
    wait_for(lambda: "account" in text(driver, "#categories-table") and "orders" in text(driver, "#categories-table"))
    driver.find_element(By.LINK_TEXT, "account-…").click()
    wait_for(lambda: len(driver.find_elements(By.CSS_SELECTOR, "#streams-table tbody tr")) == 100, what="category")


def test_a_stream_pages_newest_or_oldest_first_jumps_and_filters(
    signed_in: Chrome, server: ServerProcess, http: httpx.Client
) -> None:
    driver = signed_in
    stored = emit(
        http,
        [
            {"stream-name": "ledger", "event-type": "credit" if i % 2 else "debit", "payload": {"n": i}}
            for i in range(1, 121)
        ],
    )
    go(driver, server, "/stream/ledger")
    rows = wait_for(lambda: driver.find_elements(By.CSS_SELECTOR, "table.events tbody tr"), what="events")
    assert len(rows) == 50
    first = [r.find_elements(By.TAG_NAME, "td")[1].text for r in rows[:3]]
    assert first == ["120", "119", "118"], first  # newest first by default
    assert "120 events" in driver.find_element(By.CSS_SELECTOR, ".page-head .sub").text
    shot(driver, "stream")
    find(driver, "#next-page").click()
    wait_for(lambda: driver.find_elements(By.CSS_SELECTOR, "table.events tbody tr td")[1].text == "70", what="older")
    driver.find_element(By.XPATH, "//button[text()='Oldest first']").click()
    wait_for(lambda: driver.find_elements(By.CSS_SELECTOR, "table.events tbody tr td")[1].text == "1", what="oldest")
    version = driver.find_element(By.XPATH, "//label[text()='Jump to version']/following-sibling::input")
    version.send_keys("42")
    types = driver.find_element(By.XPATH, "//label[text()='Event types']/following-sibling::input")
    types.send_keys("credit")
    types.send_keys(Keys.ENTER)

    def versions() -> list[str]:
        return [r.find_elements(By.TAG_NAME, "td")[1].text for r in driver.find_elements(By.CSS_SELECTOR, "tbody tr")]

    wait_for(lambda: versions()[:3] == ["43", "45", "47"], what="jump to version 42 with type credit")
    # By order-id: the 10th event of the stream.
    go(driver, server, f"/stream/ledger?dir=forward&from={stored[9]['order-id']}")
    wait_for(lambda: versions()[:1] == ["10"], what="jump to an order-id")


def test_an_event_shows_its_json_metadata_and_causation(
    signed_in: Chrome, server: ServerProcess, http: httpx.Client
) -> None:
    driver = signed_in
    [cause] = emit(http, [{"stream-name": "carts", "event-type": "checked-out", "payload": {"cart": 7}}])
    [effect] = emit(
        http,
        [
            {
                "stream-name": "shipments",
                "event-type": "shipment-requested",
                "payload": {"cart": 7, "items": [{"sku": "X1", "qty": 2}]},
                "caused-by": cause["id"],
                "caused-by-relation": "checkout",
                "service-id": "shipping",
            }
        ],
    )
    go(driver, server, f"/event/shipments/{effect['order-id']}")
    assert text(driver, "h1") == "shipment-requested"
    assert '"qty": 2' in text(driver, "pre.json")
    assert "shipping" in text(driver, "dl.meta")
    shot(driver, "event")
    find(driver, "#caused-by").click()
    wait_for(lambda: driver.find_element(By.TAG_NAME, "h1").text == "checked-out", what="the causing event")
    assert f"order-id {cause['order-id']}" in text(driver, ".page-head .sub")
