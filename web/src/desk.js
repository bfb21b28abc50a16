/*
 * mensajero — the support desk page's script (GET /soporte).
 *
 * The page is a static shell; this script asks /api/yo who is signed in, opens one
 * Socket.IO connection with the official client and default options (polling, then the
 * upgrade to WebSocket, as the seed's page did), and keeps every conversation as a map
 * of messages keyed by their server id. History (HTTP) and live events (socket) are
 * merged by id, so neither can duplicate or overwrite the other, whatever order they
 * arrive in. Text goes into the DOM with textContent only: the page's CSP forbids inline
 * code, and nothing from a message is ever parsed as HTML.
 */
(function () {
  "use strict";

  /** connect_error messages that mean the session is gone, not the network. */
  const AUTH_ERRORS = ["No autenticado", "Token no proporcionado", "Token inválido"];
  /** Key of the single conversation of the user view. */
  const DESK = "\u0000desk";
  const ACK_TIMEOUT_MS = 15000;

  const $ = (id) => document.getElementById(id);
  const ui = {
    shell: $("shell"),
    estado: $("estado"),
    yoNombre: $("yo-nombre"),
    yoRol: $("yo-rol"),
    yoAvatar: $("yo-avatar"),
    lista: $("conversaciones"),
    sinConversaciones: $("sin-conversaciones"),
    totalSinLeer: $("total-sin-leer"),
    titulo: $("titulo"),
    subtitulo: $("subtitulo"),
    scroll: $("mensajes-scroll"),
    anteriores: $("anteriores"),
    marcador: $("marcador"),
    mensajes: $("mensajes"),
    aviso: $("aviso"),
    composer: $("composer"),
    texto: $("texto"),
    enviar: $("enviar"),
    volver: $("volver"),
  };

  const state = {
    me: null, // {user, name, rol, desk, exp}
    admin: false,
    convs: new Map(), // key -> conversation (see conversation())
    current: null, // key of the conversation on screen
    socket: null,
    connectedOnce: false,
    leaving: false,
    localSeq: 0,
  };

  // ---------------------------------------------------------------- session

  function goLogin() {
    if (state.leaving) return;
    state.leaving = true;
    if (state.socket) state.socket.disconnect();
    window.location.replace("/login?expirada=1");
  }

  class SessionGone extends Error {}

  /** GET a JSON resource; a refused session leads back to the sign-in form. */
  async function getJson(url) {
    const response = await fetch(url, {
      credentials: "same-origin",
      headers: { Accept: "application/json" },
      cache: "no-store",
    });
    if (response.status === 401 || response.status === 403) {
      goLogin();
      throw new SessionGone(String(response.status));
    }
    if (!response.ok) {
      let message = "Error " + response.status;
      try {
        const body = await response.json();
        if (body && typeof body.error === "string") message = body.error;
      } catch (_) {
        /* not JSON: keep the status */
      }
      throw new Error(message);
    }
    return { body: await response.json(), headers: response.headers };
  }

  async function checkSession() {
    try {
      await getJson("/api/yo");
      return true;
    } catch (err) {
      return !(err instanceof SessionGone);
    }
  }

  /** The token's expiry is known: look again just after it, rather than wait for a refusal. */
  function watchExpiry(exp) {
    if (typeof exp !== "number") return;
    const delay = exp * 1000 - Date.now() + 1000;
    window.setTimeout(checkSession, Math.min(Math.max(delay, 0), 2147483000));
  }

  // ---------------------------------------------------------------- model

  function conversation(key) {
    let conv = state.convs.get(key);
    if (!conv) {
      conv = {
        key,
        messages: new Map(), // id -> message
        pending: [], // sent, not yet acknowledged
        unread: 0,
        loaded: false,
        loading: null,
        older: null, // `antes` of the next older page, when the server has one
        lastId: 0,
      };
      state.convs.set(key, conv);
    }
    return conv;
  }

  function fromRow(row) {
    return {
      id: row.id,
      de: row.de_usuario,
      para: row.para_usuario,
      mensaje: row.mensaje,
      fecha: row.fecha,
    };
  }

  function fromEvent(data) {
    const id = typeof data.id === "number" ? data.id : "local-" + ++state.localSeq;
    return {
      id,
      de: String(data.de),
      para: data.para == null ? null : String(data.para),
      mensaje: String(data.mensaje),
      fecha: typeof data.fecha === "string" ? data.fecha : new Date().toISOString(),
    };
  }

  /** Merge by id; what is known already is kept as it is. */
  function addMessage(conv, message) {
    if (conv.messages.has(message.id)) return false;
    conv.messages.set(message.id, message);
    if (typeof message.id === "number" && message.id > conv.lastId) conv.lastId = message.id;
    return true;
  }

  function sortedMessages(conv) {
    return Array.from(conv.messages.values()).sort((a, b) => {
      const an = typeof a.id === "number";
      const bn = typeof b.id === "number";
      if (an && bn) return a.id - b.id;
      if (an !== bn) return an ? -1 : 1;
      return String(a.fecha).localeCompare(String(b.fecha));
    });
  }

  /** Which conversation a live message belongs to, seen from this user. */
  function keyOf(message, event) {
    if (!state.admin) return DESK;
    if (event === "mensaje_enviado") return message.para;
    return message.de;
  }

  function isOutgoing(conv, message) {
    if (!state.admin) return message.de === state.me.user;
    return message.de !== conv.key;
  }

  // ---------------------------------------------------------------- history

  function historyUrl(conv, before) {
    let url = state.admin
      ? "/api/mensajes?con=" + encodeURIComponent(conv.key)
      : "/api/mensajes/mios";
    if (before != null) url += (url.includes("?") ? "&" : "?") + "antes=" + encodeURIComponent(before);
    return url;
  }

  function loadHistory(conv, before) {
    if (conv.loading) return conv.loading;
    conv.loading = getJson(historyUrl(conv, before))
      .then(({ body, headers }) => {
        body.forEach((row) => addMessage(conv, fromRow(row)));
        if (!conv.loaded || before != null) {
          const older = headers.get("X-Mas-Antiguos");
          conv.older = older ? older : null;
        }
        conv.loaded = true;
      })
      .catch((err) => {
        if (!(err instanceof SessionGone)) showNotice("No se pudo cargar el historial: " + err.message);
      })
      .finally(() => {
        conv.loading = null;
        if (state.current === conv.key) renderMessages({ keepOffset: before != null });
        renderList();
      });
    return conv.loading;
  }

  async function loadConversationList() {
    try {
      const { body } = await getJson("/api/usuarios-conversaciones");
      body.forEach((user) => conversation(String(user)));
      renderList();
    } catch (err) {
      if (!(err instanceof SessionGone)) showNotice("No se pudo cargar la lista: " + err.message);
    }
  }

  /** After a reconnection: fetch what was missed while the socket was away. */
  function refresh() {
    if (state.admin) {
      loadConversationList();
      state.convs.forEach((conv) => {
        if (conv.loaded) loadHistory(conv);
      });
    } else {
      loadHistory(conversation(DESK));
    }
  }

  // ---------------------------------------------------------------- rendering

  const timeFormat = new Intl.DateTimeFormat(undefined, { hour: "2-digit", minute: "2-digit" });
  const dayFormat = new Intl.DateTimeFormat(undefined, { weekday: "long", day: "numeric", month: "long" });

  function dayLabel(date) {
    const today = new Date();
    const yesterday = new Date(Date.now() - 86400000);
    if (date.toDateString() === today.toDateString()) return "Hoy";
    if (date.toDateString() === yesterday.toDateString()) return "Ayer";
    return dayFormat.format(date);
  }

  function node(tag, className, text) {
    const element = document.createElement(tag);
    if (className) element.className = className;
    if (text != null) element.textContent = text;
    return element;
  }

  function initial(name) {
    const trimmed = String(name || "?").trim();
    return trimmed ? Array.from(trimmed)[0].toUpperCase() : "?";
  }

  function senderLabel(conv, message) {
    if (state.admin) return message.de === state.me.user ? "Tú" : message.de;
    if (message.de === state.me.user) return "Tú";
    return message.de === state.me.desk ? "Soporte" : message.de;
  }

  function messageItem(conv, message, pending) {
    const out = pending ? true : isOutgoing(conv, message);
    const item = node("li", "msg " + (out ? "msg-out" : "msg-in"));
    if (pending) {
      item.classList.add(pending.failed ? "msg-failed" : "msg-sending");
    } else {
      item.dataset.id = String(message.id);
    }
    const bubble = node("div", "bubble");
    if (!pending && (out || !state.admin)) bubble.appendChild(node("span", "msg-from", senderLabel(conv, message)));
    bubble.appendChild(node("p", "msg-text", message.mensaje));
    const meta = node("span", "msg-meta");
    if (pending) {
      meta.textContent = pending.failed ? "No enviado: " + pending.error : "Enviando…";
    } else {
      const date = new Date(message.fecha);
      const time = node("time", null, isNaN(date) ? "" : timeFormat.format(date));
      time.dateTime = message.fecha;
      time.title = isNaN(date) ? message.fecha : date.toLocaleString();
      meta.appendChild(time);
    }
    bubble.appendChild(meta);
    item.appendChild(bubble);
    return item;
  }

  function renderMessages(options) {
    const opts = options || {};
    const conv = state.current == null ? null : state.convs.get(state.current);
    const list = ui.mensajes;
    const nearBottom = ui.scroll.scrollHeight - ui.scroll.scrollTop - ui.scroll.clientHeight < 80;
    const fromBottom = ui.scroll.scrollHeight - ui.scroll.scrollTop;
    list.replaceChildren();
    if (!conv) {
      ui.marcador.hidden = false;
      ui.anteriores.hidden = true;
      return;
    }
    const messages = sortedMessages(conv);
    ui.marcador.hidden = messages.length + conv.pending.length > 0;
    if (!ui.marcador.hidden) {
      if (conv.loading) ui.marcador.textContent = "Cargando mensajes…";
      else if (state.admin) ui.marcador.textContent = "Aún no hay mensajes en esta conversación.";
      else
        ui.marcador.textContent =
          "¿En qué podemos ayudarte? Escribe tu mensaje y el equipo de soporte te responderá aquí.";
    }
    ui.anteriores.hidden = !conv.older;
    let lastDay = null;
    for (const message of messages) {
      const date = new Date(message.fecha);
      const day = isNaN(date) ? null : date.toDateString();
      if (day && day !== lastDay) {
        list.appendChild(node("li", "day", dayLabel(date)));
        lastDay = day;
      }
      list.appendChild(messageItem(conv, message, null));
    }
    for (const pending of conv.pending) list.appendChild(messageItem(conv, pending, pending));
    if (opts.keepOffset) {
      ui.scroll.scrollTop = ui.scroll.scrollHeight - fromBottom;
    } else if (nearBottom || opts.toBottom) {
      ui.scroll.scrollTop = ui.scroll.scrollHeight;
    }
  }

  function lastMessage(conv) {
    let last = null;
    conv.messages.forEach((m) => {
      if (!last || (typeof m.id === "number" && m.id > last.id)) last = m;
    });
    return last;
  }

  function renderList() {
    if (!state.admin) return;
    const convs = Array.from(state.convs.values()).sort(
      (a, b) => b.lastId - a.lastId || a.key.localeCompare(b.key),
    );
    const items = convs.map((conv) => {
      const item = node("li", "conv");
      item.dataset.user = conv.key;
      if (conv.unread > 0) item.classList.add("conv-unread");
      if (conv.key === state.current) item.classList.add("conv-active");
      const button = node("button", "conv-button");
      button.type = "button";
      if (conv.key === state.current) button.setAttribute("aria-current", "true");
      button.appendChild(node("span", "avatar", initial(conv.key)));
      const text = node("span", "conv-text");
      text.appendChild(node("span", "conv-name", conv.key));
      const last = lastMessage(conv);
      text.appendChild(node("span", "conv-preview", last ? last.mensaje : ""));
      button.appendChild(text);
      const side = node("span", "conv-side");
      if (last) {
        const date = new Date(last.fecha);
        side.appendChild(node("span", "conv-time", isNaN(date) ? "" : timeFormat.format(date)));
      }
      if (conv.unread > 0) {
        const badge = node("span", "badge", String(conv.unread));
        badge.setAttribute("aria-label", conv.unread + " sin leer");
        side.appendChild(badge);
      }
      button.appendChild(side);
      button.addEventListener("click", () => openConversation(conv.key));
      item.appendChild(button);
      return item;
    });
    ui.lista.replaceChildren(...items);
    ui.sinConversaciones.hidden = items.length > 0;
    const total = convs.reduce((sum, c) => sum + c.unread, 0);
    ui.totalSinLeer.hidden = total === 0;
    ui.totalSinLeer.textContent = String(total);
    document.title = (total > 0 ? "(" + total + ") " : "") + "Soporte";
  }

  function setConnection(kind, text) {
    ui.estado.dataset.estado = kind;
    ui.estado.textContent = text;
  }

  function showNotice(text) {
    ui.aviso.textContent = text;
    ui.aviso.hidden = !text;
  }

  function setComposer(enabled) {
    ui.texto.disabled = !enabled;
    ui.enviar.disabled = !enabled;
  }

  // ---------------------------------------------------------------- actions

  function openConversation(key) {
    const conv = conversation(key);
    state.current = key;
    conv.unread = 0;
    ui.shell.dataset.panel = "chat";
    ui.titulo.textContent = key;
    ui.subtitulo.textContent = "Conversación con " + key;
    setComposer(true);
    showNotice("");
    if (!conv.loaded) loadHistory(conv);
    renderList();
    renderMessages({ toBottom: true });
    ui.texto.focus();
  }

  function send(event) {
    event.preventDefault();
    const text = ui.texto.value;
    // The conversation is fixed when the message is written, not when the ack returns.
    const key = state.current;
    if (key == null || !text.trim()) return;
    const para = state.admin ? key : state.me.desk;
    const conv = conversation(key);
    const pending = { mensaje: text, para, de: state.me.user, failed: false, error: "" };
    conv.pending.push(pending);
    ui.texto.value = "";
    autoGrow();
    renderMessages({ toBottom: true });
    state.socket.timeout(ACK_TIMEOUT_MS).emit("mensaje_privado", { para, mensaje: text }, (err, ack) => {
      if (!err && ack && ack.ok) {
        conv.pending.splice(conv.pending.indexOf(pending), 1);
        addMessage(conv, {
          id: ack.id,
          de: state.me.user,
          para,
          mensaje: text,
          fecha: typeof ack.fecha === "string" ? ack.fecha : new Date().toISOString(),
        });
      } else {
        pending.failed = true;
        pending.error = err ? "sin respuesta del servidor" : (ack && ack.error) || "error desconocido";
      }
      if (state.current === key) renderMessages({ toBottom: true });
      renderList();
    });
  }

  function onLive(event, data) {
    if (!data || typeof data !== "object" || typeof data.mensaje !== "string") return;
    const message = fromEvent(data);
    const key = keyOf(message, event);
    if (key == null) return;
    const known = state.convs.has(key);
    const conv = conversation(key);
    if (!addMessage(conv, message)) return;
    if (state.admin && event === "mensaje_recibido" && key !== state.current) conv.unread += 1;
    if (state.current === key) renderMessages();
    renderList();
    if (!known && state.admin) ui.sinConversaciones.hidden = true;
  }

  function autoGrow() {
    // CSSOM writes are allowed by the CSP (style-src governs markup and sheets).
    ui.texto.style.height = "auto";
    ui.texto.style.height = Math.min(ui.texto.scrollHeight, 160) + "px";
  }

  // ---------------------------------------------------------------- socket

  function connect() {
    const path = document.body.dataset.enginePath;
    // Default options, as the seed's page: polling first, then the upgrade.
    const socket = path && path !== "/socket.io/" ? io({ path }) : io();
    state.socket = socket;

    // Which transport carries the session (polling first, then the upgrade): shown as a
    // tooltip, and readable by the browser tests.
    const showTransport = () => {
      const engine = socket.io.engine;
      const name = engine && engine.transport ? engine.transport.name : "";
      ui.estado.dataset.transport = name;
      ui.estado.title = name ? "Transporte: " + name : "";
    };

    socket.on("connect", () => {
      setConnection("ok", "Conectado");
      showTransport();
      if (socket.io.engine) socket.io.engine.once("upgrade", showTransport);
      if (state.connectedOnce) refresh();
      state.connectedOnce = true;
    });
    socket.on("disconnect", async (reason) => {
      if (state.leaving) return;
      setConnection("off", "Desconectado — reconectando…");
      if (reason === "io server disconnect") {
        // The server ended the socket (an expired token does that): ask before retrying.
        if (await checkSession()) window.setTimeout(() => socket.connect(), 1000);
      }
    });
    socket.on("connect_error", async (err) => {
      if (state.leaving) return;
      const message = err && err.message ? err.message : "error de conexión";
      setConnection("error", "Sin conexión: " + message);
      if (AUTH_ERRORS.includes(message)) {
        goLogin();
      } else if (!socket.active) {
        if (await checkSession()) window.setTimeout(() => socket.connect(), 2000);
      }
    });
    socket.io.on("reconnect_attempt", (n) => {
      if (!state.leaving) setConnection("conectando", "Reconectando… (intento " + n + ")");
    });
    socket.on("mensaje_recibido", (data) => onLive("mensaje_recibido", data));
    socket.on("mensaje_enviado", (data) => onLive("mensaje_enviado", data));
  }

  // ---------------------------------------------------------------- start

  async function start() {
    let me;
    try {
      me = (await getJson("/api/yo")).body;
    } catch (err) {
      if (!(err instanceof SessionGone)) setConnection("error", "No se pudo iniciar: " + err.message);
      return;
    }
    state.me = me;
    state.admin = me.rol === "admin";
    ui.yoNombre.textContent = me.name || me.user;
    ui.yoRol.textContent = state.admin ? "Soporte" : "Cliente";
    ui.yoAvatar.textContent = initial(me.name || me.user);
    ui.shell.dataset.vista = state.admin ? "admin" : "user";
    watchExpiry(me.exp);

    ui.composer.addEventListener("submit", send);
    ui.texto.addEventListener("input", autoGrow);
    ui.texto.addEventListener("keydown", (event) => {
      if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
        event.preventDefault();
        ui.composer.requestSubmit();
      }
    });
    ui.volver.addEventListener("click", () => {
      ui.shell.dataset.panel = "lista";
    });
    ui.anteriores.addEventListener("click", () => {
      const conv = state.convs.get(state.current);
      if (conv && conv.older) loadHistory(conv, conv.older);
    });

    // The socket first, so that nothing sent while the history loads is missed; the
    // merge by id makes the order of arrival irrelevant.
    connect();
    if (state.admin) {
      setComposer(false);
      loadConversationList();
    } else {
      state.current = DESK;
      ui.shell.dataset.panel = "chat";
      ui.titulo.textContent = "Soporte";
      ui.subtitulo.textContent = "Escríbenos y te responderemos aquí mismo";
      setComposer(true);
      loadHistory(conversation(DESK));
      renderMessages();
    }
  }

  start();
})();
