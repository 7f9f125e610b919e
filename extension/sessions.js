import "./i18n.js";
import init, { sessions_main } from "./wasm/sessions.js";

init({ module_or_path: new URL("./wasm/sessions_bg.wasm", import.meta.url) }).then(() => sessions_main());
