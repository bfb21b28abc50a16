// Shared helpers for the scenarios: connect with a cookie, wait for events, fail loudly.
import { io } from "socket.io-client";

export const URL = process.env.BROKER_URL;
if (!URL) throw new Error("BROKER_URL is not set");

/** Transports to use, from TRANSPORTS ("default", "polling", "websocket"). */
export function transportOptions() {
  switch (process.env.TRANSPORTS || "default") {
    case "polling":
      return { transports: ["polling"] };
    case "websocket":
      return { transports: ["websocket"] };
    default:
      return {};
  }
}

/** Open a socket with `cookie` as Cookie header; resolves once connected. */
export function connect(cookie, extra = {}) {
  const headers = cookie === null ? {} : { Cookie: cookie };
  const socket = io(URL, {
    forceNew: true,
    reconnection: false,
    extraHeaders: headers,
    ...transportOptions(),
    ...extra,
  });
  socket.received = [];
  socket.onAny((event, ...args) => socket.received.push({ event, args }));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error("connect timeout")), 5000);
    socket.once("connect", () => {
      clearTimeout(timer);
      resolve(socket);
    });
    socket.once("connect_error", (err) => {
      clearTimeout(timer);
      socket.close();
      reject(err);
    });
  });
}

/** The connect_error message for `cookie`, or throws if it connects. */
export async function refusal(cookie, extra = {}) {
  try {
    const socket = await connect(cookie, extra);
    socket.close();
  } catch (err) {
    return err.message;
  }
  throw new Error(`connected with cookie ${cookie}`);
}

/** Emit with an ack; resolves with the ack's first argument. */
export function send(socket, payload, timeout = 5000) {
  return socket.timeout(timeout).emitWithAck("mensaje_privado", payload);
}

/** Wait until `socket` has received `count` events named `event`. */
export async function waitFor(socket, event, count = 1, timeout = 5000) {
  const start = Date.now();
  for (;;) {
    const got = socket.received.filter((e) => e.event === event);
    if (got.length >= count) return got.map((e) => e.args[0]);
    if (Date.now() - start > timeout) {
      throw new Error(`timeout waiting for ${count} ${event} (got ${got.length})`);
    }
    await sleep(10);
  }
}

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

export const cookieFor = (name) => `token=${process.env[`TOKEN_${name.toUpperCase()}`]}`;

/** Events of `socket` named `event`. */
export const events = (socket, event) => socket.received.filter((e) => e.event === event).map((e) => e.args[0]);

/** Print the summary line and exit, or report the failure. */
export function run(main) {
  main()
    .then((summary) => {
      console.log(JSON.stringify(summary ?? {}));
      process.exit(0);
    })
    .catch((err) => {
      console.error(err && err.stack ? err.stack : err);
      process.exit(1);
    });
}
