// A code editor: a plain <textarea> (so typing, selection, undo and screen readers work as in
// any field) over a highlighted copy of its text, with line numbers and an error-line marker.
// Tab indents; Escape then Tab moves focus on, so the keyboard is never trapped.
import { h } from "./ui.js";
import { highlight } from "./highlight.js";

export function codeEditor({ id, label, language = "python", value = "", rows = 14 }) {
  const gutter = h("div", { class: "gutter", "aria-hidden": "true" });
  const pre = h("pre", { "aria-hidden": "true" });
  const hintId = id + "-hint";
  const area = h("textarea", {
    id,
    rows,
    spellcheck: "false",
    autocapitalize: "off",
    autocomplete: "off",
    "aria-describedby": hintId,
    wrap: "off",
  });
  area.value = value;
  const root = h("div", { class: "editor" }, gutter, h("div", { class: "area" }, pre, area));
  const hint = h("div", { class: "editor-hint", id: hintId }, "Tab indents; Esc then Tab moves to the next field.");
  let lang = language;
  let errorLine = 0;
  let escaped = false;
  let scheduled = 0;

  function render() {
    scheduled = 0;
    const text = area.value;
    const lines = text.split("\n");
    let html = highlight(text, lang);
    if (errorLine > 0 && errorLine <= lines.length) {
      const parts = html.split("\n");
      parts[errorLine - 1] = `<span class="err-line">${parts[errorLine - 1] || " "}</span>`;
      html = parts.join("\n");
    }
    pre.innerHTML = html + "\n";
    gutter.innerHTML = lines.map((_, i) => (i + 1 === errorLine ? `<span class="bad">${i + 1}</span>` : String(i + 1))).join("\n");
    sync();
  }
  function sync() {
    pre.scrollTop = area.scrollTop;
    pre.scrollLeft = area.scrollLeft;
    gutter.scrollTop = area.scrollTop;
  }
  function schedule() {
    if (!scheduled) scheduled = requestAnimationFrame(render);
  }
  area.addEventListener("input", () => {
    errorLine = 0;
    schedule();
  });
  area.addEventListener("scroll", sync);
  area.addEventListener("keydown", (event) => {
    if (event.key === "Escape") {
      escaped = true;
      return;
    }
    if (event.key === "Tab" && !escaped && !event.ctrlKey && !event.altKey && !event.metaKey) {
      event.preventDefault();
      const indent = lang === "python" ? "    " : "  ";
      const { selectionStart: start, selectionEnd: end, value: text } = area;
      if (event.shiftKey) {
        const lineStart = text.lastIndexOf("\n", start - 1) + 1;
        const strip = text.slice(lineStart, lineStart + indent.length).match(/^ */)[0].length;
        area.setRangeText("", lineStart, lineStart + strip, "end");
        area.setSelectionRange(Math.max(lineStart, start - strip), Math.max(lineStart, end - strip));
      } else {
        area.setRangeText(indent, start, end, "end");
      }
      area.dispatchEvent(new Event("input"));
      return;
    }
    escaped = false;
  });
  render();
  return {
    root,
    hint,
    textarea: area,
    get value() {
      return area.value;
    },
    set value(text) {
      area.value = text;
      render();
    },
    setLanguage(name) {
      lang = name;
      render();
    },
    markLine(line) {
      errorLine = line || 0;
      render();
    },
    label,
  };
}
