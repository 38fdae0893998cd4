// Small DOM helpers shared by the pages.

// h("a", {href: "#/x", class: "y"}, "text", child...): an element; attributes starting "on" are listeners.
export function h(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    // ARIA states are strings: aria-pressed={false} must read "false", not be left out.
    if (key.startsWith("aria-") && typeof value === "boolean") {
      node.setAttribute(key, String(value));
      continue;
    }
    if (value === undefined || value === null || value === false) continue;
    if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else if (key === "class") node.className = value;
    else if (key === "html") node.innerHTML = value;
    else node.setAttribute(key, value === true ? "" : String(value));
  }
  for (const child of children.flat()) {
    if (child === undefined || child === null || child === false) continue;
    node.append(child instanceof Node ? child : String(child));
  }
  return node;
}

const ESCAPES = { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" };
export function esc(text) {
  return String(text).replace(/[&<>"']/g, (c) => ESCAPES[c]);
}

export function streamHref(stream, params) {
  const q = new URLSearchParams(params || {}).toString();
  return `#/stream/${encodeURIComponent(stream)}${q ? "?" + q : ""}`;
}

export function eventHref(stream, orderId) {
  return `#/event/${encodeURIComponent(stream)}/${orderId}`;
}

// A number typed in a field, as sent to the API: digits that JavaScript holds exactly go as a
// number; anything else (empty, a sign, digits beyond 2^53) goes as typed, so the server's
// refusal names the field and the text given rather than a number the user did not type.
export function typedNumber(text) {
  return /^\d+$/.test(text) && Number.isSafeInteger(Number(text)) ? Number(text) : text;
}

export function when(ms) {
  if (typeof ms !== "number") return "";
  const d = new Date(ms);
  return d.toISOString().replace("T", " ").replace("Z", "");
}

export function number(n) {
  return typeof n === "number" ? n.toLocaleString("en-US") : n === null || n === undefined ? "–" : String(n);
}

// Pretty JSON as highlighted HTML (escaped). Long text is cut at `limit` characters.
export function jsonHtml(value, limit = 400000) {
  let text = JSON.stringify(value, null, 2);
  if (text === undefined) text = "undefined";
  let cut = "";
  if (text.length > limit) {
    text = text.slice(0, limit);
    cut = "\n… (cut: the value is longer than this view shows)";
  }
  const html = esc(text).replace(
    /(&quot;(?:[^&\\]|\\.|&(?!quot;))*&quot;)(\s*:)?|\b(-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?)\b|\b(true|false|null)\b/g,
    (all, str, colon, num, lit) => {
      if (str) return `<span class="${colon ? "j-key" : "j-str"}">${str}</span>${colon || ""}`;
      if (num) return `<span class="j-num">${num}</span>`;
      return `<span class="j-lit">${lit}</span>`;
    },
  );
  return html + esc(cut);
}

export function jsonBlock(value, label) {
  return h("pre", { class: "json", tabindex: "0", "aria-label": label || "JSON", html: jsonHtml(value) });
}

export function preview(value, length = 160) {
  const text = JSON.stringify(value);
  return text && text.length > length ? text.slice(0, length) + "…" : text || "";
}

export function errorBox(error) {
  return h("div", { class: "alert error", role: "alert" }, error && error.message ? error.message : String(error));
}

export function toast(message) {
  const box = document.getElementById("toast");
  box.textContent = message;
  clearTimeout(toast.timer);
  toast.timer = setTimeout(() => (box.textContent = ""), 4000);
}

export function pageHead(title, sub, ...actions) {
  return h(
    "div",
    { class: "page-head" },
    h("div", {}, h("h1", {}, title), sub ? h("p", { class: "sub" }, sub) : null),
    actions.length ? h("div", { class: "actions" }, ...actions) : null,
  );
}

export function field(label, input, hint) {
  const id = input.id || "f-" + Math.random().toString(36).slice(2, 9);
  input.id = id;
  return h("div", { class: "field" }, h("label", { for: id }, label), input, hint ? h("span", { class: "hint" }, hint) : null);
}

export function saveFile(blob, name) {
  const url = URL.createObjectURL(blob);
  const a = h("a", { href: url, download: name });
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10000);
}
