//! wpp-tabs: one WhatsApp account per browser tab.
//!
//! `core` is plain Rust (tested natively with `cargo test`); `shell` binds it to the
//! browser and only exists on `wasm32`.

pub mod core;

#[cfg(target_arch = "wasm32")]
mod shell;
