// SPEC 3.3: every bad input gets an error, nothing is delivered or stored, the server serves on.
import assert from "node:assert/strict";
import { connect, cookieFor, events, run, send, sleep, waitFor } from "./lib.mjs";

run(async () => {
  const ana = await connect(cookieFor("ana"));
  const desk = await connect(cookieFor("admin"));
  const cases = {
    missing: undefined,
    nullPayload: null,
    string: "hola",
    number: 42,
    array: ["admin", "hola"],
    noPara: { mensaje: "hola" },
    noMensaje: { para: "admin" },
    paraNotString: { para: 7, mensaje: "hola" },
    mensajeNotString: { para: "admin", mensaje: { html: "<b>" } },
    emptyPara: { para: "", mensaje: "hola" },
    emptyMensaje: { para: "admin", mensaje: "   " },
    longPara: { para: "p".repeat(65), mensaje: "hola" },
    longMensaje: { para: "admin", mensaje: "m".repeat(4097) },
  };
  const errors = {};
  for (const [name, payload] of Object.entries(cases)) {
    const ack =
      payload === undefined
        ? await ana.timeout(5000).emitWithAck("mensaje_privado")
        : await send(ana, payload);
    assert.equal(ack.ok, false, `${name}: ${JSON.stringify(ack)}`);
    assert.equal(typeof ack.error, "string");
    assert.ok(ack.error.length > 0);
    errors[name] = ack.error;
  }
  // Without an ack callback the refusal comes as `mensaje_error` (the seed crashed here).
  ana.emit("mensaje_privado");
  const [notice] = await waitFor(ana, "mensaje_error");
  assert.equal(notice.ok, false);
  // Still serving: a good message goes through.
  const ok = await send(ana, { para: "admin", mensaje: "sigo aquí" });
  assert.equal(ok.ok, true);
  await waitFor(desk, "mensaje_recibido");
  await sleep(200);
  assert.equal(events(desk, "mensaje_recibido").length, 1, "nothing bad was delivered");
  ana.close();
  desk.close();
  return { errors, acks: [{ ...ok, de: "ana", para: "admin", mensaje: "sigo aquí" }] };
});
