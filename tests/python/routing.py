"""python-socketio against mensajero: user -> desk, admin -> user, acks, refusals.

Run by tests/broker_clients.rs with BROKER_URL, TRANSPORTS and TOKEN_* in the environment.
Prints one JSON summary line; exits non-zero on the first failed expectation.
"""
import json
import os
import sys
import threading
import time

import socketio

URL = os.environ["BROKER_URL"]
MODE = os.environ.get("TRANSPORTS", "default")
TRANSPORTS = {"polling": ["polling"], "websocket": ["websocket"]}.get(MODE)


class Peer:
    def __init__(self, name):
        self.client = socketio.Client(reconnection=False)
        self.events = []
        self.lock = threading.Lock()

        @self.client.on("*")
        def any_event(event, *args):
            with self.lock:
                self.events.append((event, args[0] if args else None))

        headers = {"Cookie": "token=" + os.environ["TOKEN_" + name.upper()]}
        self.client.connect(URL, headers=headers, transports=TRANSPORTS, wait_timeout=5)

    def wait_for(self, event, count=1, timeout=5.0):
        deadline = time.time() + timeout
        while time.time() < deadline:
            with self.lock:
                got = [payload for (name, payload) in self.events if name == event]
            if len(got) >= count:
                return got
            time.sleep(0.01)
        raise AssertionError(f"timeout waiting for {count} {event}")

    def send(self, payload):
        return self.client.call("mensaje_privado", payload, timeout=5)


def expect(condition, message):
    if not condition:
        raise AssertionError(message)


def main():
    ana = Peer("ana")
    desk = Peer("admin")
    sonia = Peer("sonia")
    if MODE != "polling":
        # The default client upgrades right after connecting; give it the moment it needs.
        deadline = time.time() + 3
        while ana.client.transport() != "websocket" and time.time() < deadline:
            time.sleep(0.05)
    acks = []

    ack = ana.send({"para": "admin", "mensaje": "hola desde python"})
    expect(ack["ok"] is True, ack)
    acks.append(dict(ack, de="ana", para="admin", mensaje="hola desde python"))
    for admin in (desk, sonia):
        got = admin.wait_for("mensaje_recibido")[0]
        expect(got == {"de": "ana", "mensaje": "hola desde python", "para": "admin",
                       "id": ack["id"], "fecha": ack["fecha"]}, got)

    reply = sonia.send({"para": "ana", "mensaje": "respuesta"})
    expect(reply["ok"] is True, reply)
    acks.append(dict(reply, de="sonia", para="ana", mensaje="respuesta"))
    got = ana.wait_for("mensaje_recibido")[0]
    expect(got["de"] == "sonia" and got["id"] == reply["id"], got)
    copy = desk.wait_for("mensaje_enviado")[0]
    expect(copy["id"] == reply["id"], copy)

    refused = ana.send({"para": "luis", "mensaje": "no"})
    expect(refused["ok"] is False and refused["error"], refused)
    bad = ana.send("not an object")
    expect(bad["ok"] is False, bad)

    transport = ana.client.transport()
    for peer in (ana, desk, sonia):
        peer.client.disconnect()
    print(json.dumps({"acks": acks, "transport": transport}))


if __name__ == "__main__":
    try:
        main()
    except Exception as error:  # report and fail the scenario
        print(f"scenario failed: {error!r}", file=sys.stderr)
        sys.exit(1)
