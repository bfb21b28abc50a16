// SPEC 2.2: each refusal reaches the official client as connect_error with the seed's text.
import assert from "node:assert/strict";
import { refusal, run } from "./lib.mjs";

run(async () => {
  const bad = JSON.parse(process.env.BAD_TOKENS);
  const seen = {};
  seen.noCookie = await refusal(null);
  assert.equal(seen.noCookie, "No autenticado");
  seen.otherCookie = await refusal("sesion=abc");
  assert.equal(seen.otherCookie, "Token no proporcionado");
  seen.xtoken = await refusal(`xtoken=${process.env.TOKEN_ANA}; csrftoken=${process.env.TOKEN_ANA}`);
  assert.equal(seen.xtoken, "Token no proporcionado");
  for (const [kind, token] of Object.entries(bad)) {
    seen[kind] = await refusal(`token=${token}`);
    assert.equal(seen[kind], "Token inválido", `${kind} token`);
  }
  return seen;
});
