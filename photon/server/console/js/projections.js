// Projections: the list (status, processed, lag, last error), one projection's value (live,
// and by key), and the code editor that creates or replaces one.
import { api, path, query, streamLines } from "./api.js";
import { h, pageHead, field, jsonBlock, jsonHtml, number, errorBox, toast, eventHref, streamHref } from "./ui.js";
import { codeEditor } from "./editor.js";

const POLL_MS = 2000;

function badge(status) {
  return h("span", { class: "badge " + status }, status);
}

function lag(p, head) {
  return typeof p.position === "number" ? Math.max(0, head - p.position) : null;
}

export async function projectionsPage(main) {
  const body = h("div", { "aria-live": "off" });
  main.append(
    pageHead("Projections", "Reductions folded over a stream; the list refreshes every 2 s.",
      h("a", { class: "button primary", href: "#/projection-edit", id: "new-projection" }, "New projection")),
    body,
  );
  let timer = 0;
  let stopped = false;
  async function load() {
    try {
      const [list, server] = await Promise.all([api("/api/projections"), api("/api/server")]);
      body.replaceChildren(projectionTable(list, server["last-order-id"]));
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

function projectionTable(list, head) {
  if (!list.length) return h("div", { class: "empty panel" }, "No projections yet. ", h("a", { href: "#/projection-edit" }, "Create one"), ".");
  return h(
    "div",
    { class: "table-wrap" },
    h(
      "table",
      { id: "projections-table" },
      h("thead", {}, h("tr", {},
        h("th", { scope: "col" }, "Projection"), h("th", { scope: "col" }, "Stream"), h("th", { scope: "col" }, "Language"),
        h("th", { scope: "col" }, "Status"), h("th", { scope: "col", class: "num" }, "Processed"), h("th", { scope: "col", class: "num" }, "Lag"),
        h("th", { scope: "col" }, "Last error"))),
      h(
        "tbody",
        {},
        list.map((p) =>
          h(
            "tr",
            { "data-name": p["projection-name"] },
            h("td", { class: "name" }, h("a", { href: "#/projection/" + encodeURIComponent(p["projection-name"]) }, p["projection-name"])),
            h("td", { class: "name" }, p["stream-name"] || ""),
            h("td", {}, p.language || ""),
            h("td", {}, badge(p.status)),
            h("td", { class: "num" }, number(p.processed)),
            h("td", { class: "num" }, number(lag(p, head))),
            h(
              "td",
              {},
              p["last-error"] ? h("span", { class: "error-text" }, p["last-error"].slice(0, 160)) : "",
              p["failed-at"] ? [" ", h("a", { href: eventHref("__all__", p["failed-at"]) }, `failing event #${p["failed-at"]}`)] : null,
            ),
          ),
        ),
      ),
    ),
  );
}

export async function projectionPage(main, [name]) {
  const controller = new AbortController();
  const p = await api("/api/projection/" + path(name));
  const status = h("span", {}, badge(p.status));
  const processed = h("strong", { id: "processed" }, number(p.processed));
  const valueBox = h("pre", { class: "json", id: "projection-value", tabindex: "0", "aria-label": "Current value", html: jsonHtml(p["current-value"]) });
  const keyInput = h("input", { type: "text", autocomplete: "off", "data-slash": true });
  const keyResult = h("div", { "aria-live": "polite" });
  const keys = h("div", { class: "keys" });
  const failure = h("div");
  const liveBadge = h("span", { class: "badge live", id: "value-live" }, "live");
  let armed = 0;
  const deleteButton = h("button", { type: "button", class: "danger" }, "Delete");
  // What the delete failed with: under the page's head, where it is seen.
  const message = h("div", { id: "projection-message" });
  deleteButton.addEventListener("click", async () => {
    if (!armed) {
      deleteButton.textContent = "Click again to delete";
      armed = setTimeout(() => ((armed = 0), (deleteButton.textContent = "Delete")), 5000);
      return;
    }
    clearTimeout(armed);
    armed = 0;
    deleteButton.textContent = "Delete";
    message.replaceChildren();
    try {
      await api("/api/projection/" + path(name), { method: "DELETE" });
      toast(`Deleted projection ${name}.`);
      location.hash = "#/projections";
    } catch (error) {
      message.replaceChildren(errorBox(error));
    }
  });

  function showFailure(d) {
    failure.replaceChildren();
    if (d.status === "failed" && d["last-error"]) {
      failure.append(
        h("div", { class: "alert error", role: "alert", id: "projection-error" }, d["last-error"]),
        d["failed-at"] ? h("p", {}, h("a", { class: "button", href: eventHref("__all__", d["failed-at"]), id: "failing-event" }, `Show the event that failed it (order-id ${d["failed-at"]})`)) : null,
      );
    }
  }
  function showKeys(value) {
    keys.replaceChildren();
    if (value && typeof value === "object" && !Array.isArray(value)) {
      const names = Object.keys(value);
      for (const k of names.slice(0, 60)) keys.append(h("a", { href: "#", onclick: (e) => { e.preventDefault(); keyInput.value = k; lookUp(); } }, k));
      if (names.length > 60) keys.append(h("span", { class: "sub" }, `… ${names.length - 60} more`));
    }
  }
  async function lookUp() {
    keyResult.replaceChildren();
    if (!keyInput.value) return;
    try {
      const value = await api(`/api/projection/${path(name)}/${path(keyInput.value)}`);
      keyResult.append(jsonBlock(value, `Value of key ${keyInput.value}`));
    } catch (error) {
      keyResult.append(errorBox(error));
    }
  }

  main.append(
    h("div", { class: "crumbs" }, h("a", { href: "#/projections" }, "Projections"), " /"),
    pageHead(name, h("span", {}, status, " over ", h("a", { href: streamHref(p["stream-name"]) }, p["stream-name"]), ` · ${p.language} · processed `, processed),
      h("a", { class: "button", href: "#/projection-edit/" + encodeURIComponent(name) }, "Edit code"), deleteButton),
    message,
    failure,
    h("h2", {}, "Current value ", liveBadge),
    valueBox,
    h("h2", {}, "By key"),
    h("form", { class: "toolbar", onsubmit: (e) => { e.preventDefault(); lookUp(); } },
      h("div", { class: "grow" }, field("Key", keyInput)), h("button", { type: "submit" }, "Look up")),
    keys,
    keyResult,
    h("details", {}, h("summary", {}, "Descriptor"), jsonBlock({ ...p, "current-value": undefined }, "Descriptor")),
  );
  showFailure(p);
  showKeys(p["current-value"]);

  // Live: the updates stream. A burst of updates renders once, in a frame, the newest only (the
  // others are not even parsed). A big value (thousands of keys) takes a long time to draw:
  // the next drawing waits four times as long as the last one took, so drawing holds the page at
  // most a fifth of the time and it stays usable however fast the value changes.
  let latest = null;
  let frame = 0;
  let timer = 0;
  let nextAt = 0;
  function schedule() {
    if (frame || timer) return;
    const wait = nextAt - performance.now();
    if (wait > 0) timer = setTimeout(() => ((timer = 0), (frame = requestAnimationFrame(render))), wait);
    else frame = requestAnimationFrame(render);
  }
  function render() {
    frame = 0;
    const began = performance.now();
    const d = JSON.parse(latest);
    valueBox.innerHTML = jsonHtml(d["current-value"]);
    processed.textContent = number(d.processed);
    status.replaceChildren(badge(d.status));
    showKeys(d["current-value"]);
    if (d.status === "failed") api("/api/projection/" + path(name)).then(showFailure, () => {});
    valueBox.getBoundingClientRect(); // its layout counted in the time drawing took
    nextAt = performance.now() + 4 * (performance.now() - began);
  }
  // The updates stream gives the current state, then each new one. When it ends (the server went
  // away) the badge says so and it is opened again every second: the value is live again, and
  // up to date, once the server is back.
  function setLive(live) {
    liveBadge.textContent = live ? "live" : "not live";
    liveBadge.className = "badge " + (live ? "live" : "off");
  }
  async function follow() {
    for (;;) {
      try {
        await streamLines("/api/projection/" + path(name) + "/updates", (lines) => {
          if (liveBadge.textContent !== "live") setLive(true);
          for (const line of lines) if (line.startsWith("data: ")) latest = line.slice(6);
          if (latest) schedule();
        }, { signal: controller.signal, accept: "text/event-stream" });
      } catch (error) {
        if (controller.signal.aborted) return;
        if (error.status === 404) {
          // Deleted meanwhile: nothing to follow any more.
          setLive(false);
          failure.replaceChildren(errorBox(error));
          return;
        }
      }
      if (controller.signal.aborted) return;
      setLive(false);
      await new Promise((resolve) => setTimeout(resolve, 1000));
    }
  }
  follow();
  return () => {
    controller.abort();
    cancelAnimationFrame(frame);
    clearTimeout(timer);
  };
}

const TEMPLATES = {
  python: "def reduction(state, event):\n    # state: the value so far; event: the stored event (hyphenated keys)\n    return state + 1\n",
  hy: "(fn [state event]\n  ;; state: the value so far; event: the stored event\n  (+ state 1))\n",
};

export async function projectionEditPage(main, [name]) {
  const existing = name ? await api("/api/projection/" + path(name)) : null;
  const language = existing ? existing.language : "python";
  const nameInput = h("input", { type: "text", required: true, value: name || "", autocomplete: "off", readonly: existing ? true : undefined });
  const streamInput = h("input", { type: "text", value: existing ? existing["stream-name"] : "__all__", autocomplete: "off" });
  const typesInput = h("input", { type: "text", value: existing && existing["event-types"] ? existing["event-types"].join(",") : "", autocomplete: "off" });
  const languageSelect = h("select", {}, h("option", { value: "python" }, "Python"), h("option", { value: "hy" }, "Hy"));
  languageSelect.value = language;
  const initial = codeEditor({ id: "initial-value", label: "Initial value", language: "json", value: JSON.stringify(existing ? existing["initial-value"] : 0, null, 2), rows: 3 });
  const code = codeEditor({ id: "reduction", label: "Reduction", language, value: existing ? existing.reduction || "" : TEMPLATES[language], rows: 16 });
  const result = h("div", { "aria-live": "polite", id: "projection-result" });
  languageSelect.addEventListener("change", () => {
    const before = code.value;
    code.setLanguage(languageSelect.value);
    if (!existing && Object.values(TEMPLATES).includes(before)) code.value = TEMPLATES[languageSelect.value];
  });
  async function save(event) {
    event.preventDefault();
    result.replaceChildren();
    code.markLine(0);
    initial.markLine(0);
    let initialValue;
    try {
      initialValue = JSON.parse(initial.value);
    } catch (error) {
      initial.markLine(1);
      result.append(errorBox(`The initial value is not valid JSON: ${error.message}`));
      return;
    }
    const template = {
      "projection-name": nameInput.value.trim(),
      "stream-name": streamInput.value.trim() || "__all__",
      language: languageSelect.value,
      "initial-value": initialValue,
      reduction: code.value,
    };
    const types = typesInput.value.split(",").map((t) => t.trim()).filter(Boolean);
    if (types.length) template["event-types"] = types;
    try {
      await api("/api/projection", { method: "POST", body: template });
      toast(`Saved projection ${template["projection-name"]}.`);
      location.hash = "#/projection/" + encodeURIComponent(template["projection-name"]);
    } catch (error) {
      const box = errorBox(error);
      box.id = "projection-save-error";
      result.append(box);
      const line = /line (\d+)/.exec(error.message);
      if (line) {
        code.markLine(Number(line[1]));
        box.append(h("div", {}, `Marked at line ${line[1]} of the reduction.`));
      }
      code.textarea.focus();
    }
  }
  main.append(
    h("div", { class: "crumbs" }, h("a", { href: "#/projections" }, "Projections"), " /"),
    pageHead(existing ? `Edit ${name}` : "New projection", "Saving replaces a projection of the same name and folds it again from the start."),
    h(
      "form",
      { class: "stack", onsubmit: save },
      h("div", { class: "row" }, field("Name", nameInput), field("Stream", streamInput, "__all__ for every event"), field("Language", languageSelect), field("Event types", typesInput, "Comma-separated; empty for all")),
      h("div", { class: "field" }, h("label", { for: "initial-value" }, "Initial value (JSON)"), initial.root),
      h("div", { class: "field" }, h("label", { for: "reduction" }, "Reduction: a function of (state, event), or a module defining reduction"), code.root, code.hint),
      result,
      h("div", { class: "actions" }, h("button", { type: "submit", class: "primary", id: "save-projection" }, "Save projection"), h("a", { class: "button", href: "#/projections" }, "Cancel")),
    ),
  );
}
