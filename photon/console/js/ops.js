// Consumers, server and backup pages.
import { api, path, query, download } from "./api.js";
import { h, pageHead, field, jsonBlock, number, errorBox, toast, saveFile, streamHref } from "./ui.js";

const POLL_MS = 2000;
const RECENT_KEY = "photon.consumers";

function recentConsumers() {
  try {
    return JSON.parse(localStorage.getItem(RECENT_KEY) || "[]");
  } catch (e) {
    return [];
  }
}

export async function consumersPage(main) {
  const nameInput = h("input", { type: "text", autocomplete: "off", "data-slash": true });
  const body = h("div", { "aria-live": "polite" });
  const recent = h("div", { class: "keys" });
  const groups = h("div");
  const groupMessage = h("div", { "aria-live": "polite", id: "group-message" });
  main.append(
    pageHead("Consumers", "Consumer groups and durable named subscriptions; groups refresh every 2 s."),
    h("h2", { class: "flush" }, "Consumer groups"),
    groupMessage,
    groups,
    h("h2", {}, "Durable subscriptions"),
    h("p", { class: "sub" }, "A durable consumer's position, by its name: the server keeps each consumer's last acknowledged order-id."),
    h("form", { class: "toolbar", onsubmit: (e) => { e.preventDefault(); show(nameInput.value.trim()); } },
      h("div", { class: "grow" }, field("Consumer name", nameInput, "The name a consumer subscribes with (GET /api/subscription/{name}).")),
      h("button", { type: "submit", class: "primary" }, "Show")),
    recent,
    body,
  );
  function showRecent() {
    recent.replaceChildren(...recentConsumers().map((n) => h("a", { href: "#", onclick: (e) => { e.preventDefault(); nameInput.value = n; show(n); } }, n)));
  }
  async function show(name) {
    if (!name) return;
    body.replaceChildren();
    try {
      const [position, server] = await Promise.all([api(`/api/subscription/${path(name)}/position`), api("/api/server")]);
      const names = [name, ...recentConsumers().filter((n) => n !== name)].slice(0, 12);
      localStorage.setItem(RECENT_KEY, JSON.stringify(names));
      showRecent();
      const acked = position.acked ?? position["order-id"] ?? null;
      const resetButton = h("button", { type: "button", class: "danger" }, "Reset (forget the position)");
      resetButton.addEventListener("click", async () => {
        if (resetButton.dataset.armed !== "1") {
          resetButton.dataset.armed = "1";
          resetButton.textContent = "Click again to reset";
          return;
        }
        try {
          await api(`/api/subscription/${path(name)}`, { method: "DELETE" });
          body.replaceChildren(h("div", { class: "alert ok", role: "status", id: "consumer-reset" },
            `Consumer ${name} was reset: its next connection starts from the beginning of its stream.`));
        } catch (error) {
          body.append(errorBox(error));
        }
      });
      body.append(
        h("div", { class: "cards" },
          card("Consumer", name),
          card("Stream", position.stream || position["stream-name"] || "–"),
          card("Acknowledged up to", number(acked)),
          card("Behind __all__ by", typeof acked === "number" ? number(Math.max(0, server["last-order-id"] - acked)) : "–")),
        h("div", { class: "actions" }, resetButton),
        h("h2", {}, "Position as the API gives it"),
        jsonBlock(position, "Position"),
      );
    } catch (error) {
      body.append(errorBox(error));
    }
  }
  showRecent();
  let timer = 0;
  let stopped = false;
  async function loadGroups() {
    try {
      const [answer, server] = await Promise.all([api("/api/groups"), api("/api/server")]);
      // Buttons that are half-way through a two-step action survive a refresh: skip it then.
      if (!groups.querySelector("[data-armed='1']")) groups.replaceChildren(groupTable(answer.groups, server["last-order-id"], groupAction));
    } catch (error) {
      groups.replaceChildren(error.status === 404 ? h("p", { class: "sub" }, "This server has no consumer groups.") : errorBox(error));
    }
    if (!stopped) timer = setTimeout(loadGroups, POLL_MS);
  }
  async function groupAction(name, action, value) {
    groupMessage.replaceChildren();
    try {
      const base = `/api/group/${path(name)}`;
      if (action === "replay") {
        const answer = await api(base + "/replay-parked", { method: "POST", body: {} });
        groupMessage.append(h("div", { class: "alert ok", role: "status" }, `${name}: ${number(answer.replayed)} parked events handed back.`));
      } else if (action === "reset") {
        await api(base + "/reset", { method: "POST", body: { from: Number(value) } });
        groupMessage.append(h("div", { class: "alert ok", role: "status" }, `${name} starts over from order-id ${value}.`));
      } else if (action === "delete") {
        await api(base, { method: "DELETE" });
        groupMessage.append(h("div", { class: "alert ok", role: "status" }, `Deleted the group ${name}.`));
      }
    } catch (error) {
      groupMessage.append(errorBox(error));
    }
    clearTimeout(timer);
    loadGroups();
  }
  await loadGroups();
  return () => {
    stopped = true;
    clearTimeout(timer);
  };
}

function groupTable(list, head, act) {
  if (!list.length) return h("p", { class: "sub" }, "No consumer groups. Create one with POST /api/groups.");
  const armed = (button, label, run) => {
    button.addEventListener("click", () => {
      if (button.dataset.armed !== "1") {
        button.dataset.armed = "1";
        button.textContent = label;
        return;
      }
      run();
    });
    return button;
  };
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
              armed(h("button", { type: "button", "aria-label": `Reset ${name} to the order-id given` }, "Reset"), "Click again to reset", () => act(name, "reset", from.value)),
              armed(h("button", { type: "button", class: "danger", "aria-label": `Delete ${name}` }, "Delete"), "Click again to delete", () => act(name, "delete")),
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
        fetch("/api/ping").then((r) => r.ok),
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
      body.replaceChildren(errorBox(error));
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
