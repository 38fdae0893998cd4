// Emit: append one event through POST /api/event, with the server's validation messages.
import { api, query } from "./api.js";
import { h, pageHead, field, errorBox, eventHref, jsonBlock, typedNumber } from "./ui.js";
import { codeEditor } from "./editor.js";

export async function emitPage(main, _params, q) {
  const stream = h("input", { type: "text", value: q.stream || "", required: true, autocomplete: "off", "data-slash": true });
  const type = h("input", { type: "text", value: q.type || "", required: true, autocomplete: "off" });
  const expected = h("input", { type: "text", value: "any", list: "expected-choices", autocomplete: "off" });
  const causedBy = h("input", { type: "text", value: q["caused-by"] || "", autocomplete: "off" });
  const serviceId = h("input", { type: "text", value: "", autocomplete: "off" });
  const payload = codeEditor({ id: "payload", label: "Payload", language: "json", value: '{\n  \n}', rows: 10 });
  const result = h("div", { "aria-live": "polite", id: "emit-result" });
  const form = h(
    "form",
    { class: "stack", novalidate: true, onsubmit: submit },
    h("div", { class: "row" }, field("Stream", stream), field("Event type", type), field("Expected version", expected, "any, no-stream, or a version (0 = the stream must not exist)")),
    h("div", { class: "field" }, h("label", { for: "payload" }, "Payload (JSON object)"), payload.root, payload.hint),
    h("details", {}, h("summary", {}, "Causation and origin"), h("div", { class: "row" }, field("Caused by (event id)", causedBy), field("Service id", serviceId))),
    result,
    h("div", { class: "actions" }, h("button", { type: "submit", class: "primary", id: "emit-submit" }, "Emit event")),
  );
  main.append(
    pageHead("Emit an event", "Appends one event with POST /api/event; the server checks it."),
    h("datalist", { id: "expected-choices" }, h("option", { value: "any" }), h("option", { value: "no-stream" })),
    form,
  );

  async function submit(event) {
    event.preventDefault();
    result.replaceChildren();
    payload.markLine(0);
    let body;
    try {
      body = JSON.parse(payload.value);
    } catch (error) {
      const line = lineOf(payload.value);
      payload.markLine(line);
      result.append(errorBox(`The payload is not valid JSON${line ? ` (line ${line})` : ""}: ${error.message}`));
      payload.textarea.focus();
      return;
    }
    const doc = { "stream-name": stream.value, "event-type": type.value, payload: body };
    if (causedBy.value) doc["caused-by"] = causedBy.value;
    if (serviceId.value) doc["service-id"] = serviceId.value;
    const version = expected.value.trim();
    const wrapper = { events: [doc] };
    if (version && version !== "any") wrapper["expected-version"] = typedNumber(version);
    try {
      const [stored] = await api("/api/event", { method: "POST", body: wrapper });
      result.append(
        h("div", { class: "alert ok", role: "status" }, "Stored: ",
          h("a", { href: eventHref(stored["stream-name"], stored["order-id"]), id: "emitted-link" }, `${stored["stream-name"]} version ${stored["stream-version"]}, order-id ${stored["order-id"]}`)),
        jsonBlock(stored, "The stored event"),
      );
    } catch (error) {
      const box = errorBox(error);
      box.id = "emit-error";
      result.append(box);
      const fieldName = error.body && error.body.field;
      const target = { "stream-name": stream, "event-type": type, payload: payload.textarea, "expected-version": expected, "caused-by": causedBy, "service-id": serviceId }[fieldName];
      if (target) target.focus();
    }
  }
}

// The line of the first JSON error. Browsers' JSON.parse messages do not always give a position,
// so the text is scanned by a small JSON reader that stops where the syntax breaks.
function lineOf(text) {
  let i = 0;
  const fail = () => {
    throw i;
  };
  const space = () => {
    while (i < text.length && " \t\n\r".includes(text[i])) i++;
  };
  const literal = (word) => (text.startsWith(word, i) ? (i += word.length) : fail());
  function string() {
    i++;
    while (i < text.length && text[i] !== '"') {
      if (text[i] === "\n") fail();
      i += text[i] === "\\" ? 2 : 1;
    }
    if (i >= text.length) fail();
    i++;
  }
  function value() {
    space();
    const c = text[i];
    if (c === "{") {
      i++;
      space();
      if (text[i] === "}") return void i++;
      for (;;) {
        space();
        if (text[i] !== '"') fail();
        string();
        space();
        if (text[i] !== ":") fail();
        i++;
        value();
        space();
        if (text[i] === ",") i++;
        else if (text[i] === "}") return void i++;
        else fail();
      }
    } else if (c === "[") {
      i++;
      space();
      if (text[i] === "]") return void i++;
      for (;;) {
        value();
        space();
        if (text[i] === ",") i++;
        else if (text[i] === "]") return void i++;
        else fail();
      }
    } else if (c === '"') string();
    else if (c === "t") literal("true");
    else if (c === "f") literal("false");
    else if (c === "n") literal("null");
    else {
      const m = /^-?\d+(\.\d+)?([eE][+-]?\d+)?/.exec(text.slice(i));
      if (!m) fail();
      i += m[0].length;
    }
  }
  try {
    value();
    space();
    if (i < text.length) fail();
    return 0;
  } catch (at) {
    if (typeof at !== "number") throw at;
    return text.slice(0, Math.min(at, text.length)).split("\n").length;
  }
}
