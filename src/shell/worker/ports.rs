//! The open popups' ports, by the key the core knows them by.

use crate::core::worker::PortKey;
use std::cell::RefCell;
use std::collections::HashMap;
use web_extensions_sys::Port;

thread_local! {
    static PORTS: RefCell<HashMap<PortKey, Port>> = RefCell::default();
}

pub fn add(key: PortKey, port: Port) {
    PORTS.with(|p| p.borrow_mut().insert(key, port));
}

pub fn remove(key: PortKey) {
    PORTS.with(|p| p.borrow_mut().remove(&key));
}

pub fn get(key: PortKey) -> Option<Port> {
    PORTS.with(|p| p.borrow().get(&key).cloned())
}
