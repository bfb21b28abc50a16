// A burst sent right after connect, while the client upgrades polling -> websocket,
// arrives complete and in order, and every ack matches.
import assert from "node:assert/strict";
import { connect, cookieFor, run, send, waitFor } from "./lib.mjs";

run(async () => {
  const count = Number(process.env.BURST || 200);
  const desk = await connect(cookieFor("admin"));
  const ana = await connect(cookieFor("ana"));
  const transportAtStart = ana.io.engine.transport.name;
  const pending = [];
  for (let i = 0; i < count; i++) pending.push(send(ana, { para: "admin", mensaje: `m${i}` }, 15000));
  const acks = await Promise.all(pending);
  acks.forEach((a, i) => assert.equal(a.ok, true, `ack ${i}: ${JSON.stringify(a)}`));
  const ids = acks.map((a) => a.id);
  assert.deepEqual([...ids].sort((x, y) => x - y), ids, "acks in sending order");
  const got = await waitFor(desk, "mensaje_recibido", count, 15000);
  assert.deepEqual(got.map((m) => m.mensaje), acks.map((_, i) => `m${i}`), "complete and in order");
  const transportAtEnd = ana.io.engine.transport.name;
  ana.close();
  desk.close();
  return {
    transportAtStart,
    transportAtEnd,
    acks: acks.map((a, i) => ({ ...a, de: "ana", para: "admin", mensaje: `m${i}` })),
  };
});
