// Streams: the paged list (filter by prefix, or by category), one stream's events paged either
// way, and one event with its metadata and causation.
import { api, path, query } from "./api.js";
import { h, pageHead, field, jsonBlock, preview, when, number, streamHref, eventHref, errorBox, toast, saveFile } from "./ui.js";
import { download } from "./api.js";

const PAGE = 100;
const EVENTS_PAGE = 50;
// The name that reads a category as a stream (photon.core.events.CATEGORY_STREAM_PREFIX; a test
// checks the two agree).
export const CATEGORY_PREFIX = "__category__:";

// __all__, a category (__category__:name) and a ** wildcard read many streams: their events carry
// their own stream names, and there is no version, nothing to emit to, download or delete as one.
export function readsManyStreams(stream) {
  return stream === "__all__" || stream.startsWith(CATEGORY_PREFIX) || stream.includes("**");
}

function setQuery(params) {
  const hash = location.hash.split("?")[0];
  const q = query(params);
  history.replaceState(null, "", hash + q);
}

export async function streamsPage(main, _params, q) {
  const view = q.view === "categories" ? "categories" : "streams";
  const filter = h("input", { type: "search", value: q.prefix || "", placeholder: "orders-", "data-slash": true, autocomplete: "off" });
  const body = h("div", { "aria-live": "polite" });
  const viewButtons = h(
    "div",
    { class: "segmented", role: "group", "aria-label": "View" },
    h("button", { type: "button", "aria-pressed": view === "streams", onclick: () => (location.hash = "#/streams" + query({ prefix: filter.value })) }, "Streams"),
    h("button", { type: "button", "aria-pressed": view === "categories", onclick: () => (location.hash = "#/streams?view=categories") }, "Categories"),
  );
  main.append(
    pageHead("Streams", view === "streams" ? "Every stream holding events, in name order." : "Categories: a stream name up to its first “-”.",
      h("a", { class: "button", href: streamHref("__all__") }, "All events (__all__)"),
      h("a", { class: "button", href: "#/emit" }, "Emit an event")),
    h(
      "div",
      { class: "toolbar" },
      view === "streams" ? h("div", { class: "grow" }, field("Filter by name prefix", filter, "Press / to come back here.")) : null,
      viewButtons,
    ),
    body,
  );
  if (view === "categories") {
    await categoryList(body, q.after || null);
    return;
  }
  let timer = 0;
  let controller = null;
  async function load(after) {
    if (controller) controller.abort();
    controller = new AbortController();
    const prefix = filter.value;
    setQuery({ prefix, after });
    try {
      const answer = await api("/api/streams" + query({ prefix, after, limit: PAGE }), { signal: controller.signal });
      body.replaceChildren(streamTable(answer.streams, prefix), pager(answer.next, after, load));
    } catch (error) {
      if (error.name !== "AbortError") body.replaceChildren(errorBox(error));
    }
  }
  filter.addEventListener("input", () => {
    clearTimeout(timer);
    timer = setTimeout(() => load(null), 200);
  });
  await load(q.after || null);
  return () => controller && controller.abort();
}

function streamTable(streams, prefix) {
  if (!streams.length) return h("div", { class: "empty panel" }, prefix ? `No stream starts with “${prefix}”.` : "No streams yet.");
  return h(
    "div",
    { class: "table-wrap" },
    h(
      "table",
      { id: "streams-table" },
      h("thead", {}, h("tr", {}, h("th", { scope: "col" }, "Stream"), h("th", { scope: "col", class: "num" }, "Events"), h("th", { scope: "col" }, h("span", { class: "visually-hidden" }, "Live")))),
      h(
        "tbody",
        {},
        streams.map((s) =>
          h(
            "tr",
            {},
            h("td", { class: "name" }, h("a", { href: streamHref(s["stream-name"]) }, s["stream-name"])),
            h("td", { class: "num" }, number(s["total-events"])),
            h("td", {}, h("a", { href: `#/tail/${encodeURIComponent(s["stream-name"])}`, "aria-label": `Live tail of ${s["stream-name"]}` }, "tail")),
          ),
        ),
      ),
    ),
  );
}

function pager(next, after, load) {
  return h(
    "div",
    { class: "pager" },
    after ? h("button", { type: "button", onclick: () => load(null) }, "First page") : null,
    next ? h("button", { type: "button", id: "next-page", onclick: () => load(next) }, "Next page →") : null,
  );
}

async function categoryList(body, after) {
  const answer = await api("/api/categories" + query({ after, limit: PAGE }));
  if (!answer.categories.length) {
    body.replaceChildren(h("div", { class: "empty panel" }, "No streams yet."));
    return;
  }
  body.replaceChildren(
    h(
      "div",
      { class: "table-wrap" },
      h(
        "table",
        { id: "categories-table" },
        h("thead", {}, h("tr", {}, h("th", { scope: "col" }, "Category"), h("th", { scope: "col" }, "Streams"))),
        h(
          "tbody",
          {},
          answer.categories.map((c) =>
            h(
              "tr",
              {},
              h("td", { class: "name" }, h("strong", {}, c)),
              h(
                "td",
                {},
                h("a", { href: streamHref(CATEGORY_PREFIX + c), "aria-label": `Events of category ${c}` }, "events"),
                " · ",
                h("a", { href: "#/streams" + query({ prefix: c + "-" }) }, `${c}-…`),
                " · ",
                h("a", { href: "#/streams" + query({ prefix: c }) }, `every name starting “${c}”`),
              ),
            ),
          ),
        ),
      ),
    ),
    h(
      "div",
      { class: "pager" },
      after ? h("a", { class: "button", href: "#/streams?view=categories" }, "First page") : null,
      answer.next ? h("a", { class: "button", href: "#/streams" + query({ view: "categories", after: answer.next }) }, "Next page →") : null,
    ),
  );
}

export async function streamPage(main, [stream], q) {
  const isAll = stream === "__all__";
  const category = stream.startsWith(CATEGORY_PREFIX) ? stream.slice(CATEGORY_PREFIX.length) : null;
  const many = readsManyStreams(stream);
  const dir = q.dir === "forward" ? "forward" : "backward";
  const fromVersion = many ? "" : q["from-version"] || "";
  const params = { dir, from: q.from || "", "from-version": fromVersion, types: q.types || "" };
  const go = (changes) => (location.hash = streamHref(stream, Object.fromEntries(Object.entries({ ...params, ...changes }).filter(([, v]) => v))));

  const versionInput = h("input", { type: "number", min: "1", value: fromVersion, inputmode: "numeric" });
  const orderInput = h("input", { type: "number", min: "1", value: q.from || "", inputmode: "numeric" });
  const typesInput = h("input", { type: "text", value: params.types, placeholder: "deposited,withdrawn", "data-slash": true });
  const count = h("span");
  // What an action (download, delete) failed with: under the page's head, where it is seen.
  const message = h("div", { id: "stream-message" });
  const deleteButton = h("button", { type: "button", class: "danger" }, "Delete stream");
  let armed = 0;
  deleteButton.addEventListener("click", async () => {
    if (!armed) {
      deleteButton.textContent = "Click again to delete";
      armed = setTimeout(() => ((armed = 0), (deleteButton.textContent = "Delete stream")), 5000);
      return;
    }
    clearTimeout(armed);
    armed = 0;
    deleteButton.textContent = "Delete stream";
    message.replaceChildren();
    try {
      const answer = await api("/api/stream/" + path(stream), { method: "DELETE" });
      toast(`Deleted ${stream} (${answer["deleted-events"]} events).`);
      location.hash = "#/streams";
    } catch (error) {
      message.replaceChildren(errorBox(error));
    }
  });
  async function save() {
    message.replaceChildren();
    try {
      saveFile(await download("/export/stream/" + path(stream)), stream + ".ndjson");
    } catch (error) {
      message.replaceChildren(errorBox(error));
    }
  }
  main.append(
    h("div", { class: "crumbs" }, h("a", { href: "#/streams" }, "Streams"), " / "),
    pageHead(
      stream,
      count,
      h("a", { class: "button", href: `#/tail/${encodeURIComponent(stream)}` }, "Live tail"),
      many ? null : h("a", { class: "button", href: "#/emit" + query({ stream }) }, "Emit here"),
      many
        ? null
        : h("button", { type: "button", onclick: save }, "Download"),
      many ? null : deleteButton,
    ),
    message,
    h(
      "form",
      {
        class: "toolbar",
        onsubmit: (event) => {
          event.preventDefault();
          go({ from: orderInput.value, "from-version": versionInput.value, types: typesInput.value.replace(/\s+/g, "") });
        },
      },
      h(
        "div",
        { class: "segmented", role: "group", "aria-label": "Order" },
        h("button", { type: "button", "aria-pressed": dir === "backward", onclick: () => go({ dir: "backward", from: "", "from-version": "" }) }, "Newest first"),
        h("button", { type: "button", "aria-pressed": dir === "forward", onclick: () => go({ dir: "forward", from: "", "from-version": "" }) }, "Oldest first"),
      ),
      many ? null : field("Jump to version", versionInput),
      field("Jump to order-id", orderInput),
      h("div", { class: "grow" }, field("Event types", typesInput, "Comma-separated; empty for all.")),
      h("button", { type: "submit", class: "primary" }, "Show"),
    ),
  );
  const body = h("div");
  main.append(body);
  const [page, info, meta] = await Promise.all([
    api(
      "/api/stream-contents/" + path(stream) +
        query({ direction: dir, from: params.from, "from-version": params["from-version"], "event-types": params.types, limit: EVENTS_PAGE }),
    ),
    many ? api("/api/server") : api("/api/streams" + query({ prefix: stream, limit: 1 })),
    many ? null : api("/api/stream-metadata/" + path(stream)),
  ]);
  if (isAll) count.textContent = `Every event in order-id order · last order-id ${number(info["last-order-id"])}`;
  else if (category !== null) count.textContent = `The events of every stream in category “${category}”, in order-id order`;
  else if (many) count.textContent = `The events of every stream the pattern matches, in order-id order`;
  else {
    const found = info.streams.find((s) => s["stream-name"] === stream);
    const version = found ? found["total-events"] : 0;
    const order = `${dir === "backward" ? "newest" : "oldest"} first`;
    const metadata = meta.metadata;
    if (Object.keys(metadata).length) {
      // Its max-age, max-count or truncate-before may hide events from reads: its version is then
      // not the number of events shown, and the metadata says why.
      count.textContent = `version ${number(version)} · ${order}`;
      body.append(h("p", { class: "sub", id: "stream-metadata" }, "Stream metadata (reads leave out the events it expires or truncates): ", h("code", {}, JSON.stringify(metadata))));
    } else count.textContent = `${number(version)} events · ${order}`;
  }
  body.append(eventTable(page.results, stream, many));
  body.append(
    h(
      "div",
      { class: "pager" },
      params.from || params["from-version"] ? h("button", { type: "button", onclick: () => go({ from: "", "from-version": "" }) }, dir === "backward" ? "Newest" : "Oldest") : null,
      page.next ? h("button", { type: "button", id: "next-page", onclick: () => go({ from: page.next, "from-version": "" }) }, dir === "backward" ? "Older →" : "Newer →") : null,
    ),
  );
}

export function eventTable(events, stream, withStream) {
  if (!events.length) return h("div", { class: "empty panel" }, "No events here.");
  return h(
    "div",
    { class: "table-wrap" },
    h(
      "table",
      { class: "events" },
      h(
        "thead",
        {},
        h(
          "tr",
          {},
          h("th", { scope: "col", class: "num" }, "Order-id"),
          withStream ? h("th", { scope: "col" }, "Stream") : null,
          h("th", { scope: "col", class: "num" }, "Version"),
          h("th", { scope: "col" }, "Type"),
          h("th", { scope: "col", class: "when" }, "Time (UTC)"),
          h("th", { scope: "col", class: "preview" }, "Payload"),
        ),
      ),
      h("tbody", {}, events.map((e) => eventRow(e, stream, withStream))),
    ),
  );
}

function eventRow(e, stream, withStream) {
  return h(
    "tr",
    {},
    h("td", { class: "num" }, h("a", { href: eventHref(stream, e["order-id"]) }, e["order-id"])),
    withStream ? h("td", { class: "name" }, h("a", { href: streamHref(e["stream-name"]) }, e["stream-name"])) : null,
    h("td", { class: "num" }, e["stream-version"]),
    h("td", {}, e["event-type"]),
    h("td", { class: "when" }, when(e["event-time"])),
    h("td", { class: "preview" }, preview(e.payload)),
  );
}

export async function eventPage(main, [stream, orderId]) {
  const event = await api(`/api/event/${path(stream)}/${orderId}`);
  showEvent(main, event, stream);
}

export async function eventByIdPage(main, [id]) {
  const event = await api("/api/event-id/" + path(id));
  showEvent(main, event, event["stream-name"]);
}

function showEvent(main, e, from) {
  const name = e["stream-name"];
  const rows = [
    ["Stream", h("a", { href: streamHref(name) }, name)],
    ["Version", e["stream-version"]],
    ["Order-id", h("a", { href: streamHref("__all__", { dir: "backward", from: e["order-id"] }) }, e["order-id"])],
    ["Type", e["event-type"]],
    ["Id", h("code", {}, e.id)],
    ["Time", `${when(e["event-time"])} UTC (${e["event-time"]})`],
  ];
  if (e["service-id"] !== undefined) rows.push(["Service", e["service-id"]]);
  if (e.schema !== undefined) rows.push(["Schema", String(e.schema)]);
  if (e["caused-by"] !== undefined) rows.push(["Caused by", h("a", { href: "#/event-id/" + encodeURIComponent(e["caused-by"]), id: "caused-by" }, e["caused-by"])]);
  if (e["caused-by-relation"] !== undefined) rows.push(["Relation", e["caused-by-relation"]]);
  main.append(
    h("div", { class: "crumbs" }, h("a", { href: "#/streams" }, "Streams"), " / ", h("a", { href: streamHref(from) }, from), " /"),
    pageHead(
      e["event-type"],
      `${name} · version ${e["stream-version"]} · order-id ${e["order-id"]}`,
      h("a", { class: "button", href: streamHref(name, { dir: "forward", "from-version": e["stream-version"] }) }, "Show in stream"),
      h("a", { class: "button", href: "#/emit" + query({ stream: name, "caused-by": e.id }) }, "Emit a caused event"),
    ),
    h("section", { class: "panel pad", "aria-labelledby": "meta-h" }, h("h2", { id: "meta-h", class: "flush" }, "Metadata"), h("dl", { class: "meta" }, rows.flatMap(([k, v]) => [h("dt", {}, k), h("dd", {}, v)]))),
    h("h2", { id: "payload-h" }, "Payload"),
    jsonBlock(e.payload, "Payload"),
    h("h2", {}, "The whole event"),
    jsonBlock(e, "The whole event as JSON"),
  );
}
