"""The web console in a real headless Chromium over a real `photon` server process.

Sign-in, the streams pages, the live tail while events are emitted over HTTP, the emit form,
projections (a good one's value, a bad one's error), consumers, server and backup pages; a
screenshot of each main page (into a temporary folder, or docs/console/*.png when
PHOTON_CONSOLE_SCREENSHOTS=1); no browser console errors; axe-core finds no serious or critical
violation on any main page; the main actions work from the keyboard.

The tests wait on conditions, never on fixed pauses, with the generous bounded timeout of
tests/browser.py; an element of a page that re-renders itself (a live value, a list refreshed
every 2 s) is found again at each try rather than kept.
"""

from __future__ import annotations

import os
import shutil
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from selenium.webdriver import ActionChains, Chrome
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support.select import Select

from photon.core.events import CATEGORY_STREAM_PREFIX
from tests.browser import (
    axe_source,
    axe_violations,
    click,
    console_errors,
    find,
    settled,
    start_browser,
    wait_for,
)
from tests.live import ServerProcess
from tests.servers import free_port

# The committed screenshots of the documentation; written only when PHOTON_CONSOLE_SCREENSHOTS=1,
# so that a test run leaves the work tree as it was.
DOCS_SHOTS = Path(__file__).parent.parent / "docs" / "console"
SHOTS_VARIABLE = "PHOTON_CONSOLE_SCREENSHOTS"

Shot = Callable[[Chrome, str], None]


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


def drain_refusals(driver: Chrome) -> None:
    """Clear the browser's log of the API's 4xx answers a test provoked on purpose; anything else fails.

    Chromium logs every answer of 400 and above as a network error, even one the page handles."""
    unexpected = [
        e for e in console_errors(driver) if e.get("source") != "network" or "status of 4" not in e.get("message", "")
    ]
    assert not unexpected, f"browser console errors: {unexpected}"


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
    """The text of an element (read again if a live page replaced the element meanwhile)."""
    return wait_for(lambda: driver.find_element(By.CSS_SELECTOR, css).text or " ", what=css)


@pytest.fixture(scope="module")
def shot(tmp_path_factory: pytest.TempPathFactory) -> Shot:
    """Save a screenshot of the page as it is drawn: into docs/console/ when PHOTON_CONSOLE_SCREENSHOTS=1
    (to refresh the documentation's pictures), otherwise into this run's temporary folder."""
    folder = DOCS_SHOTS if os.environ.get(SHOTS_VARIABLE, "") not in ("", "0") else tmp_path_factory.mktemp("shots")

    def save(driver: Chrome, name: str) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        settled(driver)
        assert driver.save_screenshot(str(folder / f"{name}.png")), name

    return save


def test_sign_in_refuses_a_wrong_password_then_keeps_the_token(
    browser: Chrome, server: ServerProcess, shot: Shot
) -> None:
    browser.get(server.url + "/")
    browser.execute_script("sessionStorage.clear()")
    browser.get(server.url + "/#/streams")
    sign_in(browser, "wrong")
    assert "Wrong user name or password" in text(browser, ".alert.error")
    shot(browser, "sign-in")
    drain_refusals(browser)
    sign_in(browser)
    find(browser, "nav a[aria-current=page][data-section=streams]")
    browser.refresh()  # the token is kept for the session
    find(browser, "nav a[aria-current=page][data-section=streams]")
    assert not browser.find_elements(By.CSS_SELECTOR, "#password")
    assert not console_errors(browser)


def test_a_session_that_ended_brings_the_sign_in_form_back_saying_so(browser: Chrome, server: ServerProcess) -> None:
    browser.get(server.url + "/")
    browser.execute_script("sessionStorage.setItem('photon.token', 'a-token-the-server-no-longer-takes')")
    browser.get(server.url + "/#/server")
    assert "Your session has ended" in text(browser, "#signed-out-because")
    drain_refusals(browser)
    sign_in(browser)
    find(browser, "nav a[aria-current=page][data-section=server]")  # back where it was
    find(browser, "#sign-out").click()
    find(browser, "#password")
    assert not browser.find_elements(By.CSS_SELECTOR, "#signed-out-because")  # signed out on purpose: nothing to say
    sign_in(browser)
    find(browser, "nav a[aria-current=page]")


def test_streams_list_filters_pages_and_groups_by_category(
    signed_in: Chrome, server: ServerProcess, http: httpx.Client, shot: Shot
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
    click(driver, By.LINK_TEXT, "account-…")
    wait_for(lambda: len(driver.find_elements(By.CSS_SELECTOR, "#streams-table tbody tr")) == 100, what="category")


def test_a_category_reads_as_one_page_of_its_streams_events_without_the_single_stream_actions(
    signed_in: Chrome, server: ServerProcess, http: httpx.Client
) -> None:
    driver = signed_in
    emit(http, [{"stream-name": f"cart-{i}", "event-type": "added", "payload": {"i": i}} for i in range(3)])
    emit(http, [{"stream-name": "carton-1", "event-type": "packed", "payload": {}}])  # not in category cart
    go(driver, server, "/streams?view=categories")
    wait_for(lambda: "cart" in text(driver, "#categories-table"), what="the categories")
    find(driver, "a[aria-label='Events of category cart']").click()
    wait_for(lambda: "category “cart”" in text(driver, ".page-head .sub"), what="the category page")

    def streams() -> list[str]:
        return [r.find_elements(By.TAG_NAME, "td")[1].text for r in driver.find_elements(By.CSS_SELECTOR, "tbody tr")]

    wait_for(lambda: streams() == ["cart-2", "cart-1", "cart-0"], what="the category's events, newest first")
    head = text(driver, ".page-head")
    assert "Live tail" in head, head
    for absent in ("Emit here", "Download", "Delete stream"):
        assert absent not in head, f"{absent!r} offered on a category page: {head}"
    assert not driver.find_elements(By.XPATH, "//label[text()='Jump to version']")
    script = (Path(__file__).parents[1] / "photon" / "server" / "console" / "js" / "streams.js").read_text()
    assert f'CATEGORY_PREFIX = "{CATEGORY_STREAM_PREFIX}"' in script
    assert not console_errors(driver)


def test_a_stream_pages_newest_or_oldest_first_jumps_and_filters(
    signed_in: Chrome, server: ServerProcess, http: httpx.Client, shot: Shot
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


def test_a_stream_whose_metadata_hides_events_shows_its_version_and_metadata_not_a_wrong_count(
    signed_in: Chrome, server: ServerProcess, http: httpx.Client
) -> None:
    driver = signed_in
    emit(http, [{"stream-name": "gauge-1", "event-type": "read", "payload": {"n": n}} for n in range(3)])
    metadata = {"max-count": 2, "owner": "<b>ada</b>"}
    assert http.put("/api/stream-metadata/gauge-1", json=metadata).status_code == 200
    go(driver, server, "/stream/gauge-1")
    rows = wait_for(lambda: driver.find_elements(By.CSS_SELECTOR, "table.events tbody tr"), what="events")
    assert len(rows) == 2  # max-count 2: the first event is left out of reads
    head = text(driver, ".page-head .sub")
    assert "3 events" not in head and "version 3" in head, head
    shown = text(driver, "#stream-metadata")
    assert '"max-count":2' in shown and '"owner":"<b>ada</b>"' in shown, shown  # as text, not as markup


def test_a_streams_download_or_delete_that_fails_says_why_under_the_head(
    signed_in: Chrome, server: ServerProcess, http: httpx.Client
) -> None:
    driver = signed_in
    emit(http, [{"stream-name": "fuse-1", "event-type": "blown", "payload": {}}])
    go(driver, server, "/stream/fuse-1")
    wait_for(lambda: driver.find_elements(By.CSS_SELECTOR, "table.events tbody tr"), what="the event")
    assert http.delete("/api/stream/fuse-1").status_code == 200  # meanwhile, elsewhere
    click(driver, By.XPATH, "//button[text()='Download']")
    wait_for(lambda: "does not exist" in text(driver, "#stream-message [role=alert]"), what="the download's error")
    click(driver, By.XPATH, "//button[text()='Delete stream']")
    click(driver, By.XPATH, "//button[text()='Click again to delete']")
    wait_for(lambda: "does not exist" in text(driver, "#stream-message [role=alert]"), what="the delete's error")
    assert driver.find_element(By.XPATH, "//button[text()='Delete stream']")  # asks twice again
    drain_refusals(driver)


def test_an_event_shows_its_json_metadata_and_causation(
    signed_in: Chrome, server: ServerProcess, http: httpx.Client, shot: Shot
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


def tail_ids(driver: Chrome) -> list[str]:
    """The order-ids in the tail's rows, top first (rows out of sight are not rendered: read their text)."""
    ids: list[str] = driver.execute_script(
        "return [...document.querySelectorAll('#tail-rows [role=row]')].map(r => r.firstElementChild.textContent)"
    )
    return ids


def test_live_tail_shows_events_emitted_over_http_meanwhile(
    signed_in: Chrome, server: ServerProcess, http: httpx.Client, shot: Shot
) -> None:
    driver = signed_in
    emit(http, [{"stream-name": "sensor-1", "event-type": "reading", "payload": {"v": -1}}])
    go(driver, server, "/tail/__all__")
    wait_for(lambda: text(driver, "#tail-state") == "live", what="the tail to go live")
    before = len(driver.find_elements(By.CSS_SELECTOR, "#tail-rows [role=row]"))
    assert before >= 1  # the newest page is shown first
    stored: list[dict[str, Any]] = []

    def writer() -> None:
        for i in range(20):
            stored.extend(emit(http, [{"stream-name": "sensor-1", "event-type": "reading", "payload": {"v": i}}]))
            time.sleep(0.02)

    thread = threading.Thread(target=writer)
    thread.start()
    thread.join()
    newest = str(stored[-1]["order-id"])
    wait_for(lambda: tail_ids(driver)[:1] == [newest], what="the last event")
    shown = tail_ids(driver)
    assert shown[:20] == [str(e["order-id"]) for e in reversed(stored)]  # each one, newest first, none twice
    wait_for(lambda: text(driver, "#tail-count") == "20", what="the count")
    shot(driver, "tail")
    # A stream's tail, and one of a stream not written yet (it starts empty, without an error).
    go(driver, server, "/tail/not-yet")
    wait_for(lambda: text(driver, "#tail-state") == "live", what="an empty stream's tail")
    go(driver, server, "/tail/sensor-1")
    wait_for(lambda: text(driver, "#tail-state") == "live", what="the stream's tail")
    # Another stream's event first: stored before the stream's own, it would reach the page before it.
    emit(http, [{"stream-name": "elsewhere", "event-type": "x", "payload": {}}])
    [last] = emit(http, [{"stream-name": "sensor-1", "event-type": "reading", "payload": {"v": 99}}])
    wait_for(lambda: tail_ids(driver)[:1] == [str(last["order-id"])], what="the stream's event")
    assert "elsewhere" not in text(driver, "#tail-table")


def test_the_tail_of_a_category_or_a_wildcard_starts_at_its_newest_page_and_names_each_events_stream(
    signed_in: Chrome, server: ServerProcess, http: httpx.Client
) -> None:
    driver = signed_in
    stored = emit(http, [{"stream-name": f"dial-{i}", "event-type": "turned", "payload": {"i": i}} for i in range(80)])
    emit(http, [{"stream-name": "dialog-1", "event-type": "opened", "payload": {}}])  # not in category dial

    def tail(route: str, newest_page: list[str]) -> str:
        """Check the tail at `route` shows `newest_page`, then a new event; answer that event's order-id."""
        go(driver, server, route)
        wait_for(lambda: text(driver, "#tail-state") == "live", what=f"{route} to go live")
        # The newest page, as a stream's tail shows it: not the whole history replayed into the page.
        wait_for(lambda: tail_ids(driver) == newest_page, what=f"the newest 50 events of {route}")
        assert text(driver, "#tail-table [role=columnheader]:nth-child(2)").lower() == "stream"
        [last] = emit(http, [{"stream-name": "dial-7", "event-type": "turned", "payload": {"i": 7}}])
        wait_for(lambda: tail_ids(driver)[:1] == [str(last["order-id"])], what=f"the new event in {route}")
        first_row = driver.find_element(By.CSS_SELECTOR, "#tail-rows [role=row]")
        assert first_row.find_elements(By.CSS_SELECTOR, "[role=cell]")[1].text == "dial-7"
        wait_for(lambda: text(driver, "#tail-count") == "1", what="the count of new events only")
        return str(last["order-id"])

    newest_page = [str(e["order-id"]) for e in reversed(stored[-50:])]
    added = tail(f"/tail/{CATEGORY_STREAM_PREFIX}dial", newest_page)
    tail("/tail/dial-**", [added, *newest_page[:49]])


def test_the_tails_rate_counts_the_live_events_not_the_newest_page_shown_first(
    signed_in: Chrome, server: ServerProcess, http: httpx.Client
) -> None:
    driver = signed_in
    emit(http, [{"stream-name": "meter-1", "event-type": "read", "payload": {"i": i}} for i in range(50)])
    go(driver, server, "/tail/meter-1")
    wait_for(lambda: text(driver, "#tail-state") == "live" and len(tail_ids(driver)) == 50, what="the newest page")
    emit(http, [{"stream-name": "meter-1", "event-type": "read", "payload": {"i": i}} for i in (50, 51)])
    # The counters change together, once a second: 2 events over the 2 s window are 1 event/s
    # (0 once they leave it), not the 50 events of the page shown first.
    wait_for(lambda: text(driver, "#tail-count") == "2", what="the count of the live events")
    assert text(driver, "#tail-rate") in ("0", "1")


def drain_lost_connections(driver: Chrome) -> None:
    """Clear the browser's log of the connections a stopped server refused or cut, and of the 503s
    of a server still starting; anything else fails.

    Chromium logs each of them as an error, even when the page handles it."""
    driver.get("about:blank")
    lost = ("net::ERR_CONNECTION_REFUSED", "net::ERR_INCOMPLETE_CHUNKED_ENCODING", "status of 503")
    unexpected = [e for e in console_errors(driver) if not any(m in e.get("message", "") for m in lost)]
    assert not unexpected, f"browser console errors: {unexpected}"


def restartable(folder: Path) -> list[str]:
    """The arguments of a server that can be stopped and started again where it was: the same port,
    store and token secret (the console's token stays valid over the restart)."""
    args = ["-rest.host", "127.0.0.1", "-rest.port", str(free_port()), "-events.port", "0"]
    return [*args, "-sqlite.path", str(folder / "p.db"), "-admin.secret", "a-secret-kept-over-the-restart-0123456789"]


def test_a_server_gone_away_is_said_in_plain_words_and_the_tail_comes_back_with_it(
    browser: Chrome, tmp_path: Path
) -> None:
    """The browser's own message for a request that got no answer ("Failed to fetch") says nothing
    of what happened: the console says the server did not answer, on every page."""
    driver = browser
    args = restartable(tmp_path)
    gone = ServerProcess(tmp_path, args)
    try:
        with httpx.Client(base_url=gone.url, headers={"Authorization": f"Token {gone.token()}"}) as client:
            emit(client, [{"stream-name": "lamp-1", "event-type": "on", "payload": {}}])
        go(driver, gone, "/tail/__all__")
        sign_in(driver)
        wait_for(lambda: text(driver, "#tail-state") == "live", what="the tail to go live")
        gone.terminate()
        wait_for(lambda: text(driver, "#tail-state") == "disconnected", what="the tail to say it is disconnected")
        wait_for(lambda: "The server did not answer" in text(driver, "main [role=alert]"), what="the tail's message")
        for route, where in (("/streams", "main [role=alert]"), ("/server", "#health")):
            driver.execute_script("location.hash = arguments[0]", "#" + route)  # the page itself stays loaded
            settled(driver)
            message = text(driver, "main [role=alert]")
            assert "The server did not answer" in message and "Failed to fetch" not in message, message
            if route == "/server":
                assert text(driver, where) == "not answering"
        driver.execute_script("location.hash = '#/tail/__all__'")
        wait_for(lambda: text(driver, "#tail-state") == "disconnected", what="the tail, without its server")
        gone = ServerProcess(tmp_path, args)
        wait_for(lambda: text(driver, "#tail-state") == "live", what="the tail to come back with the server")
        assert not driver.find_elements(By.CSS_SELECTOR, "main [role=alert]")
    finally:
        gone.terminate()
        drain_lost_connections(driver)


def test_the_tail_paused_keeps_the_events_that_came_and_shows_them_at_resume(
    signed_in: Chrome, server: ServerProcess, http: httpx.Client
) -> None:
    driver = signed_in
    [first] = emit(http, [{"stream-name": "valve-1", "event-type": "opened", "payload": {}}])
    go(driver, server, "/tail/valve-1")
    wait_for(
        lambda: text(driver, "#tail-state") == "live" and tail_ids(driver) == [str(first["order-id"])], what="live"
    )
    click(driver, By.XPATH, "//button[text()='Pause']")
    find(driver, "button[aria-pressed=true]")
    stored = emit(http, [{"stream-name": "valve-1", "event-type": "turned", "payload": {"i": i}} for i in range(3)])
    wait_for(lambda: text(driver, "#tail-count") == "3", what="the events counted while paused")
    assert tail_ids(driver) == [str(first["order-id"])]  # the view stays as it was
    click(driver, By.XPATH, "//button[text()='Resume']")
    expected = [str(e["order-id"]) for e in reversed([first, *stored])]
    wait_for(lambda: tail_ids(driver) == expected, what="the events that came while paused, at resume")


def test_emit_form_stores_an_event_and_shows_the_servers_messages(
    signed_in: Chrome, server: ServerProcess, http: httpx.Client, shot: Shot
) -> None:
    driver = signed_in
    go(driver, server, "/emit?stream=wallet-1")
    find(driver, "#emit-submit")
    driver.find_element(By.XPATH, "//label[text()='Event type']/following-sibling::input").send_keys("funded")
    payload = find(driver, "#payload")
    payload.clear()
    payload.send_keys('{"amount": 5,\n "currency": "EUR"}')
    shot(driver, "emit")
    find(driver, "#emit-submit").click()
    link = find(driver, "#emitted-link")
    assert "wallet-1 version 1" in link.text
    stored = http.get("/api/stream-contents/wallet-1").json()["results"]
    assert [e["payload"] for e in stored] == [{"amount": 5, "currency": "EUR"}]
    # Expected version 0 (must not exist) is refused by the server: its message is shown, nothing stored.
    expected = driver.find_element(By.XPATH, "//label[text()='Expected version']/following-sibling::input")
    expected.clear()
    expected.send_keys("0")
    find(driver, "#emit-submit").click()
    assert "version conflict" in text(driver, "#emit-error")
    # A field the server refuses: an internal stream name.
    name = driver.find_element(By.XPATH, "//label[text()='Stream']/following-sibling::input")
    name.clear()
    name.send_keys("__secret")
    expected.clear()
    find(driver, "#emit-submit").click()
    assert "internal" in text(driver, "#emit-error")
    assert driver.switch_to.active_element == name  # the field the server named has the focus
    # A payload that is not JSON is marked at its line before anything is sent.
    payload.clear()
    payload.send_keys('{"a": 1,\n "b": }')
    find(driver, "#emit-submit").click()
    assert "not valid JSON" in text(driver, "#emit-error, .alert.error")
    assert find(driver, ".editor .gutter .bad").text == "2"
    assert len(http.get("/api/stream-contents/wallet-1").json()["results"]) == 1
    drain_refusals(driver)


def test_a_number_the_server_refuses_is_named_as_typed_with_its_field(
    signed_in: Chrome, server: ServerProcess, http: httpx.Client
) -> None:
    """Digits beyond what JavaScript holds exactly, or an empty field, were sent as another number
    (1e20, 0): the server's refusal named a number nobody typed, and not the field."""
    driver = signed_in
    go(driver, server, "/emit?stream=till-1")
    find(driver, "#emit-submit")
    driver.find_element(By.XPATH, "//label[text()='Event type']/following-sibling::input").send_keys("opened")
    expected = driver.find_element(By.XPATH, "//label[text()='Expected version']/following-sibling::input")
    expected.clear()
    expected.send_keys("99999999999999999999")
    find(driver, "#emit-submit").click()
    message = text(driver, "#emit-error")
    assert "expected-version" in message and "99999999999999999999" in message, message
    assert driver.switch_to.active_element == expected
    assert http.get("/api/streams", params={"prefix": "till-1"}).json()["streams"] == []
    created = http.post("/api/groups", json={"group-name": "tills", "stream": "till-1"})
    assert created.status_code == 201, created.text
    go(driver, server, "/consumers")
    row = "#groups-table tr[data-name='tills']"
    wait_for(lambda: driver.find_element(By.CSS_SELECTOR, row + " input").clear() or True, what="the group")
    click(driver, By.CSS_SELECTOR, row + " button[aria-label^='Reset tills']")
    click(driver, By.XPATH, "//button[text()='Click again to reset']")
    message = wait_for(lambda: text(driver, "#group-message [role=alert]"), what="the refusal")
    assert "from must be an order-id" in message and "got ''" in message, message
    drain_refusals(driver)


def test_a_projection_created_in_the_editor_shows_its_value_live(
    signed_in: Chrome, server: ServerProcess, http: httpx.Client, shot: Shot
) -> None:
    driver = signed_in
    go(driver, server, "/projection-edit")
    driver.find_element(By.XPATH, "//label[text()='Name']/following-sibling::input").send_keys("trade-totals")
    stream = driver.find_element(By.XPATH, "//label[text()='Stream']/following-sibling::input")
    stream.clear()
    stream.send_keys("trades")
    initial = find(driver, "#initial-value")
    initial.clear()
    initial.send_keys("{}")
    code = find(driver, "#reduction")
    code.clear()
    code.send_keys(
        "def reduction(state, event):\n"
        'sym = event["payload"]["sym"]\n'
        'state[sym] = state.get(sym, 0) + event["payload"]["qty"]\n'
        "return state\n"
    )
    # send_keys types no indentation of its own: indent the body with the editor's Tab.
    driver.execute_script(
        "const t = document.getElementById('reduction');"
        "t.value = t.value.replace(/\\n(?=\\S)/g, '\\n    ').replace(/^    def/, 'def');"
        "t.dispatchEvent(new Event('input'));"
    )
    # Highlighted as Python (the highlight is redrawn in the next frame: read it again at each try).
    wait_for(lambda: text(driver, ".editor pre .t-kw") in ("def", "return"), what="Python highlighted")
    shot(driver, "projection-editor")
    find(driver, "#save-projection").click()
    wait_for(lambda: "/projection/trade-totals" in driver.current_url, what="the saved projection")
    emit(http, [{"stream-name": "trades", "event-type": "filled", "payload": {"sym": "ACME", "qty": 3}}])
    wait_for(lambda: '"ACME": 3' in text(driver, "#projection-value"), what="the value")
    emit(http, [{"stream-name": "trades", "event-type": "filled", "payload": {"sym": "ACME", "qty": 4}}])
    wait_for(lambda: '"ACME": 7' in text(driver, "#projection-value"), what="the value to update live")
    click(driver, By.LINK_TEXT, "ACME")  # the keys are drawn again with each new value
    wait_for(lambda: text(driver, "pre[aria-label='Value of key ACME']") == "7", what="the value by key")
    shot(driver, "projection")
    go(driver, server, "/projections")
    row = "#projections-table tr[data-name='trade-totals']"  # the list is drawn again every 2 s
    wait_for(lambda: "running" in text(driver, row), what="trade-totals running in the list")
    shot(driver, "projections")


def test_a_projections_big_value_changing_fast_leaves_the_page_usable(
    signed_in: Chrome, server: ServerProcess, http: httpx.Client
) -> None:
    """A value of 5,000 keys takes a long time to draw; drawn again at every update (every frame
    while events come), it held the page's main thread nearly all the time."""
    driver = signed_in
    template = {
        "projection-name": "per-meter",
        "stream-name": "__category__:wide",
        "language": "python",
        "initial-value": {},
        "reduction": "def reduction(state, event):\n"
        '    k = event["stream-name"]\n'
        "    state[k] = state.get(k, 0) + 1\n"
        "    return state\n",
    }
    assert http.post("/api/projection", json=template).status_code == 200
    emit(http, [{"stream-name": f"wide-{i:04d}", "event-type": "read", "payload": {}} for i in range(5000)])
    go(driver, server, "/projection/per-meter")
    wait_for(lambda: '"wide-4999": 1' in text(driver, "#projection-value"), what="the value of 5,000 keys")
    driver.execute_script(
        "window.__busy = 0; new PerformanceObserver((list) => {"
        "  for (const task of list.getEntries()) window.__busy += task.duration;"
        "}).observe({entryTypes: ['longtask']});"
    )
    began = time.monotonic()
    for batch in range(60):  # about 3 s of updates
        emit(http, [{"stream-name": f"wide-{batch:04d}", "event-type": "read", "payload": {}} for _ in range(5)])
        time.sleep(0.05)
    wait_for(lambda: '"wide-0059": 6' in text(driver, "#projection-value"), what="the last value")
    elapsed_ms = (time.monotonic() - began) * 1000
    busy_ms: float = driver.execute_script("return window.__busy")
    assert busy_ms < elapsed_ms / 2, f"long tasks held the page {busy_ms:.0f} ms of {elapsed_ms:.0f} ms"


def test_a_projections_refused_delete_says_why_under_the_head_and_asks_twice_again(
    signed_in: Chrome, server: ServerProcess
) -> None:
    driver = signed_in
    go(driver, server, "/projection/__streams__")
    click(driver, By.XPATH, "//button[text()='Delete']")
    click(driver, By.XPATH, "//button[text()='Click again to delete']")
    wait_for(lambda: "built in" in text(driver, "#projection-message [role=alert]"), what="the refusal")
    assert driver.find_element(By.XPATH, "//button[text()='Delete']")  # not armed: one click does not delete
    drain_refusals(driver)


def test_a_projections_live_value_comes_back_with_its_server(browser: Chrome, tmp_path: Path) -> None:
    driver = browser
    (tmp_path / "projections").mkdir()
    args = restartable(tmp_path)
    server = ServerProcess(tmp_path, args)

    def store(count: int) -> None:
        with httpx.Client(base_url=server.url, headers={"Authorization": f"Token {server.token()}"}) as client:
            emit(client, [{"stream-name": "door-1", "event-type": "opened", "payload": {}} for _ in range(count)])

    try:
        with httpx.Client(base_url=server.url, headers={"Authorization": f"Token {server.token()}"}) as client:
            template = {
                "projection-name": "doors",
                "stream-name": "door-1",
                "language": "python",
                "initial-value": 0,
                "reduction": "def reduction(state, event):\n    return state + 1\n",
            }
            assert client.post("/api/projection", json=template).status_code == 200
        go(driver, server, "/projection/doors")
        sign_in(driver)
        store(1)
        wait_for(lambda: text(driver, "#projection-value") == "1", what="the value, live")
        server.terminate()
        wait_for(lambda: text(driver, "#value-live") == "not live", what="the value to say it is not live")
        server = ServerProcess(tmp_path, args)
        store(2)
        wait_for(lambda: text(driver, "#projection-value") == "3", what="the value, live again after the restart")
        assert text(driver, "#value-live") == "live"
    finally:
        server.terminate()
        drain_lost_connections(driver)


def test_a_bad_projection_shows_the_servers_error_at_its_line(
    signed_in: Chrome, server: ServerProcess, shot: Shot
) -> None:
    driver = signed_in
    go(driver, server, "/projection-edit")
    driver.find_element(By.XPATH, "//label[text()='Name']/following-sibling::input").send_keys("broken")
    # Hy is highlighted as Hy: a special form after "(" and a keyword.
    language = Select(driver.find_element(By.XPATH, "//label[text()='Language']/following-sibling::select"))
    language.select_by_value("hy")
    driver.execute_script(
        "const t = document.getElementById('reduction');"
        "t.value = '(fn [state event]\\n  (.get state :count))';"
        "t.dispatchEvent(new Event('input'));"
    )
    wait_for(lambda: text(driver, ".editor pre .t-kw") == "fn", what="Hy's fn highlighted")
    assert text(driver, ".editor pre .t-key") == ":count"
    language.select_by_value("python")
    driver.execute_script(
        "const t = document.getElementById('reduction');"
        "t.value = 'def reduction(state, event):\\n    return state +\\n';"
        "t.dispatchEvent(new Event('input'));"
    )
    find(driver, "#save-projection").click()
    error = text(driver, "#projection-save-error")
    assert "syntax" in error.lower() and "line 2" in error
    assert find(driver, ".editor .gutter .bad").text == "2"
    shot(driver, "projection-error")
    drain_refusals(driver)


def test_a_failed_projection_shows_its_error_and_the_failing_event(
    signed_in: Chrome, server: ServerProcess, http: httpx.Client
) -> None:
    driver = signed_in
    response = http.post(
        "/api/projection",
        json={
            "projection-name": "fragile",
            "stream-name": "parcels",
            "language": "hy",
            "initial-value": 0,
            "reduction": '(fn [state event] (+ state (get (get event "payload") "weight")))',
        },
    )
    assert response.status_code == 200, response.text
    emit(http, [{"stream-name": "parcels", "event-type": "weighed", "payload": {"weight": 2}}])
    [bad] = emit(http, [{"stream-name": "parcels", "event-type": "weighed", "payload": {"kg": 2}}])
    go(driver, server, "/projections")
    wait_for(
        lambda: "failed" in driver.find_element(By.CSS_SELECTOR, "tr[data-name='fragile']").text,
        what="the status failed",
        timeout=30,
    )
    go(driver, server, "/projection/fragile")
    assert "weight" in text(driver, "#projection-error")
    click(driver, By.CSS_SELECTOR, "#failing-event")  # drawn again with each update of a failed projection
    wait_for(lambda: f"order-id {bad['order-id']}" in text(driver, ".page-head .sub"), what="the failing event")
    assert '"kg": 2' in text(driver, "pre.json")


def test_a_page_of_something_that_does_not_exist_says_so_under_a_heading(
    signed_in: Chrome, server: ServerProcess
) -> None:
    driver = signed_in
    go(driver, server, "/projection/no-such-projection")
    assert text(driver, "main h1") == "Not found"
    assert "no-such-projection" in text(driver, "main .alert.error")
    settled(driver)  # and the page is no longer marked busy
    drain_refusals(driver)  # the 404 was asked for


def test_consumers_page_shows_a_durable_consumers_position_and_resets_it(
    signed_in: Chrome, server: ServerProcess, http: httpx.Client
) -> None:
    driver = signed_in
    stored = emit(http, [{"stream-name": "mail", "event-type": "queued", "payload": {"n": i}} for i in range(3)])
    replay = http.get("/api/subscription/mailer", params={"stream": "mail", "stream-type": "cold"})
    assert replay.status_code == 200
    ack = http.post("/api/subscription/mailer/ack", json={"order-id": stored[1]["order-id"]})
    assert ack.status_code == 200, ack.text
    go(driver, server, "/consumers")
    row = "#subscriptions-table tr[data-name='mailer']"
    position = f"{stored[1]['order-id']:,}"  # as the page writes numbers: 1,234
    wait_for(lambda: position in text(driver, row), what="the consumer's position")
    assert "mail" in text(driver, row)
    click(driver, By.CSS_SELECTOR, f"{row} button")  # the tables are drawn again every 2 s until armed
    click(driver, By.XPATH, "//button[text()='Click again to reset']")
    find(driver, "#consumer-reset")
    assert http.get("/api/subscription/mailer/position").status_code == 404


def test_server_page_shows_health_settings_without_secrets_and_rates(
    signed_in: Chrome, server: ServerProcess, http: httpx.Client, shot: Shot
) -> None:
    driver = signed_in
    go(driver, server, "/server")
    assert text(driver, "#health") == "OK"
    settings = text(driver, "#settings-table")
    assert "admin.pass ****" in settings and "p4010n" not in settings
    emit(http, [{"stream-name": "meter", "event-type": "tick", "payload": {}}] * 1)
    wait_for(lambda: text(driver, "#rate-in") != "…", what="a rate")
    shot(driver, "server")


def test_backup_page_downloads_the_store_and_a_stream_and_uploads_a_stream(
    signed_in: Chrome, server: ServerProcess, http: httpx.Client, tmp_path: Path, shot: Shot
) -> None:
    driver = signed_in
    emit(http, [{"stream-name": "archive", "event-type": "kept", "payload": {"n": i}} for i in range(4)])
    driver.execute_cdp_cmd("Browser.setDownloadBehavior", {"behavior": "allow", "downloadPath": str(tmp_path)})
    go(driver, server, "/backup")
    find(driver, "#download-all").click()
    backup = wait_for(lambda: [p for p in tmp_path.glob("photon-backup-*.jsonl")], what="the backup file")[0]
    wait_for(lambda: backup.stat().st_size > 0 and '"archive"' in backup.read_text(), what="the backup's contents")
    field = driver.find_element(By.XPATH, "//label[text()='Stream']/following-sibling::input")
    field.send_keys("archive", Keys.ENTER)
    one = wait_for(lambda: (tmp_path / "archive.ndjson").exists() and tmp_path / "archive.ndjson", what="download")
    wait_for(lambda: len(one.read_text().splitlines()) == 4, what="the stream's four events")
    driver.find_element(By.CSS_SELECTOR, "input[type=file]").send_keys(str(one))
    rename = driver.find_element(By.XPATH, "//label[text()='New name (optional)']/following-sibling::input")
    rename.send_keys("archive-copy", Keys.ENTER)
    wait_for(lambda: "Stored 4 events as archive-copy" in text(driver, "#upload-result"), what="the upload")
    copied = http.get("/api/stream-contents/archive-copy").json()["results"]
    assert [e["payload"]["n"] for e in copied] == [0, 1, 2, 3]
    shot(driver, "backup")


MAIN_PAGES = [
    "/streams",
    "/streams?view=categories",
    "/stream/ledger",
    "/event/__all__/1",
    "/tail/__all__",
    "/emit",
    "/projections",
    "/projection/axe-count",
    "/projection-edit",
    "/consumers",
    "/server",
    "/backup",
]


def open_settled(driver: Chrome, server: ServerProcess, route: str) -> None:
    """Open a page and wait until it is drawn with its contents (a tail: until it is live)."""
    go(driver, server, route)
    find(driver, "main h1")
    settled(driver)
    if route.startswith("/tail/"):
        wait_for(lambda: text(driver, "#tail-state") == "live", what=f"{route} live")
    assert not driver.find_elements(By.CSS_SELECTOR, "main .alert.error"), (route, text(driver, "main .alert.error"))


def test_axe_finds_no_serious_or_critical_violation_on_any_main_page(
    signed_in: Chrome, server: ServerProcess, http: httpx.Client, shot: Shot
) -> None:
    driver = signed_in
    source = axe_source()
    emit(http, [{"stream-name": "ledger", "event-type": "credit", "payload": {"n": 1}}])
    template = {"projection-name": "axe-count", "language": "python", "initial-value": {"n": 0}}
    created = http.post("/api/projection", json={**template, "reduction": "lambda state, event: {'n': state['n'] + 1}"})
    assert created.status_code == 200, created.text
    found: dict[str, list[str]] = {}
    for route in MAIN_PAGES:
        open_settled(driver, server, route)
        violations = axe_violations(driver, source)
        if violations:
            found[route] = [f"{v['id']} ({v['impact']}): {v['description']} {v['nodes'][:1]}" for v in violations]
    # Dark theme too: the same pages with the system's dark preference.
    driver.execute_cdp_cmd(
        "Emulation.setEmulatedMedia", {"features": [{"name": "prefers-color-scheme", "value": "dark"}]}
    )
    try:
        for route in ("/streams", "/stream/ledger", "/tail/__all__", "/projection/axe-count", "/server"):
            open_settled(driver, server, route)
            if route == "/streams":
                shot(driver, "streams-dark")
            violations = axe_violations(driver, source)
            if violations:
                found["dark " + route] = [f"{v['id']} ({v['impact']}): {v['nodes'][:1]}" for v in violations]
    finally:
        driver.execute_cdp_cmd("Emulation.setEmulatedMedia", {"features": []})
    assert not found, found


def tab_to(driver: Chrome, matches: str, limit: int = 60) -> None:
    """Press Tab until the focused element matches the CSS selector `matches`."""
    for _ in range(limit):
        if driver.execute_script("return document.activeElement.matches(arguments[0])", matches):
            return
        ActionChains(driver).send_keys(Keys.TAB).perform()
    raise AssertionError(f"Tab never reached {matches}")


def test_main_actions_work_from_the_keyboard(browser: Chrome, server: ServerProcess, http: httpx.Client) -> None:
    driver = browser
    emit(http, [{"stream-name": "ledger", "event-type": "credit", "payload": {"n": 0}}])
    driver.get(server.url + "/")
    driver.execute_script("sessionStorage.clear()")
    go(driver, server, "/streams")
    # Sign in: the password field has the focus; type and press Enter.
    find(driver, "#password")
    ActionChains(driver).send_keys("p4010n", Keys.ENTER).perform()
    find(driver, "#streams-table")
    keys = ActionChains(driver)
    # "/" focuses the filter; Tab reaches the first stream; Enter opens it.
    keys.send_keys("/", "ledg").perform()
    wait_for(lambda: len(driver.find_elements(By.CSS_SELECTOR, "#streams-table tbody tr")) == 1, what="filter")
    tab_to(driver, "#streams-table a")
    ActionChains(driver).send_keys(Keys.ENTER).perform()
    wait_for(lambda: "#/stream/ledger" in driver.current_url, what="the stream page")
    # The main navigation, from a fresh page: Tab to "Emit", Enter.
    go(driver, server, "/stream/ledger")
    find(driver, "table.events")
    tab_to(driver, "nav a[data-section=emit]")
    ActionChains(driver).send_keys(Keys.ENTER).perform()
    find(driver, "#emit-submit")
    # Emit with the keyboard alone: the fields in order, the payload editor, then submit.
    tab_to(driver, "input")
    ActionChains(driver).send_keys("keyboard-1", Keys.TAB, "typed", Keys.TAB, Keys.TAB).perform()
    assert driver.execute_script("return document.activeElement.id") == "payload"
    ActionChains(driver).key_down(Keys.CONTROL).send_keys("a").key_up(Keys.CONTROL).send_keys('{"k": 1}').perform()
    ActionChains(driver).send_keys(Keys.ESCAPE, Keys.TAB).perform()  # Escape, then Tab leaves the editor
    tab_to(driver, "#emit-submit")
    ActionChains(driver).send_keys(Keys.ENTER).perform()
    find(driver, "#emitted-link")
    assert http.get("/api/stream-contents/keyboard-1").json()["results"][0]["payload"] == {"k": 1}
    # Projections: Tab to "New projection", Enter; the form saves with Enter from a field.
    go(driver, server, "/projections")
    tab_to(driver, "#new-projection")
    ActionChains(driver).send_keys(Keys.ENTER).perform()
    find(driver, "#save-projection")
    tab_to(driver, "input")
    ActionChains(driver).send_keys("typed-count", Keys.ENTER).perform()
    wait_for(lambda: "#/projection/typed-count" in driver.current_url, what="the new projection")
    assert not [e for e in console_errors(driver)]


def test_narrow_screen_keeps_the_pages_within_the_width(
    signed_in: Chrome, server: ServerProcess, http: httpx.Client, shot: Shot
) -> None:
    driver = signed_in
    emit(http, [{"stream-name": "ledger", "event-type": "credit", "payload": {"n": 0}}])
    driver.set_window_size(390, 844)
    try:
        for route in ("/streams", "/stream/ledger", "/emit", "/projections", "/server"):
            go(driver, server, route)
            find(driver, "main h1")
            width = driver.execute_script("return [document.documentElement.scrollWidth, window.innerWidth]")
            assert width[0] <= width[1], (route, width)
        go(driver, server, "/stream/ledger")
        find(driver, "table.events")
        shot(driver, "stream-narrow")
    finally:
        driver.set_window_size(1280, 860)


def test_consumer_groups_show_their_position_and_take_the_admin_actions(
    signed_in: Chrome, server: ServerProcess, http: httpx.Client, shot: Shot
) -> None:
    driver = signed_in
    emit(http, [{"stream-name": "invoice-1", "event-type": "issued", "payload": {"n": i}} for i in range(3)])
    created = http.post("/api/groups", json={"group-name": "billing", "stream": "invoice-1"})
    assert created.status_code == 201, created.text
    go(driver, server, "/consumers")
    row = "#groups-table tr[data-name='billing']"
    assert "invoice-1" in text(driver, row)
    shot(driver, "consumers")
    click(driver, By.CSS_SELECTOR, f"{row} button[aria-label^='Replay']")  # the table is drawn again every 2 s
    wait_for(lambda: "parked events handed back" in text(driver, "#group-message"), what="replay parked")
    click(driver, By.CSS_SELECTOR, f"{row} button[aria-label^='Reset']")
    click(driver, By.XPATH, "//button[text()='Click again to reset']")
    wait_for(lambda: "starts over from order-id 1" in text(driver, "#group-message"), what="reset")
    click(driver, By.CSS_SELECTOR, f"{row} button[aria-label^='Delete']")
    click(driver, By.XPATH, "//button[text()='Click again to delete']")
    wait_for(lambda: "Deleted the group billing" in text(driver, "#group-message"), what="delete")
    assert http.get("/api/group/billing").status_code == 404
