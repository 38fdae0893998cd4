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
//   emitloop  {"stream", "count", "inflight", "tag"}       -> emits count events, {"i","result"} each
// The process exits when its command is done; "count" ends a replay/subscription after that many items.
global.GLOBAL = global;
const muonCore = require("muon-core");

const [url, command, rawArgs] = process.argv.slice(2);
const args = JSON.parse(rawArgs || "{}");
const name = args.client || "muon-test-client";
const muon = muonCore.create(name, url);

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

async function emitAll(events, inflight) {
  let next = 0;
  const started = Date.now();
  async function worker() {
    while (next < events.length) {
      const i = next++;
      let result;
      try {
        result = await muon.emit(events[i]);
      } catch (err) {
        result = { rejected: err };
      }
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
