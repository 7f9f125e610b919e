//! The browser shell: binds the pure core to `chrome.*`, `fetch` and the DOM. Only built for
//! `wasm32`; every decision it acts on is made in `crate::core`.

mod browser;
mod crypto;
mod diagnostics;
mod http;
mod options;
mod popup;
mod sessions;
mod store;
mod unlock;
mod worker;

#[cfg(test)]
mod tests;
