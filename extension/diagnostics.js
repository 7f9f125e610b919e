import "./i18n.js";
import init, { diagnostics_main } from "./wasm/diagnostics.js";

init({ module_or_path: new URL("./wasm/diagnostics_bg.wasm", import.meta.url) }).then(() => diagnostics_main());
