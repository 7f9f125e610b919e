//! The session manager: the Sessions page's requests, export and import, the options page's
//! servers, and the background pacing of status checks (the Sessions page while it is open,
//! and the alarm when nothing is).
//!
//! Every status check costs the server a bcrypt compare, so checks are paced: each session at
//! most once per [`Timings::list_refresh_ms`] while the Sessions page is open, spread evenly
//! and never closer than [`Timings::list_min_gap_ms`]; each server's `show-all-sessions` once
//! per round.

use crate::core::api::ApiError;
use crate::core::index::{Export, ExportedServer, SessionIndex, EXPORT_FORMAT, EXPORT_VERSION};
use crate::core::messages::{
    decode_text, encode, OptionsReply, OptionsRequest, ServerSummary, SessionAction,
    SessionsRequest, WorkerPush,
};
use crate::core::server::Server;
use crate::core::session::SessionState;
use crate::core::session_id::SessionId;
use crate::core::settings::{
    check_transport, parse_server_name, SecretKey, ServerConfig, ServerId, Settings, MAX_SERVERS,
};
use crate::core::status::ServerStatus;
use crate::core::text::Text;
use crate::core::worker::{
    Live, PortKey, RemoteList, SettingsVerdict, Shell, Worker, REFRESH_ALARM,
};
use serde_json::Value;
use std::rc::Rc;

impl<S: Shell + 'static> Worker<S> {
    // ---- the Sessions page ----

    pub(crate) async fn sessions_message(self: &Rc<Self>, port: PortKey, message: &str) {
        let request = match decode_text::<SessionsRequest>(message) {
            Ok(request) => request,
            Err(err) => {
                self.rejected(&format!("Sessions page message refused: {err}"));
                return self.notice(port, false, Text::new("common_request_refused").arg(err));
            }
        };
        self.load_settings().await;
        if !self.loaded().await {
            return self.notice(port, false, Text::new("sessions_storage_failed"));
        }
        match request {
            SessionsRequest::Subscribe => {
                if self.subscribe_list(port) {
                    self.render_lists();
                    self.ensure_pacing();
                }
            }
            SessionsRequest::Act { action, ids } => {
                for id in &ids {
                    if let Err(message) = self.act(action, id).await {
                        self.notice(port, false, message);
                    }
                }
            }
            SessionsRequest::Describe { id, label, colour } => {
                self.adopt(&id);
                self.describe(&id, label, colour).await;
            }
            SessionsRequest::OpenAll => {
                for id in self.unattached() {
                    match self.shell.open_tab().await {
                        Some(tab) => self.attach(tab, &id).await,
                        None => return self.notice(port, false, Text::new("sessions_tab_refused")),
                    }
                }
            }
            SessionsRequest::Export => {
                let text = self.export().await;
                self.post(port, &WorkerPush::Exported { text });
            }
            SessionsRequest::Import { text } => {
                let (ok, message) = match self.import(&text).await {
                    Ok(message) => (true, message),
                    Err(message) => (false, message),
                };
                self.notice(port, ok, message);
            }
            SessionsRequest::ForgetStale { ids } => {
                let asked = ids.len();
                let done = self.forget_stale(ids, false).await;
                let key = match (done, done < asked) {
                    (1, false) => "sessions_forgot_stale_one",
                    (_, false) => "sessions_forgot_stale_other",
                    (1, true) => "sessions_forgot_stale_one_left",
                    (_, true) => "sessions_forgot_stale_other_left",
                };
                let message = Text::new(key).arg(done).arg(asked - done);
                self.notice(port, true, message);
            }
        }
    }

    /// Closes on its server (best effort: a server that is down or a secret not entered yet
    /// keeps nothing here) and forgets each of `ids` that is stale now. `automatic`: the
    /// user's standing opt-in rather than a confirmation, which never touches a session
    /// attached to a tab. Returns how many were forgotten.
    pub(crate) async fn forget_stale(
        self: &Rc<Self>,
        ids: Vec<SessionId>,
        automatic: bool,
    ) -> usize {
        let after = self.settings().stale_after_days;
        let mut forgotten = 0;
        for id in ids {
            let now = self.shell.now_ms();
            let wanted = self.read(&id, |l| {
                let stale = l.entry.is_stale(after, now) && !l.state.is_busy();
                let started = l.entry.last_status.is_some();
                (stale && !(automatic && l.tab.is_some()), started)
            });
            let Some((true, started)) = wanted else {
                continue;
            };
            // A session the server never heard of has nothing to close there.
            if started {
                self.close(&id).await;
            }
            match self.forget(&id).await {
                Ok(()) => forgotten += 1,
                Err(err) => self.warn(&err.to_string()),
            }
        }
        forgotten
    }

    fn notice(&self, port: PortKey, ok: bool, message: Text) {
        self.post(port, &WorkerPush::Notice { ok, message });
    }

    /// One action on one session; `Err` says why it could not be done.
    async fn act(self: &Rc<Self>, action: SessionAction, id: &SessionId) -> Result<(), Text> {
        if action != SessionAction::Forget {
            self.adopt(id);
        }
        let tab = self.read(id, |l| l.tab);
        match (action, tab) {
            (_, None) => return Err(Text::new("sessions_not_in_list").arg(id)),
            (SessionAction::Attach, Some(Some(tab)))
            | (SessionAction::FocusTab, Some(Some(tab))) => self.shell.focus_tab(tab),
            (SessionAction::Attach, Some(None)) => match self.shell.open_tab().await {
                Some(tab) => self.attach(tab, id).await,
                None => return Err(Text::new("sessions_tab_refused")),
            },
            (SessionAction::FocusTab, Some(None)) => {}
            (SessionAction::Detach, Some(Some(tab))) => self.detach(tab).await,
            (SessionAction::Detach, Some(None)) => {}
            (SessionAction::Logout, _) => self.logout(id).await,
            (SessionAction::Close, _) => self.close(id).await,
            (SessionAction::Restart, _) => self.restart(id).await,
            (SessionAction::Forget, _) => self.forget(id).await.map_err(|e| e.text())?,
        }
        Ok(())
    }

    /// A session only the server listed becomes known here, so that it can be acted on.
    fn adopt(&self, id: &SessionId) {
        let server = {
            let state = self.state.borrow();
            if state.sessions.contains_key(id) {
                return;
            }
            state
                .remote
                .iter()
                .find(|(_, list)| list.names.contains(id))
                .map(|(server, _)| server.clone())
        };
        let Some(server) = server else { return };
        let created = self.new_session(&server, None);
        // `new_session` makes a fresh ID; the adopted one keeps its own.
        let mut state = self.state.borrow_mut();
        if let Some(mut live) = state.sessions.remove(&created) {
            live.entry.label =
                crate::core::index::Label::parse(id.as_str()).unwrap_or(live.entry.label);
            live.state = SessionState::restored(None, self.timings);
            state.sessions.insert(id.clone(), live);
        }
    }

    async fn export(&self) -> String {
        let settings = self.settings();
        let sessions = self.index();
        let export = Export {
            format: EXPORT_FORMAT.into(),
            version: EXPORT_VERSION,
            exported_at: self.shell.now_ms(),
            servers: settings
                .servers
                .iter()
                .map(|s| ExportedServer {
                    id: s.id.clone(),
                    name: s.name.clone(),
                    url: s.server_url.clone(),
                })
                .collect(),
            sessions,
        };
        serde_json::to_string_pretty(&export).expect("the export serializes")
    }

    /// Merges an export: its servers are matched by URL (unknown ones are added, without a
    /// secret), then its sessions are merged, never replacing a newer entry.
    async fn import(self: &Rc<Self>, text: &str) -> Result<Text, Text> {
        let export = Export::parse(text)?;
        let mut settings = self.load_settings().await;
        let mut incoming = SessionIndex::default();
        let mut added_servers = 0;
        for (id, mut entry) in export.sessions.0 {
            let exported = export
                .servers
                .iter()
                .find(|s| s.id == entry.server)
                .expect("Export::parse checked every server is listed");
            let local = match settings.server_at(&exported.url) {
                Some(local) => local.id.clone(),
                None if settings.servers.len() >= MAX_SERVERS => {
                    return Err(Text::new("common_too_many_servers").arg(MAX_SERVERS));
                }
                None => {
                    let new_id = settings.next_server_id();
                    settings.servers.push(ServerConfig {
                        id: new_id.clone(),
                        name: exported.name.clone(),
                        server_url: exported.url.clone(),
                        ..ServerConfig::default()
                    });
                    added_servers += 1;
                    new_id
                }
            };
            entry.server = local;
            entry.drop_notified = false;
            incoming.0.insert(id, entry);
        }
        if added_servers > 0 {
            self.store()
                .save_settings(&settings)
                .await
                .map_err(|e| e.text())?;
            self.cache_settings(settings);
        }
        let mut current = self.index();
        let report = current.merge(incoming);
        {
            let mut state = self.state.borrow_mut();
            for (id, entry) in current.0 {
                match state.sessions.get_mut(&id) {
                    Some(live) => live.entry = entry,
                    None => {
                        let live = Live {
                            state: SessionState::restored(entry.last_status, self.timings),
                            entry,
                            tab: None,
                            polling: false,
                            checked_at: 0.0,
                            account_read: false,
                            qr_pushed_at: 0.0,
                        };
                        state.sessions.insert(id, live);
                    }
                }
            }
        }
        self.save_index().await;
        self.render_lists();
        Ok(report.text(added_servers))
    }

    // ---- pacing ----

    /// While a Sessions page is open, checks each session in turn, paced (see the module).
    pub(crate) fn ensure_pacing(self: &Rc<Self>) {
        let start = !std::mem::replace(&mut self.state.borrow_mut().pacing, true);
        if start {
            let worker = Rc::clone(self);
            self.shell
                .spawn(Box::pin(async move { worker.pace().await }));
        }
    }

    async fn pace(self: Rc<Self>) {
        let mut listed_at = f64::NEG_INFINITY;
        loop {
            if !self.list_watched() {
                self.state.borrow_mut().pacing = false;
                return;
            }
            let now = self.shell.now_ms();
            let round = f64::from(self.timings.list_refresh_ms);
            if now - listed_at >= round {
                listed_at = now;
                self.list_remote().await;
            }
            let count = self.state.borrow().sessions.len().max(1) as u32;
            let gap = (self.timings.list_refresh_ms / count).max(self.timings.list_min_gap_ms);
            if let Some(id) = self.stalest(now - round) {
                self.refresh(&id).await;
            }
            self.shell.sleep(gap).await;
        }
    }

    /// The session checked longest ago, if before `before`, that nothing else is checking.
    fn stalest(&self, before: f64) -> Option<SessionId> {
        let state = self.state.borrow();
        state
            .sessions
            .iter()
            .filter(|(_, l)| !l.polling && !l.state.is_busy() && l.checked_at <= before)
            .min_by(|a, b| a.1.checked_at.total_cmp(&b.1.checked_at).then(a.0.cmp(b.0)))
            .map(|(id, _)| id.clone())
    }

    /// Each server's own list of sessions (`show-all-sessions`, one request per server).
    async fn list_remote(&self) {
        let settings = self.settings();
        for config in &settings.servers {
            let list = match (
                &config.secret_key,
                SettingsVerdict::of(config).allows_requests(),
            ) {
                (Some(secret), true) => {
                    match self
                        .server(&config.server_url)
                        .show_all_sessions(secret)
                        .await
                    {
                        Ok(names) => RemoteList { names, error: None },
                        Err(err) => RemoteList {
                            names: vec![],
                            error: Some(err.text()),
                        },
                    }
                }
                _ if SettingsVerdict::of(config) == SettingsVerdict::Locked => RemoteList {
                    names: vec![],
                    error: Some(Text::new("sessions_list_key_locked")),
                },
                _ => RemoteList {
                    names: vec![],
                    error: Some(Text::new("sessions_list_no_secret")),
                },
            };
            self.state
                .borrow_mut()
                .remote
                .insert(config.id.clone(), list);
        }
        self.render_lists();
    }

    /// The slow refresh with no page open: every session that has been connected, or has a
    /// token in this browser session, is checked, so that a drop is noticed within two alarm
    /// periods and badges stay current. Then, if the user opted in, stale sessions no tab
    /// holds are closed and forgotten.
    pub async fn alarm(self: &Rc<Self>, name: &str) {
        // An open Sessions page paces the checks itself, and has read the settings.
        let watched = self.list_watched();
        let nothing_to_do = watched && !self.settings().auto_forget_stale;
        if name != REFRESH_ALARM || nothing_to_do || !self.loaded().await {
            return;
        }
        let settings = self.load_settings().await;
        if !watched {
            self.check_followed().await;
        }
        if settings.auto_forget_stale {
            let ids = self.session_ids();
            self.forget_stale(ids, true).await;
        }
    }

    /// Checks every session that has been connected, is in a tab or has a token, unless it
    /// was checked within half an alarm period; spread over [`Timings::idle_spread_ms`], so
    /// fifty sessions cost the server about one request a second, not a burst.
    async fn check_followed(self: &Rc<Self>) {
        if std::mem::replace(&mut self.state.borrow_mut().sweeping, true) {
            return;
        }
        let store = self.store();
        let mut due = vec![];
        for id in self.session_ids() {
            if !self.due_for_check(&id) {
                continue;
            }
            let followed = self.read(&id, |l| {
                l.entry.last_status == Some(ServerStatus::Connected) || l.tab.is_some()
            }) == Some(true);
            if followed || matches!(store.token(&id).await, Ok(Some(_))) {
                due.push(id);
            }
        }
        let gap = self.timings.idle_spread_ms / u32::try_from(due.len()).unwrap_or(u32::MAX).max(1);
        for (i, id) in due.iter().enumerate() {
            if i > 0 {
                self.shell.sleep(gap).await;
            }
            // A popup or the Sessions page may have checked it meanwhile.
            if self.due_for_check(id) {
                self.refresh(id).await;
            }
        }
        self.state.borrow_mut().sweeping = false;
    }

    /// Not polled by a popup, and not checked within half an alarm period.
    fn due_for_check(&self, id: &SessionId) -> bool {
        let now = self.shell.now_ms();
        let recent = self.timings.slow_refresh_minutes * 30_000.0;
        self.read(id, |l| {
            !l.polling && l.entry.last_status.is_some() && now - l.checked_at >= recent
        }) == Some(true)
    }

    // ---- the options page ----

    /// A one-off request from the options page, as JSON text; the reply is an encoded
    /// [`OptionsReply`].
    pub async fn options_message(self: &Rc<Self>, message: &str) -> Value {
        let reply = match decode_text::<OptionsRequest>(message) {
            Ok(request) => self.options(request).await,
            Err(err) => {
                self.rejected(&format!("options page message refused: {err}"));
                OptionsReply::Error {
                    message: Text::new("common_request_refused").arg(err),
                }
            }
        };
        encode(&reply)
    }

    async fn options(self: &Rc<Self>, request: OptionsRequest) -> OptionsReply {
        let error = |message: Text| OptionsReply::Error { message };
        let mut settings = self.load_settings().await;
        match request {
            OptionsRequest::GetSettings => {
                self.loaded().await;
                let counts = |server| {
                    self.state
                        .borrow()
                        .sessions
                        .values()
                        .filter(|l| &l.entry.server == server)
                        .count() as u32
                };
                OptionsReply::Settings {
                    servers: settings
                        .servers
                        .iter()
                        .map(|s| ServerSummary {
                            id: s.id.clone(),
                            name: s.name.clone(),
                            server_url: s.server_url.clone(),
                            remember: s.remember,
                            remember_until: s.remember_until,
                            has_secret: s.has_secret(),
                            locked: s.locked_secret.is_some(),
                            unlocked: s.locked_secret.is_some() && s.secret_key.is_some(),
                            allow_insecure_http: s.allow_insecure_http,
                            sessions: counts(&s.id),
                        })
                        .collect(),
                    default_server: settings.default_server.clone(),
                    closed_tab: settings.closed_tab,
                    notify_drops: settings.notify_drops,
                    stale_after_days: settings.stale_after_days,
                    auto_forget_stale: settings.auto_forget_stale,
                }
            }
            OptionsRequest::SaveServer {
                id,
                name,
                server_url,
                secret_key,
                remember,
                allow_insecure_http,
                make_default,
            } => {
                let name = match parse_server_name(&name) {
                    Ok(name) => name,
                    Err(err) => return error(err.text()),
                };
                let existing = id.as_ref().and_then(|id| settings.server(id)).cloned();
                if id.is_some() && existing.is_none() {
                    return error(Text::new("options_server_gone"));
                }
                let now = self.shell.now_ms();
                let secret = match crate::core::lock::secret_for_save(
                    existing.as_ref(),
                    &server_url,
                    secret_key,
                    remember,
                    now,
                ) {
                    Ok(secret) => secret,
                    Err(why) => return error(why),
                };
                if settings
                    .servers
                    .iter()
                    .any(|s| s.server_url == server_url && Some(&s.id) != id.as_ref())
                {
                    return error(Text::new("options_url_taken"));
                }
                let config = ServerConfig {
                    id: id.clone().unwrap_or_else(|| settings.next_server_id()),
                    name,
                    server_url,
                    remember,
                    remember_until: secret.remember_until,
                    secret_key: secret.secret_key,
                    locked_secret: secret.locked_secret,
                    allow_insecure_http,
                };
                if let Err(err) = config.check_transport() {
                    return error(err.text());
                }
                let saved_id = config.id.clone();
                let full = settings.servers.len() >= MAX_SERVERS;
                match settings.server_mut(&saved_id) {
                    Some(slot) => *slot = config,
                    None if full => {
                        return error(Text::new("common_too_many_servers").arg(MAX_SERVERS))
                    }
                    None => settings.servers.push(config),
                }
                // A fresh install's placeholder server, never given a secret, makes way.
                if id.is_none() {
                    settings
                        .servers
                        .retain(|s| s.id == saved_id || s.has_secret() || self.has_sessions(&s.id));
                    if settings.server(&settings.default_server).is_none() {
                        settings.default_server = saved_id.clone();
                    }
                }
                if make_default {
                    settings.default_server = saved_id.clone();
                }
                self.save_and_reply(settings, Some(saved_id)).await
            }
            OptionsRequest::SetPassphrase { id, passphrase } => {
                self.set_passphrase(settings, id, passphrase).await
            }
            OptionsRequest::LockNow { id } => self.lock_now(settings, id).await,
            OptionsRequest::RemoveServer { id } => {
                if settings.server(&id).is_none() {
                    return error(Text::new("options_server_gone"));
                }
                if settings.servers.len() == 1 {
                    return error(Text::new("options_last_server"));
                }
                self.loaded().await;
                if self.has_sessions(&id) {
                    return error(Text::new("options_server_has_sessions"));
                }
                settings.servers.retain(|s| s.id != id);
                if settings.default_server == id {
                    settings.default_server = settings.servers[0].id.clone();
                }
                self.save_and_reply(settings, None).await
            }
            OptionsRequest::SavePreferences {
                closed_tab,
                notify_drops,
                stale_after_days,
                auto_forget_stale,
            } => {
                settings.closed_tab = closed_tab;
                settings.notify_drops = notify_drops;
                settings.stale_after_days = stale_after_days;
                settings.auto_forget_stale = auto_forget_stale;
                self.save_and_reply(settings, None).await
            }
            OptionsRequest::TestConnection {
                id,
                server_url,
                secret_key,
                allow_insecure_http,
            } => {
                if let Err(err) = check_transport(&server_url, allow_insecure_http) {
                    return OptionsReply::Connection {
                        ok: false,
                        message: err.text(),
                    };
                }
                let saved = id
                    .and_then(|id| settings.server(&id).cloned())
                    .filter(|s| s.server_url == server_url)
                    .and_then(|s| s.secret_key);
                let secret = secret_key.or(saved);
                test_connection(&self.server(&server_url), secret.as_ref()).await
            }
        }
    }

    fn has_sessions(&self, server: &ServerId) -> bool {
        self.state
            .borrow()
            .sessions
            .values()
            .any(|l| &l.entry.server == server)
    }

    pub(crate) async fn save_and_reply(
        self: &Rc<Self>,
        settings: Settings,
        id: Option<ServerId>,
    ) -> OptionsReply {
        if let Err(why) = settings.check() {
            return OptionsReply::Error {
                message: Text::new("options_settings_invalid").arg(why),
            };
        }
        match self.store().save_settings(&settings).await {
            Ok(()) => {
                self.settings_saved(settings);
                OptionsReply::Saved { id }
            }
            Err(err) => OptionsReply::Error {
                message: err.text(),
            },
        }
    }

    /// New settings reach the pages already open: each watched tab follows up as if its
    /// popup had just opened.
    pub(crate) fn settings_saved(self: &Rc<Self>, settings: Settings) {
        self.cache_settings(settings);
        self.render_lists();
        for tab in self.watched_tabs() {
            self.render_tab(tab);
            let worker = Rc::clone(self);
            self.shell.spawn(Box::pin(async move {
                match worker.session_of(tab) {
                    Some(id) => worker.follow_up(&id).await,
                    None => worker.subscribe(tab).await,
                }
            }));
        }
    }
}

/// "Test connection": the server answers, and accepts the secret when one is given.
pub async fn test_connection(server: &impl Server, secret: Option<&SecretKey>) -> OptionsReply {
    let fail = |message: Text| OptionsReply::Connection { ok: false, message };
    if let Err(err) = server.healthz().await {
        return fail(err.text());
    }
    let Some(secret) = secret else {
        return fail(Text::new("options_test_no_secret"));
    };
    match server.probe_secret(secret).await {
        Ok(()) => OptionsReply::Connection {
            ok: true,
            message: Text::new("options_test_ok"),
        },
        Err(ApiError::WrongSecret) => fail(Text::new("options_test_wrong_secret")),
        Err(err) => fail(err.text()),
    }
}
