// SPEC 2.3: a socket is disconnected when its token expires.
import assert from "node:assert/strict";
import { connect, run } from "./lib.mjs";

run(async () => {
  const socket = await connect(`token=${process.env.TOKEN_SHORT}`);
  const started = Date.now();
  const reason = await new Promise((resolve, reject) => {
    socket.once("disconnect", resolve);
    setTimeout(() => reject(new Error("not disconnected at expiry")), 8000);
  });
  const after = Date.now() - started;
  assert.equal(reason, "io server disconnect");
  return { reason, after };
});
