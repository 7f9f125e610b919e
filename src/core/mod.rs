//! The pure core: everything here is plain Rust, free of browser APIs, and tested natively.
//! The browser shell (`crate::shell`) only moves data between these types and `chrome.*`.

pub mod api;
pub mod diagnostics;
pub mod flows;
pub mod index;
pub mod lock;
pub mod manager;
pub mod messages;
pub mod paint;
pub mod punycode;
pub mod push;
pub mod server;
pub mod session;
pub mod session_id;
pub mod settings;
pub mod socketio;
pub mod status;
pub mod storage;
pub mod store;
pub mod text;
pub mod timings;
pub mod worker;

// Native only: they run on tokio with its paused clock.
#[cfg(all(test, not(target_arch = "wasm32")))]
mod flows_tests;
