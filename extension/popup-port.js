// The popup's first moments, as an async classic script: it runs as soon as it is fetched,
// without waiting for the page to be parsed or its stylesheet to load. A module script
// (popup.js) waits for both, and for its imports, which was most of the time a popup took to
// show anything. (Not a blocking script: one held the page's parsing up by about 25 ms.) So
// this opens the port to the worker and subscribes; the first state the worker pushes carries
// a paint (core::paint: the text and attributes of the information elements), applied as soon
// as the page is parsed. popup.js then loads the popup's module, which adopts the port
// (globalThis.wppTabsEarly), with every message held meanwhile, and renders the whole view
// with its controls.
//
// The one request written here, the subscription, and the painted attributes are checked
// against the core's by tests/package.rs.
"use strict";
(() => {
  const api = globalThis.browser ?? globalThis.chrome;
  const subscribe = (tab) => ({ "v": 3, "type": "subscribe", "tabId": tab });
  const PAINTED_ATTRIBUTES = ["title", "src", "data-status", "data-phase", "data-error"];
  // A worker that has not answered by then does not hold the popup's module up any longer.
  const WORKER_WAIT_MS = 250;

  let wanted;
  const moduleWanted = new Promise((resolve) => { wanted = resolve; });
  setTimeout(wanted, WORKER_WAIT_MS);

  // `popup.html?tab=<id>` names the tab; otherwise it is the active tab of this window. `null`
  // when there is none.
  async function targetTab() {
    const named = new URLSearchParams(location.search).get("tab");
    if (named !== null) return /^\d{1,10}$/.test(named) ? Number(named) : null;
    const [tab] = await api.tabs.query({ active: true, currentWindow: true });
    return Number.isInteger(tab?.id) ? tab.id : null;
  }

  // Runs `then` once the page is parsed (its elements exist), before its deferred scripts.
  function whenParsed(then) {
    if (document.readyState !== "loading") return then();
    document.addEventListener("readystatechange", then, { once: true });
  }

  // Applies a paint as the popup's Wasm does (shell::popup::apply); what is not a paint of an
  // element this page has is skipped. An element given its text here loses its data-i18n, so
  // i18n.js, which may run after, does not put the page's placeholder back.
  function paint(paints) {
    for (const { id, shown, text, attributes } of paints) {
      const el = typeof id === "string" && document.getElementById(id);
      if (!el) continue;
      if (typeof text?.plain === "string") el.textContent = text.plain;
      if (typeof text?.message?.key === "string") {
        const { key, args = [] } = text.message;
        el.textContent = api.i18n.getMessage(key, args) || key;
      }
      if (text) delete el.dataset.i18n;
      for (const [name, value] of Array.isArray(attributes) ? attributes : []) {
        if (!PAINTED_ATTRIBUTES.includes(name)) continue;
        if (typeof value === "string") el.setAttribute(name, value);
        else el.removeAttribute(name);
      }
      el.hidden = shown !== true;
    }
    document.body.dataset.source = "paint";
  }

  const port = api.runtime.connect({ name: "wpp-tabs-popup" });
  const held = [];
  let gone = false;
  let deliver = (message) => {
    held.push(message);
    if (held.length === 1 && message?.type === "state" && Array.isArray(message.paint)) {
      // Not once the module has taken over: its render is the newer.
      whenParsed(() => { if (held.length > 0) paint(message.paint); });
    }
    wanted();
  };
  let end = () => {
    gone = true;
    wanted();
  };
  port.onMessage.addListener((message) => deliver(message));
  port.onDisconnect.addListener(() => end());
  const tab = targetTab().catch(() => null).then((tab) => {
    try {
      if (tab !== null && !gone) port.postMessage(subscribe(tab));
    } catch {
      // The worker went away at once: the Wasm reconnects and subscribes itself.
    }
    if (tab === null) wanted();
    return tab;
  });

  globalThis.wppTabsEarly = {
    moduleWanted,
    port: {
      port,
      tab,
      // Hands the port to the Wasm: what was held first, in order, then every later message.
      adopt(onMessage, onDisconnect) {
        deliver = onMessage;
        end = onDisconnect;
        for (const message of held.splice(0)) onMessage(message);
        if (gone) onDisconnect();
      },
    },
  };
})();
