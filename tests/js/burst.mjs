// A burst that starts before the socket is connected and goes on while the client upgrades
// polling -> websocket arrives complete and in order, and every ack matches.
import assert from "node:assert/strict";
import { io } from "socket.io-client";
import { URL, connect, cookieFor, run, send, sleep, waitFor } from "./lib.mjs";

run(async () => {
  const count = Number(process.env.BURST || 400);
  const desk = await connect(cookieFor("admin"));
  const ana = io(URL, { forceNew: true, reconnection: false, extraHeaders: { Cookie: cookieFor("ana") } });
  const transportAtStart = ana.io.engine.transport.name;
  let sentAtUpgrade = null;
  let sent = 0;
  ana.io.engine.on("upgrade", () => {
    sentAtUpgrade = sent;
  });
  const pending = [];
  while (sent < count) {
    // Emits before CONNECT are buffered by the client and flushed in order once connected.
    pending.push(send(ana, { para: "admin", mensaje: `m${sent}` }, 20000));
    sent++;
    if (sent % 4 === 0) await sleep(1);
  }
  const acks = await Promise.all(pending);
  acks.forEach((a, i) => assert.equal(a.ok, true, `ack ${i}: ${JSON.stringify(a)}`));
  const ids = acks.map((a) => a.id);
  assert.deepEqual([...ids].sort((x, y) => x - y), ids, "ids follow the sending order");
  const got = await waitFor(desk, "mensaje_recibido", count, 20000);
  assert.deepEqual(got.map((m) => m.mensaje), acks.map((_, i) => `m${i}`), "complete and in order");
  assert.ok(sentAtUpgrade !== null, "the client upgraded");
  assert.ok(sentAtUpgrade > 0 && sentAtUpgrade < count, `upgrade after ${sentAtUpgrade} of ${count} sent`);
  const transportAtEnd = ana.io.engine.transport.name;
  ana.close();
  desk.close();
  return {
    transportAtStart,
    transportAtEnd,
    sentAtUpgrade,
    acks: acks.map((a, i) => ({ ...a, de: "ana", para: "admin", mensaje: `m${i}` })),
  };
});
