//! A minimal Chrome DevTools Protocol client: one websocket to the browser target, flattened
//! sessions for the targets it attaches to (the extension's service worker, pages).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio::sync::{mpsc, oneshot};
use tokio_tungstenite::tungstenite::Message;

use super::webdriver::Result;

type Pending = Arc<Mutex<HashMap<u64, oneshot::Sender<Value>>>>;

pub struct Cdp {
    tx: mpsc::UnboundedSender<Message>,
    pending: Pending,
    next_id: AtomicU64,
    reader: tokio::task::JoinHandle<()>,
    writer: tokio::task::JoinHandle<()>,
}

impl Drop for Cdp {
    fn drop(&mut self) {
        self.reader.abort();
        self.writer.abort();
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
        let pending2 = pending.clone();
        let reader = tokio::spawn(async move {
            while let Some(Ok(msg)) = stream.next().await {
                let Message::Text(text) = msg else { continue };
                let Ok(v) = serde_json::from_str::<Value>(&text) else {
                    continue;
                };
                if let Some(id) = v.get("id").and_then(Value::as_u64) {
                    if let Some(waiter) = pending2.lock().unwrap().remove(&id) {
                        let _ = waiter.send(v);
                    }
                }
            }
            // Connection gone: fail every waiter.
            pending2.lock().unwrap().clear();
        });
        Ok(Cdp {
            tx,
            pending,
            next_id: AtomicU64::new(1),
            reader,
            writer,
        })
    }

    /// Sends one command (to the browser, or to an attached `session`) and awaits its result.
    pub async fn call(&self, method: &str, params: Value, session: Option<&str>) -> Result<Value> {
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

    pub async fn targets(&self) -> Result<Vec<Value>> {
        let r = self.call("Target.getTargets", json!({}), None).await?;
        Ok(r["targetInfos"].as_array().cloned().unwrap_or_default())
    }

    /// The extension's service worker target, if one is running now.
    pub async fn extension_worker(&self, ext_id: &str) -> Result<Option<Value>> {
        let prefix = format!("chrome-extension://{ext_id}/");
        Ok(self.targets().await?.into_iter().find(|t| {
            t["type"] == "service_worker"
                && t["url"].as_str().is_some_and(|u| u.starts_with(&prefix))
        }))
    }

    /// Waits (bounded) for the extension's service worker to be running; returns its target id.
    pub async fn wait_extension_worker(&self, ext_id: &str, timeout: Duration) -> Result<String> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(t) = self.extension_worker(ext_id).await? {
                return Ok(t["targetId"].as_str().unwrap_or_default().to_string());
            }
            if Instant::now() > deadline {
                return Err(format!(
                    "no service worker target for extension {ext_id} within {timeout:?}"
                ));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    pub async fn attach(&self, target_id: &str) -> Result<String> {
        let r = self
            .call(
                "Target.attachToTarget",
                json!({"targetId": target_id, "flatten": true}),
                None,
            )
            .await?;
        r["sessionId"]
            .as_str()
            .map(str::to_string)
            .ok_or_else(|| format!("attach: {r}"))
    }

    pub async fn detach(&self, session: &str) -> Result<()> {
        self.call(
            "Target.detachFromTarget",
            json!({ "sessionId": session }),
            None,
        )
        .await
        .map(drop)
    }

    /// `Runtime.evaluate` (awaiting promises, returning by value) in an attached session.
    pub async fn evaluate_in(&self, session: &str, expression: &str) -> Result<Value> {
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

    /// Evaluates `expression` in the extension's running service worker (waiting up to `timeout`
    /// for one to run), then detaches.
    pub async fn eval_in_worker(
        &self,
        ext_id: &str,
        expression: &str,
        timeout: Duration,
    ) -> Result<Value> {
        let target = self.wait_extension_worker(ext_id, timeout).await?;
        let session = self.attach(&target).await?;
        let r = self.evaluate_in(&session, expression).await;
        let _ = self.detach(&session).await;
        r
    }

    /// Stops the extension's service worker and waits until its target is gone.
    /// First `ServiceWorker.stopAllWorkers` from a page session; if the worker survives,
    /// `Target.closeTarget` on the worker itself. Returns which method worked.
    pub async fn stop_extension_worker(&self, ext_id: &str) -> Result<&'static str> {
        if self.extension_worker(ext_id).await?.is_none() {
            return Err("stop_extension_worker: the worker is not running".into());
        }
        if let Some(page) = self
            .targets()
            .await?
            .into_iter()
            .find(|t| t["type"] == "page")
        {
            let session = self
                .attach(page["targetId"].as_str().unwrap_or_default())
                .await?;
            let r = async {
                self.call("ServiceWorker.enable", json!({}), Some(&session))
                    .await?;
                self.call("ServiceWorker.stopAllWorkers", json!({}), Some(&session))
                    .await
            }
            .await;
            let _ = self.detach(&session).await;
            if r.is_ok() && self.wait_worker_gone(ext_id, Duration::from_secs(5)).await {
                return Ok("ServiceWorker.stopAllWorkers");
            }
        }
        if let Some(t) = self.extension_worker(ext_id).await? {
            self.call(
                "Target.closeTarget",
                json!({"targetId": t["targetId"]}),
                None,
            )
            .await?;
            if self.wait_worker_gone(ext_id, Duration::from_secs(5)).await {
                return Ok("Target.closeTarget");
            }
        } else {
            return Ok("ServiceWorker.stopAllWorkers (late)");
        }
        Err(format!(
            "the service worker of {ext_id} is still running after both stop methods"
        ))
    }

    async fn wait_worker_gone(&self, ext_id: &str, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if matches!(self.extension_worker(ext_id).await, Ok(None)) {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        false
    }
}
