import "./i18n.js";
import init, { popup_main } from "./wasm/popup.js";

// The port to the worker is already open, and its first state painted or on its way:
// popup-port.js, an async script, has almost always run before this module can; if not, this
// waits for it. The popup's own module loads once that first state has come, so compiling it
// does not hold up that answer, and then renders the whole view with its controls.
const early = globalThis.wppTabsEarly ?? await new Promise((ran) => {
  document.querySelector('script[src="popup-port.js"]').addEventListener("load", () => ran(globalThis.wppTabsEarly));
});
const { moduleWanted, port } = early;

// Chromium shares compiled Wasm code between an extension's pages and its worker (the same
// bytes in the same process): compiled here, the worker's module is ready for a stopped worker
// this popup wakes; a running worker's is found as is. Not before the stylesheet has loaded,
// which this fetch would hold up.
WebAssembly.compileStreaming(fetch(new URL("./wasm/worker_bg.wasm", import.meta.url))).catch(() => {});

moduleWanted
  .then(() => init({ module_or_path: new URL("./wasm/popup_bg.wasm", import.meta.url) }))
  .then(() => popup_main(port));
