import "./i18n.js";
import init, { options_main } from "./wasm/options.js";

init({ module_or_path: new URL("./wasm/options_bg.wasm", import.meta.url) }).then(() => options_main());
