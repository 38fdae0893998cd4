// Syntax highlighting for the code editor: Python, Hy and JSON, by one pass of a sticky regex.
import { esc } from "./ui.js";

const PY_KEYWORDS = new Set(
  "False None True and as assert async await break class continue def del elif else except finally for from global if import in is lambda nonlocal not or pass raise return try while with yield match case".split(" "),
);
const PY_BUILTINS = new Set(
  "abs all any bool dict enumerate filter float getattr int isinstance len list map max min print range reversed round set sorted str sum tuple zip".split(" "),
);
const HY_SPECIAL = new Set(
  "fn defn defmacro setv let if when unless cond do for lfor dfor sfor while break continue return import require get assoc del and or not in is try except finally raise with quote quasiquote unquote global nonlocal yield await match case defclass".split(" "),
);

const PY = /(#[^\n]*)|([rbuRBUfF]{0,2}(?:"""[\s\S]*?(?:"""|$)|'''[\s\S]*?(?:'''|$)|"(?:[^"\\\n]|\\.)*"?|'(?:[^'\\\n]|\\.)*'?))|(\b\d[\d_]*(?:\.\d+)?(?:[eE][+-]?\d+)?j?\b)|(@[\w.]+)|([A-Za-z_]\w*)|([\s\S])/gy;
const HY = /(;[^\n]*)|("(?:[^"\\]|\\[\s\S])*"?)|(-?\b\d+(?:\.\d+)?\b)|(:[^\s()[\]{}"';]+)|([^\s()[\]{}"';]+)|([\s\S])/gy;
const JS = /("(?:[^"\\\n]|\\.)*"?)(\s*:)?|(-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?)|(\b(?:true|false|null)\b)|([\s\S])/gy;

function wrap(cls, text) {
  return `<span class="${cls}">${esc(text)}</span>`;
}

function python(source) {
  let out = "";
  let previous = "";
  PY.lastIndex = 0;
  let m;
  while (PY.lastIndex < source.length && (m = PY.exec(source))) {
    const [all, comment, string, num, decorator, word] = m;
    if (comment) out += wrap("t-com", comment);
    else if (string) out += wrap("t-str", string);
    else if (num) out += wrap("t-num", num);
    else if (decorator) out += wrap("t-lit", decorator);
    else if (word) {
      if (previous === "def" || previous === "class") out += wrap("t-def", word);
      else if (PY_KEYWORDS.has(word)) out += wrap("t-kw", word);
      else if (PY_BUILTINS.has(word)) out += wrap("t-lit", word);
      else out += esc(word);
      previous = word;
      continue;
    } else out += esc(all);
    if (!/^\s+$/.test(all)) previous = "";
  }
  return out;
}

function hy(source) {
  let out = "";
  let afterParen = false;
  let previous = "";
  HY.lastIndex = 0;
  let m;
  while (HY.lastIndex < source.length && (m = HY.exec(source))) {
    const [all, comment, string, num, keyword, symbol] = m;
    if (comment) out += wrap("t-com", comment);
    else if (string) out += wrap("t-str", string);
    else if (num) out += wrap("t-num", num);
    else if (keyword) out += wrap("t-key", keyword);
    else if (symbol) {
      if (previous === "defn" || previous === "setv" || previous === "defmacro") out += wrap("t-def", symbol);
      else if (afterParen && HY_SPECIAL.has(symbol)) out += wrap("t-kw", symbol);
      else if (symbol === "True" || symbol === "False" || symbol === "None") out += wrap("t-lit", symbol);
      else out += esc(symbol);
      previous = symbol;
      afterParen = false;
      continue;
    } else out += esc(all);
    if (!/^\s+$/.test(all)) {
      afterParen = all === "(";
      previous = "";
    }
  }
  return out;
}

function json(source) {
  let out = "";
  JS.lastIndex = 0;
  let m;
  while (JS.lastIndex < source.length && (m = JS.exec(source))) {
    const [all, string, colon, num, lit] = m;
    if (string) out += wrap(colon ? "t-key" : "t-str", string) + (colon || "");
    else if (num) out += wrap("t-num", num);
    else if (lit) out += wrap("t-lit", lit);
    else out += esc(all);
  }
  return out;
}

const LANGUAGES = { python, hy, json };

export function highlight(source, language) {
  return (LANGUAGES[language] || esc)(source);
}
