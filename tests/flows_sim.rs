//! The core's flows over real HTTP: the worker of `core::worker` with a native shell (an
//! HTTP client as its transport, memory as its storage) against wpp-sim on loopback. Each
//! test waits on the views the worker pushes, never on a fixed sleep.

#![cfg(not(target_arch = "wasm32"))]
#![allow(async_fn_in_trait)]

use serde_json::{json, Value};
use std::cell::RefCell;
use std::collections::HashSet;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::time::Duration;
use tokio::sync::Notify;
use wpp_sim::{FaultKind, FaultSpec, SimConfig, SimControl, SimServer};
use wpp_tabs::core::api::{Account, ApiError, ApiRequest, HttpReply, Method};
use wpp_tabs::core::lock::{Crypto, OpenError, Passphrase, Sealed};
use wpp_tabs::core::messages::{encode, OptionsRequest, PopupRequest, WorkerPush};
use wpp_tabs::core::push::SocketKey;
use wpp_tabs::core::server::{HttpServer, Server, Transport};
use wpp_tabs::core::session::{Badge, PairAction, Phase, TabTitle, TabView};
use wpp_tabs::core::session_id::SessionId;
use wpp_tabs::core::settings::{SecretKey, ServerId, ServerUrl};
use wpp_tabs::core::status::ServerStatus;
use wpp_tabs::core::storage::{keys, TabId};
use wpp_tabs::core::store::memory::MemoryKv;
use wpp_tabs::core::store::Area;
use wpp_tabs::core::text::Text;
use wpp_tabs::core::timings::Timings;
use wpp_tabs::core::worker::{Notice, PageKind, PortKey, Shell, Worker};

/// An options reply's message, in English.
fn message_of(reply: &Value) -> String {
    serde_json::from_value::<Text>(reply["message"].clone())
        .map(|t| t.english())
        .unwrap_or_else(|e| panic!("no message in {reply}: {e}"))
}

/// Longest any single wait may take before the test fails.
const WAIT: Duration = Duration::from_secs(15);

// ---- a native shell ----

struct Reqwest(reqwest::Client);

impl Transport for Reqwest {
    async fn send(&self, request: &ApiRequest) -> Result<HttpReply, ApiError> {
        let method = match request.method {
            Method::Get => reqwest::Method::GET,
            Method::Post => reqwest::Method::POST,
        };
        let mut builder = self
            .0
            .request(method, &request.url)
            .timeout(Duration::from_millis(request.timeout_ms.into()));
        if let Some(auth) = request.authorization() {
            builder = builder.header("Authorization", auth);
        }
        if let Some(body) = &request.json_body {
            builder = builder
                .header("Content-Type", "application/json")
                .body(body.clone());
        }
        let response = builder.send().await.map_err(|e| match e.is_timeout() {
            true => ApiError::Timeout,
            false => ApiError::Unreachable,
        })?;
        let status = response.status().as_u16();
        let content_type = response
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let body = response.text().await.map_err(|_| ApiError::Unreachable)?;
        Ok(HttpReply {
            status,
            content_type,
            body,
        })
    }
}

struct NativeShell {
    http: Reqwest,
    kv: MemoryKv,
    tabs: RefCell<HashSet<TabId>>,
    views: RefCell<Vec<(PortKey, TabView)>>,
    pushed: Notify,
}

/// These scenarios lock no secret key: sealing is refused.
struct NoCrypto;

impl Crypto for NoCrypto {
    async fn seal(&self, _: &SecretKey, _: &Passphrase) -> Result<Sealed, String> {
        Err("no cryptography in this shell".into())
    }
    async fn open(&self, _: &Sealed, _: &Passphrase) -> Result<SecretKey, OpenError> {
        Err(OpenError::Failed("no cryptography in this shell".into()))
    }
}

impl Shell for NativeShell {
    type Storage = MemoryKv;
    type Crypto = NoCrypto;
    fn crypto(&self) -> &NoCrypto {
        &NoCrypto
    }
    fn server(&self, url: ServerUrl) -> impl Server + '_ {
        HttpServer {
            url,
            transport: &self.http,
        }
    }
    fn storage(&self) -> &MemoryKv {
        &self.kv
    }
    fn now_ms(&self) -> f64 {
        let since_epoch = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH);
        since_epoch.unwrap().as_millis() as f64
    }
    fn random_u64(&self) -> u64 {
        use std::hash::{BuildHasher, RandomState};
        RandomState::new().hash_one(self.now_ms().to_bits())
    }
    async fn sleep(&self, ms: u32) {
        tokio::time::sleep(Duration::from_millis(ms.into())).await;
    }
    async fn tab_exists(&self, tab: TabId) -> bool {
        self.tabs.borrow().contains(&tab)
    }
    async fn open_tab(&self) -> Option<TabId> {
        None
    }
    fn focus_tab(&self, _tab: TabId) {}
    fn set_title(&self, _tab: TabId, _title: &TabTitle) {}
    fn notify(&self, _notice: &Notice) {}
    fn open_sessions_page(&self) {}
    fn post(&self, port: PortKey, push: &WorkerPush) {
        if let WorkerPush::State { view, .. } = push {
            self.views.borrow_mut().push((port, (**view).clone()));
            self.pushed.notify_waiters();
        }
    }
    fn set_badge(&self, _tab: TabId, _badge: &Badge) {}
    fn confirm_logout(&self, _tab: TabId) {}
    fn warn(&self, message: &str) {
        eprintln!("{message}");
    }
    fn spawn(&self, task: Pin<Box<dyn Future<Output = ()>>>) {
        tokio::task::spawn_local(task);
    }

    // These flows run over HTTP alone: no socket ever opens, so the worker polls, as it does
    // whenever a server's socket is down (push itself is proven in the browser suite).
    fn socket_open(&self, _key: SocketKey, _url: &str) {}

    fn socket_send(&self, _key: SocketKey, _text: &str) {}

    fn socket_close(&self, _key: SocketKey) {}
}

// ---- the scenario vocabulary ----

struct Ctx {
    worker: Rc<Worker<NativeShell>>,
    sim: SimControl,
    url: ServerUrl,
}

/// Runs a scenario with wpp-sim on loopback and a worker with these timings.
fn run<F: Future<Output = ()>>(timings: Timings, scenario: impl FnOnce(Ctx) -> F) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let local = tokio::task::LocalSet::new();
    local.block_on(&runtime, async move {
        let server = SimServer::start(SimConfig::fast(), "127.0.0.1:0".parse().unwrap())
            .await
            .unwrap();
        let url = ServerUrl::parse(&server.base_url()).unwrap();
        let shell = NativeShell {
            http: Reqwest(reqwest::Client::new()),
            kv: MemoryKv::default(),
            tabs: RefCell::default(),
            views: RefCell::default(),
            pushed: Notify::new(),
        };
        let ctx = Ctx {
            worker: Worker::new(shell, timings),
            sim: server.control(),
            url,
        };
        let save = OptionsRequest::SaveServer {
            id: Some(ServerId::first()),
            name: "wpp-sim".into(),
            server_url: ctx.url.clone(),
            secret_key: Some(SecretKey::parse("THISISMYSECURETOKEN").unwrap()),
            remember: wpp_tabs::core::settings::Remember::Session,
            allow_insecure_http: false,
            make_default: false,
        };
        assert_eq!(
            ctx.worker.options_message(&encode(&save).to_string()).await["type"],
            "saved"
        );
        scenario(ctx).await;
        // Owned here, not by the context: a scenario that uses only some of the context's
        // fields would drop the rest early.
        server.shutdown().await;
    });
}

impl Ctx {
    fn shell(&self) -> &NativeShell {
        self.worker.shell()
    }

    async fn open_popup(&self, tab: i64) -> PortKey {
        let tab = TabId::new(tab).unwrap();
        self.shell().tabs.borrow_mut().insert(tab);
        let port = self.worker.page_connected(PageKind::Popup);
        self.send(port, PopupRequest::Subscribe { tab_id: tab })
            .await;
        port
    }

    async fn send(&self, port: PortKey, request: PopupRequest) {
        self.worker
            .page_message(port, &encode(&request).to_string())
            .await;
    }

    fn last_view(&self, port: PortKey) -> Option<TabView> {
        let views = self.shell().views.borrow();
        views
            .iter()
            .rev()
            .find(|(p, _)| *p == port)
            .map(|(_, v)| v.clone())
    }

    /// Waits for a pushed view of `port` that satisfies `pred`: each push wakes the wait.
    async fn wait_view(
        &self,
        port: PortKey,
        what: &str,
        pred: impl Fn(&TabView) -> bool,
    ) -> TabView {
        let wait = async {
            loop {
                let pushed = self.shell().pushed.notified();
                if let Some(view) = self.last_view(port).filter(|v| pred(v)) {
                    return view;
                }
                pushed.await;
            }
        };
        match tokio::time::timeout(WAIT, wait).await {
            Ok(view) => view,
            Err(_) => panic!(
                "timed out waiting for {what}; last view: {:?}",
                self.last_view(port)
            ),
        }
    }

    async fn wait_qr(&self, port: PortKey) -> TabView {
        self.wait_view(port, "a QR", |v| v.phase == Phase::QrCode && v.qr.is_some())
            .await
    }

    fn session_stored(&self, key: &str) -> Option<Value> {
        self.shell().kv.area(Area::Session).get(key).cloned()
    }

    fn routes_of(&self, session: &str) -> Vec<String> {
        let log = serde_json::to_value(self.sim.log()).unwrap();
        let requests = log["requests"].as_array().cloned().unwrap_or_default();
        requests
            .iter()
            .filter(|r| r["session"] == json!(session))
            .map(|r| r["route"].as_str().unwrap_or_default().to_owned())
            .collect()
    }
}

fn fast() -> Timings {
    Timings::TEST
}

// ---- scenarios ----

#[test]
fn pairing_over_http_shows_the_qr_and_a_scan_connects() {
    run(fast(), |ctx| async move {
        let port = ctx.open_popup(1).await;
        let view = ctx.wait_qr(port).await;
        let id = view.session_id.clone().unwrap();
        assert!(view.qr.unwrap().starts_with("data:image/png;base64,"));
        assert_eq!(
            ctx.routes_of(id.as_str())[..2],
            ["generate-token", "start-session"]
        );
        ctx.sim.scan(id.as_str()).unwrap();
        let view = ctx
            .wait_view(port, "CONNECTED", |v| v.phase == Phase::Connected)
            .await;
        assert_eq!(view.qr, None, "the server's stale QR is not shown");
        let index = ctx.shell().kv.area(Area::Local)[keys::SESSIONS].clone();
        assert_eq!(index[id.as_str()]["lastStatus"], "CONNECTED");
    });
}

#[test]
fn a_token_the_server_refuses_is_renewed_and_polling_recovers() {
    run(fast(), |ctx| async move {
        let port = ctx.open_popup(1).await;
        let id = ctx.wait_qr(port).await.session_id.unwrap();
        let before = ctx.session_stored(&keys::token(&id)).unwrap();
        ctx.sim
            .inject_fault(FaultSpec {
                route: "status-session".into(),
                session: Some(id.to_string()),
                kind: FaultKind::Unauthorized,
                count: 1,
                delay_ms: None,
            })
            .unwrap();
        let failed = ctx
            .wait_view(port, "the 401", |v| {
                v.error.as_ref().is_some_and(|e| e.code == "unauthorized")
            })
            .await;
        assert!(
            failed.qr.is_some(),
            "the QR stays while the token is renewed"
        );
        ctx.wait_view(port, "recovery", |v| {
            v.error.is_none() && v.phase == Phase::QrCode
        })
        .await;
        assert_ne!(ctx.session_stored(&keys::token(&id)).unwrap(), before);
        let routes = ctx.routes_of(id.as_str());
        assert_eq!(
            routes.iter().filter(|r| *r == "generate-token").count(),
            2,
            "{routes:?}"
        );
    });
}

#[test]
fn logout_of_a_connected_session_logs_it_out_on_the_server() {
    run(fast(), |ctx| async move {
        let port = ctx.open_popup(1).await;
        let id = ctx.wait_qr(port).await.session_id.unwrap();
        ctx.sim.scan(id.as_str()).unwrap();
        ctx.wait_view(port, "CONNECTED", |v| v.phase == Phase::Connected)
            .await;
        ctx.send(port, PopupRequest::Logout).await;
        assert!(ctx
            .routes_of(id.as_str())
            .contains(&"logout-session".to_owned()));
        let on_server = ctx.sim.session(id.as_str());
        assert!(
            on_server.as_ref().is_none_or(|s| s.status != "CONNECTED"),
            "{on_server:?}"
        );
        for key in [keys::tab(TabId::new(1).unwrap()), keys::token(&id)] {
            assert_eq!(ctx.session_stored(&key), None, "{key}");
        }
        let index = ctx.shell().kv.area(Area::Local)[keys::SESSIONS].clone();
        assert!(index.get(id.as_str()).is_none(), "{index}");
        assert_eq!(ctx.last_view(port).unwrap().session_id, None);
    });
}

#[test]
fn logout_while_pairing_falls_back_to_close_session() {
    run(fast(), |ctx| async move {
        let port = ctx.open_popup(1).await;
        let id = ctx.wait_qr(port).await.session_id.unwrap();
        ctx.send(port, PopupRequest::Logout).await;
        let routes = ctx.routes_of(id.as_str());
        let tail: Vec<&str> = routes
            .iter()
            .rev()
            .take(2)
            .rev()
            .map(String::as_str)
            .collect();
        assert_eq!(tail, ["logout-session", "close-session"]);
        assert_eq!(ctx.session_stored(&keys::token(&id)), None);
    });
}

#[test]
fn a_start_the_server_never_finishes_is_restarted() {
    let timings = Timings {
        stuck_after_ms: 1_000.0,
        ..Timings::TEST
    };
    run(timings, |ctx| async move {
        let port = ctx.open_popup(1).await;
        let id = ctx.last_view(port).unwrap().session_id.unwrap();
        // The session hangs in INITIALIZING, as the real server's do (contract §9.1).
        ctx.sim.stuck(id.as_str());
        let stuck = ctx
            .wait_view(port, "stuck", |v| v.action == Some(PairAction::Restart))
            .await;
        assert_eq!(stuck.phase, Phase::Stuck);
        ctx.send(port, PopupRequest::Pair { server: None }).await;
        // The hung session is closed (twice: the real server's first close leaves its
        // browser, and its profile lock, behind), and the tab goes on under a fresh name.
        let old_routes = ctx.routes_of(id.as_str());
        let closes = old_routes.iter().filter(|r| *r == "close-session").count();
        assert_eq!(closes, 2, "{old_routes:?}");
        let fresh = ctx.last_view(port).unwrap().session_id.unwrap();
        assert_ne!(fresh, id);
        assert_eq!(
            ctx.routes_of(fresh.as_str())[..2],
            ["generate-token", "start-session"]
        );
        ctx.wait_qr(port).await;
    });
}

#[test]
fn the_connection_test_tells_a_wrong_secret_from_a_server_that_is_down() {
    run(fast(), |ctx| async move {
        let test = |url: &ServerUrl, secret: &str| {
            encode(&OptionsRequest::TestConnection {
                id: None,
                server_url: url.clone(),
                secret_key: Some(SecretKey::parse(secret).unwrap()),
                allow_insecure_http: false,
            })
            .to_string()
        };
        let ok = ctx
            .worker
            .options_message(&test(&ctx.url, "THISISMYSECURETOKEN"))
            .await;
        assert_eq!(ok["ok"], true, "{ok}");
        let wrong = ctx.worker.options_message(&test(&ctx.url, "nope")).await;
        assert!(message_of(&wrong).contains("refused the secret"), "{wrong}");
        // Port 9 (discard) is closed on loopback: the connection is refused at once.
        let down = ServerUrl::parse("http://127.0.0.1:9").unwrap();
        let down = ctx
            .worker
            .options_message(&test(&down, "THISISMYSECURETOKEN"))
            .await;
        assert!(message_of(&down).contains("Cannot reach"), "{down}");
    });
}

#[test]
fn the_account_routes_and_show_all_sessions_read_what_the_server_sends() {
    run(fast(), |ctx| async move {
        let http = Reqwest(reqwest::Client::new());
        let server = HttpServer {
            url: ctx.url.clone(),
            transport: &http,
        };
        let secret = SecretKey::parse("THISISMYSECURETOKEN").unwrap();
        let id = SessionId::generate(1_800_000_000_000, 42);
        let token = server.generate_token(&id, &secret).await.unwrap();
        let other = SessionId::generate(1_800_000_000_000, 43);
        let other_token = server.generate_token(&other, &secret).await.unwrap();

        // Not started, then starting: statusConnection's 404.
        assert_eq!(
            server.host_device(&id, &token).await,
            Err(ApiError::NotConnected)
        );
        server.start_session(&id, &token).await.unwrap();
        while server.status_session(&id, &token).await.unwrap().status != ServerStatus::QrCode {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert_eq!(
            server.phone_number(&id, &token).await,
            Err(ApiError::NotConnected)
        );
        assert_eq!(
            server.host_device(&id, &other_token).await,
            Err(ApiError::Unauthorized)
        );

        let with = wpp_sim::ScanAs {
            phone: Some("5521999990001".into()),
            pushname: Some("Loja Centro \u{202e}".into()),
        };
        ctx.sim.scan_as(id.as_str(), with).unwrap();
        let account = server.host_device(&id, &token).await.unwrap();
        assert_eq!(
            account,
            Account {
                phone: "5521999990001".into(),
                name: Some("Loja Centro".into()),
            }
        );
        assert_eq!(account.display(), "Loja Centro (+5521999990001)");
        assert_eq!(
            server.phone_number(&id, &token).await.unwrap().display(),
            "+5521999990001"
        );

        // show-all-sessions: the started session; a name that is not one of this extension's
        // IDs is skipped, and a session that never started is not in the token store.
        let sim_token = ctx.sim.token_for("someone_elses");
        reqwest::Client::new()
            .post(format!("{}/api/someone_elses/start-session", ctx.url))
            .header("Authorization", format!("Bearer {sim_token}"))
            .send()
            .await
            .unwrap();
        assert_eq!(
            server.show_all_sessions(&secret).await,
            Ok(vec![id.clone()])
        );
        let wrong = SecretKey::parse("nope").unwrap();
        assert_eq!(
            server.show_all_sessions(&wrong).await,
            Err(ApiError::WrongSecret)
        );
    });
}
