//! The browser shell: binds the pure core to `chrome.*`, `fetch` and the DOM. Only built for
//! `wasm32`; every decision it acts on is made in `crate::core`.
//!
//! Each entry (the background worker, each page) is its own Wasm module: this crate built
//! with only that entry's feature (`entry-worker`, `entry-popup`, ...), whose exports are the
//! only roots, so the linker drops what the entry does not reach. In such a build the helpers
//! only other entries use are dead, and not a defect: the dead-code lint counts in the build
//! with every entry (the default features), which clippy checks.
#![cfg_attr(
    not(all(
        feature = "entry-worker",
        feature = "entry-popup",
        feature = "entry-sessions",
        feature = "entry-options",
        feature = "entry-diagnostics"
    )),
    allow(dead_code, unused_imports)
)]

mod browser;
mod crypto;
mod diagnostics;
mod http;
mod i18n;
mod options;
mod popup;
mod sessions;
mod store;
mod unlock;
#[cfg(feature = "entry-worker")]
mod worker;

#[cfg(test)]
mod tests;
