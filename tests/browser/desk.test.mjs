// SPEC 6 end to end: the support desk page in Debian's chromium against a real
// `mensajero serve --demo`. One server and one browser for the file; each person is a
// separate browser context (its own cookies), as two people on two machines would be.
//
// Run: npm --prefix tests/browser test   (after `cargo build` and `npm ci --prefix tests/browser`)

import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import path from "node:path";

import {
  DEMO_PASSWORD,
  HISTORY_PAGE,
  Mensajero,
  artifacts,
  badge,
  conv,
  ensureArtifacts,
  launchBrowser,
  messageText,
  openPage,
  openWithToken,
  send,
  signIn,
} from "./harness.mjs";

const T = { timeout: 15000 };

describe("support desk page", () => {
  let server;
  let browser;
  const contexts = [];
  let admin; // the desk, signed in through the form
  let ana; // a customer, signed in through the form

  async function open(options) {
    const opened = await openPage(browser, options);
    contexts.push(opened.context);
    return opened.page;
  }

  async function openAs(user, rol, options) {
    const opened = await openWithToken(browser, server, server.token(user, rol), options);
    contexts.push(opened.context);
    return opened.page;
  }

  before(async () => {
    ensureArtifacts();
    server = await Mensajero.start();
    browser = await launchBrowser();
  });

  after(async () => {
    for (const context of contexts) await context.close().catch(() => {});
    if (browser) await browser.close();
    if (server) await server.stop();
  });

  it("a user signs in, writes, and the desk sees it live with an unread marker, then replies", async () => {
    admin = await open();
    await signIn(admin, server.base, "admin", DEMO_PASSWORD);
    await admin.locator('#shell[data-vista="admin"]').waitFor(T);
    // No conversation selected yet: the reply box cannot send anywhere.
    assert.equal(await admin.locator("#texto").isDisabled(), true);
    assert.equal(await admin.locator("#enviar").isDisabled(), true);

    // A second desk agent, to see the first one's replies (mensaje_enviado).
    const colleague = await openAs("sofia", "admin");

    ana = await open();
    await signIn(ana, server.base, "ana", DEMO_PASSWORD);
    await ana.locator('#shell[data-vista="user"]').waitFor(T);
    // Default client options: the session starts on polling and upgrades to WebSocket.
    await ana.locator('#estado[data-transport="websocket"]').waitFor(T);
    await send(ana, "Hola, mi pedido no ha llegado");

    // The conversation appears on both desks without a reload, marked unread.
    await badge(admin, "ana").waitFor(T);
    assert.equal(await badge(admin, "ana").textContent(), "1");
    await badge(colleague, "ana").waitFor(T);

    await conv(admin, "ana").locator("button").click();
    await messageText(admin, "Hola, mi pedido no ha llegado").waitFor(T);
    assert.equal(await badge(admin, "ana").count(), 0, "opening clears the marker");
    assert.equal(await admin.locator("#texto").isDisabled(), false);
    await conv(colleague, "ana").locator("button").click();

    await send(admin, "Hola Ana, lo miro ahora mismo");
    // The customer gets the reply live, as an incoming message.
    await ana
      .locator("#mensajes li.msg-in .msg-text", { hasText: "Hola Ana, lo miro ahora mismo" })
      .waitFor(T);
    // The other agent sees the reply in the same conversation, as the desk's.
    await colleague
      .locator("#mensajes li.msg-out .msg-text", { hasText: "Hola Ana, lo miro ahora mismo" })
      .waitFor(T);

    // History and live merge without duplicates: a reload shows each message once.
    await ana.reload();
    await messageText(ana, "Hola Ana, lo miro ahora mismo").waitFor(T);
    assert.equal(await messageText(ana, "Hola, mi pedido no ha llegado").count(), 1);
    assert.equal(await messageText(ana, "Hola Ana, lo miro ahora mismo").count(), 1);
    for (const page of [admin, ana, colleague]) {
      assert.deepEqual(page.errors, [], "no script errors");
    }
  });

  it("unread markers survive switching between three conversations; replies go to the one on screen", async () => {
    const luis = await open();
    await signIn(luis, server.base, "luis", DEMO_PASSWORD);
    const carla = await openAs("carla", "user");

    // The desk is on ana's conversation.
    assert.equal(await conv(admin, "ana").getAttribute("class"), "conv conv-active");
    await send(luis, "Buenas, una duda con la factura");
    await send(luis, "Es la de noviembre");
    await send(carla, "¿Tenéis envío a Canarias?");

    await badge(admin, "luis").filter({ hasText: "2" }).waitFor(T);
    await badge(admin, "carla").filter({ hasText: "1" }).waitFor(T);
    assert.equal(await badge(admin, "ana").count(), 0);
    await admin.screenshot({ path: path.join(artifacts, "desk-admin.png") });

    await conv(admin, "luis").locator("button").click();
    await messageText(admin, "Es la de noviembre").waitFor(T);
    assert.equal(await badge(admin, "luis").count(), 0);
    assert.equal(await badge(admin, "carla").textContent(), "1", "carla is still unread");
    assert.equal(await messageText(admin, "¿Tenéis envío a Canarias?").count(), 0);

    // Ana writes while the desk looks at luis.
    await send(ana, "¿Alguna novedad?");
    await badge(admin, "ana").filter({ hasText: "1" }).waitFor(T);

    await conv(admin, "carla").locator("button").click();
    await messageText(admin, "¿Tenéis envío a Canarias?").waitFor(T);
    assert.equal(await badge(admin, "carla").count(), 0);
    assert.equal(await badge(admin, "ana").textContent(), "1", "ana's marker survived two switches");
    assert.equal(await badge(admin, "luis").count(), 0);

    // The reply box is bound to carla's conversation now.
    await send(admin, "Sí, enviamos a Canarias");
    await carla.locator("#mensajes li.msg-in .msg-text", { hasText: "Sí, enviamos a Canarias" }).waitFor(T);
    await luis.waitForTimeout(500);
    assert.equal(
      await luis.locator(".msg-text", { hasText: "Sí, enviamos a Canarias" }).count(),
      0,
      "luis does not get carla's reply",
    );

    await conv(admin, "ana").locator("button").click();
    await messageText(admin, "¿Alguna novedad?").waitFor(T);
    assert.equal(await admin.locator("#conversaciones .badge").count(), 0);
    // Going back to luis shows his history again, from memory and server alike.
    await conv(admin, "luis").locator("button").click();
    await messageText(admin, "Buenas, una duda con la factura").waitFor(T);

    await ana.screenshot({ path: path.join(artifacts, "desk-user.png") });
  });

  it("markup in a message is shown as text and runs nothing", async () => {
    const payload = "<img src=x onerror=alert(1)>";
    await send(ana, payload);
    await conv(admin, "ana").locator("button").click();
    for (const page of [ana, admin]) {
      const text = messageText(page, payload);
      await text.waitFor(T);
      assert.equal(await text.textContent(), payload);
      assert.equal(await page.locator("#mensajes img").count(), 0, "no element was created");
    }
    // The conversation list's preview is text too.
    assert.equal(await conv(admin, "ana").locator(".conv-preview").textContent(), payload);
    await admin.waitForTimeout(500);
    assert.deepEqual(admin.dialogs, [], "no dialog on the desk");
    assert.deepEqual(ana.dialogs, [], "no dialog on the customer's page");
  });

  it("the desk works on a phone-sized screen", async () => {
    const phone = await openAs("admin", "admin", { viewport: { width: 390, height: 780 } });
    await conv(phone, "ana").waitFor(T);
    assert.equal(await phone.locator("#chat").isVisible(), false, "the list comes first");
    await conv(phone, "ana").locator("button").click();
    await messageText(phone, "¿Alguna novedad?").waitFor(T);
    assert.equal(await phone.locator("#sidebar").isVisible(), false);
    await phone.screenshot({ path: path.join(artifacts, "desk-admin-phone.png") });
    await phone.click("#volver");
    await conv(phone, "ana").waitFor({ state: "visible", ...T });
  });

  it("long histories come in pages, older ones on request", async () => {
    const marta = await openAs("marta", "user");
    const total = HISTORY_PAGE + 3;
    for (let i = 1; i <= total; i++) await send(marta, `mensaje número ${i}`);

    // A desk that opens now knows only what the server sends it.
    const desk = await openAs("admin", "admin");
    await conv(desk, "marta").locator("button").click();
    await messageText(desk, `mensaje número ${total}`).waitFor(T);
    const rows = desk.locator("#mensajes li.msg[data-id]");
    assert.equal(await rows.count(), HISTORY_PAGE, "the newest page only");
    await desk.click("#anteriores");
    await messageText(desk, "mensaje número 1").waitFor(T);
    assert.equal(await rows.count(), total);
    assert.equal(await desk.locator("#anteriores").isVisible(), false, "nothing older left");
    const texts = await desk.locator("#mensajes li.msg[data-id] .msg-text").allTextContents();
    assert.deepEqual(
      texts,
      Array.from({ length: total }, (_, i) => `mensaje número ${i + 1}`),
      "oldest first, each once",
    );

    await marta.reload();
    await messageText(marta, `mensaje número ${total}`).waitFor(T);
    assert.equal(await marta.locator("#anteriores").isVisible(), true);
    assert.equal(await messageText(marta, "mensaje número 1").count(), 0);
  });

  it("an expired session leads back to sign-in", async () => {
    const token = server.token("ana", "user", { ttl: 2 });
    const page = await open();
    await page.context().addCookies([{ name: "token", value: token, url: server.base }]);
    await page.goto(server.base + "/soporte");
    assert.match(page.url(), /\/soporte$/);
    await page.waitForURL(/\/login/, { timeout: 20000 });
    await page.locator(".notice-info", { hasText: "sesión ha caducado" }).waitFor(T);
    await page.screenshot({ path: path.join(artifacts, "login-expired.png") });

    // A page opened with an already expired token goes straight to the form.
    const late = await open();
    await late.context().addCookies([{ name: "token", value: token, url: server.base }]);
    await late.goto(server.base + "/soporte");
    assert.match(late.url(), /\/login/);
  });

  it("wrong credentials stay on the form with an error", async () => {
    const page = await open();
    await page.goto(server.base + "/login");
    await page.fill("#user", "luis");
    await page.fill("#pass", "no-es-esta");
    await page.click("button[type=submit]");
    await page.locator(".notice-error", { hasText: "incorrectos" }).waitFor(T);
    assert.match(page.url(), /\/auth$/);
  });
});
