//! The pure core: everything here is plain Rust, free of browser APIs, and tested natively.
//! The browser shell (`crate::shell`) only moves data between these types and `chrome.*`.

pub mod api;
pub mod messages;
pub mod session;
pub mod session_id;
pub mod settings;
pub mod status;
pub mod storage;
