// ioredis and node-redis against sessyncd: AUTH, their handshakes, plain keys and a
// SESS command each. Run by tests/clients.rs: node node_clients.js PORT TOKEN
const port = Number(process.argv[2]), token = process.argv[3];
const sid = "abcdefghijklmnopqrstuvwxyz012345";
(async () => {
  const Redis = require("ioredis");
  const io = new Redis({ host: "127.0.0.1", port, password: token, lazyConnect: true, maxRetriesPerRequest: 1 });
  await io.connect();
  if (await io.ping() !== "PONG") throw new Error("ioredis ping");
  await io.set("sess:io", "v", "EX", 60);
  if (await io.get("sess:io") !== "v") throw new Error("ioredis get");
  await io.call("SESS.WRITE", sid, '{"n":1}');
  const rec = await io.call("SESS.FETCH", sid);
  if (rec[1] !== '{"n":1}') throw new Error("ioredis fetch " + rec);
  io.disconnect();
  const { createClient } = require("redis");
  const c = createClient({ url: `redis://:${token}@127.0.0.1:${port}` });
  c.on("error", (e) => { console.error("node-redis error", e); process.exit(1); });
  await c.connect();
  if (await c.ping() !== "PONG") throw new Error("node-redis ping");
  await c.set("sess:nr", "w", { EX: 60 });
  if (await c.get("sess:nr") !== "w") throw new Error("node-redis get");
  const n = await c.sendCommand(["SESS.INCR", sid, "n", "1"]);
  if (n !== 2) throw new Error("node-redis incr " + n);
  await c.quit();
  console.log("ok");
})().catch((e) => { console.error(e); process.exit(1); });
