//! The manifest promises what the README's security model says: the fewest permissions, a
//! strict CSP for the extension's pages, and the Firefox data-collection declaration.

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
        "connect-src http: https:",
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
