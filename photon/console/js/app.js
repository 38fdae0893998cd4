// The console's shell: sign-in, the top bar, and a hash router that mounts one page at a time.
// A page is `render(main, params, query)`; it may return a function that ends its work
// (open streams, timers) when the page is left.
import { signIn, signOut, token } from "./api.js";
import { h, errorBox } from "./ui.js";
import { streamsPage, streamPage, eventPage, eventByIdPage } from "./streams.js";
import { tailPage } from "./tail.js";
import { emitPage } from "./emit.js";
import { projectionsPage, projectionPage, projectionEditPage } from "./projections.js";
import { consumersPage, serverPage, backupPage } from "./ops.js";

const ROUTES = [
  [/^\/streams$/, streamsPage, "streams"],
  [/^\/stream\/([^/]+)$/, streamPage, "streams"],
  [/^\/event\/([^/]+)\/(\d+)$/, eventPage, "streams"],
  [/^\/event-id\/([^/]+)$/, eventByIdPage, "streams"],
  [/^\/tail\/([^/]+)$/, tailPage, "tail"],
  [/^\/emit$/, emitPage, "emit"],
  [/^\/projections$/, projectionsPage, "projections"],
  [/^\/projection\/([^/]+)$/, projectionPage, "projections"],
  [/^\/projection-edit$/, projectionEditPage, "projections"],
  [/^\/projection-edit\/([^/]+)$/, projectionEditPage, "projections"],
  [/^\/consumers$/, consumersPage, "consumers"],
  [/^\/server$/, serverPage, "server"],
  [/^\/backup$/, backupPage, "backup"],
];

const main = document.getElementById("main");
const top = document.getElementById("top");
let leave = null;

function parseHash() {
  const hash = location.hash.replace(/^#/, "") || "/streams";
  const [path, search] = hash.split("?");
  return { path, query: Object.fromEntries(new URLSearchParams(search || "")) };
}

async function route() {
  if (leave) {
    try {
      leave();
    } catch (e) {
      /* a page's clean-up must not stop the next page */
    }
    leave = null;
  }
  main.replaceChildren();
  if (!token()) {
    showSignIn();
    return;
  }
  top.hidden = false;
  const { path, query } = parseHash();
  const found = ROUTES.find(([pattern]) => pattern.test(path));
  for (const link of top.querySelectorAll("nav a")) {
    if (found && link.dataset.section === found[2]) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
  if (!found) {
    main.append(h("h1", {}, "Not found"), h("p", {}, "No console page at ", h("code", {}, path), ". ", h("a", { href: "#/streams" }, "Streams")));
    return;
  }
  const [pattern, render, section] = found;
  const params = pattern.exec(path).slice(1).map(decodeURIComponent);
  document.title = `${section[0].toUpperCase()}${section.slice(1)} · Photon`;
  try {
    const cleanup = await render(main, params, query);
    if (typeof cleanup === "function") leave = cleanup;
  } catch (error) {
    if (error.status !== 401) main.append(errorBox(error));
  }
}

function showSignIn() {
  top.hidden = true;
  document.title = "Sign in · Photon";
  const user = h("input", { id: "user", name: "username", autocomplete: "username", required: true, value: "admin" });
  const password = h("input", { id: "password", name: "password", type: "password", autocomplete: "current-password", required: true });
  const message = h("div", { "aria-live": "assertive" });
  const form = h(
    "form",
    {
      onsubmit: async (event) => {
        event.preventDefault();
        message.replaceChildren();
        try {
          await signIn(user.value, password.value);
          route();
        } catch (error) {
          message.append(errorBox(error));
          password.select();
        }
      },
    },
    h("div", { class: "field" }, h("label", { for: "user" }, "User"), user),
    h("div", { class: "field" }, h("label", { for: "password" }, "Password"), password),
    message,
    h("button", { type: "submit", class: "primary", id: "sign-in" }, "Sign in"),
  );
  main.append(
    h(
      "div",
      { class: "signin panel pad" },
      h("h1", {}, h("span", { class: "logo", "aria-hidden": "true" }, "◉ "), "Photon"),
      h("p", { class: "sub" }, "Sign in with the server's admin.user and admin.pass."),
      form,
    ),
  );
  (user.value ? password : user).focus();
}

document.getElementById("sign-out").addEventListener("click", () => {
  signOut();
});
document.getElementById("skip").addEventListener("click", () => main.focus());
window.addEventListener("photon:signed-out", () => route());
window.addEventListener("hashchange", route);
// "/" focuses the page's filter or first field, as in many tools.
document.addEventListener("keydown", (event) => {
  if (event.key !== "/" || event.ctrlKey || event.metaKey || event.altKey) return;
  const target = event.target;
  if (target instanceof HTMLInputElement || target instanceof HTMLTextAreaElement || target instanceof HTMLSelectElement) return;
  const search = main.querySelector("[data-slash]") || main.querySelector("input, textarea");
  if (search) {
    event.preventDefault();
    search.focus();
  }
});
route();
