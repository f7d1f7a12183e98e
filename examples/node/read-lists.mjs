// Read a user's recommendation list from Node.js: from the topic, then over HTTP.
//
//   npm ci && node read-lists.mjs USER_ID
//
// RECLOOP_KAFKA_BOOTSTRAP, RECLOOP_TOPIC_RECOMMENDATIONS and RECLOOP_API_URL
// (http://127.0.0.1:8000) configure it; RECLOOP_API_KEY is sent when set. Prints two JSON
// lines: the first list published for USER_ID on the recommendations topic (recommendation
// v1, keyed by user_id), then GET /v1/users/{USER_ID}/recommendations. Exits 1 if no list
// arrives within 60 s.
import { Kafka, logLevel } from "kafkajs";

const userId = process.argv[2];
if (!userId) {
  console.error("usage: node read-lists.mjs USER_ID");
  process.exit(2);
}
const env = (name, fallback) => process.env[name] || fallback;

const kafka = new Kafka({
  clientId: "recloop-example-node-reader",
  brokers: env("RECLOOP_KAFKA_BOOTSTRAP", "127.0.0.1:9092").split(","),
  logLevel: logLevel.WARN,
});
const consumer = kafka.consumer({ groupId: `example-list-reader-node-${Date.now()}` });

const published = await new Promise(async (resolve) => {
  const timer = setTimeout(() => resolve(null), 60_000);
  await consumer.connect();
  await consumer.subscribe({
    topic: env("RECLOOP_TOPIC_RECOMMENDATIONS", "recloop.recommendations"),
    fromBeginning: true,
  });
  await consumer.run({
    eachMessage: async ({ message }) => {
      if (message.key?.toString() === userId) {
        clearTimeout(timer);
        resolve(JSON.parse(message.value.toString()));
      }
    },
  });
});
await consumer.disconnect();
if (published === null) {
  console.error(`no list for ${userId} on the topic within 60 s`);
  process.exit(1);
}
console.log(JSON.stringify(published));

const base = env("RECLOOP_API_URL", "http://127.0.0.1:8000");
const headers = process.env.RECLOOP_API_KEY ? { "X-API-Key": process.env.RECLOOP_API_KEY } : {};
const response = await fetch(`${base}/v1/users/${encodeURIComponent(userId)}/recommendations`, { headers });
if (!response.ok) {
  console.error(`GET answered ${response.status}: ${await response.text()}`);
  process.exit(1);
}
console.log(JSON.stringify(await response.json()));
