//! The simulated wppconnect-server, in-process, behind a TCP proxy the suite can take down
//! ("server unreachable") and bring back on the same port. Its `/__sim/...` control surface is
//! driven over HTTP.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{json, Value};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

use crate::harness::Result;

/// A byte-level TCP forwarder `127.0.0.1:<port>` -> `upstream`.
pub struct Proxy {
    pub port: u16,
    upstream: String,
    tasks: Arc<Mutex<Vec<JoinHandle<()>>>>,
    acceptor: Option<JoinHandle<()>>,
}

impl Proxy {
    pub async fn start(upstream: String) -> Result<Proxy> {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .map_err(|e| e.to_string())?;
        let port = listener.local_addr().unwrap().port();
        let mut p = Proxy {
            port,
            upstream,
            tasks: Arc::default(),
            acceptor: None,
        };
        p.serve(listener);
        Ok(p)
    }

    fn serve(&mut self, listener: TcpListener) {
        let upstream = self.upstream.clone();
        let tasks = self.tasks.clone();
        self.acceptor = Some(tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                let upstream = upstream.clone();
                let t = tokio::spawn(async move {
                    if let Ok(mut outbound) = TcpStream::connect(&upstream).await {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                    }
                });
                tasks.lock().unwrap().push(t);
            }
        }));
    }

    /// Closes the listening socket and every open connection: connections are refused.
    pub fn down(&mut self) {
        if let Some(a) = self.acceptor.take() {
            a.abort();
        }
        for t in self.tasks.lock().unwrap().drain(..) {
            t.abort();
        }
    }

    /// Listens again on the same port.
    pub async fn up(&mut self) -> Result<()> {
        for _ in 0..50 {
            if let Ok(l) = TcpListener::bind(("127.0.0.1", self.port)).await {
                self.serve(l);
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Err(format!("proxy: cannot rebind port {}", self.port))
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.down();
    }
}

/// The simulated server plus the proxy the extension is pointed at.
pub struct Sim {
    _server: wpp_sim::SimServer,
    /// The sim's own base URL (pages for tabs, the control surface).
    pub direct: String,
    /// The secret key the sim expects.
    pub secret: String,
    pub proxy: Proxy,
    http: reqwest::Client,
}

impl Sim {
    /// The sim's fast timers (`SimConfig::fast()`, bcrypt cost 4); unscanned QR codes stay up
    /// for the whole scenario.
    pub async fn start() -> Result<Sim> {
        Sim::start_with_auto_close(Duration::from_secs(900)).await
    }

    /// A sim whose QR codes expire (QRCODE -> CLOSED) after `auto_close` without a scan.
    pub async fn start_with_auto_close(auto_close: Duration) -> Result<Sim> {
        let mut config = wpp_sim::SimConfig::fast();
        config.auto_close = auto_close;
        Sim::start_with_config(config).await
    }

    /// A sim with fast timers that expects `secret` as its `SECRET_KEY` (a second server with
    /// its own secret).
    pub async fn start_with_secret(secret: &str) -> Result<Sim> {
        let mut config = wpp_sim::SimConfig::fast();
        config.auto_close = Duration::from_secs(900);
        config.secret = secret.to_string();
        Sim::start_with_config(config).await
    }

    pub async fn start_with_config(config: wpp_sim::SimConfig) -> Result<Sim> {
        let secret = config.secret.clone();
        let server = wpp_sim::SimServer::start(config, "127.0.0.1:0".parse().unwrap())
            .await
            .map_err(|e| format!("start wpp-sim: {e:?}"))?;
        let direct = server.base_url().trim_end_matches('/').to_string();
        let upstream = direct.trim_start_matches("http://").to_string();
        let proxy = Proxy::start(upstream).await?;
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()
            .map_err(|e| e.to_string())?;
        Ok(Sim {
            _server: server,
            direct,
            secret,
            proxy,
            http,
        })
    }

    /// The in-process control surface: sockets and the event record have no HTTP route.
    pub fn handle(&self) -> wpp_sim::SimControl {
        self._server.control()
    }

    /// The server URL the extension is configured with (through the proxy).
    pub fn server_url(&self) -> String {
        self.proxy.url()
    }

    pub fn page(&self, name: &str) -> String {
        format!("{}/page/{name}", self.direct)
    }

    async fn control(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> Result<Value> {
        let url = format!("{}{path}", self.direct);
        let mut req = self.http.request(method.clone(), &url);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req
            .send()
            .await
            .map_err(|e| format!("{method} {url}: {e}"))?;
        let status = resp.status();
        let text = resp.text().await.map_err(|e| e.to_string())?;
        if !status.is_success() {
            return Err(format!("{method} {url}: {status}: {text}"));
        }
        Ok(serde_json::from_str(&text).unwrap_or(Value::String(text)))
    }

    /// `POST /__sim/sessions/<session>/<action>`.
    async fn session_action(&self, session: &str, action: &str) -> Result<Value> {
        self.control(
            reqwest::Method::POST,
            &format!("/__sim/sessions/{session}/{action}"),
            Some(json!({})),
        )
        .await
    }

    /// The phone scans the session's QR code.
    pub async fn scan(&self, session: &str) -> Result<Value> {
        self.session_action(session, "scan").await
    }

    /// The phone scans the session's QR code as the account `phone` (digits) / `pushname`:
    /// what `host-device` and `get-phone-number` then report.
    pub async fn scan_as(&self, session: &str, phone: &str, pushname: &str) -> Result<Value> {
        self.control(
            reqwest::Method::POST,
            &format!("/__sim/sessions/{session}/scan"),
            Some(json!({ "phone": phone, "pushname": pushname })),
        )
        .await
    }

    /// The phone unlinks the device: CONNECTED -> CLOSED, the login forgotten.
    pub async fn unlink(&self, session: &str) -> Result<Value> {
        self.session_action(session, "unlink").await
    }

    /// The session hangs in INITIALIZING from its next start until close-session.
    pub async fn stuck(&self, session: &str) -> Result<Value> {
        self.session_action(session, "stuck").await
    }

    /// `POST /__sim/sessions/<session>/qr-size`: the session's QR becomes a PNG data URL of
    /// exactly `bytes` bytes.
    pub async fn qr_size(&self, session: &str, bytes: usize) -> Result<Value> {
        self.control(
            reqwest::Method::POST,
            &format!("/__sim/sessions/{session}/qr-size"),
            Some(json!({ "bytes": bytes })),
        )
        .await
    }

    /// A direct authenticated call `/api/<session>/<route>` with `token`, as another client
    /// would make it: the HTTP status and the body, whatever the status.
    async fn api_call(
        &self,
        method: reqwest::Method,
        session: &str,
        route: &str,
        token: &str,
    ) -> Result<(u16, String)> {
        let url = format!("{}/api/{session}/{route}", self.direct);
        let resp = self
            .http
            .request(method.clone(), &url)
            .header("Authorization", format!("Bearer {token}"))
            .send()
            .await
            .map_err(|e| format!("{method} {url}: {e}"))?;
        let status = resp.status().as_u16();
        let text = resp.text().await.map_err(|e| e.to_string())?;
        Ok((status, text))
    }

    /// A direct `GET /api/<session>/status-session` with `token`: the raw reply body.
    pub async fn status_session_body(&self, session: &str, token: &str) -> Result<String> {
        let get = reqwest::Method::GET;
        match self.api_call(get, session, "status-session", token).await? {
            (200..=299, text) => Ok(text),
            (status, text) => Err(format!("GET status-session of {session}: {status}: {text}")),
        }
    }

    /// A direct `POST /api/<session>/close-session` with `token`: the status and the body.
    pub async fn close_session(&self, session: &str, token: &str) -> Result<(u16, String)> {
        let post = reqwest::Method::POST;
        self.api_call(post, session, "close-session", token).await
    }

    /// The status of `session` as `/__sim/sessions` reports it (None: unknown there).
    pub async fn status_of(&self, session: &str) -> Result<Option<String>> {
        let v = self.sessions().await?;
        Ok(v["sessions"]
            .as_array()
            .and_then(|a| a.iter().find(|s| s["session"] == json!(session)))
            .and_then(|s| s["status"].as_str())
            .map(str::to_string))
    }

    pub async fn sessions(&self) -> Result<Value> {
        self.control(reqwest::Method::GET, "/__sim/sessions", None)
            .await
    }

    pub async fn log(&self) -> Result<Value> {
        self.control(reqwest::Method::GET, "/__sim/log", None).await
    }

    /// `DELETE /__sim/log`: empties the request log (and the per-session auth counts).
    pub async fn clear_log(&self) -> Result<Value> {
        self.control(reqwest::Method::DELETE, "/__sim/log", None)
            .await
    }

    /// Injects a fault: `{"route", "session"?, "kind", "count", "delay_ms"?}`.
    pub async fn fault(&self, spec: Value) -> Result<Value> {
        self.control(reqwest::Method::POST, "/__sim/faults", Some(spec))
            .await
    }

    /// Removes every pending fault.
    pub async fn clear_faults(&self) -> Result<Value> {
        self.control(reqwest::Method::DELETE, "/__sim/faults", None)
            .await
    }
}
