// The console's shell: sign-in, the top bar, and a hash router that mounts one page at a time.
// A page is `render(page, params, query)` (page: its own element in <main>); it may return a function that ends its work
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
// Why the sign-in form is shown (a session that ended), said above it once.
let signedOutBecause = "";

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
  // Each page renders into its own element: a page still loading when the next one is opened
  // (a quick click, the back button) then adds nothing to the new page, and its work is ended
  // as soon as it returns.
  const page = h("div", { class: "page" });
  main.replaceChildren(page);
  main.removeAttribute("aria-busy");
  if (!token()) {
    showSignIn(page);
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
    page.append(h("h1", {}, "Not found"), h("p", {}, "No console page at ", h("code", {}, path), ". ", h("a", { href: "#/streams" }, "Streams")));
    return;
  }
  const [pattern, render, section] = found;
  const params = pattern.exec(path).slice(1).map(decodeURIComponent);
  document.title = `${section[0].toUpperCase()}${section.slice(1)} · Photon`;
  // aria-busy until the page has its first contents (assistive technology waits for them).
  main.setAttribute("aria-busy", "true");
  try {
    const cleanup = await render(page, params, query);
    if (typeof cleanup === "function") {
      if (page.isConnected) leave = cleanup;
      else cleanup();
    }
  } catch (error) {
    if (error.status !== 401 && page.isConnected) {
      // A page whose first request failed (a projection or event that does not exist) still
      // has a heading saying so, above the server's message.
      if (!page.querySelector("h1")) page.prepend(h("h1", {}, error.status === 404 ? "Not found" : "This page could not be loaded"));
      page.append(errorBox(error));
    }
  } finally {
    if (page.isConnected) main.removeAttribute("aria-busy");
  }
}

function showSignIn(page) {
  top.hidden = true;
  document.title = "Sign in · Photon";
  const user = h("input", { id: "user", name: "username", autocomplete: "username", required: true, value: "admin" });
  const password = h("input", { id: "password", name: "password", type: "password", autocomplete: "current-password", required: true });
  const message = h("div", { "aria-live": "assertive" });
  if (signedOutBecause) message.append(h("div", { class: "alert", role: "status", id: "signed-out-because" }, signedOutBecause));
  signedOutBecause = "";
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
  page.append(
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
window.addEventListener("photon:signed-out", (event) => {
  signedOutBecause = event.detail.reason;
  route();
});
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
