// The worker's loader. Every listener is registered synchronously in the first turn, so the
// event that woke the worker is not missed; each hands its event to Wasm once it is ready.
import init, * as wasm from "./wasm/wpp_tabs.js";

const ready = init({ module_or_path: new URL("./wasm/wpp_tabs_bg.wasm", import.meta.url) }).then(() => wasm);

const listeners = {
  installed: () => ready.then((w) => w.worker_on_installed()),
  startup: () => ready.then((w) => w.worker_on_startup()),
  connect: (port) => {
    // Messages a popup posts before Wasm is ready are buffered, not lost.
    const early = [];
    const buffer = (message) => early.push(message);
    port.onMessage.addListener(buffer);
    ready.then((w) => {
      port.onMessage.removeListener(buffer);
      w.worker_on_connect(port, early);
    });
  },
  message: (message, sender, sendResponse) => {
    ready
      .then((w) => w.worker_on_message(message, sender))
      .then(sendResponse, (error) => sendResponse({ v: 1, type: "error", message: String(error) }));
    return true; // the answer comes asynchronously
  },
  tabRemoved: (tabId) => ready.then((w) => w.worker_on_tab_removed(tabId)),
  tabUpdated: (tabId, change) => ready.then((w) => w.worker_on_tab_updated(tabId, change)),
  menuClicked: (info, tab) => ready.then((w) => w.worker_on_menu_clicked(info, tab)),
  alarm: (alarm) => ready.then((w) => w.worker_on_alarm(alarm)),
};

chrome.runtime.onInstalled.addListener(listeners.installed);
chrome.runtime.onStartup.addListener(listeners.startup);
chrome.runtime.onConnect.addListener(listeners.connect);
chrome.runtime.onMessage.addListener(listeners.message);
chrome.tabs.onRemoved.addListener(listeners.tabRemoved);
chrome.tabs.onUpdated.addListener(listeners.tabUpdated);
chrome.contextMenus.onClicked.addListener(listeners.menuClicked);
chrome.alarms.onAlarm.addListener(listeners.alarm);

// The same functions, for the background's own devtools console and the browser tests.
globalThis.wppTabsListeners = listeners;
