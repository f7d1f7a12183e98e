// Produce recloop events and a control from Node.js with kafkajs.
//
//   npm ci && node produce.mjs USER_ID [ITEM_ID ...]
//
// Configuration comes from the variables recloop reads: RECLOOP_KAFKA_BOOTSTRAP
// (127.0.0.1:9092), RECLOOP_TOPIC_EVENTS (recloop.events), RECLOOP_TOPIC_CONTROLS
// (recloop.controls). Prints one JSON line per acknowledged record: topic, key, partition,
// offset.
//
// The one setting that matters: createPartitioner: Partitioners.DefaultPartitioner. recloop's
// workers expect a user's events and controls on the partition Kafka's Java client would
// choose (murmur2 of the key). kafkajs 2.x's DefaultPartitioner is that one; its
// LegacyPartitioner (the 1.x default) is not and would split users across partitions. Naming
// it keeps the choice visible and silences kafkajs' warning about the changed default.
import { randomUUID } from "node:crypto";
import { Kafka, Partitioners, logLevel } from "kafkajs";

const [userId, ...rest] = process.argv.slice(2);
if (!userId) {
  console.error("usage: node produce.mjs USER_ID [ITEM_ID ...]");
  process.exit(2);
}
const items = rest.length ? rest : ["item-1", "item-2"];
const env = (name, fallback) => process.env[name] || fallback;
const eventsTopic = env("RECLOOP_TOPIC_EVENTS", "recloop.events");
const controlsTopic = env("RECLOOP_TOPIC_CONTROLS", "recloop.controls");

const kafka = new Kafka({
  clientId: "recloop-example-node",
  brokers: env("RECLOOP_KAFKA_BOOTSTRAP", "127.0.0.1:9092").split(","),
  logLevel: logLevel.WARN,
});
const producer = kafka.producer({
  createPartitioner: Partitioners.DefaultPartitioner, // Java-compatible murmur2: required
  idempotent: true, // implies acks from all in-sync replicas
});

const now = Date.now();
const events = [
  { type: "watch", item_id: items[0], watch_seconds: 540, duration_seconds: 600 },
  ...items.slice(1).map((item) => ({ type: "click", item_id: item })),
].map((e) => ({ ...e, event_id: randomUUID(), user_id: userId, ts: now }));
const control = {
  control_id: randomUUID(), type: "declare_interests", user_id: userId, ts: now,
  categories: ["Comedy"],
};

// key = user_id: all of a user's events on one partition, in order
const records = [
  ...events.map((e) => [eventsTopic, e]),
  [controlsTopic, control],
];

await producer.connect();
try {
  for (const [topic, doc] of records) {
    const [meta] = await producer.send({
      topic,
      acks: -1,
      messages: [{ key: userId, value: JSON.stringify(doc) }],
    });
    console.log(JSON.stringify({ topic, key: userId, partition: meta.partition, offset: Number(meta.baseOffset) }));
  }
} finally {
  await producer.disconnect();
}
