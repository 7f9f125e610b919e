//! Performs an [`ApiRequest`] with `fetch` and hands the raw reply back to the core.

use super::browser::{global_fetch, js_error_text};
use crate::core::api::{ApiError, ApiRequest, HttpReply, MAX_REPLY_BYTES};
use crate::core::server::Transport;
use gloo_timers::callback::Timeout;
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::JsFuture;
use web_sys::{
    AbortController, Headers, ReadableStreamDefaultReader, ReadableStreamReadResult, Request,
    RequestCache, RequestCredentials, RequestInit, RequestRedirect, Response,
};

/// `fetch`, as the core's [`Transport`].
pub struct Fetch;

impl Transport for Fetch {
    async fn send(&self, request: &ApiRequest) -> Result<HttpReply, ApiError> {
        send(request).await
    }
}

async fn send(request: &ApiRequest) -> Result<HttpReply, ApiError> {
    let controller = AbortController::new().map_err(|_| ApiError::Unreachable)?;
    let headers = Headers::new().map_err(|_| ApiError::Unreachable)?;
    if let Some(auth) = request.authorization() {
        headers
            .set("Authorization", &auth)
            .map_err(|_| ApiError::Malformed("the token cannot be sent as a header".into()))?;
    }
    let init = RequestInit::new();
    init.set_method(request.method.as_str());
    // Cookies and redirects have no place in this API; a redirect could carry the token away.
    init.set_credentials(RequestCredentials::Omit);
    init.set_redirect(RequestRedirect::Error);
    // Replies carry QR codes and session state: none of it belongs in the disk cache.
    init.set_cache(RequestCache::NoStore);
    init.set_signal(Some(&controller.signal()));
    if let Some(body) = &request.json_body {
        headers
            .set("Content-Type", "application/json")
            .expect("a constant header is valid");
        init.set_body(&body.into());
    }
    init.set_headers(&headers);
    let fetch_request =
        Request::new_with_str_and_init(&request.url, &init).map_err(|_| ApiError::Unreachable)?;

    let abort = controller.clone();
    let timer = Timeout::new(request.timeout_ms, move || abort.abort());
    let result = read(&fetch_request).await;
    drop(timer);
    result.map_err(|err| {
        if controller.signal().aborted() {
            ApiError::Timeout
        } else {
            err
        }
    })
}

async fn read(request: &Request) -> Result<HttpReply, ApiError> {
    let response: Response = JsFuture::from(global_fetch(request))
        .await
        .map_err(|err| {
            super::browser::console_warn(&format!(
                "wpp-tabs: request failed: {}",
                js_error_text(&err)
            ));
            ApiError::Unreachable
        })?
        .dyn_into()
        .map_err(|_| ApiError::Unreachable)?;
    let header = |name: &str| response.headers().get(name).ok().flatten();
    let declared_len = header("content-length").and_then(|l| l.parse::<usize>().ok());
    if declared_len.is_some_and(|len| len > MAX_REPLY_BYTES) {
        return Err(too_large());
    }
    let body = match response.body() {
        Some(stream) => read_capped(stream.get_reader().unchecked_into()).await?,
        None => Vec::new(),
    };
    Ok(HttpReply {
        status: response.status(),
        content_type: header("content-type"),
        body: String::from_utf8_lossy(&body).into_owned(),
    })
}

/// Reads the body chunk by chunk and gives up as soon as it passes the cap: a reply that
/// declares no length (or lies about it) is never read whole.
async fn read_capped(reader: ReadableStreamDefaultReader) -> Result<Vec<u8>, ApiError> {
    let mut body = Vec::new();
    loop {
        let chunk: ReadableStreamReadResult = JsFuture::from(reader.read())
            .await
            .map_err(|_| ApiError::Unreachable)?
            .unchecked_into();
        if chunk.get_done().unwrap_or(true) {
            return Ok(body);
        }
        let bytes = js_sys::Uint8Array::new(&chunk.get_value());
        if body.len() + bytes.length() as usize > MAX_REPLY_BYTES {
            let _ = reader.cancel();
            return Err(too_large());
        }
        body.extend(bytes.to_vec());
    }
}

fn too_large() -> ApiError {
    ApiError::Malformed("the reply is too large".into())
}
