import "./i18n.js";
import init, { popup_main } from "./wasm/popup.js";

const api = globalThis.browser ?? globalThis.chrome;

// The popup shows the worker's state before its own Wasm has loaded. The port opens first and
// subscribes; the first state the worker pushes carries a paint (core::paint: the text and
// attributes of the information elements), applied here as it comes. Only then does the
// popup's module load, so compiling it does not hold up that answer; it adopts the port, with
// every message held meanwhile, and renders the whole view with its controls. A worker that
// has not answered within WORKER_WAIT_MS does not hold the module up any longer.
//
// Every later request is the Wasm's (core::messages); this one is written here, and
// tests/package.rs checks it, and the painted attributes, against the core's.
const subscribe = (tab) => ({ "v": 3, "type": "subscribe", "tabId": tab });
const PAINTED_ATTRIBUTES = ["title", "src", "data-status", "data-phase", "data-error"];
const WORKER_WAIT_MS = 250;

let loadModule;
const moduleWanted = new Promise((wanted) => { loadModule = wanted; });
setTimeout(loadModule, WORKER_WAIT_MS);
const early = connectEarly();

// Chromium shares compiled Wasm code between an extension's pages and its worker (the same
// bytes in the same process): compiled here, the worker's module is ready for a stopped worker
// this popup wakes; a running worker's is found as is.
const workerCode = WebAssembly.compileStreaming(fetch(new URL("./wasm/worker_bg.wasm", import.meta.url)));
workerCode.catch(() => {});

moduleWanted
  .then(() => init({ module_or_path: new URL("./wasm/popup_bg.wasm", import.meta.url) }))
  .then(() => popup_main(early));

// `popup.html?tab=<id>` names the tab; otherwise it is the active tab of this window. `null`
// when there is none.
async function targetTab() {
  const named = new URLSearchParams(location.search).get("tab");
  if (named !== null) return /^\d{1,10}$/.test(named) ? Number(named) : null;
  const [tab] = await api.tabs.query({ active: true, currentWindow: true });
  return Number.isInteger(tab?.id) ? tab.id : null;
}

function connectEarly() {
  const port = api.runtime.connect({ name: "wpp-tabs-popup" });
  const held = [];
  let gone = false;
  let deliver = (message) => {
    held.push(message);
    if (held.length === 1 && message?.type === "state" && Array.isArray(message.paint)) {
      paint(message.paint);
    }
    loadModule();
  };
  let end = () => {
    gone = true;
    loadModule();
  };
  port.onMessage.addListener((message) => deliver(message));
  port.onDisconnect.addListener(() => end());
  const tab = targetTab().catch(() => null).then((tab) => {
    try {
      if (tab !== null && !gone) port.postMessage(subscribe(tab));
    } catch {
      // The worker went away at once: the Wasm reconnects and subscribes itself.
    }
    if (tab === null) loadModule();
    return tab;
  });
  return {
    port,
    tab,
    // Hands the port to the Wasm: what was held first, in order, then every later message.
    adopt(onMessage, onDisconnect) {
      deliver = onMessage;
      end = onDisconnect;
      for (const message of held.splice(0)) onMessage(message);
      if (gone) onDisconnect();
    },
  };
}

// Applies a paint as the popup's Wasm does (shell::popup::apply); what is not a paint of an
// element this page has is skipped.
function paint(paints) {
  for (const { id, shown, text, attributes } of paints) {
    const el = typeof id === "string" && document.getElementById(id);
    if (!el) continue;
    if (typeof text?.plain === "string") el.textContent = text.plain;
    if (typeof text?.message?.key === "string") {
      const { key, args = [] } = text.message;
      el.textContent = api.i18n.getMessage(key, args) || key;
    }
    for (const [name, value] of Array.isArray(attributes) ? attributes : []) {
      if (!PAINTED_ATTRIBUTES.includes(name)) continue;
      if (typeof value === "string") el.setAttribute(name, value);
      else el.removeAttribute(name);
    }
    el.hidden = shown !== true;
  }
  document.body.dataset.source = "paint";
}
