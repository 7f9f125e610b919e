//! What the worker does for each event: pairing, refresh, restart, logout, the connection
//! test and what a popup's subscription leads to. Plain Rust over the [`Server`] and
//! storage traits, so every branch is tested natively (see `core::flows_tests`).

use crate::core::api::{ApiError, CloseOutcome, LogoutOutcome};
use crate::core::messages::{decode_text, encode, OptionsReply, OptionsRequest, PopupRequest};
use crate::core::server::Server;
use crate::core::session::{OnSubscribe, Phase, SessionState};
use crate::core::session_id::SessionId;
use crate::core::settings::{check_transport, SecretKey, ServerUrl, Settings};
use crate::core::storage::{TabId, Token};
use crate::core::worker::{PortKey, SettingsVerdict, Shell, Worker, LOGOUT_MENU_ID, REFRESH_ALARM};
use serde_json::Value;
use std::rc::Rc;

impl<S: Shell + 'static> Worker<S> {
    // ---- events from the shell ----

    /// A message on a popup's port, as JSON text: decoded and validated here, acted on if
    /// well-formed.
    pub async fn popup_message(self: &Rc<Self>, port: PortKey, message: &str) {
        let request = match decode_text::<PopupRequest>(message) {
            Ok(request) => request,
            Err(err) => return self.warn(&format!("popup message refused: {err}")),
        };
        if let PopupRequest::Subscribe { tab_id } = request {
            if !self.bind_port(port, tab_id) {
                return self.warn("a popup asked to watch a second tab");
            }
            return self.subscribe(tab_id).await;
        }
        let Some(tab) = self.port_tab(port) else {
            return self.warn("popup message refused: the popup has not subscribed to a tab");
        };
        match request {
            PopupRequest::Pair => self.pair(tab).await,
            PopupRequest::Logout => self.logout(tab).await,
            PopupRequest::Subscribe { .. } => {}
        }
    }

    /// A one-off request from the options page, as JSON text; the reply is an encoded
    /// [`OptionsReply`].
    pub async fn options_message(self: &Rc<Self>, message: &str) -> Value {
        let reply = match decode_text::<OptionsRequest>(message) {
            Ok(request) => self.options(request).await,
            Err(err) => OptionsReply::Error {
                message: err.to_string(),
            },
        };
        encode(&reply)
    }

    /// "Log out this tab's session": at once, unless the account is connected, when the user
    /// confirms first.
    pub async fn menu_clicked(self: &Rc<Self>, item: Option<&str>, tab: Option<TabId>) {
        let (Some(LOGOUT_MENU_ID), Some(tab)) = (item, tab) else {
            return self.warn("ignored a menu click without a known item and tab");
        };
        if self.load_tab(tab).await.is_none() {
            return;
        }
        let now = self.shell.now_ms();
        let connected = self.read(tab, |t| t.state.phase(now) == Phase::Connected);
        match connected {
            Some(true) => self.shell.confirm_logout(tab),
            _ => self.logout(tab).await,
        }
    }

    /// The slow refresh: keeps every bound session's badge current without a popup open.
    pub async fn alarm(self: &Rc<Self>, name: &str) {
        if name != REFRESH_ALARM {
            return;
        }
        let bound = match self.store().bound_tabs().await {
            Ok(bound) => bound,
            Err(err) => return self.warn(&err.to_string()),
        };
        for (tab, _) in bound {
            if self.load_tab(tab).await.is_some() && !self.read(tab, |t| t.polling).unwrap_or(true)
            {
                self.refresh(tab).await;
            }
        }
    }

    /// The tab closed. The server session and its token outlive it; only the binding goes.
    pub async fn tab_removed(self: &Rc<Self>, tab: TabId) {
        self.mark_gone(tab);
        let store = self.store();
        let record = match self.remove_tab(tab) {
            Some(cached) => Some(cached.record),
            None => match store.tab_session(tab).await {
                Ok(Some(id)) => store.record(&id).await.ok().flatten(),
                _ => None,
            },
        };
        if let Err(err) = store.unbind_tab(tab).await {
            self.warn(&err.to_string());
        }
        if let Some(mut record) = record.filter(|r| !self.is_forgotten(&r.id)) {
            record.tab_id = None;
            if let Err(err) = store.save_record(&record).await {
                self.warn(&err.to_string());
            }
        }
    }

    /// A tab changed. Once it has loaded, its badge is set again: Firefox resets a tab's
    /// badge when it navigates.
    pub async fn tab_updated(self: &Rc<Self>, tab: TabId, status: Option<&str>) {
        if status != Some("complete") {
            return;
        }
        self.forget_badge(tab);
        if self.load_tab(tab).await.is_some() {
            self.render(tab);
        }
    }

    // ---- flows ----

    /// A popup opened on `tab`: give the tab its session ID, show its state, then follow up.
    async fn subscribe(self: &Rc<Self>, tab: TabId) {
        if !self.shell.tab_exists(tab).await {
            self.mark_gone(tab);
            return self.render(tab);
        }
        let settings = self.load_settings().await;
        let server = settings
            .as_ref()
            .map_or_else(|| Settings::default().server_url, |s| s.server_url.clone());
        if let Err(err) = self.ensure_tab(tab, &server).await {
            self.warn(&err.to_string());
        }
        let now = self.shell.now_ms();
        let next = self.read(tab, |t| t.state.on_subscribe(now, settings.is_some()));
        // Pairing that starts at once renders its own busy view: showing "Pair" for the
        // moment before would offer a button that is gone before it can be pressed.
        if next != Some(OnSubscribe::StartPairing) {
            self.render(tab);
        }
        self.follow_up(tab, settings.is_some()).await;
    }

    /// Starts pairing, refreshes, or waits for the user, as the tab's state says.
    async fn follow_up(self: &Rc<Self>, tab: TabId, settings_ready: bool) {
        let now = self.shell.now_ms();
        let next = self.read(tab, |t| t.state.on_subscribe(now, settings_ready));
        match next.unwrap_or(OnSubscribe::Wait) {
            OnSubscribe::StartPairing => self.pair(tab).await,
            OnSubscribe::Refresh => {
                self.refresh(tab).await;
                self.ensure_polling(tab);
            }
            OnSubscribe::Wait => {}
        }
    }

    /// Starts pairing, refreshes an expired QR, or restarts a stuck session.
    pub(crate) async fn pair(self: &Rc<Self>, tab: TabId) {
        let Some(settings) = self.load_settings().await else {
            return self.render(tab);
        };
        if let Err(err) = self.ensure_tab(tab, &settings.server_url).await {
            self.warn(&err.to_string());
            return self.render(tab);
        }
        if !self.update(tab, |t| t.state.claim()).unwrap_or(false) {
            return;
        }
        let result = self.pair_steps(tab, &settings).await;
        self.update(tab, |t| t.state.release(result));
        self.save_status(tab).await;
        self.ensure_polling(tab);
    }

    async fn pair_steps(&self, tab: TabId, settings: &Settings) -> Result<(), ApiError> {
        let now = self.shell.now_ms();
        let (id, url, fresh_token, stuck) = self
            .update(tab, |t| {
                let phase = t.state.phase(now);
                // A session that never started follows the server URL now in the settings.
                if phase == Phase::NotStarted {
                    t.record.server_url = settings.server_url.clone();
                }
                let (id, url) = (t.record.id.clone(), t.record.server_url.clone());
                (id, url, t.state.needs_new_token(), phase == Phase::Stuck)
            })
            .ok_or_else(|| ApiError::Storage("the tab's session vanished".into()))?;
        let server = self.server(&url);
        let secret = settings.secret_key.as_ref().ok_or(ApiError::WrongSecret)?;
        let mut token = match self.store().token(&id).await? {
            Some(token) if !fresh_token => token,
            _ => self.mint(&server, &id, secret).await?,
        };
        let mut id = id;
        if stuck && server.close_session(&id, &token).await? == CloseOutcome::Placeholder {
            // The hung session's browser outlives the close and keeps its profile locked, so
            // a start under the same name would never launch: a second close is best effort,
            // and the tab goes on under a fresh session name.
            let _ = server.close_session(&id, &token).await;
            (id, token) = self.rename_session(tab, &server, &id, secret).await?;
        }
        self.update(tab, |t| t.state.starting(now));
        let status = server.start_session(&id, &token).await?;
        let now = self.shell.now_ms();
        self.update(tab, |t| t.state.observe(status, now));
        Ok(())
    }

    /// Moves the tab to a fresh session ID on the same server, and forgets the old one, which
    /// was closed: its token and record go, the tab is bound to the new one.
    async fn rename_session(
        &self,
        tab: TabId,
        server: &impl Server,
        old: &SessionId,
        secret: &SecretKey,
    ) -> Result<(SessionId, Token), ApiError> {
        let fresh = SessionId::generate(self.shell.now_ms() as u64, self.shell.random_u64());
        let token = self.mint(server, &fresh, secret).await?;
        let timings = self.timings;
        let record = self
            .update(tab, |t| {
                t.record.id = fresh.clone();
                t.record.created_at = self.shell.now_ms();
                t.record.last_status = None;
                t.state = SessionState::new(timings);
                t.state.claim();
                t.record.clone()
            })
            .ok_or_else(|| ApiError::Storage("the tab's session vanished".into()))?;
        let store = self.store();
        store.save_record(&record).await?;
        store.bind_tab(tab, &fresh).await?;
        self.mark_forgotten(old, true);
        store.forget_session_keys(old).await?;
        Ok((fresh, token))
    }

    /// Logs the tab's session out on the server, then forgets its three keys. If the server
    /// cannot be told, nothing is forgotten: the user can try again.
    pub(crate) async fn logout(self: &Rc<Self>, tab: TabId) {
        let Some(id) = self.load_tab(tab).await else {
            return self.render(tab);
        };
        // The server is known from the claim on: a tab closing meanwhile changes nothing.
        let claim = self.update(tab, |t| {
            t.state.claim().then(|| t.record.server_url.clone())
        });
        let Some(Some(url)) = claim else {
            return;
        };
        let result = match self.logout_steps(&id, &url).await {
            // From here on no write may bring a key of this session back (a refresh that
            // renews its token, a tab that closes): they check the mark right before writing.
            Ok(()) => {
                self.mark_forgotten(&id, true);
                let forgotten = self.store().forget_session(tab, &id).await;
                if forgotten.is_err() {
                    self.mark_forgotten(&id, false);
                }
                forgotten.map_err(Into::into)
            }
            Err(err) => Err(err),
        };
        match result {
            Ok(()) => drop(self.remove_tab(tab)),
            Err(err) => drop(self.update(tab, |t| t.state.release(Err(err)))),
        }
    }

    async fn logout_steps(&self, id: &SessionId, url: &ServerUrl) -> Result<(), ApiError> {
        let Some(token) = self.store().token(id).await? else {
            // No token was ever minted, so the server never heard of this session.
            return Ok(());
        };
        let server = self.server(url);
        match logout_with(&server, id, &token).await {
            Err(ApiError::Unauthorized) => {
                let token = self.renew_token(&server, id).await?;
                logout_with(&server, id, &token).await
            }
            other => other,
        }
    }

    /// One `status-session` for the tab's session, with a fresh token when the last one was
    /// refused: generate-token has no side effect, so the session recovers once the server
    /// accepts it again.
    pub(crate) async fn refresh(&self, tab: TabId) {
        let Some((id, url, renew)) = self.read(tab, |t| {
            let (id, url) = (t.record.id.clone(), t.record.server_url.clone());
            (id, url, t.state.needs_new_token())
        }) else {
            return;
        };
        let token = match self.store().token(&id).await {
            Ok(Some(token)) => token,
            Ok(None) => return,
            Err(err) => return self.warn(&err.to_string()),
        };
        let server = self.server(&url);
        let result = async {
            let token = match renew {
                true => self.renew_token(&server, &id).await?,
                false => token,
            };
            server.status_session(&id, &token).await
        }
        .await;
        let now = self.shell.now_ms();
        let observed = self.update(tab, |t| match result {
            Ok(status) => t.state.observe(status, now),
            Err(err) => t.state.fail(err),
        });
        if observed.is_some() {
            self.save_status(tab).await;
        }
    }

    /// Polls fast while a popup watches a session that is pairing; stops by itself otherwise.
    pub(crate) fn ensure_polling(self: &Rc<Self>, tab: TabId) {
        let watched = self.watched(tab);
        let now = self.shell.now_ms();
        let start = self.update(tab, |t| {
            let start = watched && !t.polling && t.state.poll_delay_ms(now).is_some();
            t.polling |= start;
            start
        });
        if start == Some(true) {
            let worker = Rc::clone(self);
            self.shell
                .spawn(Box::pin(async move { worker.poll_loop(tab).await }));
        }
    }

    async fn poll_loop(self: Rc<Self>, tab: TabId) {
        loop {
            let now = self.shell.now_ms();
            let watched = self.watched(tab);
            // Deciding to stop and clearing the flag happen together, so a concurrent
            // `ensure_polling` either sees the loop running or starts a new one.
            let delay = self.update(tab, |t| {
                let delay = t.state.poll_delay_ms(now).filter(|_| watched);
                t.polling = delay.is_some();
                delay
            });
            let Some(Some(delay)) = delay else { return };
            self.shell.sleep(delay).await;
            match self.read(tab, |t| t.state.is_busy()) {
                Some(true) => continue,
                Some(false) if self.watched(tab) => self.refresh(tab).await,
                Some(false) => continue,
                None => return,
            }
        }
    }

    async fn options(self: &Rc<Self>, request: OptionsRequest) -> OptionsReply {
        let stored = self.store().settings().await.ok().flatten();
        match request {
            OptionsRequest::GetSettings => {
                let has_secret = stored.as_ref().is_some_and(|s| s.secret_key.is_some());
                let settings = stored.unwrap_or_default();
                OptionsReply::Settings {
                    server_url: settings.server_url,
                    remember_secret: settings.remember_secret,
                    has_secret,
                    allow_insecure_http: settings.allow_insecure_http,
                }
            }
            OptionsRequest::SaveSettings {
                server_url,
                secret_key,
                remember_secret,
                allow_insecure_http,
            } => {
                let Some(secret_key) = secret_key.or(stored.and_then(|s| s.secret_key)) else {
                    return OptionsReply::Error {
                        message: "Enter the server's secret key.".into(),
                    };
                };
                let settings = Settings {
                    server_url,
                    remember_secret,
                    secret_key: Some(secret_key),
                    allow_insecure_http,
                };
                if let Err(err) = settings.check_transport() {
                    return OptionsReply::Error {
                        message: err.to_string(),
                    };
                }
                match self.store().save_settings(&settings).await {
                    Ok(()) => {
                        self.settings_saved(&settings);
                        OptionsReply::Saved
                    }
                    Err(err) => OptionsReply::Error {
                        message: err.to_string(),
                    },
                }
            }
            OptionsRequest::TestConnection {
                server_url,
                secret_key,
                allow_insecure_http,
            } => {
                if let Err(err) = check_transport(&server_url, allow_insecure_http) {
                    return OptionsReply::Connection {
                        ok: false,
                        message: err.to_string(),
                    };
                }
                let secret = secret_key.or(stored.and_then(|s| s.secret_key));
                test_connection(&self.server(&server_url), secret.as_ref()).await
            }
        }
    }

    /// New settings reach the popups already open: each watched tab follows up as if its
    /// popup had just opened.
    fn settings_saved(self: &Rc<Self>, settings: &Settings) {
        self.set_settings_verdict(verdict(settings));
        for tab in self.watched_tabs() {
            self.render(tab);
            let worker = Rc::clone(self);
            self.shell
                .spawn(Box::pin(async move { worker.follow_up(tab, true).await }));
        }
    }

    // ---- helpers ----

    /// The settings, when they are complete and allow a request; their verdict is kept for
    /// the view either way.
    async fn load_settings(&self) -> Option<Settings> {
        let settings = match self.store().settings().await {
            Ok(settings) => settings.filter(|s| s.secret_key.is_some()),
            Err(err) => {
                self.warn(&err.to_string());
                None
            }
        };
        let verdict = settings.as_ref().map_or(SettingsVerdict::Missing, verdict);
        self.set_settings_verdict(verdict);
        settings.filter(|_| verdict != SettingsVerdict::InsecureRefused)
    }

    async fn mint(
        &self,
        server: &impl Server,
        id: &SessionId,
        secret: &SecretKey,
    ) -> Result<Token, ApiError> {
        let token = server.generate_token(id, secret).await?;
        if self.is_forgotten(id) {
            return Err(ApiError::Storage(
                "the session was logged out meanwhile".into(),
            ));
        }
        self.store().save_token(id, &token).await?;
        Ok(token)
    }

    /// A fresh token for a session whose token was refused, with the secret in the settings.
    async fn renew_token(&self, server: &impl Server, id: &SessionId) -> Result<Token, ApiError> {
        let secret = self
            .store()
            .settings()
            .await?
            .and_then(|s| s.secret_key)
            .ok_or(ApiError::Unauthorized)?;
        self.mint(server, id, &secret).await
    }

    fn warn(&self, message: &str) {
        self.shell.warn(&format!("wpp-tabs: {message}"));
    }
}

/// What complete settings allow.
fn verdict(settings: &Settings) -> SettingsVerdict {
    match (settings.is_insecure(), settings.check_transport()) {
        (_, Err(_)) => SettingsVerdict::InsecureRefused,
        (true, Ok(())) => SettingsVerdict::InsecureAllowed,
        (false, Ok(())) => SettingsVerdict::Ready,
    }
}

/// logout-session, or close-session when the server only logs out connected sessions.
async fn logout_with(server: &impl Server, id: &SessionId, token: &Token) -> Result<(), ApiError> {
    match server.logout_session(id, token).await? {
        LogoutOutcome::LoggedOut => Ok(()),
        LogoutOutcome::NotConnected => server.close_session(id, token).await.map(drop),
    }
}

/// "Test connection": the server answers, and accepts the secret when one is given.
pub async fn test_connection(server: &impl Server, secret: Option<&SecretKey>) -> OptionsReply {
    let fail = |message: String| OptionsReply::Connection { ok: false, message };
    if let Err(err) = server.healthz().await {
        return fail(err.to_string());
    }
    let Some(secret) = secret else {
        return fail("The server answers. Enter the secret key to check it too.".into());
    };
    match server.probe_secret(secret).await {
        Ok(()) => OptionsReply::Connection {
            ok: true,
            message: "Connected: the server answers and accepts the secret key.".into(),
        },
        Err(ApiError::WrongSecret) => {
            fail("The server answers, but refused the secret key.".into())
        }
        Err(err) => fail(err.to_string()),
    }
}
