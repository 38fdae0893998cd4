// The floors of benchmarks/muon.py: bare AMQP messages through amqplib (the version muon-core
// uses), with nothing of Muon and no store.
//
//   node muon_floor.js reqrep  '{"url", "queue", "count", "inflight", "size"}'
//       requests of `size` bytes to `queue`, each answered by the pika responder; `inflight` at once
//   node muon_floor.js consume '{"url", "queue", "count"}'
//       consumes `count` messages (acknowledged one by one, as muon-core's transport does)
//
// Prints one JSON line: {"ms": <from the first request / message to the last answer / message>}.
const amqp = require("amqplib/callback_api");

const [mode, raw] = process.argv.slice(2);
const args = JSON.parse(raw);

function fail(err) {
  process.stdout.write(JSON.stringify({ error: String(err) }) + "\n");
  process.exit(1);
}

amqp.connect(args.url, (err, connection) => {
  if (err) return fail(err);
  connection.createChannel((err2, channel) => {
    if (err2) return fail(err2);
    if (mode === "reqrep") reqrep(connection, channel);
    else if (mode === "consume") consume(connection, channel);
    else fail("unknown mode " + mode);
  });
});

function done(connection, started) {
  process.stdout.write(JSON.stringify({ ms: Date.now() - started }) + "\n");
  connection.close(() => process.exit(0));
}

function reqrep(connection, channel) {
  const body = Buffer.alloc(args.size, 0x61);
  channel.assertQueue("", { exclusive: true, autoDelete: true }, (err, ok) => {
    if (err) return fail(err);
    const replyTo = ok.queue;
    let sent = 0;
    let answered = 0;
    let started = 0;
    const send = () => {
      const id = String(sent++);
      channel.sendToQueue(args.queue, body, { replyTo, correlationId: id });
    };
    channel.consume(
      replyTo,
      (message) => {
        channel.ack(message);
        answered++;
        if (answered === args.count) return done(connection, started);
        if (sent < args.count) send();
      },
      { noAck: false },
      () => {
        started = Date.now();
        for (let i = 0; i < Math.min(args.inflight, args.count); i++) send();
      },
    );
  });
}

function consume(connection, channel) {
  let seen = 0;
  let started = 0;
  channel.assertQueue(args.queue, { durable: false, autoDelete: false }, (err) => {
    if (err) return fail(err);
    channel.consume(
      args.queue,
      (message) => {
        if (seen === 0) started = Date.now();
        channel.ack(message);
        seen++;
        if (seen === args.count) done(connection, started);
      },
      { noAck: false },
      () => process.stdout.write(JSON.stringify({ ready: true }) + "\n"),
    );
  });
}
