// SPEC 3.1-3.4: who gets which copy, exactly once; acks; no spoofing; users reach only the desk.
import assert from "node:assert/strict";
import { connect, cookieFor, events, run, send, sleep, waitFor } from "./lib.mjs";

run(async () => {
  const ana1 = await connect(cookieFor("ana"));
  const ana2 = await connect(cookieFor("ana"));
  const luis = await connect(cookieFor("luis"));
  const desk = await connect(cookieFor("admin")); // an admin literally named "admin"
  const sonia1 = await connect(cookieFor("sonia"));
  const sonia2 = await connect(cookieFor("sonia"));
  const all = [ana1, ana2, luis, desk, sonia1, sonia2];
  const acks = [];

  // A user writes to the desk, trying to spoof `de`.
  const ack1 = await send(ana1, { para: "admin", mensaje: "hola, necesito ayuda", de: "luis" });
  assert.equal(ack1.ok, true, JSON.stringify(ack1));
  assert.ok(Number.isInteger(ack1.id) && typeof ack1.fecha === "string");
  acks.push({ ...ack1, de: "ana", para: "admin", mensaje: "hola, necesito ayuda" });
  for (const admin of [desk, sonia1, sonia2]) {
    const [got] = await waitFor(admin, "mensaje_recibido");
    assert.deepEqual(got, { de: "ana", mensaje: "hola, necesito ayuda", para: "admin", id: ack1.id, fecha: ack1.fecha });
  }
  const [copy] = await waitFor(ana2, "mensaje_enviado");
  assert.deepEqual(copy, { de: "ana", para: "admin", mensaje: "hola, necesito ayuda", id: ack1.id, fecha: ack1.fecha });

  // An admin answers the user: every tab of the user, copies to the other admins.
  const ack2 = await send(sonia1, { para: "ana", mensaje: "¿en qué te ayudo?" });
  assert.equal(ack2.ok, true, JSON.stringify(ack2));
  acks.push({ ...ack2, de: "sonia", para: "ana", mensaje: "¿en qué te ayudo?" });
  for (const tab of [ana1, ana2]) {
    const got = await waitFor(tab, "mensaje_recibido");
    assert.deepEqual(got[got.length - 1], { de: "sonia", mensaje: "¿en qué te ayudo?", para: "ana", id: ack2.id, fecha: ack2.fecha });
  }
  for (const other of [desk, sonia2]) {
    const [got] = await waitFor(other, "mensaje_enviado");
    assert.equal(got.id, ack2.id);
    assert.equal(got.de, "sonia");
  }

  // A user cannot address another user.
  const refused = await send(ana1, { para: "luis", mensaje: "psst" });
  assert.equal(refused.ok, false);
  assert.match(refused.error, /soporte/);

  // A user may address an admin by name (learnt from the admin's token).
  const ack3 = await send(luis, { para: "sonia", mensaje: "hola sonia" });
  assert.equal(ack3.ok, true, JSON.stringify(ack3));
  acks.push({ ...ack3, de: "luis", para: "sonia", mensaje: "hola sonia" });
  await waitFor(sonia2, "mensaje_recibido", 2);
  await waitFor(desk, "mensaje_recibido", 2);

  await sleep(300); // let any stray copy arrive before counting
  const count = (s, e) => events(s, e).length;
  assert.equal(count(desk, "mensaje_recibido"), 2, "the admin named admin gets each user message once");
  assert.equal(count(sonia1, "mensaje_recibido"), 2);
  assert.equal(count(sonia1, "mensaje_enviado"), 0, "the sending socket gets the ack, not a copy");
  assert.equal(count(ana1, "mensaje_enviado"), 0);
  assert.equal(count(ana1, "mensaje_recibido"), 1);
  assert.equal(count(luis, "mensaje_recibido"), 0, "luis never sees ana's conversation");
  assert.equal(count(luis, "mensaje_enviado"), 0);
  assert.equal(count(desk, "mensaje_enviado"), 1);
  for (const s of all) s.close();
  return { acks };
});
