//! The little of the Chrome DevTools Protocol the suite needs, over one websocket to the
//! browser target: find, stop and await the extension's service worker, and evaluate in it.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio::sync::{mpsc, oneshot};
use tokio_tungstenite::tungstenite::Message;

use crate::harness::Result;

type Pending = Arc<Mutex<HashMap<u64, oneshot::Sender<Value>>>>;

pub struct Cdp {
    tx: mpsc::UnboundedSender<Message>,
    pending: Pending,
    next_id: AtomicU64,
    tasks: [tokio::task::JoinHandle<()>; 2],
}

impl Drop for Cdp {
    fn drop(&mut self) {
        self.tasks.iter().for_each(|t| t.abort());
    }
}

impl Cdp {
    /// Connects to the browser target behind `debugger_address` (`host:port`, as chromedriver
    /// reports it in `goog:chromeOptions.debuggerAddress`).
    pub async fn connect(debugger_address: &str) -> Result<Cdp> {
        let version: Value = reqwest::get(format!("http://{debugger_address}/json/version"))
            .await
            .map_err(|e| format!("CDP /json/version: {e}"))?
            .json()
            .await
            .map_err(|e| format!("CDP /json/version body: {e}"))?;
        let ws_url = version["webSocketDebuggerUrl"]
            .as_str()
            .ok_or_else(|| format!("no webSocketDebuggerUrl in {version}"))?;
        let (ws, _) = tokio_tungstenite::connect_async(ws_url)
            .await
            .map_err(|e| format!("CDP websocket {ws_url}: {e}"))?;
        let (mut sink, mut stream) = ws.split();
        let (tx, mut rx) = mpsc::unbounded_channel::<Message>();
        let pending: Pending = Arc::default();
        let writer = tokio::spawn(async move {
            while let Some(m) = rx.recv().await {
                if sink.send(m).await.is_err() {
                    break;
                }
            }
        });
        let waiters = pending.clone();
        let reader = tokio::spawn(async move {
            while let Some(Ok(msg)) = stream.next().await {
                let Message::Text(text) = msg else { continue };
                let Ok(v) = serde_json::from_str::<Value>(&text) else {
                    continue;
                };
                if let Some(id) = v.get("id").and_then(Value::as_u64) {
                    if let Some(waiter) = waiters.lock().unwrap().remove(&id) {
                        let _ = waiter.send(v);
                    }
                }
            }
            // Connection gone: fail every waiter.
            waiters.lock().unwrap().clear();
        });
        Ok(Cdp {
            tx,
            pending,
            next_id: AtomicU64::new(1),
            tasks: [reader, writer],
        })
    }

    /// Sends one command (to the browser, or to an attached `session`) and awaits its result.
    async fn call(&self, method: &str, params: Value, session: Option<&str>) -> Result<Value> {
        let id = self.next_id.fetch_add(1, Ordering::SeqCst);
        let mut msg = json!({"id": id, "method": method, "params": params});
        if let Some(s) = session {
            msg["sessionId"] = json!(s);
        }
        let (otx, orx) = oneshot::channel();
        self.pending.lock().unwrap().insert(id, otx);
        self.tx
            .send(Message::Text(msg.to_string()))
            .map_err(|_| format!("CDP {method}: connection closed"))?;
        let reply = tokio::time::timeout(Duration::from_secs(30), orx)
            .await
            .map_err(|_| format!("CDP {method}: no reply in 30 s"))?
            .map_err(|_| format!("CDP {method}: connection closed"))?;
        if let Some(err) = reply.get("error") {
            return Err(format!("CDP {method}: {err}"));
        }
        Ok(reply["result"].clone())
    }

    async fn targets(&self) -> Result<Vec<Value>> {
        let r = self.call("Target.getTargets", json!({}), None).await?;
        Ok(r["targetInfos"].as_array().cloned().unwrap_or_default())
    }

    /// The target ID of the extension's service worker, if one is running now.
    pub async fn extension_worker(&self, ext_id: &str) -> Result<Option<String>> {
        let prefix = format!("chrome-extension://{ext_id}/");
        Ok(self
            .targets()
            .await?
            .into_iter()
            .find(|t| {
                t["type"] == "service_worker"
                    && t["url"].as_str().is_some_and(|u| u.starts_with(&prefix))
            })
            .and_then(|t| t["targetId"].as_str().map(str::to_string)))
    }

    /// Waits (bounded) for the extension's service worker to run; returns its target ID.
    pub async fn wait_extension_worker(&self, ext_id: &str, timeout: Duration) -> Result<String> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(t) = self.extension_worker(ext_id).await? {
                return Ok(t);
            }
            if Instant::now() > deadline {
                return Err(format!(
                    "no service worker target for extension {ext_id} within {timeout:?}"
                ));
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    /// Runs `f` with a flattened session attached to `target`, then detaches.
    async fn attached<T>(&self, target: &str, f: impl AsyncFnOnce(&str) -> Result<T>) -> Result<T> {
        let r = self
            .call(
                "Target.attachToTarget",
                json!({"targetId": target, "flatten": true}),
                None,
            )
            .await?;
        let session = r["sessionId"]
            .as_str()
            .ok_or_else(|| format!("attach: {r}"))?
            .to_string();
        let out = f(&session).await;
        let _ = self
            .call(
                "Target.detachFromTarget",
                json!({ "sessionId": session }),
                None,
            )
            .await;
        out
    }

    /// Evaluates `expression` (awaiting a promise, returning by value) in the extension's
    /// running service worker, waiting up to `timeout` for one to run.
    pub async fn eval_in_worker(
        &self,
        ext_id: &str,
        expression: &str,
        timeout: Duration,
    ) -> Result<Value> {
        let target = self.wait_extension_worker(ext_id, timeout).await?;
        self.attached(&target, async |session| {
            self.evaluate(session, expression).await
        })
        .await
    }

    /// `Runtime.evaluate` in an attached session, awaiting a promise, returning by value.
    async fn evaluate(&self, session: &str, expression: &str) -> Result<Value> {
        let r = self
            .call(
                "Runtime.evaluate",
                json!({"expression": expression, "awaitPromise": true, "returnByValue": true}),
                Some(session),
            )
            .await?;
        if let Some(ex) = r.get("exceptionDetails") {
            let desc = ex["exception"]["description"].as_str().unwrap_or_default();
            return Err(format!(
                "evaluate threw: {} {desc}",
                ex["text"].as_str().unwrap_or_default()
            ));
        }
        Ok(r["result"]["value"].clone())
    }

    /// Evaluates `expression` (as in [`Cdp::eval_in_worker`]) in the page whose URL contains
    /// `url_part`: a window WebDriver does not list, such as an extension's popup-type window.
    pub async fn eval_in_page(&self, url_part: &str, expression: &str) -> Result<Value> {
        let target = self.page_target(url_part).await?;
        self.attached(&target, async |session| {
            self.evaluate(session, expression).await
        })
        .await
    }

    async fn page_target(&self, url_part: &str) -> Result<String> {
        self.targets()
            .await?
            .into_iter()
            .find(|t| {
                t["type"] == "page" && t["url"].as_str().is_some_and(|u| u.contains(url_part))
            })
            .and_then(|t| t["targetId"].as_str().map(str::to_string))
            .ok_or_else(|| format!("no page target whose URL contains {url_part}"))
    }

    /// The accessibility node Chromium gives assistive technology for the first element
    /// matching `selector` in the page whose URL contains `url_part`: its `role`, `name` and
    /// `properties` (`live`, …).
    pub async fn ax_node(&self, url_part: &str, selector: &str) -> Result<Value> {
        let target = self.page_target(url_part).await?;
        self.attached(&target, async |session| {
            let s = Some(session);
            let root = self.call("DOM.getDocument", json!({}), s).await?;
            let found = self
                .call(
                    "DOM.querySelector",
                    json!({"nodeId": root["root"]["nodeId"], "selector": selector}),
                    s,
                )
                .await?;
            let tree = self
                .call(
                    "Accessibility.getPartialAXTree",
                    json!({"nodeId": found["nodeId"], "fetchRelatives": false}),
                    s,
                )
                .await?;
            tree["nodes"]
                .get(0)
                .cloned()
                .ok_or_else(|| format!("no accessibility node for {selector}: {tree}"))
        })
        .await
    }

    /// Whether a page whose URL contains `url_part` is open.
    pub async fn has_page(&self, url_part: &str) -> Result<bool> {
        Ok(self.targets().await?.iter().any(|t| {
            t["type"] == "page" && t["url"].as_str().is_some_and(|u| u.contains(url_part))
        }))
    }

    /// `Runtime.getHeapUsage` in the extension's running service worker (waiting up to
    /// `timeout` for one): `usedSize` and `totalSize` of its JS heap in bytes, plus what the
    /// browser adds (`embedderHeapUsedSize`, `backingStorageSize`).
    pub async fn worker_heap_usage(&self, ext_id: &str, timeout: Duration) -> Result<Value> {
        let target = self.wait_extension_worker(ext_id, timeout).await?;
        self.attached(&target, async |session| {
            self.call("Runtime.getHeapUsage", json!({}), Some(session))
                .await
        })
        .await
    }

    /// Benchmark: `source` runs before any other script in every new document of the page
    /// target now showing `url` (the session stays attached for that).
    pub async fn add_init_script(&self, url: &str, source: &str) -> Result<()> {
        let page = self
            .targets()
            .await?
            .into_iter()
            .find(|t| t["type"] == "page" && t["url"] == url)
            .and_then(|t| t["targetId"].as_str().map(str::to_string))
            .ok_or_else(|| format!("no page target at {url}"))?;
        let r = self
            .call(
                "Target.attachToTarget",
                json!({"targetId": page, "flatten": true}),
                None,
            )
            .await?;
        let session = r["sessionId"].as_str().ok_or("attach gave no sessionId")?;
        self.call("Page.enable", json!({}), Some(session)).await?;
        self.call(
            "Page.addScriptToEvaluateOnNewDocument",
            json!({ "source": source }),
            Some(session),
        )
        .await
        .map(drop)
    }

    /// Stops the extension's service worker and waits until its target is gone:
    /// `ServiceWorker.stopAllWorkers` from a page session, else `Target.closeTarget` on the
    /// worker. Returns which method worked.
    pub async fn stop_extension_worker(&self, ext_id: &str) -> Result<&'static str> {
        if self.extension_worker(ext_id).await?.is_none() {
            return Err("stop_extension_worker: the worker is not running".into());
        }
        let page = self
            .targets()
            .await?
            .into_iter()
            .find(|t| t["type"] == "page")
            .and_then(|t| t["targetId"].as_str().map(str::to_string));
        if let Some(page) = page {
            let stopped = self
                .attached(&page, async |session| {
                    self.call("ServiceWorker.enable", json!({}), Some(session))
                        .await?;
                    self.call("ServiceWorker.stopAllWorkers", json!({}), Some(session))
                        .await
                })
                .await;
            if stopped.is_ok() && self.wait_worker_gone(ext_id).await {
                return Ok("ServiceWorker.stopAllWorkers");
            }
        }
        if let Some(t) = self.extension_worker(ext_id).await? {
            self.call("Target.closeTarget", json!({"targetId": t}), None)
                .await?;
            if self.wait_worker_gone(ext_id).await {
                return Ok("Target.closeTarget");
            }
            return Err(format!(
                "the service worker of {ext_id} is still running after both stop methods"
            ));
        }
        Ok("ServiceWorker.stopAllWorkers (late)")
    }

    async fn wait_worker_gone(&self, ext_id: &str) -> bool {
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if matches!(self.extension_worker(ext_id).await, Ok(None)) {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        false
    }
}
