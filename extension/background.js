// The worker's loader. Every listener is registered synchronously in the first turn, so the
// event that woke the worker is not missed; each hands its event to Wasm once it is ready.
import init, * as wasm from "./wasm/worker.js";

const ready = init({ module_or_path: new URL("./wasm/worker_bg.wasm", import.meta.url) }).then(() => wasm);

// The popups' ports. Their messages reach Wasm through exports, never through closures of
// one module instance, so a fresh instance after a panic can take over.
const ports = new Set();
// Called by the panic hook. The next export call runs on a fresh instance, which knows none
// of these ports: dropping them makes each popup reconnect and subscribe again. The fresh
// instance is started at once, so that a late callback of the dead one is refused by the glue
// ("from previous WASM instance") instead of running on the new one.
globalThis.wppTabsOnPanic = () => {
  for (const port of ports) port.disconnect();
  ports.clear();
  queueMicrotask(() => wasm.worker_recover());
};

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
      const key = w.worker_on_connect(port);
      if (key === undefined) return;
      ports.add(port);
      port.onMessage.addListener((message) => w.worker_on_port_message(key, message));
      port.onDisconnect.addListener(() => {
        ports.delete(port);
        w.worker_on_port_disconnect(key);
      });
      for (const message of early) w.worker_on_port_message(key, message);
    });
  },
  message: (message, sender, sendResponse) => {
    // No answer at all tells the page the worker failed; the page says so.
    ready.then((w) => w.worker_on_message(message, sender)).then(sendResponse, () => sendResponse());
    return true; // the answer comes asynchronously
  },
  tabRemoved: (tabId) => ready.then((w) => w.worker_on_tab_removed(tabId)),
  tabUpdated: (tabId, change) => ready.then((w) => w.worker_on_tab_updated(tabId, change.status)),
  menuClicked: (info, tab) => ready.then((w) => w.worker_on_menu_clicked(String(info.menuItemId), tab?.id)),
  alarm: (alarm) => ready.then((w) => w.worker_on_alarm(alarm.name)),
  notificationClicked: (id) => ready.then((w) => w.worker_on_notification_clicked(id)),
  command: (name) => ready.then((w) => w.worker_on_command(name)),
};
// Test builds only (feature `test-hooks`): a panic on demand.
if (wasm.worker_test_panic) listeners.testPanic = () => ready.then((w) => w.worker_test_panic());

chrome.runtime.onInstalled.addListener(listeners.installed);
chrome.runtime.onStartup.addListener(listeners.startup);
chrome.runtime.onConnect.addListener(listeners.connect);
chrome.runtime.onMessage.addListener(listeners.message);
chrome.tabs.onRemoved.addListener(listeners.tabRemoved);
chrome.tabs.onUpdated.addListener(listeners.tabUpdated);
chrome.contextMenus.onClicked.addListener(listeners.menuClicked);
chrome.alarms.onAlarm.addListener(listeners.alarm);
chrome.notifications.onClicked.addListener(listeners.notificationClicked);
chrome.commands.onCommand.addListener(listeners.command);

// The same functions, for the background's own devtools console and the browser tests.
globalThis.wppTabsListeners = listeners;
