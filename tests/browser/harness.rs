//! Launching headless Chromium / Firefox with the test build of the extension loaded, over
//! WebDriver (`fantoccini`), plus the helpers every scenario shares: extension URLs, scripts in
//! extension pages, calls into the background, bounded polling.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::wd::{TimeoutConfiguration, WebDriverCompatibleCommand, WindowHandle};
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use crate::cdp::Cdp;

/// Any harness error: a message that says what was attempted and what came back.
pub type Result<T> = std::result::Result<T, String>;

pub const CHROMIUM: &str = "/usr/bin/chromium";
pub const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
pub const FIREFOX: &str = "/usr/bin/firefox-esr";

/// The UUID the suite pins for the add-on in Firefox (`extensions.webextensions.uuids`).
pub const FIREFOX_UUID: &str = "6b7e1f0c-3d2a-4c5e-9f10-7a8b9c0d1e2f";

/// Every browser launch of this process: how long driver, browser and extension took.
pub static LAUNCHES: std::sync::Mutex<Vec<(Kind, Duration)>> = std::sync::Mutex::new(Vec::new());

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

/// The runtime one scenario runs on: its own, so that one test's hang or panic stays its own.
pub fn scenario_runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| format!("tokio runtime: {e}"))
}

/// `.map_err(wd("what"))`: a WebDriver error with what was attempted.
pub fn wd<E: std::fmt::Display>(what: &str) -> impl FnOnce(E) -> String + '_ {
    move |e| format!("{what}: {e}")
}

// ---------------------------------------------------------------------------------------------
// The build under test

/// `target/test-dist/`, written by `scripts/build.sh --test-build` (feature `test-hooks`), or
/// the directory in `WPP_TABS_TEST_DIST` (same layout).
pub fn test_dist() -> Result<PathBuf> {
    let dir = std::env::var_os("WPP_TABS_TEST_DIST")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/test-dist"));
    for needed in [
        "chrome/manifest.json",
        "chrome/wasm/worker.js",
        "firefox/manifest.json",
        "wpp-tabs-firefox.zip",
    ] {
        if !dir.join(needed).is_file() {
            return Err(format!(
                "{} is missing: the test build of the extension is not there; run \
                 `scripts/build.sh --test-build` first (scripts/test.sh does)",
                dir.join(needed).display()
            ));
        }
    }
    Ok(dir)
}

/// Which build a browser loads: the test build (the suite) or the shipped one (the benchmark).
#[derive(Clone, Debug)]
pub struct Build {
    pub chrome_dir: PathBuf,
    pub firefox_zip: PathBuf,
    pub firefox_manifest: PathBuf,
}

impl Build {
    pub fn test() -> Result<Build> {
        Ok(Build::at(&test_dist()?))
    }

    pub fn at(dir: &Path) -> Build {
        Build {
            chrome_dir: dir.join("chrome"),
            firefox_zip: dir.join("wpp-tabs-firefox.zip"),
            firefox_manifest: dir.join("firefox/manifest.json"),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Driver processes

/// A free TCP port on 127.0.0.1 (bound, then released; the race is tolerable for tests).
pub fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind an ephemeral port");
    listener.local_addr().expect("local addr").port()
}

/// A directory removed on drop (after the processes using it were killed).
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(label: &str) -> Result<TempDir> {
        static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let dir = std::env::temp_dir().join(format!("wpp-e2e-{label}-{}-{n}", std::process::id()));
        std::fs::create_dir_all(&dir).map_err(|e| format!("create {dir:?}: {e}"))?;
        Ok(TempDir(dir))
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A running chromedriver/geckodriver in its own process group, so that dropping it kills the
/// driver *and* the browser it started (and only those: the group is ours). Its temporary
/// files (profiles) go to `tmp`, removed after the kill.
struct DriverProcess {
    child: Child,
    url: String,
    log: PathBuf,
    _tmp: TempDir,
}

impl DriverProcess {
    /// Spawns `program args...` (listening on `port`) and waits until `/status` is ready.
    async fn spawn(program: &str, args: &[String], port: u16, tmp: TempDir) -> Result<Self> {
        DriverProcess::spawn_with_env(program, args, &[], port, tmp).await
    }

    /// [`DriverProcess::spawn`], with `env` added to the environment (the browser it starts
    /// inherits it).
    async fn spawn_with_env(
        program: &str,
        args: &[String],
        env: &[(&str, String)],
        port: u16,
        tmp: TempDir,
    ) -> Result<Self> {
        use std::os::unix::process::CommandExt;
        let log_path = tmp.0.join("driver.log");
        let log =
            std::fs::File::create(&log_path).map_err(|e| format!("create {log_path:?}: {e}"))?;
        let log2 = log.try_clone().map_err(|e| e.to_string())?;
        let child = Command::new(program)
            .args(args)
            .env("TMPDIR", &tmp.0)
            .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log2)
            .process_group(0)
            .spawn()
            .map_err(|e| format!("cannot start {program}: {e} (run scripts/setup.sh test)"))?;
        let mut driver = DriverProcess {
            child,
            url: format!("http://127.0.0.1:{port}/"),
            log: log_path,
            _tmp: tmp,
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Ok(Some(status)) = driver.child.try_wait() {
                return Err(format!(
                    "{program} exited early ({status}): {}",
                    driver.log_tail()
                ));
            }
            if tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .is_ok()
            {
                return Ok(driver);
            }
            if Instant::now() > deadline {
                return Err(format!("{program} not listening on {port} after 20 s"));
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let skip = text.chars().count().saturating_sub(1500);
        text.chars().skip(skip).collect()
    }
}

impl Drop for DriverProcess {
    fn drop(&mut self) {
        // SIGKILL the whole process group we created (driver + browser + browser helpers):
        // faster than a WebDriver "delete session", and nothing of ours needs a clean exit.
        let pgid = self.child.id() as i32;
        let _ = Command::new("kill")
            .args(["-KILL", "--", &format!("-{pgid}")])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

// ---------------------------------------------------------------------------------------------
// Vendor commands, issued through fantoccini's custom-command hook

/// `POST /session/{id}/<path>` with a JSON body.
#[derive(Debug)]
struct SessionPost {
    path: &'static str,
    body: Value,
}

impl WebDriverCompatibleCommand for SessionPost {
    fn endpoint(
        &self,
        base_url: &url::Url,
        session_id: Option<&str>,
    ) -> std::result::Result<url::Url, url::ParseError> {
        base_url.join(&format!(
            "session/{}/{}",
            session_id.unwrap_or_default(),
            self.path
        ))
    }

    fn method_and_body(&self, _url: &url::Url) -> (http::Method, Option<String>) {
        (http::Method::POST, Some(self.body.to_string()))
    }
}

// ---------------------------------------------------------------------------------------------
// Browsers

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
    pub wd: Client,
    /// `chrome-extension://<id>/` or `moz-extension://<uuid>/`.
    pub base: String,
    /// The Chromium extension ID, or the pinned Firefox UUID.
    pub ext_id: String,
    pub cdp: Option<Cdp>,
    // Field order is drop order: the CDP socket first, then the processes.
    _driver: DriverProcess,
}

async fn connect(driver: &DriverProcess, caps: Value) -> Result<Client> {
    let Value::Object(caps) = caps else {
        unreachable!("capabilities are an object")
    };
    let connector = hyper_util::client::legacy::connect::HttpConnector::new();
    let client = ClientBuilder::new(connector)
        .capabilities(caps)
        .connect(&driver.url)
        .await
        .map_err(|e| {
            format!(
                "new WebDriver session: {e}; driver log: {}",
                driver.log_tail()
            )
        })?;
    client
        .update_timeouts(TimeoutConfiguration::new(
            Some(Duration::from_secs(60)),
            Some(Duration::from_secs(30)),
            Some(Duration::ZERO),
        ))
        .await
        .map_err(wd("set timeouts"))?;
    Ok(client)
}

/// How the browser presents itself: its interface language (`pt-BR`; `None`: English) and
/// whether it asks pages for their dark colours.
#[derive(Clone, Copy, Debug, Default)]
pub struct Look<'a> {
    pub locale: Option<&'a str>,
    pub dark: bool,
}

impl Browser {
    pub async fn launch(kind: Kind, build: &Build) -> Result<Browser> {
        Browser::launch_in(kind, build, &Look::default()).await
    }

    /// The browser with its interface as `look` says (language, dark theme).
    pub async fn launch_in(kind: Kind, build: &Build, look: &Look<'_>) -> Result<Browser> {
        let started = Instant::now();
        let b = match kind {
            Kind::Chromium => {
                Browser::chromium_in(&build.chrome_dir, TempDir::new("chromium")?, look).await?
            }
            Kind::Firefox => {
                Browser::firefox_in(&build.firefox_zip, &build.firefox_manifest, look).await?
            }
        };
        LAUNCHES.lock().unwrap().push((kind, started.elapsed()));
        Ok(b)
    }

    /// Headless Chromium with the unpacked extension in `ext_dir`.
    pub async fn chromium(ext_dir: &Path) -> Result<Browser> {
        Browser::chromium_in(ext_dir, TempDir::new("chromium")?, &Look::default()).await
    }

    /// Chromium only: a browser restart. Quits the browser cleanly (WebDriver "delete
    /// session": the profile is written out) and starts it again on the same profile (a copy,
    /// without the lock files) with the same unpacked extension: `storage.local` survives,
    /// `storage.session` does not, tabs and windows are new.
    pub async fn restart_chromium(self, ext_dir: &Path) -> Result<Browser> {
        if self.kind != Kind::Chromium {
            return Err(format!("restart_chromium on {}", self.kind));
        }
        let Browser {
            wd: client,
            cdp,
            _driver: driver,
            ..
        } = self;
        drop(cdp);
        client.close().await.map_err(wd("quit Chromium"))?;
        let tmp = TempDir::new("chromium")?;
        copy_dir(&driver._tmp.0.join("profile"), &tmp.0.join("profile"))?;
        drop(driver);
        Browser::chromium_in(ext_dir, tmp, &Look::default()).await
    }

    /// Headless Chromium with the unpacked extension in `ext_dir`, its driver's files and the
    /// profile (`profile/`, used as it is if it exists) in `tmp`; its interface in
    /// `look.locale` (`--lang`, which needs the `chromium-l10n` files) when given.
    async fn chromium_in(ext_dir: &Path, tmp: TempDir, look: &Look<'_>) -> Result<Browser> {
        let abs =
            std::fs::canonicalize(ext_dir).map_err(|e| format!("canonicalize {ext_dir:?}: {e}"))?;
        let ext_id = chromium_extension_id(&abs)?;
        let port = free_port();
        let profile = tmp.0.join("profile");
        // Chromium on Linux takes its interface language from the environment.
        let env: Vec<(&str, String)> = look
            .locale
            .map(|l| vec![("LANGUAGE", l.replace('-', "_"))])
            .unwrap_or_default();
        let driver = DriverProcess::spawn_with_env(
            CHROMEDRIVER,
            &[format!("--port={port}")],
            &env,
            port,
            tmp,
        )
        .await?;
        let mut caps = json!({
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": CHROMIUM,
                "args": [
                    "--headless=new", "--no-sandbox", "--disable-gpu",
                    "--disable-background-networking", "--disable-component-update", "--disable-sync",
                    "--no-first-run", "--no-default-browser-check",
                    format!("--user-data-dir={}", profile.display()),
                    format!("--disable-extensions-except={}", abs.display()),
                    format!("--load-extension={}", abs.display()),
                    "--window-size=1200,900",
                ],
            },
        });
        let args = caps["goog:chromeOptions"]["args"].as_array_mut().unwrap();
        if let Some(locale) = look.locale {
            args.push(json!(format!("--lang={locale}")));
            args.push(json!(format!("--accept-lang={locale}")));
        }
        if look.dark {
            args.push(json!("--force-dark-mode"));
        }
        let wd = connect(&driver, caps).await?;
        let addr = wd
            .capabilities()
            .and_then(|c| c.get("goog:chromeOptions"))
            .and_then(|o| o.get("debuggerAddress"))
            .and_then(Value::as_str)
            .ok_or("chromedriver gave no goog:chromeOptions.debuggerAddress")?
            .to_string();
        let cdp = Cdp::connect(&addr).await?;
        cdp.wait_extension_worker(&ext_id, Duration::from_secs(10))
            .await
            .map_err(|e| format!("the extension did not load (is {abs:?} a build?): {e}"))?;
        Ok(Browser {
            kind: Kind::Chromium,
            wd,
            base: format!("chrome-extension://{ext_id}/"),
            ext_id,
            cdp: Some(cdp),
            _driver: driver,
        })
    }

    /// Headless Firefox with the add-on `zip` installed temporarily (its gecko id read from
    /// `manifest`), at `moz-extension://FIREFOX_UUID/`; its interface in `look.locale`
    /// (`intl.locale.requested`, which needs the language pack `firefox-esr-l10n-*`) when given.
    pub async fn firefox_in(zip: &Path, manifest: &Path, look: &Look<'_>) -> Result<Browser> {
        let manifest: Value = serde_json::from_slice(
            &std::fs::read(manifest).map_err(|e| format!("read {manifest:?}: {e}"))?,
        )
        .map_err(|e| format!("{manifest:?}: {e}"))?;
        let gecko_id = manifest["browser_specific_settings"]["gecko"]["id"]
            .as_str()
            .ok_or("the Firefox manifest has no browser_specific_settings.gecko.id")?
            .to_string();
        let zip = std::fs::read(zip).map_err(|e| format!("read {zip:?}: {e}"))?;
        let mut attempts = 0;
        let (wd, driver) = loop {
            attempts += 1;
            let tmp = TempDir::new("firefox")?;
            // A copy of a profile Firefox has already started once: its first-run work
            // (databases, startup cache) is done, which makes every launch cheaper.
            let profile = tmp.0.join("profile");
            copy_dir(&firefox_template().await?, &profile)?;
            let driver = spawn_geckodriver(tmp).await?;
            let ids = json!({ gecko_id.as_str(): FIREFOX_UUID }).to_string();
            let mut caps = firefox_caps(&ids, &profile);
            let prefs = &mut caps["moz:firefoxOptions"]["prefs"];
            if let Some(locale) = look.locale {
                prefs["intl.locale.requested"] = json!(locale);
                prefs["intl.accept_languages"] = json!(locale);
            }
            if look.dark {
                // 0: pages see `prefers-color-scheme: dark`.
                prefs["layout.css.prefers-color-scheme.content-override"] = json!(0);
            }
            match connect(&driver, caps).await {
                Ok(wd) => break (wd, driver),
                // Seen once in a full run under load: Firefox exits while starting ("Process
                // unexpectedly closed with status 0"). A launch, not a check: once more, anew.
                Err(e) if attempts == 1 && e.contains("unexpectedly closed") => {
                    eprintln!("[harness] Firefox exited while starting; launching it again: {e}");
                }
                Err(e) => return Err(e),
            }
        };
        use base64::Engine;
        wd.issue_cmd(SessionPost {
            path: "moz/addon/install",
            body: json!({
                "addon": base64::engine::general_purpose::STANDARD.encode(&zip),
                "temporary": true,
            }),
        })
        .await
        .map_err(|e| format!("install the add-on (geckodriver moz/addon/install): {e}"))?;
        Ok(Browser {
            kind: Kind::Firefox,
            wd,
            base: format!("moz-extension://{FIREFOX_UUID}/"),
            ext_id: FIREFOX_UUID.into(),
            cdp: None,
            _driver: driver,
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
        for _ in 0..40 {
            match self.wd.goto(&url).await {
                Ok(()) => {
                    let ok = self
                        .wd
                        .execute(
                            "return document.readyState === 'complete' && location.href",
                            vec![],
                        )
                        .await;
                    match ok {
                        Ok(Value::String(href)) if href.starts_with(&self.base) => return Ok(()),
                        Ok(v) => last = format!("landed on {v}"),
                        Err(e) => last = e.to_string(),
                    }
                }
                Err(e) => last = e.to_string(),
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Err(format!("cannot open {url}: {last}"))
    }

    /// A new window (in the background; the current one stays current).
    pub async fn new_window(&self) -> Result<WindowHandle> {
        Ok(self
            .wd
            .new_window(true)
            .await
            .map_err(wd("new window"))?
            .handle)
    }

    /// Makes window `handle` current; `what` names the switch in an error.
    pub async fn switch_to(&self, handle: &WindowHandle, what: &str) -> Result<()> {
        self.wd
            .switch_to_window(handle.clone())
            .await
            .map_err(wd(what))
    }

    /// Extension page `path` in a new window, left current.
    pub async fn open_in_new_window(&self, path: &str) -> Result<WindowHandle> {
        let handle = self.new_window().await?;
        self.switch_to(&handle, &format!("switch to {path}"))
            .await?;
        self.open(path).await?;
        Ok(handle)
    }

    /// Runs `body` as the body of an `async` function in the current (extension) page, with
    /// `api` bound to `browser ?? chrome` and `args` to the given arguments; returns its
    /// JSON-able result. A rejection becomes an `Err` carrying the JS error.
    pub async fn eval(&self, body: &str, args: Vec<Value>) -> Result<Value> {
        let script = format!(
            "const __done = arguments[arguments.length - 1];\n\
             const args = Array.prototype.slice.call(arguments, 0, arguments.length - 1);\n\
             const api = globalThis.browser ?? globalThis.chrome;\n\
             (async () => {{ {body}\n }})().then(\n\
               v => __done({{ ok: v === undefined ? null : v }}),\n\
               e => __done({{ err: String((e && e.stack) || e) + ' / ' + String(e && e.message) }}));"
        );
        let v = self
            .wd
            .execute_async(&script, args)
            .await
            .map_err(wd("execute async script"))?;
        if let Some(err) = v.get("err") {
            return Err(format!(
                "script rejected: {}",
                err.as_str().unwrap_or_default()
            ));
        }
        Ok(v.get("ok").cloned().unwrap_or(Value::Null))
    }

    /// A synchronous script (`arguments` holds `args`).
    pub async fn execute(&self, body: &str, args: Vec<Value>) -> Result<Value> {
        self.wd
            .execute(body, args)
            .await
            .map_err(wd("execute script"))
    }

    pub async fn find(&self, css: &str) -> Result<fantoccini::elements::Element> {
        self.wd
            .find(Locator::Css(css))
            .await
            .map_err(|e| format!("find {css}: {e}"))
    }

    pub async fn click(&self, css: &str) -> Result<()> {
        self.find(css)
            .await?
            .click()
            .await
            .map_err(|e| format!("click {css}: {e}"))
    }

    /// Chromium / Firefox: grants or denies a permission for the current origin
    /// (`POST /session/{id}/permissions`, WebDriver's permissions extension).
    pub async fn set_permission(&self, name: &str, state: &str) -> Result<()> {
        self.wd
            .issue_cmd(SessionPost {
                path: "permissions",
                body: json!({"descriptor": {"name": name}, "state": state}),
            })
            .await
            .map(drop)
            .map_err(wd("set permission"))
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
                let cdp = self.cdp.as_ref().expect("Chromium has CDP");
                cdp.eval_in_worker(&self.ext_id, &expr, WAIT).await
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
}

/// Headless Firefox capabilities: the profile directory to use, and the prefs.
fn firefox_caps(uuids: &str, profile: &Path) -> Value {
    let mut caps = firefox_base_caps(uuids, profile);
    // The event page's idle timeout (ms; Firefox's default is 30 000), shortened by the
    // lifetime probe (`push::probe_event_page_lifetime`).
    if let Some(ms) = std::env::var("WPP_FIREFOX_IDLE_TIMEOUT_MS")
        .ok()
        .and_then(|v| v.parse::<u64>().ok())
    {
        caps["moz:firefoxOptions"]["prefs"]["extensions.background.idle.timeout"] = json!(ms);
    }
    caps
}

fn firefox_base_caps(uuids: &str, profile: &Path) -> Value {
    json!({
        "browserName": "firefox",
        "moz:firefoxOptions": {
            "binary": FIREFOX,
            "args": ["-headless", "-profile", profile.display().to_string()],
            "prefs": {
                "extensions.webextensions.uuids": uuids,
                // Let navigator.clipboard.readText() work without the paste prompt.
                "dom.events.testing.asyncClipboard": true,
                "dom.events.asyncClipboard.readText": true,
                "datareporting.policy.dataSubmissionEnabled": false,
                "browser.shell.checkDefaultBrowser": false,
                // Fewer processes and less start-up work: launching is most of the cost of a
                // Firefox scenario on two cores. Web content only: the extension keeps running
                // out of process (`extensions.webextensions.remote`), as it does for users.
                "fission.autostart": false,
                "dom.ipc.processCount": 1,
                "dom.ipc.processPrelaunch.enabled": false,
                "browser.startup.page": 0,
                "browser.startup.homepage": "about:blank",
                "startup.homepage_welcome_url": "about:blank",
                "browser.aboutwelcome.enabled": false,
                "browser.newtabpage.enabled": false,
                "browser.newtab.preload": false,
                "toolkit.telemetry.enabled": false,
                "browser.safebrowsing.malware.enabled": false,
                "browser.safebrowsing.phishing.enabled": false,
                "extensions.update.enabled": false,
                "app.update.enabled": false,
                "browser.search.update": false,
                "network.captive-portal-service.enabled": false,
                "network.connectivity-service.enabled": false,
            },
        },
    })
}

async fn spawn_geckodriver(tmp: TempDir) -> Result<DriverProcess> {
    let port = free_port();
    let marionette = free_port();
    DriverProcess::spawn(
        &geckodriver_path(),
        &[
            "--port".into(),
            port.to_string(),
            "--marionette-port".into(),
            marionette.to_string(),
            "--allow-system-access".into(),
        ],
        port,
        tmp,
    )
    .await
}

/// Copies a directory: a profile (without Firefox's lock files), or a build.
pub(crate) fn copy_dir(from: &Path, to: &Path) -> Result<()> {
    std::fs::create_dir_all(to).map_err(|e| format!("create {to:?}: {e}"))?;
    for entry in std::fs::read_dir(from).map_err(|e| format!("read {from:?}: {e}"))? {
        let entry = entry.map_err(|e| e.to_string())?;
        let name = entry.file_name();
        if name == "lock" || name == ".parentlock" {
            continue;
        }
        let file_type = entry.file_type().map_err(|e| e.to_string())?;
        let target = to.join(&name);
        if file_type.is_dir() {
            copy_dir(&entry.path(), &target)?;
        } else if file_type.is_file() {
            std::fs::copy(entry.path(), &target)
                .map_err(|e| format!("copy {:?}: {e}", entry.path()))?;
        }
    }
    Ok(())
}

/// A Firefox profile that has been started (and cleanly quit) once, made on first use by this
/// process and removed when it exits.
async fn firefox_template() -> Result<PathBuf> {
    static TEMPLATE: tokio::sync::OnceCell<PathBuf> = tokio::sync::OnceCell::const_new();
    TEMPLATE
        .get_or_try_init(|| async {
            let dir = std::env::temp_dir()
                .join(format!("wpp-e2e-firefox-template-{}", std::process::id()));
            let _ = std::fs::remove_dir_all(&dir);
            std::fs::create_dir_all(&dir).map_err(|e| format!("create {dir:?}: {e}"))?;
            TEMPLATE_DIR.lock().unwrap().replace(TempDir(dir.clone()));
            let driver = spawn_geckodriver(TempDir::new("firefox-template")?).await?;
            let client = connect(&driver, firefox_caps("{}", &dir)).await?;
            // A clean quit writes the startup cache and databases out.
            client
                .close()
                .await
                .map_err(wd("quit the template Firefox"))?;
            drop(driver);
            Ok(dir)
        })
        .await
        .cloned()
}

/// Owns the template profile; `remove_template` (end of the run) deletes it.
static TEMPLATE_DIR: std::sync::Mutex<Option<TempDir>> = std::sync::Mutex::new(None);

/// Removes this process's Firefox template profile.
pub fn remove_template() {
    TEMPLATE_DIR.lock().unwrap().take();
}

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

/// Polls `probe` until it yields `Ok(Ok(v))`, up to `timeout`; the error names `what` and the
/// last observation (`Ok(Err(seen))`) or probe error.
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
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

pub fn ensure(cond: bool, msg: impl Into<String>) -> Result<()> {
    if cond {
        Ok(())
    } else {
        Err(msg.into())
    }
}
