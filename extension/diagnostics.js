import init, { diagnostics_main } from "./wasm/wpp_tabs.js";

init({ module_or_path: new URL("./wasm/wpp_tabs_bg.wasm", import.meta.url) }).then(() => diagnostics_main());
