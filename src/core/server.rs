//! The wppconnect-server as the flows see it: one typed call per route. [`HttpServer`] builds
//! each request and judges each reply with `core::api`; only the byte exchange, a
//! [`Transport`], differs between the browser (`fetch`), native tests (an HTTP client) and
//! in-memory fakes (which implement [`Server`] directly).

// Single-threaded everywhere this runs (Wasm, and tests on a local executor): the futures
// need no `Send` bound, so plain `async fn` in traits is what we want.
#![allow(async_fn_in_trait)]

use crate::core::api::{
    self, Account, ApiError, ApiRequest, CloseOutcome, HttpReply, LogoutOutcome, PairingPhone,
    PhoneStartReply, StatusReply,
};
use crate::core::session_id::SessionId;
use crate::core::settings::{SecretKey, ServerUrl};
use crate::core::storage::Token;

/// Sends one request and hands back the raw reply; the caller judges it.
pub trait Transport {
    async fn send(&self, request: &ApiRequest) -> Result<HttpReply, ApiError>;
}

/// One wppconnect-server, with its URL bound.
pub trait Server {
    /// `generate-token`: bcrypt(session + secret); no side effect on the server.
    async fn generate_token(&self, id: &SessionId, secret: &SecretKey) -> Result<Token, ApiError>;
    async fn start_session(&self, id: &SessionId, token: &Token) -> Result<StatusReply, ApiError>;
    /// `start-session` with `{phone, waitQrCode: true}`: held by the server until the pairing
    /// code exists; given up after `wait_ms`.
    async fn start_session_by_phone(
        &self,
        id: &SessionId,
        token: &Token,
        phone: &PairingPhone,
        wait_ms: u32,
    ) -> Result<PhoneStartReply, ApiError>;
    async fn status_session(&self, id: &SessionId, token: &Token) -> Result<StatusReply, ApiError>;
    async fn close_session(&self, id: &SessionId, token: &Token) -> Result<CloseOutcome, ApiError>;
    async fn logout_session(
        &self,
        id: &SessionId,
        token: &Token,
    ) -> Result<LogoutOutcome, ApiError>;
    /// `host-device`: the linked account, with its pushname; [`ApiError::NotConnected`]
    /// unless the session is CONNECTED.
    async fn host_device(&self, id: &SessionId, token: &Token) -> Result<Account, ApiError>;
    /// `get-phone-number`: the linked account's number (no name); [`ApiError::NotConnected`]
    /// unless the session is CONNECTED.
    async fn phone_number(&self, id: &SessionId, token: &Token) -> Result<Account, ApiError>;
    /// `show-all-sessions`: this extension's sessions in the server's token store (running
    /// or not).
    async fn show_all_sessions(&self, secret: &SecretKey) -> Result<Vec<SessionId>, ApiError>;
    /// Unauthenticated liveness check.
    async fn healthz(&self) -> Result<(), ApiError>;
    /// Whether the server accepts `secret`, without touching any session.
    async fn probe_secret(&self, secret: &SecretKey) -> Result<(), ApiError>;
}

/// A [`Server`] over HTTP: the contract's requests and reply rules, over any transport.
pub struct HttpServer<'t, T> {
    pub url: ServerUrl,
    pub transport: &'t T,
}

impl<T: Transport> HttpServer<'_, T> {
    async fn exchange(&self, request: ApiRequest) -> Result<HttpReply, ApiError> {
        self.transport.send(&request).await
    }
}

impl<T: Transport> Server for HttpServer<'_, T> {
    async fn generate_token(&self, id: &SessionId, secret: &SecretKey) -> Result<Token, ApiError> {
        let reply = self
            .exchange(ApiRequest::generate_token(&self.url, id, secret))
            .await?;
        api::parse_token_reply(&reply, id)
    }

    async fn start_session(&self, id: &SessionId, token: &Token) -> Result<StatusReply, ApiError> {
        let reply = self
            .exchange(ApiRequest::start_session(&self.url, id, token))
            .await?;
        api::parse_status_reply(&reply)
    }

    async fn start_session_by_phone(
        &self,
        id: &SessionId,
        token: &Token,
        phone: &PairingPhone,
        wait_ms: u32,
    ) -> Result<PhoneStartReply, ApiError> {
        let request = ApiRequest::start_session_by_phone(&self.url, id, token, phone, wait_ms);
        let reply = self.exchange(request).await?;
        api::parse_phone_start_reply(&reply, id, phone)
    }

    async fn status_session(&self, id: &SessionId, token: &Token) -> Result<StatusReply, ApiError> {
        let reply = self
            .exchange(ApiRequest::status_session(&self.url, id, token))
            .await?;
        api::parse_status_reply(&reply)
    }

    async fn close_session(&self, id: &SessionId, token: &Token) -> Result<CloseOutcome, ApiError> {
        let reply = self
            .exchange(ApiRequest::close_session(&self.url, id, token))
            .await?;
        api::parse_close_reply(&reply)
    }

    async fn logout_session(
        &self,
        id: &SessionId,
        token: &Token,
    ) -> Result<LogoutOutcome, ApiError> {
        let reply = self
            .exchange(ApiRequest::logout_session(&self.url, id, token))
            .await?;
        api::parse_logout_reply(&reply)
    }

    async fn host_device(&self, id: &SessionId, token: &Token) -> Result<Account, ApiError> {
        let reply = self
            .exchange(ApiRequest::host_device(&self.url, id, token))
            .await?;
        api::parse_host_device_reply(&reply)
    }

    async fn phone_number(&self, id: &SessionId, token: &Token) -> Result<Account, ApiError> {
        let reply = self
            .exchange(ApiRequest::phone_number(&self.url, id, token))
            .await?;
        api::parse_phone_number_reply(&reply)
    }

    async fn show_all_sessions(&self, secret: &SecretKey) -> Result<Vec<SessionId>, ApiError> {
        let reply = self
            .exchange(ApiRequest::show_all_sessions(&self.url, secret))
            .await?;
        api::parse_show_all_reply(&reply)
    }

    async fn healthz(&self) -> Result<(), ApiError> {
        let reply = self.exchange(ApiRequest::healthz(&self.url)).await?;
        api::parse_healthz_reply(&reply)
    }

    async fn probe_secret(&self, secret: &SecretKey) -> Result<(), ApiError> {
        let reply = self
            .exchange(ApiRequest::probe_secret(&self.url, secret))
            .await?;
        api::parse_probe_reply(&reply)
    }
}
