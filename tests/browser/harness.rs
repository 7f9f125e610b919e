//! Launching headless Chromium / Firefox with an extension loaded, and the helpers the
//! scenarios share (extension URLs, scripts in extension pages, bounded polling).

use std::future::Future;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use super::cdp::Cdp;
use super::webdriver::{free_port, DriverProcess, Result, Session};

pub const CHROMIUM: &str = "/usr/bin/chromium";
pub const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
pub const FIREFOX: &str = "/usr/bin/firefox-esr";

/// The UUID the suite pins for the add-on in Firefox (`extensions.webextensions.uuids`).
pub const FIREFOX_UUID: &str = "6b7e1f0c-3d2a-4c5e-9f10-7a8b9c0d1e2f";

/// Default bound for every "wait until" in the suite.
pub const WAIT: Duration = Duration::from_secs(20);

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Chromium,
    Firefox,
}

impl std::fmt::Display for Kind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Kind::Chromium => "chromium",
            Kind::Firefox => "firefox",
        })
    }
}

// At most one browser of each kind at once (so at most two browsers in all), across the test
// threads of one `cargo test` process (tokio's Mutex works across runtimes).
static CHROMIUM_LOCK: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
static FIREFOX_LOCK: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

fn geckodriver_path() -> String {
    if let Ok(p) = std::env::var("GECKODRIVER") {
        return p;
    }
    let cargo_bin = std::env::var("HOME")
        .map(|h| format!("{h}/.cargo/bin/geckodriver"))
        .unwrap_or_default();
    if Path::new(&cargo_bin).exists() {
        return cargo_bin;
    }
    "geckodriver".into()
}

/// Maps hex digits 0-f to a-p, as Chromium does for extension IDs.
fn hex_to_extension_alphabet(digest: &[u8]) -> String {
    digest
        .iter()
        .flat_map(|b| [b >> 4, b & 0xf])
        .take(32)
        .map(|n| (b'a' + n) as char)
        .collect()
}

/// The ID Chromium gives the unpacked extension in `dir`: from the manifest `key` when there is
/// one, else from the absolute path.
pub fn chromium_extension_id(dir: &Path) -> Result<String> {
    let manifest: Value = serde_json::from_slice(
        &std::fs::read(dir.join("manifest.json"))
            .map_err(|e| format!("read {dir:?}/manifest.json: {e}"))?,
    )
    .map_err(|e| format!("manifest.json: {e}"))?;
    if let Some(key) = manifest["key"].as_str() {
        use base64::Engine;
        let der = base64::engine::general_purpose::STANDARD
            .decode(key.trim())
            .map_err(|e| format!("manifest key is not base64: {e}"))?;
        return Ok(hex_to_extension_alphabet(&Sha256::digest(der)));
    }
    let abs = std::fs::canonicalize(dir).map_err(|e| format!("canonicalize {dir:?}: {e}"))?;
    Ok(hex_to_extension_alphabet(&Sha256::digest(
        abs.as_os_str().as_encoded_bytes(),
    )))
}

/// A headless browser with the extension loaded, driven over WebDriver (and CDP for Chromium).
/// Dropping it kills the driver and the browser.
pub struct Browser {
    pub kind: Kind,
    pub wd: Session,
    /// `chrome-extension://<id>/` or `moz-extension://<uuid>/`.
    pub base: String,
    /// The Chromium extension ID, or the pinned Firefox UUID.
    pub ext_id: String,
    pub cdp: Option<Cdp>,
    // Field order is drop order: the CDP socket and session first, the processes, then the lock.
    _driver: DriverProcess,
    _profile_dir: Option<TempDir>,
    _turn: tokio::sync::MutexGuard<'static, ()>,
}

/// A directory removed on drop (after the browser using it was killed).
struct TempDir(PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

impl Browser {
    /// Headless Chromium with the unpacked extension in `ext_dir`.
    pub async fn chromium(ext_dir: &Path) -> Result<Browser> {
        let turn = CHROMIUM_LOCK.lock().await;
        let abs =
            std::fs::canonicalize(ext_dir).map_err(|e| format!("canonicalize {ext_dir:?}: {e}"))?;
        let ext_id = chromium_extension_id(&abs)?;
        let port = free_port();
        let driver = DriverProcess::spawn(CHROMEDRIVER, &[format!("--port={port}")], port).await?;
        let profile_dir =
            std::env::temp_dir().join(format!("wpp-e2e-chromium-{}-{port}", std::process::id()));
        std::fs::create_dir_all(&profile_dir).map_err(|e| e.to_string())?;
        let caps = json!({
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": CHROMIUM,
                "args": [
                    "--headless=new", "--no-sandbox", "--disable-gpu",
                    "--disable-background-networking", "--disable-component-update", "--disable-sync",
                    "--no-first-run", "--no-default-browser-check",
                    format!("--user-data-dir={}", profile_dir.display()),
                    format!("--load-extension={}", abs.display()),
                    "--window-size=1200,900",
                ],
            },
        });
        let wd = Session::new(&driver.url, caps).await?;
        let addr = wd.capabilities["goog:chromeOptions"]["debuggerAddress"]
            .as_str()
            .ok_or_else(|| {
                format!(
                    "no goog:chromeOptions.debuggerAddress in {}",
                    wd.capabilities
                )
            })?
            .to_string();
        let cdp = Cdp::connect(&addr).await?;
        let browser = Browser {
            kind: Kind::Chromium,
            wd,
            base: format!("chrome-extension://{ext_id}/"),
            ext_id,
            cdp: Some(cdp),
            _driver: driver,
            _profile_dir: Some(TempDir(profile_dir)),
            _turn: turn,
        };
        browser.check_chromium_extension_loaded().await?;
        Ok(browser)
    }

    /// Fails clearly when Chromium did not load the extension under the computed ID.
    async fn check_chromium_extension_loaded(&self) -> Result<()> {
        let cdp = self.cdp.as_ref().unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let targets = cdp.targets().await?;
            let ours = format!("chrome-extension://{}/", self.ext_id);
            if targets
                .iter()
                .any(|t| t["url"].as_str().is_some_and(|u| u.starts_with(&ours)))
            {
                return Ok(());
            }
            if Instant::now() > deadline {
                let seen: Vec<_> = targets
                    .iter()
                    .map(|t| format!("{} {}", t["type"], t["url"]))
                    .collect();
                return Err(format!(
                    "extension {} has no target (service worker) after 10 s; targets: {seen:?}",
                    self.ext_id
                ));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Headless Firefox with the add-on `zip` (gecko id `gecko_id`) installed temporarily,
    /// at `moz-extension://FIREFOX_UUID/`.
    pub async fn firefox(zip: &[u8], gecko_id: &str) -> Result<Browser> {
        let turn = FIREFOX_LOCK.lock().await;
        let port = free_port();
        let marionette = free_port();
        let driver = DriverProcess::spawn(
            &geckodriver_path(),
            &[
                "--port".into(),
                port.to_string(),
                "--marionette-port".into(),
                marionette.to_string(),
                "--allow-system-access".into(),
            ],
            port,
        )
        .await?;
        let uuids = json!({ gecko_id: FIREFOX_UUID }).to_string();
        let caps = json!({
            "browserName": "firefox",
            "moz:firefoxOptions": {
                "binary": FIREFOX,
                "args": ["-headless"],
                "prefs": {
                    "extensions.webextensions.uuids": uuids,
                    // Let navigator.clipboard.readText() work without the paste prompt.
                    "dom.events.testing.asyncClipboard": true,
                    "dom.events.asyncClipboard.readText": true,
                    "datareporting.policy.dataSubmissionEnabled": false,
                    "browser.shell.checkDefaultBrowser": false,
                },
            },
        });
        let wd = Session::new(&driver.url, caps).await?;
        wd.install_addon_zip(zip, true).await?;
        Ok(Browser {
            kind: Kind::Firefox,
            wd,
            base: format!("moz-extension://{FIREFOX_UUID}/"),
            ext_id: FIREFOX_UUID.into(),
            cdp: None,
            _driver: driver,
            _profile_dir: None,
            _turn: turn,
        })
    }

    /// `<base><path>`.
    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path.trim_start_matches('/'))
    }

    /// Navigates the current window to an extension page and waits for it to have loaded.
    pub async fn open(&self, path: &str) -> Result<()> {
        let url = self.url(path);
        let mut last = String::new();
        // Right after install the extension may not serve pages yet: retry briefly.
        for _ in 0..20 {
            match self.wd.goto(&url).await {
                Ok(()) => {
                    let ok = self
                        .wd
                        .execute(
                            "return document.readyState === 'complete' && location.href",
                            vec![],
                        )
                        .await;
                    if let Ok(Value::String(href)) = ok {
                        if href.starts_with(&self.base) {
                            return Ok(());
                        }
                        last = format!("landed on {href}");
                    }
                }
                Err(e) => last = e,
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
        Err(format!("cannot open {url}: {last}"))
    }

    /// Runs `body` as an async function body in the current (extension) page. `api` is
    /// `browser ?? chrome`; `args` the given arguments.
    pub async fn eval(&self, body: &str, args: Vec<Value>) -> Result<Value> {
        self.wd.eval_async(body, args).await
    }

    /// Chromium: evaluates an expression in the extension's service worker (waking is the
    /// caller's business; waits up to WAIT for the worker to run).
    pub async fn eval_in_worker(&self, expression: &str) -> Result<Value> {
        let cdp = self.cdp.as_ref().ok_or("eval_in_worker: Chromium only")?;
        cdp.eval_in_worker(&self.ext_id, expression, WAIT).await
    }

    /// Calls `globalThis.wppTabsListeners[name](...args)` in the background context and returns
    /// the awaited result. Chromium: CDP in the service worker; Firefox: through
    /// `runtime.getBackgroundPage()` from the current extension page (args rebuilt in the
    /// background realm).
    pub async fn call_background(&self, name: &str, args: Vec<Value>) -> Result<Value> {
        let args_json = Value::Array(args).to_string();
        match self.kind {
            Kind::Chromium => {
                let expr = format!(
                    "(async () => {{ const l = globalThis.wppTabsListeners; \
                     if (!l || typeof l[{n}] !== 'function') throw new Error('no wppTabsListeners.' + {n}); \
                     const r = await l[{n}](...{args_json}); return r === undefined ? null : r; }})()",
                    n = json!(name)
                );
                self.eval_in_worker(&expr).await
            }
            Kind::Firefox => {
                self.eval(
                    "const bg = await api.runtime.getBackgroundPage();\n\
                     if (!bg) throw new Error('getBackgroundPage() returned ' + bg);\n\
                     const l = bg.wppTabsListeners;\n\
                     if (!l || typeof l[args[0]] !== 'function') throw new Error('no wppTabsListeners.' + args[0]);\n\
                     const r = await l[args[0]](...bg.JSON.parse(args[1]));\n\
                     return r === undefined ? null : JSON.parse(JSON.stringify(r));",
                    vec![json!(name), json!(args_json)],
                )
                .await
            }
        }
    }

    /// Ends the WebDriver session (closing the browser); the driver is killed on drop.
    pub async fn quit(self) {
        let _ = self.wd.delete().await;
    }
}

/// Polls `probe` until it yields `Some`, up to `timeout`; the error names `what` and the last
/// probe error or observation.
pub async fn wait_for<T, F, Fut>(what: &str, timeout: Duration, mut probe: F) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<std::result::Result<T, String>>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        let last = match probe().await {
            Ok(Ok(v)) => return Ok(v),
            Ok(Err(observed)) => format!("last seen: {observed}"),
            Err(e) => format!("last error: {e}"),
        };
        if Instant::now() > deadline {
            return Err(format!(
                "timed out after {timeout:?} waiting for {what}; {last}"
            ));
        }
        tokio::time::sleep(Duration::from_millis(150)).await;
    }
}
