//! The manifest promises what the README's security model says: the fewest permissions, a
//! strict CSP for the extension's pages, and the Firefox data-collection declaration; the
//! packages pass the stores' manifest and icon checks; the palette meets WCAG AA.

#![cfg(not(target_arch = "wasm32"))]

use serde_json::Value;

fn manifest() -> Value {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/manifest.json");
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

#[test]
fn the_pages_csp_allows_only_what_they_need() {
    let manifest = manifest();
    let csp = manifest["content_security_policy"]["extension_pages"]
        .as_str()
        .unwrap();
    let directives: Vec<&str> = csp.split(';').map(str::trim).collect();
    for required in [
        "default-src 'self'",
        "script-src 'self' 'wasm-unsafe-eval'",
        "img-src 'self' data:",
        "connect-src http: https: ws: wss:",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'none'",
    ] {
        assert!(
            directives.contains(&required),
            "{required} missing from {csp}"
        );
    }
    let sources: Vec<&str> = csp.split([' ', ';']).collect();
    for loose in [
        "'unsafe-inline'",
        "'unsafe-eval'",
        "*",
        "http://*",
        "https://*",
    ] {
        assert!(!sources.contains(&loose), "{loose} in {csp}");
    }
}

#[test]
fn permissions_are_the_fewest_and_no_host_is_asked_for() {
    let manifest = manifest();
    assert_eq!(
        manifest["permissions"],
        serde_json::json!(["storage", "contextMenus", "alarms", "notifications"])
    );
    assert!(manifest.get("host_permissions").is_none());
    assert!(manifest.get("content_scripts").is_none());
}

#[test]
fn firefox_declares_that_no_data_is_collected() {
    let gecko = &manifest()["browser_specific_settings"]["gecko"];
    assert_eq!(
        gecko["data_collection_permissions"]["required"],
        serde_json::json!(["none"])
    );
}

/// The extension's entries: each is its own Wasm module, the crate built with only its
/// `entry-<name>` feature (scripts/build.sh), loaded by its own loader.
const ENTRIES: [(&str, &str, &str); 5] = [
    ("worker", "background.js", "worker_on_connect"),
    ("popup", "popup.js", "popup_main"),
    ("sessions", "sessions.js", "sessions_main"),
    ("options", "options.js", "options_main"),
    ("diagnostics", "diagnostics.js", "diagnostics_main"),
];

#[test]
fn keyboard_commands_open_the_popup_and_the_sessions_page() {
    let manifest = manifest();
    let commands = &manifest["commands"];
    for (name, key) in [
        ("_execute_action", "Alt+Shift+W"),
        (wpp_tabs::core::worker::SESSIONS_COMMAND, "Alt+Shift+S"),
    ] {
        assert_eq!(commands[name]["suggested_key"]["default"], key, "{name}");
        assert!(commands[name]["description"].is_string(), "{name}");
    }
}

fn source(path: &str) -> String {
    let path = format!("{}/{path}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {path}: {e}"))
}

#[test]
fn every_entry_has_its_feature_its_build_and_its_own_loader() {
    let cargo = source("Cargo.toml");
    let features: Vec<&str> = cargo
        .lines()
        .filter_map(|l| l.strip_prefix("entry-")?.split_once(" = ").map(|(n, _)| n))
        .collect();
    let names: Vec<&str> = ENTRIES.iter().map(|(name, ..)| *name).collect();
    assert_eq!(features, names, "the entry-* features of Cargo.toml");
    // The default features hold every entry: clippy and the Wasm tests check all their code.
    let default = cargo
        .lines()
        .find_map(|l| l.strip_prefix("default = "))
        .expect("default features");
    for name in &names {
        assert!(
            default.contains(&format!("\"entry-{name}\"")),
            "{name} not in {default}"
        );
    }
    let build = source("scripts/build.sh");
    assert!(
        build.contains(&format!("entries=({})", names.join(" "))),
        "scripts/build.sh builds every entry"
    );
    for (name, loader, _) in ENTRIES {
        let text = source(&format!("extension/{loader}"));
        let glue: Vec<&str> = text
            .split('"')
            .filter(|s| s.starts_with("./wasm/") && s.ends_with(".js"))
            .collect();
        assert_eq!(
            glue,
            [format!("./wasm/{name}.js")],
            "extension/{loader} imports its own entry's glue, and only it"
        );
        let init = format!("init({{ module_or_path: new URL(\"./wasm/{name}_bg.wasm\"");
        assert!(
            text.contains(&init),
            "extension/{loader} instantiates its own entry's module"
        );
    }
}

/// In a built package, each entry's glue exports its own entry and no other's: the popup's
/// module holds no worker flow. Checks the builds that are there (scripts/test.sh builds both
/// before this runs).
#[test]
fn each_built_module_exports_only_its_own_entry() {
    let root = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    for dist in [root.join("dist"), root.join("target/test-dist")] {
        let wasm = dist.join("chrome/wasm");
        if !wasm.is_dir() {
            continue;
        }
        for (name, ..) in ENTRIES {
            let glue = std::fs::read_to_string(wasm.join(format!("{name}.js")))
                .unwrap_or_else(|e| panic!("{}: {name}.js: {e}", wasm.display()));
            assert!(
                wasm.join(format!("{name}_bg.wasm")).is_file(),
                "{name}_bg.wasm"
            );
            for (other, _, other_export) in ENTRIES {
                assert_eq!(
                    glue.contains(&format!("function {other_export}(")),
                    other == name,
                    "{}/{name}.js and the export {other_export} of {other}",
                    wasm.display()
                );
            }
        }
    }
}

/// `#rrggbb` as linear-light relative luminance (WCAG 2.x).
fn luminance(hex: &str) -> f64 {
    let channel = |i: usize| {
        let c = f64::from(u8::from_str_radix(&hex[i..i + 2], 16).unwrap()) / 255.0;
        if c <= 0.04045 {
            c / 12.92
        } else {
            ((c + 0.055) / 1.055).powf(2.4)
        }
    };
    0.2126 * channel(1) + 0.7152 * channel(3) + 0.0722 * channel(5)
}

fn contrast(a: &str, b: &str) -> f64 {
    let (a, b) = (luminance(a), luminance(b));
    (a.max(b) + 0.05) / (a.min(b) + 0.05)
}

/// A custom property of the stylesheet's `:root`: `light-dark(<light>, <dark>)` or one colour.
fn palette(css: &str, name: &str) -> (String, String) {
    let start = css
        .find(&format!("{name}:"))
        .unwrap_or_else(|| panic!("{name} missing"))
        + name.len()
        + 1;
    let value = css[start..].split(';').next().unwrap().trim();
    match value.strip_prefix("light-dark(") {
        Some(pair) => {
            let (light, dark) = pair.trim_end_matches(')').split_once(',').unwrap();
            (light.trim().to_owned(), dark.trim().to_owned())
        }
        None => (value.to_owned(), value.to_owned()),
    }
}

#[test]
fn text_colours_meet_wcag_aa_in_light_and_dark() {
    let css = source("extension/style.css");
    // The pages paint their own background (`--page`), so these are the colours seen.
    let (light_page, dark_page) = palette(&css, "--page");
    for name in ["--text", "--accent", "--error", "--muted"] {
        let (light, dark) = palette(&css, name);
        assert!(
            contrast(&light, &light_page) >= 4.5,
            "{name} {light} on {light_page}"
        );
        assert!(
            contrast(&dark, &dark_page) >= 4.5,
            "{name} {dark} on {dark_page}"
        );
    }
    for name in ["--accent-fill", "--error-fill"] {
        let (fill, _) = palette(&css, name);
        assert!(contrast("#ffffff", &fill) >= 4.5, "white on {name} {fill}");
    }
}

/// The built package's manifest for `browser` (`chrome`, `firefox`), from `scripts/build.sh`.
fn built_manifest(browser: &str) -> Value {
    let path = format!(
        "{}/dist/{browser}/manifest.json",
        env!("CARGO_MANIFEST_DIR")
    );
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("read {path}: {e} (run scripts/build.sh first)"));
    serde_json::from_str(&text).unwrap()
}

/// The width and height a PNG declares (its IHDR chunk).
fn png_size(bytes: &[u8]) -> Option<(u32, u32)> {
    const SIGNATURE: &[u8] = b"\x89PNG\r\n\x1a\n";
    if bytes.len() < 24 || &bytes[..8] != SIGNATURE || &bytes[12..16] != b"IHDR" {
        return None;
    }
    let word = |at: usize| u32::from_be_bytes(bytes[at..at + 4].try_into().unwrap());
    Some((word(16), word(20)))
}

/// What the stores check before a review: Chrome knows every manifest key (Manifest V3's keys;
/// Firefox's own only in the Firefox package), and the icons are there at the sizes the stores
/// and the toolbar use (16, 32, 48 and 128), each a PNG of the size its key says.
#[test]
fn the_packages_pass_the_stores_manifest_and_icon_checks() {
    const MV3_KEYS: &[&str] = &[
        "manifest_version",
        "name",
        "short_name",
        "version",
        "version_name",
        "description",
        "default_locale",
        "icons",
        "action",
        "background",
        "permissions",
        "optional_permissions",
        "host_permissions",
        "optional_host_permissions",
        "options_ui",
        "options_page",
        "commands",
        "content_security_policy",
        "minimum_chrome_version",
        "homepage_url",
        "author",
        "incognito",
        "web_accessible_resources",
    ];
    for browser in ["chrome", "firefox"] {
        let manifest = built_manifest(browser);
        let keys: Vec<&String> = manifest.as_object().unwrap().keys().collect();
        for key in &keys {
            let known = MV3_KEYS.contains(&key.as_str())
                || (browser == "firefox" && key.as_str() == "browser_specific_settings");
            assert!(
                known,
                "{browser}: manifest key {key:?} is not a Manifest V3 key"
            );
        }
        let mut declared = vec![];
        for (what, icons) in [
            ("icons", &manifest["icons"]),
            ("action.default_icon", &manifest["action"]["default_icon"]),
        ] {
            for (size, path) in icons.as_object().unwrap_or_else(|| panic!("{what}")) {
                let file = format!(
                    "{}/dist/{browser}/{}",
                    env!("CARGO_MANIFEST_DIR"),
                    path.as_str().unwrap()
                );
                let bytes = std::fs::read(&file).unwrap_or_else(|e| panic!("{file}: {e}"));
                let side: u32 = size.parse().unwrap();
                assert_eq!(
                    png_size(&bytes),
                    Some((side, side)),
                    "{browser}: {what}.{size} {file} is not a {side}x{side} PNG"
                );
                if what == "icons" {
                    declared.push(side);
                }
            }
        }
        for side in [16, 32, 48, 128] {
            assert!(
                declared.contains(&side),
                "{browser}: no {side}px icon in {declared:?}"
            );
        }
    }
}

/// `popup-port.js` works before the popup's Wasm loads: the one message it posts, the
/// subscription, must be the core's (version included), and the attributes it paints the
/// core's list.
#[test]
fn the_popup_loader_speaks_the_cores_subscription_and_paint() {
    use wpp_tabs::core::messages::{encode, PopupRequest};
    use wpp_tabs::core::paint::PAINTED_ATTRIBUTES;
    use wpp_tabs::core::storage::TabId;

    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/extension/popup-port.js");
    let loader = std::fs::read_to_string(path).unwrap();
    let line = |start: &str, end: &str| -> String {
        let found = loader
            .lines()
            .find_map(|line| line.trim_start().strip_prefix(start)?.strip_suffix(end));
        found
            .unwrap_or_else(|| panic!("no `{start}...{end}` line in popup-port.js"))
            .to_owned()
    };
    let literal = line("const subscribe = (tab) => (", ");");
    let written: Value = serde_json::from_str(&literal.replace("\"tabId\": tab", "\"tabId\": 7"))
        .unwrap_or_else(|e| panic!("popup-port.js's subscription {literal} is not JSON: {e}"));
    let tab = TabId::new(7).unwrap();
    assert_eq!(written, encode(&PopupRequest::Subscribe { tab_id: tab }));
    let attributes: Vec<String> =
        serde_json::from_str(&line("const PAINTED_ATTRIBUTES = ", ";")).unwrap();
    assert_eq!(attributes, PAINTED_ATTRIBUTES);
}
