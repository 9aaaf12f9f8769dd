// Drives the official Home Assistant JS client (home-assistant-js-websocket) against a server.
//
//   node driver.js <http-url-of-home-assistant> <long-lived-token>
//
// Prints one JSON object per line on stdout ("kind" says what it is) and takes one command per
// line on stdin. Used by tests/fake_ha/test_real_clients.py; nothing in it knows about the fake.
"use strict";

// Node 20 has no global WebSocket; the library calls `new WebSocket(url)`.
globalThis.WebSocket = require("ws");

const readline = require("node:readline");
const haws = require("home-assistant-js-websocket");

const [hassUrl, token] = process.argv.slice(2);

function out(kind, fields) {
  process.stdout.write(JSON.stringify({ kind, ...fields }) + "\n");
}

async function main() {
  if (!hassUrl || !token) {
    out("fatal", { error: "usage: node driver.js <hass-url> <token>" });
    process.exit(2);
  }
  const auth = haws.createLongLivedTokenAuth(hassUrl, token);
  let conn;
  try {
    conn = await haws.createConnection({ auth });
  } catch (err) {
    // ERR_INVALID_AUTH (2) or ERR_CANNOT_CONNECT (1)
    out("connect_failed", { error: err });
    process.exit(3);
  }
  out("connected", { haVersion: conn.haVersion });
  conn.addEventListener("ready", () => out("ready", { haVersion: conn.haVersion }));
  conn.addEventListener("disconnected", () => out("disconnected", {}));
  conn.addEventListener("reconnect-error", (_c, err) => out("reconnect_error", { error: err }));

  out("states", { states: await haws.getStates(conn) });
  out("config", { config: await haws.getConfig(conn) });

  // Every state_changed event, as the library hands it over.
  await conn.subscribeEvents((event) => out("event", { event }), "state_changed");

  // The frontend's entity view: subscribe_entities and its compressed diffs, applied by the
  // library. Kept here and printed on demand ("dump"), as it is the whole state each time.
  let entities;
  let entityUpdates = 0;
  haws.subscribeEntities(conn, (ents) => {
    entities = ents;
    entityUpdates += 1;
  });
  // The config collection: get_config plus component_loaded / core_config_updated events.
  let configUpdates = 0;
  haws.subscribeConfig(conn, (config) => {
    configUpdates += 1;
    out("config_collection", { config });
  });

  const commands = {
    // A ping round trip first: its pong comes after everything the server queued before it, so
    // the view printed includes every change fired before the command was sent.
    async dump() {
      await conn.ping();
      out("dump", { entities, updates: entityUpdates, configUpdates });
    },
    async states() {
      out("states", { states: await haws.getStates(conn) });
    },
    async ping() {
      await conn.ping();
      out("pong", {});
    },
    async get_services() {
      try {
        out("services", { services: await haws.getServices(conn) });
      } catch (error) {
        out("command_error", { command: "get_services", error });
      }
    },
    async close() {
      conn.close();
      out("closed", {});
      process.exit(0);
    },
  };

  const rl = readline.createInterface({ input: process.stdin });
  rl.on("line", (line) => {
    const name = line.trim();
    const command = commands[name];
    if (!command) {
      out("unknown_driver_command", { command: name });
      return;
    }
    command().catch((error) => out("command_error", { command: name, error: String(error) }));
  });
  rl.on("close", () => {
    conn.close();
    process.exit(0);
  });
  out("subscribed", {});
}

main().catch((err) => {
  out("fatal", { error: String(err && err.stack ? err.stack : err) });
  process.exit(1);
});
