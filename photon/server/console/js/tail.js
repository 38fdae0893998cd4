// Live tail of a stream or __all__: the newest page first, then every new event as it is stored.
//
// Batching, so that 1,000 events/s never make a long task on the main thread:
// - the replay is read as NDJSON with fetch; each network chunk's lines go into a queue (no
//   parsing, no DOM work per line);
// - at most every FLUSH_MS (100 ms), in an animation frame (or a timer when frames are not
//   running, in a background tab), the queue is parsed and rendered as ONE block of HTML
//   inserted at the top of the table, at most MAX_ROWS rows of it (older rows beyond MAX_ROWS
//   leave the view in the same step, so the table never grows without bound);
// - the rows are not an HTML table (whose layout is redone whole when a row is added) but grid
//   rows with ARIA table roles, each with `content-visibility: auto`: a row below the visible
//   part is neither laid out nor painted, so a batch costs about what its visible rows cost;
// - the counters are updated once a second (a change of their text lays the page out again).
// At 1,000 events/s a flush holds ~100 events: about a millisecond of work on an idle laptop,
// ten times a second, and an event is on screen ~50 ms after it arrives on average.
// window.__photonTail keeps the flushes' count and longest and total time (for the benchmark).
import { api, path, query, streamLines } from "./api.js";
import { h, esc, pageHead, field, when, preview, eventHref, streamHref, number, errorBox } from "./ui.js";
import { readsManyStreams } from "./streams.js";

const MAX_ROWS = 250;
const FLUSH_MS = 100;
const FALLBACK_MS = 250;

export async function tailPage(main, [stream]) {
  // __all__, a category or a ** wildcard: each row names its stream.
  const many = readsManyStreams(stream);
  const nameInput = h("input", { type: "text", value: stream, "data-slash": true, autocomplete: "off" });
  const state = h("span", { class: "badge off", id: "tail-state" }, "connecting");
  const received = h("strong", { id: "tail-count" }, "0");
  const rate = h("strong", { id: "tail-rate" }, "0");
  const pauseButton = h("button", { type: "button", "aria-pressed": "false" }, "Pause");
  const tbody = h("div", { id: "tail-rows", role: "rowgroup" });
  const message = h("div");
  main.append(
    pageHead(`Live tail: ${stream}`, "New events appear at the top as they are stored.",
      h("a", { class: "button", href: streamHref(stream) }, "Browse this stream")),
    h(
      "form",
      { class: "toolbar", onsubmit: (e) => { e.preventDefault(); if (nameInput.value) location.hash = "#/tail/" + encodeURIComponent(nameInput.value.trim()); } },
      h("div", { class: "grow" }, field("Stream (or __all__)", nameInput)),
      h("button", { type: "submit" }, "Tail"),
      pauseButton,
      h("button", { type: "button", onclick: () => { tbody.replaceChildren(); shown = 0; held = []; } }, "Clear"),
    ),
    h("div", { class: "status-line", "aria-live": "off" }, state, h("span", {}, "received ", received), h("span", {}, rate, " events/s"), h("span", {}, "showing the newest ", number(MAX_ROWS))),
    message,
    h(
      "div",
      { class: "table-wrap tail-wrap" },
      h(
        "div",
        { role: "table", id: "tail-table", class: many ? "tail all" : "tail", "aria-label": `Newest events of ${stream}` },
        h("div", { role: "rowgroup" }, h("div", { role: "row", class: "tr head" },
          h("span", { role: "columnheader", class: "num" }, "Order-id"),
          many ? h("span", { role: "columnheader" }, "Stream") : null,
          h("span", { role: "columnheader", class: "num" }, "Version"),
          h("span", { role: "columnheader" }, "Type"),
          h("span", { role: "columnheader", class: "when" }, "Time (UTC)"),
          h("span", { role: "columnheader", class: "preview" }, "Payload"))),
        tbody,
      ),
    ),
  );

  const controller = new AbortController();
  let queue = [];
  let count = 0;
  let shown = 0;
  let paused = false;
  let held = [];
  let frame = 0;
  let fallback = 0;
  let lastOrderId = 0;
  const rateWindow = [];

  pauseButton.addEventListener("click", () => {
    paused = !paused;
    pauseButton.setAttribute("aria-pressed", String(paused));
    pauseButton.textContent = paused ? "Resume" : "Pause";
    if (!paused) schedule();
  });

  function rowHtml(e) {
    const order = e["order-id"];
    return (
      `<div role="row" class="tr"><span role="cell" class="num"><a href="${esc(eventHref(stream, order))}">${order}</a></span>` +
      (many ? `<span role="cell"><a href="${esc(streamHref(e["stream-name"]))}">${esc(e["stream-name"])}</a></span>` : "") +
      `<span role="cell" class="num">${e["stream-version"]}</span><span role="cell">${esc(e["event-type"])}</span>` +
      `<span role="cell" class="when">${when(e["event-time"])}</span><span role="cell" class="preview">${esc(preview(e.payload))}</span></div>`
    );
  }

  const stats = (window.__photonTail = { flushes: 0, longestMs: 0, totalMs: 0 });
  let lastFlush = 0;
  let wait = 0;

  function flush() {
    const began = performance.now();
    cancelAnimationFrame(frame);
    clearTimeout(fallback);
    frame = fallback = 0;
    lastFlush = began;
    const lines = queue;
    queue = [];
    const events = [];
    for (const line of lines) {
      if (!line) continue;
      const item = JSON.parse(line);
      if (item["order-id"] === undefined) {
        if (item["caught-up"] !== undefined) setLive(true);
        continue;
      }
      events.push(item);
    }
    if (events.length) {
      count += events.length;
      lastOrderId = events[events.length - 1]["order-id"];
      rateWindow.push([performance.now(), events.length]);
    }
    // Paused: the events are kept (as many as the view shows) and drawn at Resume.
    if (paused) {
      held = held.concat(events).slice(-MAX_ROWS);
      return;
    }
    const batch = held.length ? held.concat(events) : events;
    held = [];
    if (!batch.length) return;
    // Newest at the top: the batch reversed, cut to what the view keeps.
    const fresh = batch.slice(-MAX_ROWS).reverse();
    tbody.insertAdjacentHTML("afterbegin", fresh.map(rowHtml).join(""));
    shown += fresh.length;
    while (shown > MAX_ROWS) {
      tbody.lastElementChild.remove();
      shown -= 1;
    }
    const spent = performance.now() - began;
    stats.flushes += 1;
    stats.totalMs += spent;
    stats.longestMs = Math.max(stats.longestMs, spent);
  }

  // The counters change once a second, not at every batch: a change of their text lays out the
  // page around them, which costs more than a batch of rows in their contained table.
  function showCounters() {
    const now = performance.now();
    while (rateWindow.length && now - rateWindow[0][0] > 2000) rateWindow.shift();
    received.textContent = number(count);
    rate.textContent = number(Math.round(rateWindow.reduce((n, [, k]) => n + k, 0) / 2));
  }
  const counters = setInterval(showCounters, 1000);

  function schedule() {
    if (frame || fallback || wait) return;
    const due = lastFlush + FLUSH_MS - performance.now();
    if (due > 0) {
      wait = setTimeout(() => {
        wait = 0;
        schedule();
      }, due);
      return;
    }
    frame = requestAnimationFrame(flush);
    fallback = setTimeout(flush, FALLBACK_MS);
  }

  function setLive(live) {
    state.textContent = live ? "live" : "disconnected";
    state.className = "badge " + (live ? "live" : "off");
  }

  // The newest page, then the replay from just after it: nothing missed, nothing twice.
  async function newestPage() {
    const signal = controller.signal;
    // A stream not written yet has no page to read (asking would be a 404): its tail starts empty.
    // (A read of many streams always has a page, empty or not.)
    const exists = many || (await api("/api/streams" + query({ prefix: stream, limit: 1 }), { signal })).streams.some((s) => s["stream-name"] === stream);
    const newest = exists ? await api("/api/stream-contents/" + path(stream) + query({ direction: "backward", limit: 50 }), { signal }) : { results: [] };
    const history = newest.results.reverse();
    if (history.length) {
      lastOrderId = history[history.length - 1]["order-id"];
      queue.push(...history.map((e) => JSON.stringify(e)));
      flush();
      // The history shown is neither received nor a rate: the counters start with the live events.
      count = 0;
      rateWindow.length = 0;
      received.textContent = "0";
    }
  }

  // Until the page is left: a failed request (the server went away) is said, and tried again
  // every second, the first page included.
  async function run() {
    let started = false;
    for (;;) {
      try {
        if (!started) {
          await newestPage();
          started = true;
        }
        const from = lastOrderId ? { from: lastOrderId + 1 } : {};
        await streamLines("/api/replay/" + path(stream) + query({ "stream-type": "hot-cold", ...from }), (lines) => {
          if (message.firstChild) message.replaceChildren(); // connected again
          queue.push(...lines);
          schedule();
        }, { signal: controller.signal });
      } catch (error) {
        if (controller.signal.aborted) return;
        message.replaceChildren(errorBox(error));
      }
      if (controller.signal.aborted) return;
      setLive(false);
      await new Promise((resolve) => setTimeout(resolve, 1000));
    }
  }
  run().catch((error) => message.replaceChildren(errorBox(error)));
  return () => {
    controller.abort();
    cancelAnimationFrame(frame);
    clearTimeout(fallback);
    clearTimeout(wait);
    clearInterval(counters);
  };
}
