import "./i18n.js";
import init, { popup_main } from "./wasm/popup.js";

// Chromium shares compiled Wasm code between an extension's pages and its worker (the same
// bytes in the same process): compiled here, alongside the popup's own module, the worker's
// module is ready for a stopped worker this popup wakes; a running worker's is found as is.
const workerCode = WebAssembly.compileStreaming(fetch(new URL("./wasm/worker_bg.wasm", import.meta.url)));
workerCode.catch(() => {});

init({ module_or_path: new URL("./wasm/popup_bg.wasm", import.meta.url) }).then(() => popup_main());
