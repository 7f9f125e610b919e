//! The REAL wppconnect-server for the tests that run against it (`tests/real_server_contract.rs`,
//! the browser suite's `chromium_real_server_*`): the gate, and one server instance per test,
//! started and stopped through `scripts/real-server.sh` on a free loopback port.
//!
//! The tier runs only with `WPP_REAL_SERVER=1` (scripts/test.sh sets it in its "real
//! wppconnect-server tier" step) and a wppconnect-server source tree (`WPP_SERVER_SRC`, else
//! `../shared/wppconnect-server` next to the repo); otherwise its tests skip and pass.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;

/// The environment variable that turns the tier on.
pub const GATE: &str = "WPP_REAL_SERVER";

/// The `SECRET_KEY` the tier's servers run with.
pub const SECRET: &str = "WPPTABSREALSERVERSECRET";

pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Where the wppconnect-server source tree is expected.
pub fn source_tree() -> PathBuf {
    std::env::var_os("WPP_SERVER_SRC")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_root().join("../shared/wppconnect-server"))
}

/// `Ok(source tree)` when the tier should run; `Err(why it is skipped)` otherwise.
pub fn gate() -> Result<PathBuf, String> {
    if std::env::var(GATE).as_deref() != Ok("1") {
        return Err(format!(
            "skipped (set {GATE}=1, see scripts/real-server.sh): the real wppconnect-server tier"
        ));
    }
    let src = source_tree();
    if !src.join("package.json").is_file() || !src.join("src").is_dir() {
        return Err(format!(
            "SKIPPED: no wppconnect-server source tree at {} (set WPP_SERVER_SRC)",
            src.display()
        ));
    }
    Ok(src)
}

fn script() -> PathBuf {
    repo_root().join("scripts/real-server.sh")
}

/// A free TCP port on 127.0.0.1 (bound, then released).
fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind an ephemeral port");
    l.local_addr().expect("local addr").port()
}

/// One running real server (node + the Chromiums it launches), stopped on drop.
pub struct RealServer {
    /// `http://127.0.0.1:<port>`.
    pub url: String,
    pub port: u16,
    pub secret: String,
    src: PathBuf,
    /// How long `scripts/real-server.sh start` took (build check + boot to /healthz 200).
    pub start_took: std::time::Duration,
}

impl RealServer {
    /// Starts an instance (blocking: builds first if the build is missing or stale).
    pub fn start(src: &Path) -> Result<RealServer, String> {
        let port = free_port();
        let started = std::time::Instant::now();
        let out = Command::new(script())
            .args(["start", "--port", &port.to_string()])
            .env("WPP_SERVER_SRC", src)
            .env("WPP_SERVER_SECRET", SECRET)
            .output()
            .map_err(|e| format!("run {}: {e}", script().display()))?;
        let server = RealServer {
            url: format!("http://127.0.0.1:{port}"),
            port,
            secret: SECRET.into(),
            src: src.to_path_buf(),
            start_took: started.elapsed(),
        };
        if !out.status.success() {
            let err = String::from_utf8_lossy(&out.stderr);
            let tail: String = {
                let skip = err.chars().count().saturating_sub(3000);
                err.chars().skip(skip).collect()
            };
            return Err(format!(
                "scripts/real-server.sh start --port {port} failed ({}): {tail}",
                out.status
            ));
        }
        let printed = String::from_utf8_lossy(&out.stdout).trim().to_string();
        if printed != server.url {
            return Err(format!(
                "scripts/real-server.sh start printed {printed:?}, expected {}",
                server.url
            ));
        }
        Ok(server)
    }

    /// `start` on a blocking thread.
    pub async fn start_async(src: PathBuf) -> Result<RealServer, String> {
        tokio::task::spawn_blocking(move || RealServer::start(&src))
            .await
            .map_err(|e| format!("start task: {e}"))?
    }

    /// PIDs of the Chromium browsers (not their helpers) this instance runs, for one
    /// session's profile (`userDataDir/<session>`) or all of them.
    pub fn chromium_pids(&self, session: Option<&str>) -> Vec<u32> {
        let mut cmd = Command::new(script());
        cmd.args(["pids", "--port", &self.port.to_string()]);
        if let Some(s) = session {
            cmd.args(["--session", s]);
        }
        let Ok(out) = cmd.output() else {
            return Vec::new();
        };
        String::from_utf8_lossy(&out.stdout)
            .split_whitespace()
            .filter_map(|p| p.parse().ok())
            .collect()
    }

    /// The server's log so far (its last `max` characters).
    pub fn log_tail(&self, max: usize) -> String {
        let base = std::env::var_os("WPP_REAL_SERVER_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| repo_root().join("target/real-server"));
        let path = base.join(format!("run/{}/server.log", self.port));
        let text = std::fs::read_to_string(path).unwrap_or_default();
        let skip = text.chars().count().saturating_sub(max);
        text.chars().skip(skip).collect()
    }

    /// Stops node and every Chromium of this instance.
    pub fn stop(&self) {
        let _ = Command::new(script())
            .args(["stop", "--port", &self.port.to_string()])
            .env("WPP_SERVER_SRC", &self.src)
            .output();
    }
}

impl Drop for RealServer {
    fn drop(&mut self) {
        self.stop();
    }
}
