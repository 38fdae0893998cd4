// Consumers, server and backup pages.
import { api, path, query, download } from "./api.js";
import { h, pageHead, field, number, errorBox, saveFile, streamHref, typedNumber } from "./ui.js";

const POLL_MS = 2000;

export async function consumersPage(main) {
  const groups = h("div");
  const subscriptions = h("div");
  const message = h("div", { "aria-live": "polite", id: "group-message" });
  main.append(
    pageHead("Consumers", "Consumer groups and durable subscriptions, with their positions; refreshed every 2 s."),
    message,
    h("h2", { class: "flush" }, "Consumer groups"),
    groups,
    h("h2", {}, "Durable subscriptions"),
    subscriptions,
  );
  let timer = 0;
  let stopped = false;
  // Tables with a button half-way through a two-step action are not refreshed until it is done.
  const armed = (box) => box.querySelector("[data-armed='1']");
  async function load() {
    const [groupAnswer, subAnswer, server] = await Promise.all([
      api("/api/groups").catch((error) => error),
      api("/api/subscriptions").catch((error) => error),
      api("/api/server").catch(() => ({ "last-order-id": 0 })),
    ]);
    const head = server["last-order-id"];
    if (!armed(groups)) {
      if (groupAnswer instanceof Error) groups.replaceChildren(groupAnswer.status === 404 ? h("p", { class: "sub" }, "This server has no consumer groups.") : errorBox(groupAnswer));
      else groups.replaceChildren(groupTable(groupAnswer.groups, head, act));
    }
    if (!armed(subscriptions)) {
      if (subAnswer instanceof Error) subscriptions.replaceChildren(errorBox(subAnswer));
      else subscriptions.replaceChildren(subscriptionTable(subAnswer.subscriptions, act));
    }
    if (!stopped) timer = setTimeout(load, POLL_MS);
  }
  async function act(name, action, value) {
    message.replaceChildren();
    try {
      const base = `/api/group/${path(name)}`;
      if (action === "replay") {
        const answer = await api(base + "/replay-parked", { method: "POST", body: {} });
        message.append(h("div", { class: "alert ok", role: "status" }, `${name}: ${number(answer.replayed)} parked events handed back.`));
      } else if (action === "reset") {
        await api(base + "/reset", { method: "POST", body: { from: typedNumber(value) } });
        message.append(h("div", { class: "alert ok", role: "status" }, `${name} starts over from order-id ${value}.`));
      } else if (action === "delete") {
        await api(base, { method: "DELETE" });
        message.append(h("div", { class: "alert ok", role: "status" }, `Deleted the group ${name}.`));
      } else if (action === "forget") {
        await api(`/api/subscription/${path(name)}`, { method: "DELETE" });
        message.append(h("div", { class: "alert ok", role: "status", id: "consumer-reset" },
          `Consumer ${name} was reset: its next connection starts from the beginning of its stream.`));
      }
    } catch (error) {
      message.append(errorBox(error));
    }
    clearTimeout(timer);
    groups.querySelectorAll("[data-armed]").forEach((b) => delete b.dataset.armed);
    subscriptions.querySelectorAll("[data-armed]").forEach((b) => delete b.dataset.armed);
    load();
  }
  await load();
  return () => {
    stopped = true;
    clearTimeout(timer);
  };
}

function twoStep(button, label, run) {
  button.addEventListener("click", () => {
    if (button.dataset.armed !== "1") {
      button.dataset.armed = "1";
      button.textContent = label;
      return;
    }
    run();
  });
  return button;
}

function subscriptionTable(list, act) {
  if (!list.length) return h("p", { class: "sub" }, "No durable subscriptions. A consumer is one once it connects to GET /api/subscription/{name}.");
  return h(
    "div",
    { class: "table-wrap" },
    h(
      "table",
      { id: "subscriptions-table" },
      h("thead", {}, h("tr", {},
        h("th", { scope: "col" }, "Consumer"), h("th", { scope: "col" }, "Stream"),
        h("th", { scope: "col", class: "num" }, "Acknowledged up to"), h("th", { scope: "col", class: "num" }, "Behind head"),
        h("th", { scope: "col" }, "Actions"))),
      h(
        "tbody",
        {},
        list.map((c) =>
          h(
            "tr",
            { "data-name": c.consumer },
            h("td", { class: "name" }, h("strong", {}, c.consumer)),
            h("td", { class: "name" }, h("a", { href: streamHref(c.stream) }, c.stream)),
            h("td", { class: "num" }, number(c.acked)),
            h("td", { class: "num" }, number(c.behind)),
            h("td", { class: "row-actions" },
              twoStep(h("button", { type: "button", class: "danger", "aria-label": `Reset ${c.consumer}: forget its position` }, "Reset"), "Click again to reset", () => act(c.consumer, "forget"))),
          ),
        ),
      ),
    ),
  );
}

function groupTable(list, head, act) {
  if (!list.length) return h("p", { class: "sub" }, "No consumer groups. Create one with POST /api/groups.");
  return h(
    "div",
    { class: "table-wrap" },
    h(
      "table",
      { id: "groups-table" },
      h("thead", {}, h("tr", {},
        h("th", { scope: "col" }, "Group"), h("th", { scope: "col" }, "Source"), h("th", { scope: "col" }, "Strategy"),
        h("th", { scope: "col", class: "num" }, "Checkpoint"), h("th", { scope: "col", class: "num" }, "Behind head"),
        h("th", { scope: "col", class: "num" }, "In flight"), h("th", { scope: "col", class: "num" }, "Members"),
        h("th", { scope: "col", class: "num" }, "Parked"), h("th", { scope: "col" }, "Actions"))),
      h(
        "tbody",
        {},
        list.map((g) => {
          const name = g["group-name"];
          const from = h("input", { type: "number", min: "1", value: "1", class: "narrow", "aria-label": `Order-id to reset ${name} to` });
          return h(
            "tr",
            { "data-name": name },
            h("td", { class: "name" }, h("strong", {}, name)),
            h("td", { class: "name" }, g.stream),
            h("td", {}, g.strategy + (g.serial ? ", serial" : "")),
            h("td", { class: "num" }, number(g.checkpoint)),
            h("td", { class: "num" }, number(Math.max(0, head - g.checkpoint))),
            h("td", { class: "num" }, number(g["in-flight"])),
            h("td", { class: "num" }, number((g.members || []).length)),
            h("td", { class: "num" }, h("a", { href: streamHref(g["parked-stream"]), "aria-label": `Parked events of ${name}` }, number(g.parked))),
            h(
              "td",
              { class: "row-actions" },
              h("button", { type: "button", onclick: () => act(name, "replay"), "aria-label": `Replay the parked events of ${name}` }, "Replay parked"),
              from,
              twoStep(h("button", { type: "button", "aria-label": `Reset ${name} to the order-id given` }, "Reset"), "Click again to reset", () => act(name, "reset", from.value)),
              twoStep(h("button", { type: "button", class: "danger", "aria-label": `Delete ${name}` }, "Delete"), "Click again to delete", () => act(name, "delete")),
            ),
          );
        }),
      ),
    ),
  );
}

function card(label, value, id) {
  return h("div", { class: "card" }, h("div", { class: "label" }, label), h("div", { class: "value", id }, value));
}

export async function serverPage(main) {
  const body = h("div");
  main.append(pageHead("Server", "Health, version, backend and live rates; refreshed every 2 s."), body);
  let previous = null;
  let timer = 0;
  let stopped = false;
  async function load() {
    try {
      const started = performance.now();
      const [ping, info, projections] = await Promise.all([
        fetch("/api/ping").then((r) => r.ok, () => false),
        api("/api/server"),
        api("/api/projections").catch(() => []),
      ]);
      const pingMs = Math.round(performance.now() - started);
      const folded = projections.reduce((n, p) => n + (p.processed || 0), 0);
      const now = { t: info.now, appended: info["events-appended"], replayed: info["events-replayed"], folded };
      const rate = (key) => (previous && now.t > previous.t ? Math.max(0, Math.round(((now[key] - previous[key]) * 1000) / (now.t - previous.t))) : null);
      const settings = Object.entries(info.settings);
      body.replaceChildren(
        h("div", { class: "cards" },
          card("Health", ping ? "OK" : "not answering", "health"),
          card("Version", info.version),
          card("Backend", info["db-backend"] || "–"),
          card("Uptime", duration(info["uptime-seconds"])),
          card("Last order-id", number(info["last-order-id"])),
          card("Events in /s", rate("appended") === null ? "…" : number(rate("appended")), "rate-in"),
          card("Replayed /s", rate("replayed") === null ? "…" : number(rate("replayed"))),
          card("Folded /s", rate("folded") === null ? "…" : number(rate("folded"))),
          card("Subscribers", number(info.subscribers), "subscribers"),
          card("TCP connections", number(info["tcp-connections"])),
          card("API round trip", `${pingMs} ms`)),
        h("p", { class: "sub" }, "Store: ", h("code", {}, info.backend)),
        h("h2", {}, "Settings"),
        h("p", { class: "sub" }, "Secrets are hidden (****)."),
        h("div", { class: "table-wrap" }, h("table", { id: "settings-table" },
          h("thead", {}, h("tr", {}, h("th", { scope: "col" }, "Key"), h("th", { scope: "col" }, "Value"))),
          h("tbody", {}, settings.map(([k, v]) => h("tr", {}, h("td", { class: "mono" }, k), h("td", { class: "name mono" }, v === null ? "" : String(v))))))),
      );
      previous = now;
    } catch (error) {
      body.replaceChildren(h("div", { class: "cards" }, card("Health", error.status === 0 ? "not answering" : "error", "health")), errorBox(error));
    }
    if (!stopped) timer = setTimeout(load, POLL_MS);
  }
  await load();
  return () => {
    stopped = true;
    clearTimeout(timer);
  };
}

function duration(seconds) {
  const s = Math.floor(seconds);
  const d = Math.floor(s / 86400);
  const hh = Math.floor((s % 86400) / 3600);
  const mm = Math.floor((s % 3600) / 60);
  return d ? `${d}d ${hh}h` : hh ? `${hh}h ${mm}m` : `${mm}m ${s % 60}s`;
}

export async function backupPage(main) {
  const streamInput = h("input", { type: "text", autocomplete: "off", "data-slash": true });
  const fileInput = h("input", { type: "file", accept: ".ndjson,.jsonl,.json,application/x-ndjson" });
  const renameInput = h("input", { type: "text", autocomplete: "off" });
  const allStatus = h("div", { "aria-live": "polite" });
  const streamStatus = h("div", { "aria-live": "polite" });
  const uploadStatus = h("div", { "aria-live": "polite", id: "upload-result" });
  const stamp = () => new Date().toISOString().slice(0, 19).replace(/[:T]/g, "-");
  main.append(
    pageHead("Backup", "Download the store or one stream as JSON lines; upload a stream."),
    h("section", { class: "panel pad", "aria-labelledby": "b-all" },
      h("h2", { id: "b-all", class: "flush" }, "The whole store (__all__)"),
      h("p", { class: "sub" }, "Every event in order, __config__ included: `photon restore FILE` loads it into an empty store of any backend."),
      h("button", { type: "button", class: "primary", id: "download-all", onclick: async () => {
        allStatus.replaceChildren(h("p", { class: "sub" }, "Preparing…"));
        try {
          saveFile(await download("/api/replay/__all__?stream-type=cold"), `photon-backup-${stamp()}.jsonl`);
          allStatus.replaceChildren(h("p", { class: "sub" }, "Downloaded."));
        } catch (error) {
          allStatus.replaceChildren(errorBox(error));
        }
      } }, "Download backup"),
      allStatus),
    h("section", { class: "panel pad", "aria-labelledby": "b-one" },
      h("h2", { id: "b-one", class: "flush" }, "One stream"),
      h("form", { class: "toolbar", onsubmit: async (e) => {
        e.preventDefault();
        const name = streamInput.value.trim();
        if (!name) return;
        try {
          saveFile(await download("/export/stream/" + path(name)), name + ".ndjson");
          streamStatus.replaceChildren(h("p", { class: "sub" }, "Downloaded."));
        } catch (error) {
          streamStatus.replaceChildren(errorBox(error));
        }
      } }, h("div", { class: "grow" }, field("Stream", streamInput)), h("button", { type: "submit" }, "Download stream")),
      streamStatus),
    h("section", { class: "panel pad", "aria-labelledby": "b-up" },
      h("h2", { id: "b-up", class: "flush" }, "Upload a stream"),
      h("p", { class: "sub" }, "A file of one stream's events (as downloaded above), stored as a new stream; a taken name becomes name-0, name-1…"),
      h("form", { class: "toolbar", onsubmit: async (e) => {
        e.preventDefault();
        uploadStatus.replaceChildren();
        if (!fileInput.files.length) {
          uploadStatus.append(errorBox("Choose a file first."));
          return;
        }
        const form = new FormData();
        form.append("file", fileInput.files[0]);
        try {
          const answer = await api("/api/new-stream" + query({ name: renameInput.value.trim() }), { method: "POST", body: form });
          uploadStatus.append(h("div", { class: "alert ok", role: "status" }, `Stored ${number(answer.events)} events as `, h("a", { href: streamHref(answer["stream-name"]) }, answer["stream-name"]), "."));
        } catch (error) {
          uploadStatus.append(errorBox(error));
        }
      } }, field("File", fileInput), h("div", { class: "grow" }, field("New name (optional)", renameInput)), h("button", { type: "submit" }, "Upload")),
      uploadStatus),
  );
}
