// The public API, and nothing else: a token from /auth/token, kept for this browser session.
const TOKEN_KEY = "photon.token";

export class ApiError extends Error {
  constructor(message, status, body) {
    super(message);
    this.status = status;
    this.body = body || {};
  }
}

// A request the server never answered (it stopped, or the network is down): the browser's own
// message ("Failed to fetch", "network error") says nothing of what happened.
export const NO_ANSWER = "The server did not answer: it may have stopped or be unreachable. Try again once it is back.";

function noAnswer(error, signal) {
  if (error.name === "AbortError" || (signal && signal.aborted)) return error;
  return new ApiError(NO_ANSWER, 0);
}

async function send(url, init) {
  try {
    return await fetch(url, init);
  } catch (error) {
    throw noAnswer(error, init.signal);
  }
}

export function token() {
  return sessionStorage.getItem(TOKEN_KEY);
}

// `reason`: why the sign-in form comes back, said above it (none when the user signed out).
export function signOut(reason) {
  sessionStorage.removeItem(TOKEN_KEY);
  window.dispatchEvent(new CustomEvent("photon:signed-out", { detail: { reason: reason || "" } }));
}

function basic(user, password) {
  const bytes = new TextEncoder().encode(`${user}:${password}`);
  let text = "";
  for (const b of bytes) text += String.fromCharCode(b);
  return "Basic " + btoa(text);
}

export async function signIn(user, password) {
  // credentials "omit": the 401 of a wrong password must not open the browser's own login prompt.
  const response = await send("/auth/token", { headers: { Authorization: basic(user, password) }, credentials: "omit" });
  const body = await response.json().catch(() => ({}));
  if (!response.ok) throw new ApiError(response.status === 401 ? "Wrong user name or password." : body.error || response.statusText, response.status, body);
  sessionStorage.setItem(TOKEN_KEY, body.token);
}

export function query(params) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params || {})) {
    if (v !== undefined && v !== null && v !== "") q.set(k, String(v));
  }
  const text = q.toString();
  return text ? "?" + text : "";
}

export function path(...parts) {
  return parts.map((p) => encodeURIComponent(p)).join("/");
}

function headers(extra) {
  return { Authorization: "Token " + token(), ...(extra || {}) };
}

async function check(response) {
  if (response.ok) return response;
  const body = await response.json().catch(() => ({}));
  if (response.status === 401) {
    const message = "Your session has ended: sign in again.";
    signOut(message);
    throw new ApiError(message, 401, body);
  }
  throw new ApiError(body.error || `${response.status} ${response.statusText}`, response.status, body);
}

// A JSON request. `body` is sent as JSON unless it is a FormData, Blob or string.
export async function api(url, { method = "GET", body, signal } = {}) {
  const init = { method, headers: headers(), signal };
  if (body !== undefined) {
    if (body instanceof FormData || body instanceof Blob || typeof body === "string") init.body = body;
    else {
      init.body = JSON.stringify(body);
      init.headers["Content-Type"] = "application/json";
    }
  }
  const response = await check(await send(url, init));
  let text;
  try {
    text = await response.text();
  } catch (error) {
    throw noAnswer(error, signal);
  }
  return text ? JSON.parse(text) : null;
}

export async function download(url, signal) {
  const response = await check(await send(url, { headers: headers(), signal }));
  try {
    return await response.blob();
  } catch (error) {
    throw noAnswer(error, signal);
  }
}

// Reads a streaming answer (NDJSON or server-sent events) and hands each complete line to
// `onLines` as one array per network chunk, so the caller can batch its work.
export async function streamLines(url, onLines, { signal, accept } = {}) {
  const response = await check(await send(url, { headers: headers(accept ? { Accept: accept } : {}), signal }));
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  let rest = "";
  for (;;) {
    let value, done;
    try {
      ({ value, done } = await reader.read());
    } catch (error) {
      throw noAnswer(error, signal);
    }
    if (done) break;
    const text = rest + value;
    const cut = text.lastIndexOf("\n");
    if (cut < 0) {
      rest = text;
      continue;
    }
    rest = text.slice(cut + 1);
    onLines(text.slice(0, cut).split("\n"));
  }
}
