// The real Muon node client (muon-core 7.2.6) driven from the tests.
//
//   node muon_client.js AMQP_URL COMMAND JSON_ARGS
//
// Results are printed one JSON object a line, each prefixed "@@ " (the client's own logging
// goes to the same stdout). Commands:
//   emit      {"events": [...], "inflight": N}            -> {"i", "result"} per event, then {"done"}
//   replay    {"stream", "args", "count", "cancelAfter"}   -> {"event"} ..., {"complete"} | {"error"}
//   subscribe {"url", "args", "count"}                     -> {"data"} ..., {"complete"} | {"error"}
//   request   {"url", "body"}                              -> {"response"}
//   requests  {"calls": [{"url", "body"}, ...]}            -> {"i", "response"} per call, in order
//   emitloop  {"stream", "count", "inflight", "tag", "ids", "reconnect", "emitTimeout"}
//                                                          -> emits count events, {"i","result"} each
//   swarm     {"clients", "stream", "count"}               -> {"client", "orderIds", "statuses", "replayed"} each
// The process exits when its command is done; "count" ends a replay/subscription after that many items.
global.GLOBAL = global;
const muonCore = require("muon-core");

const [url, command, rawArgs] = process.argv.slice(2);
const args = JSON.parse(rawArgs || "{}");
const name = args.client || "muon-test-client";

function out(value) {
  process.stdout.write("@@ " + JSON.stringify(value) + "\n");
}

function finish(code) {
  setTimeout(() => process.exit(code || 0), 50);
}

const timeout = setTimeout(() => {
  out({ error: "driver timeout" });
  finish(3);
}, (args.timeout || 60) * 1000);

if (args.reconnect) {
  // muon-core 7.2.6 throws from its AMQP callbacks when the broker goes away; an application
  // that outlives a broker restart catches that, as this one does, and makes a new client.
  process.on("uncaughtException", (err) => out({ uncaught: String(err && err.message ? err.message : err) }));
}

let muon = command === "swarm" ? null : muonCore.create(name, url);
let generation = 0;

function withTimeout(promise, seconds) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error("no answer in " + seconds + "s")), seconds * 1000);
    promise.then(
      (value) => {
        clearTimeout(timer);
        resolve(value);
      },
      (err) => {
        clearTimeout(timer);
        reject(err);
      },
    );
  });
}

// With "reconnect", an emit that gets no answer (the broker went away: muon-core's transport
// does not reconnect by itself) makes a new Muon client and sends the same event again; events
// carry ids, so a re-sent event is stored once.
function reconnect(seen) {
  if (seen !== generation) return;
  generation++;
  out({ reconnecting: generation });
  try {
    muon.shutdown();
  } catch (err) {
    // the old connection is already gone
  }
  muon = muonCore.create(name, url);
}

async function emitOne(event) {
  for (;;) {
    const seen = generation;
    try {
      return await withTimeout(muon.emit(event), args.emitTimeout || 60);
    } catch (err) {
      if (!args.reconnect) return { rejected: String(err) };
      reconnect(seen);
      await new Promise((resolve) => setTimeout(resolve, 500));
    }
  }
}

async function emitAll(events, inflight) {
  let next = 0;
  const started = Date.now();
  async function worker() {
    while (next < events.length) {
      const i = next++;
      const result = await emitOne(events[i]);
      if (!args.quiet) out({ i, result });
    }
  }
  const workers = [];
  for (let w = 0; w < Math.max(1, inflight); w++) workers.push(worker());
  await Promise.all(workers);
  out({ done: events.length, ms: Date.now() - started });
}

if (command === "emit") {
  emitAll(args.events, args.inflight || 1).then(() => finish(0));
} else if (command === "emitloop") {
  const events = [];
  for (let i = 0; i < args.count; i++) {
    events.push({
      "stream-name": args.stream,
      "event-type": "tick",
      "service-id": name,
      payload: { n: i, tag: args.tag || "", pad: args.pad || "" },
    });
    if (args.ids) events[i].id = args.tag + "-" + i;
  }
  if (args.warmup) {
    muon.emit({ "stream-name": args.stream + "-warmup", "event-type": "warmup", payload: {} }).then(() =>
      emitAll(events, args.inflight || 1).then(() => finish(0)),
    );
  } else {
    emitAll(events, args.inflight || 1).then(() => finish(0));
  }
} else if (command === "replay" || command === "subscribe") {
  let seen = 0;
  let started = null;
  let control = null;
  const key = command === "replay" ? "event" : "data";
  const onData = (data) => {
    if (started === null) started = Date.now();
    seen++;
    if (!args.quiet) out({ [key]: data });
    if (args.cancelAfter && seen === args.cancelAfter) {
      control.cancel();
      out({ cancelled: seen });
      // Stay a little to show nothing more arrives.
      setTimeout(() => {
        out({ after: seen });
        finish(0);
      }, (args.linger || 1.5) * 1000);
    } else if (args.count && seen === args.count) {
      out({ counted: seen, ms: Date.now() - started });
      finish(0);
    }
  };
  const onError = (error) => {
    out({ error });
    finish(1);
  };
  const onComplete = () => {
    out({ complete: seen, ms: started === null ? 0 : Date.now() - started });
    finish(0);
  };
  if (command === "replay") {
    control = muon.replay(args.stream, args.args || {}, onData, onError, onComplete);
  } else {
    control = muon.subscribe(args.url, args.args || {}, onData, onError, onComplete);
  }
  out({ subscribing: true });
} else if (command === "request") {
  muon.request(args.url, args.body === undefined ? {} : args.body, (response) => {
    out({ response: { status: response.status, body: response.body } });
    finish(0);
  });
} else if (command === "swarm") {
  // Many Muon clients in this process, each with its own connections: each emits its events,
  // then replays its stream cold.
  const clients = [];
  for (let c = 0; c < args.clients; c++) clients.push(muonCore.create(name + "-" + c, url));
  const work = clients.map(async (client, c) => {
    const stream = args.stream + "-" + c;
    const answers = [];
    for (let i = 0; i < args.count; i++) {
      answers.push(client.emit({ "stream-name": stream, "event-type": "swarm", payload: { c, i } }));
    }
    const results = await Promise.all(answers);
    const replayed = await new Promise((resolve) => {
      const seen = [];
      client.replay(
        stream,
        { "stream-type": "cold" },
        (event) => seen.push(event["order-id"]),
        (error) => resolve({ error }),
        () => resolve(seen),
      );
    });
    out({ client: c, orderIds: results.map((r) => r.orderId), statuses: results.map((r) => r.status), replayed });
  });
  Promise.all(work).then(() => {
    out({ done: clients.length });
    finish(0);
  });
} else if (command === "requests") {
  // Several requests one after the other, each answered before the next is made.
  const calls = args.calls;
  const next = (i) => {
    if (i === calls.length) return finish(0);
    muon.request(calls[i].url, calls[i].body === undefined ? {} : calls[i].body, (response) => {
      out({ i, response: { status: response.status, body: response.body } });
      next(i + 1);
    });
  };
  next(0);
} else {
  out({ error: "unknown command " + command });
  finish(2);
}
