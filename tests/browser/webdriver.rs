//! A thin classic W3C WebDriver client over reqwest, plus the driver process that serves it.
//!
//! Only the commands the suite needs: sessions, navigation, CSS lookup, element reads and
//! interaction, (async) script execution, windows, and geckodriver's add-on install.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

/// Any harness error: a message that says what was attempted and what came back.
pub type Result<T> = std::result::Result<T, String>;

/// The W3C element reference key.
const ELEMENT_KEY: &str = "element-6066-11e4-a52e-4f735466cecf";

/// A free TCP port on 127.0.0.1 (bound, then released; the race is tolerable for tests).
pub fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind an ephemeral port");
    listener.local_addr().expect("local addr").port()
}

/// A running chromedriver/geckodriver, in its own process group, so that dropping it kills the
/// driver *and* the browser it started (and only those: the group is ours).
pub struct DriverProcess {
    child: Child,
    pub url: String,
    name: String,
}

impl DriverProcess {
    /// Spawns `program args...` (which must listen on `port`) and waits until `/status` is ready.
    pub async fn spawn(program: &str, args: &[String], port: u16) -> Result<DriverProcess> {
        use std::os::unix::process::CommandExt;
        let log_path =
            std::env::temp_dir().join(format!("wpp-e2e-{}-{port}.log", short_name(program)));
        let log =
            std::fs::File::create(&log_path).map_err(|e| format!("create {log_path:?}: {e}"))?;
        let log2 = log.try_clone().map_err(|e| e.to_string())?;
        let child = Command::new(program)
            .args(args)
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log2)
            .process_group(0)
            .spawn()
            .map_err(|e| format!("cannot start {program}: {e}"))?;
        let mut driver = DriverProcess {
            child,
            url: format!("http://127.0.0.1:{port}"),
            name: short_name(program),
        };
        let http = reqwest::Client::new();
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Ok(Some(status)) = driver.child.try_wait() {
                return Err(format!(
                    "{} exited early ({status}); log: {log_path:?}",
                    driver.name
                ));
            }
            if let Ok(resp) = http.get(format!("{}/status", driver.url)).send().await {
                if let Ok(v) = resp.json::<Value>().await {
                    if v["value"]["ready"].as_bool() == Some(true) {
                        return Ok(driver);
                    }
                }
            }
            if Instant::now() > deadline {
                return Err(format!(
                    "{} not ready on port {port} after 20 s; log: {log_path:?}",
                    driver.name
                ));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

fn short_name(program: &str) -> String {
    program.rsplit('/').next().unwrap_or(program).to_string()
}

impl Drop for DriverProcess {
    fn drop(&mut self) {
        // Kill the whole process group we created (driver + browser + browser helpers).
        let pgid = self.child.id();
        let _ = Command::new("kill")
            .args(["-KILL", "--", &format!("-{pgid}")])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One WebDriver session.
pub struct Session {
    http: reqwest::Client,
    base: String,
    #[allow(dead_code)]
    pub id: String,
    pub capabilities: Value,
}

/// A reference to an element in the current browsing context.
#[derive(Clone, Debug)]
pub struct Element(pub String);

impl Session {
    /// `POST /session` with `alwaysMatch` capabilities.
    pub async fn new(driver_url: &str, always_match: Value) -> Result<Session> {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(120))
            .build()
            .map_err(|e| e.to_string())?;
        let body = json!({"capabilities": {"alwaysMatch": always_match}});
        let v = raw(
            &http,
            reqwest::Method::POST,
            &format!("{driver_url}/session"),
            Some(body),
        )
        .await?;
        let id = v["sessionId"]
            .as_str()
            .ok_or_else(|| format!("no sessionId in {v}"))?
            .to_string();
        let s = Session {
            http,
            base: format!("{driver_url}/session/{id}"),
            id,
            capabilities: v["capabilities"].clone(),
        };
        s.cmd(
            reqwest::Method::POST,
            "/timeouts",
            json!({"script": 60_000, "implicit": 0, "pageLoad": 30_000}),
        )
        .await?;
        Ok(s)
    }

    async fn cmd(&self, method: reqwest::Method, path: &str, body: Value) -> Result<Value> {
        let body = if method == reqwest::Method::GET || method == reqwest::Method::DELETE {
            None
        } else {
            Some(body)
        };
        raw(&self.http, method, &format!("{}{path}", self.base), body).await
    }

    async fn post(&self, path: &str, body: Value) -> Result<Value> {
        self.cmd(reqwest::Method::POST, path, body).await
    }

    async fn get(&self, path: &str) -> Result<Value> {
        self.cmd(reqwest::Method::GET, path, Value::Null).await
    }

    pub async fn goto(&self, url: &str) -> Result<()> {
        self.post("/url", json!({ "url": url })).await.map(drop)
    }

    #[allow(dead_code)]
    pub async fn current_url(&self) -> Result<String> {
        Ok(self
            .get("/url")
            .await?
            .as_str()
            .unwrap_or_default()
            .to_string())
    }

    pub async fn find(&self, css: &str) -> Result<Element> {
        let v = self
            .post("/element", json!({"using": "css selector", "value": css}))
            .await?;
        v[ELEMENT_KEY]
            .as_str()
            .map(|s| Element(s.to_string()))
            .ok_or_else(|| format!("find {css}: unexpected reply {v}"))
    }

    pub async fn click(&self, el: &Element) -> Result<()> {
        self.post(&format!("/element/{}/click", el.0), json!({}))
            .await
            .map(drop)
    }

    pub async fn text(&self, el: &Element) -> Result<String> {
        Ok(self
            .get(&format!("/element/{}/text", el.0))
            .await?
            .as_str()
            .unwrap_or_default()
            .to_string())
    }

    /// The attribute's value, or `None` when the attribute is absent.
    pub async fn attribute(&self, el: &Element, name: &str) -> Result<Option<String>> {
        let v = self
            .get(&format!("/element/{}/attribute/{name}", el.0))
            .await?;
        Ok(v.as_str().map(str::to_string))
    }

    pub async fn property(&self, el: &Element, name: &str) -> Result<Value> {
        self.get(&format!("/element/{}/property/{name}", el.0))
            .await
    }

    pub async fn clear(&self, el: &Element) -> Result<()> {
        self.post(&format!("/element/{}/clear", el.0), json!({}))
            .await
            .map(drop)
    }

    pub async fn send_keys(&self, el: &Element, text: &str) -> Result<()> {
        self.post(&format!("/element/{}/value", el.0), json!({ "text": text }))
            .await
            .map(drop)
    }

    /// Synchronous script: `body` is a function body; `arguments` holds `args`.
    pub async fn execute(&self, body: &str, args: Vec<Value>) -> Result<Value> {
        self.post("/execute/sync", json!({"script": body, "args": args}))
            .await
    }

    /// Raw asynchronous script (the callback is the last argument).
    pub async fn execute_async_raw(&self, body: &str, args: Vec<Value>) -> Result<Value> {
        self.post("/execute/async", json!({"script": body, "args": args}))
            .await
    }

    /// Runs `body` as the body of an `async` function (with `api` bound to `browser` or `chrome`,
    /// and `args` bound to the arguments array), and returns its JSON-able result. A rejection
    /// becomes an `Err` carrying the JS error.
    pub async fn eval_async(&self, body: &str, args: Vec<Value>) -> Result<Value> {
        let script = format!(
            "const __done = arguments[arguments.length - 1];\n\
             const args = Array.prototype.slice.call(arguments, 0, arguments.length - 1);\n\
             const api = globalThis.browser ?? globalThis.chrome;\n\
             (async () => {{ {body}\n }})().then(\n\
               v => __done({{ ok: v === undefined ? null : v }}),\n\
               e => __done({{ err: String((e && e.stack) || e) + ' / ' + String(e && e.message) }}));"
        );
        let v = self.execute_async_raw(&script, args).await?;
        if let Some(err) = v.get("err") {
            return Err(format!(
                "script rejected: {}",
                err.as_str().unwrap_or_default()
            ));
        }
        Ok(v.get("ok").cloned().unwrap_or(Value::Null))
    }

    pub async fn window_handle(&self) -> Result<String> {
        Ok(self
            .get("/window")
            .await?
            .as_str()
            .unwrap_or_default()
            .to_string())
    }

    #[allow(dead_code)]
    pub async fn window_handles(&self) -> Result<Vec<String>> {
        let v = self.get("/window/handles").await?;
        Ok(v.as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|h| h.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default())
    }

    /// Opens a new tab (or window) and returns its handle; does not switch to it.
    pub async fn new_window(&self, kind: &str) -> Result<String> {
        let v = self.post("/window/new", json!({ "type": kind })).await?;
        v["handle"]
            .as_str()
            .map(str::to_string)
            .ok_or_else(|| format!("new window: {v}"))
    }

    pub async fn switch_to(&self, handle: &str) -> Result<()> {
        self.post("/window", json!({ "handle": handle }))
            .await
            .map(drop)
    }

    /// Closes the current window; returns the remaining handles.
    #[allow(dead_code)]
    pub async fn close_window(&self) -> Result<Vec<String>> {
        let v = self
            .cmd(reqwest::Method::DELETE, "/window", Value::Null)
            .await?;
        Ok(v.as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|h| h.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default())
    }

    /// geckodriver only: installs an add-on from the bytes of its zip.
    pub async fn install_addon_zip(&self, zip: &[u8], temporary: bool) -> Result<String> {
        use base64::Engine;
        let addon = base64::engine::general_purpose::STANDARD.encode(zip);
        let v = self
            .post(
                "/moz/addon/install",
                json!({"addon": addon, "temporary": temporary}),
            )
            .await?;
        Ok(v.as_str().unwrap_or_default().to_string())
    }

    /// chromedriver / geckodriver: set a permission (e.g. clipboard-read) for the current origin.
    pub async fn set_permission(&self, name: &str, state: &str) -> Result<()> {
        self.post(
            "/permissions",
            json!({"descriptor": {"name": name}, "state": state}),
        )
        .await
        .map(drop)
    }

    pub async fn delete(&self) -> Result<()> {
        raw(&self.http, reqwest::Method::DELETE, &self.base, None)
            .await
            .map(drop)
    }
}

async fn raw(
    http: &reqwest::Client,
    method: reqwest::Method,
    url: &str,
    body: Option<Value>,
) -> Result<Value> {
    let mut req = http.request(method.clone(), url);
    if let Some(b) = &body {
        req = req.json(b);
    }
    let resp = req
        .send()
        .await
        .map_err(|e| format!("{method} {url}: {e}"))?;
    let status = resp.status();
    let text = resp
        .text()
        .await
        .map_err(|e| format!("{method} {url}: body: {e}"))?;
    let v: Value = serde_json::from_str(&text)
        .map_err(|e| format!("{method} {url}: {status}: not JSON ({e}): {text}"))?;
    let value = v.get("value").cloned().unwrap_or(Value::Null);
    if !status.is_success() || value.get("error").is_some_and(|e| e.is_string()) {
        let mut msg = value["message"].as_str().unwrap_or_default().to_string();
        msg.truncate(600);
        return Err(format!(
            "{method} {url}: {status} {}: {msg}",
            value["error"].as_str().unwrap_or("?")
        ));
    }
    Ok(value)
}
