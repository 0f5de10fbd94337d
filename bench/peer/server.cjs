// The webhook bench's peer: a widely used Stripe-to-PostgreSQL webhook consumer
// (@supabase/stripe-sync-engine) behind a bare Node HTTP endpoint, so the bench can
// drive it with the same signed deliveries as the gateway and the baseline.
//
//   DATABASE_URL=postgresql://... STRIPE_WEBHOOK_SECRETS=whsec_... node server.cjs 127.0.0.1 0
//
// It runs the engine's migrations, then answers POST /webhooks/stripe: 200 once the
// event is stored, 400 when the signature does not verify, 500 otherwise. Its Stripe
// API key points nowhere: on the subscription-only stream the engine never calls it.
"use strict";

const http = require("node:http");
const { StripeSync, runMigrations } = require("@supabase/stripe-sync-engine");

async function main() {
  const [host, port] = [process.argv[2] || "127.0.0.1", Number(process.argv[3] || 0)];
  const databaseUrl = process.env.DATABASE_URL;
  await runMigrations({ databaseUrl, schema: "stripe" });
  const sync = new StripeSync({
    poolConfig: { connectionString: databaseUrl, max: 10 },
    stripeSecretKey: "sk_test_bench_peer",
    stripeWebhookSecret: process.env.STRIPE_WEBHOOK_SECRETS.split(",")[0],
  });
  const server = http.createServer((req, res) => {
    const chunks = [];
    req.on("data", (chunk) => chunks.push(chunk));
    req.on("end", async () => {
      let status = 200;
      let body = { received: true };
      try {
        await sync.processWebhook(Buffer.concat(chunks), req.headers["stripe-signature"]);
      } catch (err) {
        status = err && err.type === "StripeSignatureVerificationError" ? 400 : 500;
        body = { error: String((err && err.message) || err).slice(0, 200) };
      }
      res.writeHead(status, { "content-type": "application/json" });
      res.end(JSON.stringify(body));
    });
  });
  server.listen(port, host, () => {
    console.log(`PEER_LISTENING ${host}:${server.address().port}`);
  });
  const stop = () => server.close(() => sync.postgresClient.pool.end().then(() => process.exit(0)));
  process.on("SIGTERM", stop);
  process.on("SIGINT", stop);
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
