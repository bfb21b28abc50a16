// Test harness: a real `mensajero serve --demo` on a free loopback port with its own
// temporary SQLite file and secret, tokens from `mensajero token`, and Debian's chromium
// driven through playwright-core (no downloaded browser).

import { spawn, execFileSync } from "node:child_process";
import { mkdtempSync, mkdirSync, rmSync } from "node:fs";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";

import { chromium } from "playwright-core";

const here = path.dirname(fileURLToPath(import.meta.url));
export const repoRoot = path.resolve(here, "..", "..");
export const artifacts = path.join(repoRoot, "tests", "artifacts");

export const BIN = path.resolve(
  repoRoot,
  process.env.MENSAJERO_BIN || path.join("target", "debug", "mensajero"),
);
export const CHROMIUM = process.env.CHROMIUM_PATH || "/usr/bin/chromium";
export const DEMO_PASSWORD = "demo-clave-123";
export const HISTORY_PAGE = 6;

function freePort() {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.unref();
    server.on("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

export class Mensajero {
  static async start() {
    const dir = mkdtempSync(path.join(os.tmpdir(), "mensajero-browser-"));
    const port = await freePort();
    const env = {
      ...process.env,
      DATABASE_URL: path.join(dir, "desk.db"),
      JWT_SECRET: "browser-test-secret-" + process.pid,
      MENSAJERO_DEMO_PASSWORD: DEMO_PASSWORD,
      RUST_LOG: process.env.RUST_LOG || "info",
      // Small history pages, so that paging is exercised with a handful of messages.
      MENSAJERO_STORAGE__HISTORY_PAGE_DEFAULT: String(HISTORY_PAGE),
    };
    const child = spawn(BIN, ["serve", "--demo", "--bind", `127.0.0.1:${port}`], {
      env,
      stdio: ["ignore", "pipe", "pipe"],
    });
    const output = [];
    const keep = (chunk) => {
      output.push(chunk.toString());
      if (output.length > 2000) output.splice(0, 1000);
    };
    child.stdout.on("data", keep);
    child.stderr.on("data", keep);
    const server = new Mensajero(child, env, `http://127.0.0.1:${port}`, dir, output);
    await server.waitHealthy();
    return server;
  }

  constructor(child, env, base, dir, output) {
    this.child = child;
    this.env = env;
    this.base = base;
    this.dir = dir;
    this.output = output;
    this.exited = null;
    child.on("exit", (code, signal) => {
      this.exited = { code, signal };
    });
  }

  log() {
    return this.output.join("");
  }

  async waitHealthy() {
    const deadline = Date.now() + 60000;
    while (Date.now() < deadline) {
      if (this.exited) {
        throw new Error(`mensajero exited early (${JSON.stringify(this.exited)}):\n${this.log()}`);
      }
      try {
        const res = await fetch(this.base + "/healthz");
        if (res.ok) return;
      } catch (_) {
        /* not listening yet */
      }
      await sleep(100);
    }
    throw new Error("mensajero did not become healthy in 60 s:\n" + this.log());
  }

  /** A session token from the CLI (`mensajero token`). */
  token(user, rol, { ttl, name } = {}) {
    const args = ["token", "--user", user, "--rol", rol];
    if (name) args.push("--name", name);
    if (ttl != null) args.push("--ttl", String(ttl));
    return execFileSync(BIN, args, { env: this.env, encoding: "utf8" }).trim();
  }

  async stop() {
    if (!this.exited) {
      this.child.kill("SIGTERM");
      const deadline = Date.now() + 15000;
      while (!this.exited && Date.now() < deadline) await sleep(50);
      if (!this.exited) this.child.kill("SIGKILL");
    }
    rmSync(this.dir, { recursive: true, force: true });
  }
}

export async function launchBrowser() {
  return chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: [
      "--no-sandbox",
      "--disable-gpu",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
      "--no-first-run",
      "--disable-dev-shm-usage",
    ],
  });
}

/**
 * A browser context (its own cookie jar) with one page, which records the dialogs it
 * was shown and the page errors it hit, so tests can assert there were none.
 */
export async function openPage(browser, { viewport } = {}) {
  const context = await browser.newContext({
    viewport: viewport || { width: 1280, height: 800 },
    locale: "es-ES",
    timezoneId: "Europe/Madrid",
  });
  const page = await context.newPage();
  page.dialogs = [];
  page.errors = [];
  page.on("dialog", async (dialog) => {
    page.dialogs.push(dialog.message());
    await dialog.dismiss().catch(() => {});
  });
  page.on("pageerror", (err) => page.errors.push(String(err)));
  page.on("console", (msg) => {
    // Failed loads are recorded with their URL below; this line would only repeat them.
    if (msg.type() === "error" && !msg.text().startsWith("Failed to load resource")) {
      page.errors.push("console: " + msg.text());
    }
  });
  page.on("response", (response) => {
    if (response.status() >= 400) page.errors.push(`HTTP ${response.status()} ${response.url()}`);
  });
  return { context, page };
}

export async function signIn(page, base, user, pass) {
  await page.goto(base + "/login");
  await page.fill("#user", user);
  await page.fill("#pass", pass);
  await Promise.all([page.waitForURL(base + "/soporte"), page.click("button[type=submit]")]);
  await waitConnected(page);
}

/** A context signed in with a CLI token set as the session cookie. */
export async function openWithToken(browser, server, token, options) {
  const opened = await openPage(browser, options);
  await opened.context.addCookies([
    { name: "token", value: token, url: server.base, httpOnly: true, sameSite: "Lax" },
  ]);
  await opened.page.goto(server.base + "/soporte");
  await waitConnected(opened.page);
  return opened;
}

export async function waitConnected(page) {
  await page.locator('#estado[data-estado="ok"]').waitFor({ timeout: 20000 });
}

/** Type a message and wait until the server acknowledged it (it then has an id). */
export async function send(page, text) {
  await page.fill("#texto", text);
  await page.press("#texto", "Enter");
  await page
    .locator("#mensajes li.msg-out[data-id]", { has: page.locator(".msg-text", { hasText: text }) })
    .last()
    .waitFor({ timeout: 15000 });
}

export function messageText(page, text) {
  return page.locator("#mensajes li.msg[data-id] .msg-text").filter({ hasText: text });
}

export function conv(page, user) {
  return page.locator(`#conversaciones li[data-user="${user}"]`);
}

export function badge(page, user) {
  return conv(page, user).locator(".badge");
}

export function ensureArtifacts() {
  mkdirSync(artifacts, { recursive: true });
}
