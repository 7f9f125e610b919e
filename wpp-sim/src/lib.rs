//! `wpp-sim`: a simulated wppconnect-server (v2.10.4) for tests: the REST session routes,
//! token auth, the status machine on real timers, socket.io events, plus a `/__sim/` control
//! surface (scan a QR, unlink, stuck sessions, injected faults, request log).
//!
//! The behaviour follows `wppconnect-server-contract.md` (§1-§7), quirks included.

mod http;
mod qr;
mod socket;
mod state;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::{JoinHandle, JoinSet};

pub use http::set_request_logging;
pub use socket::{EmittedEvent, DATA_TAIL_CHARS};
pub use state::{
    Account, FaultKind, FaultSpec, LogEntry, ScanAs, SessionAuth, SessionInfo, SimLog,
    MAX_SCAN_PHONE_DIGITS,
};

use state::Shared;

/// Server settings. `Default` is the real server's behaviour; `fast()` is for tests.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SimConfig {
    /// `SECRET_KEY`.
    pub secret: String,
    /// bcrypt cost used by generate-token (upstream: 10).
    pub bcrypt_cost: u32,
    /// INITIALIZING -> QRCODE / PHONECODE / CONNECTED.
    pub init_delay: Duration,
    /// How often a waiting QR code is replaced by a new one.
    pub qr_rotate: Duration,
    /// QRCODE/PHONECODE -> CLOSED when nobody scans (library `autoClose`).
    pub auto_close: Duration,
    /// The real server's "locked profile": close-session on a session whose browser is still
    /// starting (INITIALIZING, QRCODE, PHONECODE) answers 500 and leaks that browser, which
    /// keeps its profile `userDataDir/<session>` locked, so every later start of the same name
    /// stays INITIALIZING until the server restarts (`SimControl::reset`). Upstream does this
    /// (seen running it); `false` lets a closed session start normally again.
    pub profile_lock: bool,
}

impl Default for SimConfig {
    fn default() -> Self {
        SimConfig {
            secret: "THISISMYSECURETOKEN".into(),
            bcrypt_cost: 10,
            init_delay: Duration::from_millis(3000),
            qr_rotate: Duration::from_millis(20_000),
            auto_close: Duration::from_millis(60_000),
            profile_lock: true,
        }
    }
}

impl SimConfig {
    /// For tests: cheap bcrypt and short timers (auto-close stays at 60 s).
    pub fn fast() -> Self {
        SimConfig {
            bcrypt_cost: 4,
            init_delay: Duration::from_millis(300),
            qr_rotate: Duration::from_secs(2),
            auto_close: Duration::from_secs(60),
            ..SimConfig::default()
        }
    }
}

/// A running simulator bound to a TCP port.
pub struct SimServer {
    addr: SocketAddr,
    shared: Arc<Shared>,
    shutdown: watch::Sender<bool>,
    accept: JoinHandle<()>,
}

#[derive(Debug)]
struct DropConnectionError;

impl std::fmt::Display for DropConnectionError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("connection dropped by an injected fault")
    }
}

impl std::error::Error for DropConnectionError {}

impl SimServer {
    /// Binds `addr` (port 0 = ephemeral) and serves on the current tokio runtime.
    pub async fn start(config: SimConfig, addr: SocketAddr) -> std::io::Result<SimServer> {
        let listener = TcpListener::bind(addr).await?;
        let addr = listener.local_addr()?;
        let (shutdown, shutdown_rx) = watch::channel(false);
        let shared = Shared::new(config, shutdown_rx.clone());
        let app = http::router(shared.clone());
        let accept = tokio::spawn(accept_loop(listener, app, shutdown_rx));
        Ok(SimServer {
            addr,
            shared,
            shutdown,
            accept,
        })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT` (the bound IP; a wildcard bind reports 127.0.0.1).
    pub fn base_url(&self) -> String {
        let ip = if self.addr.ip().is_unspecified() {
            "127.0.0.1".to_string()
        } else {
            self.addr.ip().to_string()
        };
        match self.addr {
            SocketAddr::V6(_) if !self.addr.ip().is_unspecified() => {
                format!("http://[{ip}]:{}", self.addr.port())
            }
            _ => format!("http://{ip}:{}", self.addr.port()),
        }
    }

    pub fn control(&self) -> SimControl {
        SimControl {
            shared: self.shared.clone(),
        }
    }

    /// Stops accepting, closes every connection and socket, and cancels all timers.
    pub async fn shutdown(self) {
        let _ = self.shutdown.send(true);
        let _ = self.accept.await;
        self.shared.reset();
    }
}

async fn accept_loop(
    listener: TcpListener,
    app: axum::Router,
    mut shutdown: watch::Receiver<bool>,
) {
    use hyper::body::Incoming;
    use hyper_util::rt::TokioIo;
    use tower::ServiceExt;

    let mut conns = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let Ok((stream, _)) = accepted else { continue };
                let _ = stream.set_nodelay(true);
                let app = app.clone();
                let mut stop = shutdown.clone();
                conns.spawn(async move {
                    let svc = hyper::service::service_fn(move |req: hyper::Request<Incoming>| {
                        let app = app.clone();
                        async move {
                            let resp = app.oneshot(req).await.unwrap_or_else(|e| match e {});
                            // An Err makes hyper close the connection without writing anything.
                            if resp.extensions().get::<http::DropConnection>().is_some() {
                                return Err(DropConnectionError);
                            }
                            Ok(resp)
                        }
                    });
                    let conn = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), svc)
                        .with_upgrades();
                    tokio::select! {
                        _ = conn => {}
                        _ = stop.changed() => {}
                    }
                });
            }
            Some(_) = conns.join_next(), if !conns.is_empty() => {}
            _ = shutdown.changed() => break,
        }
    }
    conns.abort_all();
    while conns.join_next().await.is_some() {}
}

/// Cloneable handle on a running simulator: the same operations as `/__sim/`.
#[derive(Clone)]
pub struct SimControl {
    shared: Arc<Shared>,
}

impl SimControl {
    /// `GET /__sim/sessions`.
    pub fn sessions(&self) -> Vec<SessionInfo> {
        self.shared.infos()
    }

    /// One session's entry, if the server has one.
    pub fn session(&self, session: &str) -> Option<SessionInfo> {
        self.shared
            .infos()
            .into_iter()
            .find(|i| i.session == session)
    }

    /// `POST /__sim/sessions/:session/scan`: QRCODE|PHONECODE -> CONNECTED, linked to the
    /// session's default account (see [`Account::default_for`]).
    pub fn scan(&self, session: &str) -> Result<(), String> {
        self.shared.scan(session, ScanAs::default())
    }

    /// `POST /__sim/sessions/:session/scan` with a body: the same, as the account `with`
    /// names (what it leaves out defaults).
    pub fn scan_as(&self, session: &str, with: ScanAs) -> Result<(), String> {
        self.shared.scan(session, with)
    }

    /// `POST /__sim/sessions/:session/unlink`: CONNECTED -> CLOSED, login forgotten.
    pub fn unlink(&self, session: &str) -> Result<(), String> {
        self.shared.unlink(session)
    }

    /// `POST /__sim/sessions/:session/stuck`: INITIALIZING forever until close-session.
    pub fn stuck(&self, session: &str) {
        self.shared.stuck(session)
    }

    /// Whether `session`'s (simulated) browser profile is locked by a browser that
    /// close-session leaked (`SimConfig::profile_lock`): its starts never leave INITIALIZING.
    pub fn profile_locked(&self, session: &str) -> bool {
        self.shared.profile_locked(session)
    }

    /// `POST /__sim/sessions/:session/qr-size`: the session's QR becomes a valid PNG data URL
    /// of exactly `bytes` bytes (the current one at once); `None` restores plain QR codes.
    pub fn set_qr_size(&self, session: &str, bytes: Option<usize>) -> Result<(), String> {
        self.shared.set_qr_size(session, bytes)
    }

    /// `POST /__sim/faults`.
    pub fn inject_fault(&self, fault: FaultSpec) -> Result<(), String> {
        self.shared.add_fault(fault)
    }

    /// `DELETE /__sim/faults`.
    pub fn clear_faults(&self) {
        self.shared.clear_faults()
    }

    /// Drops every Socket.IO connection (a server restart, as clients see it); with
    /// `refuse`, new connections are refused (503) until [`SimControl::allow_sockets`].
    pub fn drop_sockets(&self, refuse: bool) {
        self.shared.sockets.drop_all(refuse)
    }

    pub fn allow_sockets(&self) {
        self.shared.sockets.allow()
    }

    /// How many CORS preflights (OPTIONS requests) the server answered so far.
    pub fn preflights(&self) -> usize {
        self.shared.sockets.preflights()
    }

    /// How many sockets have joined the namespace now (they receive every event).
    pub fn sockets_joined(&self) -> usize {
        self.shared.sockets.joined()
    }

    /// Every Socket.IO event sent, oldest first, with the time it went out.
    pub fn emitted(&self) -> Vec<EmittedEvent> {
        self.shared.sockets.emitted()
    }

    /// `GET /__sim/log`.
    pub fn log(&self) -> SimLog {
        self.shared.log()
    }

    /// `DELETE /__sim/log`.
    pub fn clear_log(&self) {
        self.shared.clear_log()
    }

    /// `POST /__sim/reset`: forget sessions, logins, the token store, faults and the log.
    pub fn reset(&self) {
        self.shared.reset()
    }

    /// A valid token for `session` (what generate-token would return), computed locally.
    pub fn token_for(&self, session: &str) -> String {
        let input = format!("{session}{}", self.shared.config.secret);
        bcrypt::hash(input, self.shared.config.bcrypt_cost)
            .expect("bcrypt hash")
            .replace('/', "_")
            .replace('+', "-")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_defaults_match_upstream() {
        let d = SimConfig::default();
        assert_eq!(d.secret, "THISISMYSECURETOKEN");
        assert_eq!(d.bcrypt_cost, 10);
        assert_eq!(d.init_delay, Duration::from_secs(3));
        assert_eq!(d.qr_rotate, Duration::from_secs(20));
        assert_eq!(d.auto_close, Duration::from_secs(60));
        let f = SimConfig::fast();
        assert_eq!(f.bcrypt_cost, 4);
        assert_eq!(f.init_delay, Duration::from_millis(300));
        assert_eq!(f.qr_rotate, Duration::from_secs(2));
        assert_eq!(f.auto_close, Duration::from_secs(60));
        assert_eq!(f.secret, d.secret);
        assert!(d.profile_lock && f.profile_lock);
    }
}
