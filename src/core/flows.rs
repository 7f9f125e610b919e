//! What the worker does for each event of a tab or a session: pairing, refresh, restart,
//! logout, close, attach and detach, and what a popup's subscription leads to. Plain Rust
//! over the [`Server`] and storage traits, so every branch is tested natively (see
//! `core::flows_tests`). The Sessions page, the options page and the background pacing are in
//! `core::manager`.

use crate::core::api::{Account, ApiError, CloseOutcome, LogoutOutcome, PairingCode, PairingPhone};
use crate::core::index::{Colour, Label};
use crate::core::messages::{decode_text, PopupRequest};
use crate::core::server::Server;
use crate::core::session::{OnSubscribe, PairPlan, Phase, Switch};
use crate::core::session_id::SessionId;
use crate::core::settings::{SecretKey, ServerConfig, ServerId, Settings};
use crate::core::status::ServerStatus;
use crate::core::storage::{TabId, Token};
use crate::core::text::Text;
use crate::core::worker::{
    Notice, PageKind, PortKey, SettingsVerdict, Shell, Worker, DROP_NOTIFICATION_PREFIX,
    LOGOUT_MENU_ID, SESSIONS_COMMAND, SESSIONS_MENU_ID,
};
use std::future::Future;
use std::rc::Rc;
use std::task::Poll;

impl<S: Shell + 'static> Worker<S> {
    // ---- events from the shell ----

    /// A message on a page's port, as JSON text: decoded and validated here, acted on if
    /// well-formed.
    pub async fn page_message(self: &Rc<Self>, port: PortKey, message: &str) {
        match self.page_kind(port) {
            Some(PageKind::Popup) => self.popup_message(port, message).await,
            Some(PageKind::Sessions) => self.sessions_message(port, message).await,
            Some(PageKind::Diagnostics) => self.diagnostics_message(port, message).await,
            None => self.rejected("a message on a port that is not open"),
        }
    }

    async fn popup_message(self: &Rc<Self>, port: PortKey, message: &str) {
        let request = match decode_text::<PopupRequest>(message) {
            Ok(request) => request,
            Err(err) => return self.rejected(&format!("popup message refused: {err}")),
        };
        if let PopupRequest::Subscribe { tab_id } = request {
            if !self.bind_port(port, tab_id) {
                return self.rejected("a popup asked to watch a second tab");
            }
            return self.subscribe(tab_id).await;
        }
        let Some(tab) = self.port_tab(port) else {
            return self.rejected("popup message refused: the popup has not subscribed to a tab");
        };
        if !self.loaded().await {
            return self.render_tab(tab);
        }
        match request {
            PopupRequest::Pair { server } => self.pair_tab(tab, server, None).await,
            PopupRequest::PairByPhone { phone, server } => {
                self.pair_tab(tab, server, Some(Switch::ToPhone(phone)))
                    .await
            }
            PopupRequest::PairByQr => match self.session_of(tab) {
                Some(id) => self.pair_as(&id, Some(Switch::ToQr)).await,
                None => self.render_tab(tab),
            },
            PopupRequest::Logout => match self.session_of(tab) {
                Some(id) => self.logout(&id).await,
                None => self.render_tab(tab),
            },
            PopupRequest::Attach { session_id } => self.attach(tab, &session_id).await,
            PopupRequest::Detach => self.detach(tab).await,
            PopupRequest::Describe { label, colour } => {
                if let Some(id) = self.session_of(tab) {
                    self.describe(&id, label, colour).await;
                }
            }
            PopupRequest::Unlock { server, passphrase } => {
                self.unlock(tab, server, passphrase).await
            }
            PopupRequest::Subscribe { .. } => {}
        }
    }

    /// A context-menu click: "Log out this tab's session" (at once, unless the account is
    /// connected, when the user confirms first) or "Manage sessions".
    pub async fn menu_clicked(self: &Rc<Self>, item: Option<&str>, tab: Option<TabId>) {
        match (item, tab) {
            (Some(SESSIONS_MENU_ID), _) => self.shell.open_sessions_page(),
            (Some(LOGOUT_MENU_ID), Some(tab)) => {
                if !self.loaded().await {
                    return;
                }
                let Some(id) = self.session_of(tab) else {
                    return;
                };
                let now = self.shell.now_ms();
                match self.read(&id, |l| l.state.phase(now) == Phase::Connected) {
                    Some(true) => self.shell.confirm_logout(tab),
                    _ => self.logout(&id).await,
                }
            }
            _ => self.warn("ignored a menu click without a known item and tab"),
        }
    }

    /// A keyboard command of the manifest (the popup's own, `_execute_action`, never comes
    /// here).
    pub fn command(&self, name: &str) {
        match name {
            SESSIONS_COMMAND => self.shell.open_sessions_page(),
            _ => self.warn("ignored an unknown keyboard command"),
        }
    }

    /// A drop notification was clicked: bring up the session's tab (a new one if it has
    /// none), where its popup offers to pair again.
    pub async fn notification_clicked(self: &Rc<Self>, notification: &str) {
        let Some(id) = notification
            .strip_prefix(DROP_NOTIFICATION_PREFIX)
            .and_then(|id| SessionId::parse(id).ok())
        else {
            return;
        };
        if !self.loaded().await {
            return;
        }
        match self.read(&id, |l| l.tab) {
            Some(Some(tab)) => self.shell.focus_tab(tab),
            Some(None) => {
                if let Some(tab) = self.shell.open_tab().await {
                    self.attach(tab, &id).await;
                    self.shell.focus_tab(tab);
                }
            }
            None => {}
        }
    }

    /// The tab closed. Its session is detached and stays listed; the settings say whether
    /// the server keeps it running.
    pub async fn tab_removed(self: &Rc<Self>, tab: TabId) {
        self.mark_gone(tab);
        if !self.loaded().await {
            return;
        }
        let Some(id) = self.detach_in_memory(tab) else {
            return;
        };
        if let Err(err) = self.store().unbind_tab(tab).await {
            self.storage_failed(&err);
        }
        // A session the server never heard of goes with its tab: nothing to keep running.
        let never_started = self.read(&id, |l| {
            l.entry.last_status.is_none() && !l.state.is_busy() && l.state.status.is_none()
        });
        if never_started == Some(true) {
            if let Err(err) = self.forget(&id).await {
                self.storage_failed(&err);
            }
            return;
        }
        self.render(&id);
        let settings = self.load_settings().await;
        if settings.closed_tab == crate::core::settings::ClosedTab::CloseOnServer {
            self.close(&id).await;
        }
    }

    /// A tab changed. Once it has loaded, its badge is set again: Firefox resets a tab's
    /// badge when it navigates.
    pub async fn tab_updated(self: &Rc<Self>, tab: TabId, status: Option<&str>) {
        if status != Some("complete") {
            return;
        }
        self.forget_badge(tab);
        if self.loaded().await && self.session_of(tab).is_some() {
            self.render_tab(tab);
        }
    }

    // ---- tab flows ----

    /// A popup opened on `tab`: show its state, then follow up. A tab without a session gets
    /// a new one (and starts pairing when the settings allow), unless there are sessions it
    /// could attach instead, or several servers to choose from: then the user chooses.
    pub(crate) async fn subscribe(self: &Rc<Self>, tab: TabId) {
        self.render_held(tab);
        if !self.shell.tab_exists(tab).await {
            self.mark_gone(tab);
            return self.render_tab(tab);
        }
        let settings = self.load_settings().await;
        if !self.loaded().await {
            return self.render_tab(tab);
        }
        // With several servers the user picks where a new session goes, so nothing starts
        // by itself.
        let ready = settings
            .servers
            .iter()
            .filter(|s| SettingsVerdict::of(s).allows_requests())
            .count();
        let id = match self.session_of(tab) {
            Some(id) => id,
            None if !self.unattached().is_empty() || ready > 1 => return self.render_tab(tab),
            None => self.create_for_tab(tab, &settings.default_server).await,
        };
        let now = self.shell.now_ms();
        let ready = self.verdict_of(&id).allows_requests();
        let next = self.read(&id, |l| l.state.on_subscribe(now, ready));
        // Pairing that starts at once renders its own busy view: showing "Pair" for the
        // moment before would offer a button that is gone before it can be pressed.
        if next != Some(OnSubscribe::StartPairing) {
            self.render_tab(tab);
        }
        self.follow_up(&id).await;
    }

    /// A warm worker shows a popup its tab's session at once, from the state and settings it
    /// holds, before the checks of [`Self::subscribe`] (the tab still exists, the settings as
    /// stored), each a browser call: they re-render only what they change. Not before the
    /// first read of the settings, nor when the session starts pairing at once (that renders
    /// its own busy view).
    fn render_held(&self, tab: TabId) {
        let held = self.state.borrow().settings.is_some();
        let Some(id) = self.session_of(tab).filter(|_| held) else {
            return;
        };
        let now = self.shell.now_ms();
        let ready = self.verdict_of(&id).allows_requests();
        let next = self.read(&id, |l| l.state.on_subscribe(now, ready));
        if next.is_some() && next != Some(OnSubscribe::StartPairing) {
            self.render_tab(tab);
        }
    }

    /// A new session for the tab, on `server`, in the index and bound to the tab.
    async fn create_for_tab(&self, tab: TabId, server: &ServerId) -> SessionId {
        let id = self.new_session(server, Some(tab));
        self.save_index().await;
        if let Err(err) = self.store().bind_tab(tab, &id).await {
            self.storage_failed(&err);
        }
        id
    }

    /// Starts pairing, refreshes, or waits for the user, as the session's state says.
    pub(crate) async fn follow_up(self: &Rc<Self>, id: &SessionId) {
        let now = self.shell.now_ms();
        let ready = self.verdict_of(id).allows_requests();
        match self.read(id, |l| l.state.on_subscribe(now, ready)) {
            Some(OnSubscribe::StartPairing) => self.pair(id).await,
            Some(OnSubscribe::Refresh) => {
                self.refresh(id).await;
                self.ensure_polling(id);
            }
            Some(OnSubscribe::Wait) | None => {}
        }
    }

    /// "Pair" (by phone when `switch` says so): the tab's session, or a new one on `server`
    /// (the default server if none).
    async fn pair_tab(
        self: &Rc<Self>,
        tab: TabId,
        server: Option<ServerId>,
        switch: Option<Switch>,
    ) {
        let id = match self.session_of(tab) {
            Some(id) => id,
            None => {
                let settings = self.load_settings().await;
                let server = server
                    .filter(|s| settings.server(s).is_some())
                    .unwrap_or(settings.default_server);
                self.create_for_tab(tab, &server).await
            }
        };
        self.pair_as(&id, switch).await;
    }

    /// Attaches a session no tab holds to a tab that holds none, then checks it: a session
    /// still connected on the server shows connected, with a freshly minted token.
    pub(crate) async fn attach(self: &Rc<Self>, tab: TabId, id: &SessionId) {
        if !self.attach_in_memory(id, tab) {
            self.warn("refused to attach: the tab or the session is taken");
            return self.render_tab(tab);
        }
        if let Err(err) = self.store().bind_tab(tab, id).await {
            self.storage_failed(&err);
        }
        self.forget_badge(tab);
        self.render(id);
        self.follow_up(id).await;
    }

    /// Detaches the tab's session: it keeps running on the server and stays listed.
    pub(crate) async fn detach(self: &Rc<Self>, tab: TabId) {
        let Some(id) = self.detach_in_memory(tab) else {
            return self.render_tab(tab);
        };
        if let Err(err) = self.store().unbind_tab(tab).await {
            self.storage_failed(&err);
        }
        self.render_tab(tab);
        self.render(&id);
    }

    pub(crate) async fn describe(
        &self,
        id: &SessionId,
        label: Option<Label>,
        colour: Option<Colour>,
    ) {
        let now = self.shell.now_ms();
        let changed = self.update(id, |l| {
            if let Some(label) = label {
                l.entry.label = label;
            }
            if let Some(colour) = colour {
                l.entry.colour = colour;
            }
            l.entry.updated_at = now;
        });
        if changed.is_some() {
            self.save_index().await;
        }
    }

    // ---- session flows ----

    /// Starts pairing, refreshes an expired QR or pairing code, or restarts a stuck or
    /// closed session.
    pub(crate) async fn pair(self: &Rc<Self>, id: &SessionId) {
        self.pair_as(id, None).await
    }

    /// Pairs as [`pair`](Self::pair) does, after switching to pairing by phone or by QR.
    async fn pair_as(self: &Rc<Self>, id: &SessionId, switch: Option<Switch>) {
        let settings = self.load_settings().await;
        let now = self.shell.now_ms();
        let Some(Some(plan)) = self.update(id, |l| l.state.claim_pairing(switch, now)) else {
            return;
        };
        // The session may move to a fresh ID on the way, and then fail: `id` follows it.
        let mut id = id.clone();
        let result = self.pair_steps(&mut id, &settings, plan).await;
        self.update(&id, |l| l.state.release(result));
        self.observed(&id).await;
        self.ensure_polling(&id);
    }

    async fn pair_steps(
        &self,
        id: &mut SessionId,
        settings: &Settings,
        plan: PairPlan,
    ) -> Result<(), ApiError> {
        let (server_id, fresh_token) = self
            .read(id, |l| (l.entry.server.clone(), l.state.needs_new_token()))
            .ok_or_else(vanished)?;
        let config = usable_server(settings, &server_id)?;
        let secret = config.secret_key.as_ref().ok_or(ApiError::WrongSecret)?;
        let server = self.server(&config.server_url);
        let mut token = match self.store().token(id).await? {
            Some(token) if !fresh_token => token,
            _ => self.mint(&server, id, secret).await?,
        };
        let mut fresh_name = plan.fresh_name;
        if plan.close_first && server.close_session(id, &token).await? == CloseOutcome::Placeholder
        {
            // A placeholder's browser (a hung start, a QR or code still waiting) outlives the
            // close and keeps its profile locked, so a start under the same name would never
            // launch: a second close is best effort, and the session goes on under a fresh name.
            let _ = server.close_session(id, &token).await;
            fresh_name = true;
        }
        if fresh_name {
            (*id, token) = self.rename_session(&server, id, secret).await?;
        }
        let id: &SessionId = id;
        let now = self.shell.now_ms();
        self.update(id, |l| l.state.starting(now));
        let started = match &plan.phone {
            Some(phone) => self.start_by_phone(&server, id, &token, phone).await,
            None => server.start_session(id, &token).await.map(|status| {
                let now = self.shell.now_ms();
                self.update(id, |l| l.state.observe(status, now));
            }),
        };
        let now = self.shell.now_ms();
        self.update(id, |l| match started {
            Ok(()) => l.checked_at = now,
            Err(_) => l.state.start_failed(),
        });
        started
    }

    /// start-session with the phone number, which the server holds until the pairing code
    /// exists. It ends with the answer; with the code, should the `phoneCode` event bring it
    /// first ([`phone_code_pushed`](Self::phone_code_pushed)); or as timed out, a little
    /// after the request's own limit, for a server that never answers (§2.1).
    async fn start_by_phone(
        &self,
        server: &impl Server,
        id: &SessionId,
        token: &Token,
        phone: &PairingPhone,
    ) -> Result<(), ApiError> {
        let limit = self.timings.phone_code_wait_ms;
        let step = self.timings.fast_poll_ms;
        let request = server.start_session_by_phone(id, token, phone, limit);
        let pushed = async {
            let deadline = self.shell.now_ms() + f64::from(limit) + f64::from(step);
            loop {
                self.shell.sleep(step).await;
                let code = self.read(id, |l| l.state.phone_code().is_some());
                if code != Some(false) {
                    return Ok(());
                }
                if self.shell.now_ms() >= deadline {
                    return Err(ApiError::Timeout);
                }
            }
        };
        match first_of(request, pushed).await {
            Ok(Ok(reply)) => {
                match reply.code {
                    Some(code) => drop(self.code_came(id, code)),
                    None => {
                        let now = self.shell.now_ms();
                        self.update(id, |l| l.state.observe(reply.status, now));
                    }
                }
                Ok(())
            }
            Ok(Err(err)) | Err(Err(err)) => Err(err),
            Err(Ok(())) => Ok(()),
        }
    }

    /// The server's `phoneCode` event (Socket.IO push) for session `id`: its pairing code,
    /// shown at once. Whichever comes first, this or start-session's answer, shows the code.
    pub(crate) fn phone_code_pushed(self: &Rc<Self>, id: &SessionId, code: &str) {
        let Ok(code) = PairingCode::parse(code) else {
            return self.warn("ignored a pairing code of an unexpected form from the server");
        };
        match self.code_came(id, code) {
            Some(true) => {
                let worker = Rc::clone(self);
                let id = id.clone();
                self.shell
                    .spawn(Box::pin(async move { worker.observed(&id).await }));
            }
            Some(false) => self.warn("ignored a pairing code for a session not pairing by phone"),
            None => {}
        }
    }

    /// Applies a pairing code to the session (`None`: unknown session; `false`: not pairing by
    /// phone). A new code gets one status check when it expires: the server says nothing when
    /// autoClose ends it (§3, §4), and polls may be rare while the push connection is live.
    fn code_came(&self, id: &SessionId, code: PairingCode) -> Option<bool> {
        let now = self.shell.now_ms();
        let (applied, before, after) = self.update(id, |l| {
            let before = l.state.phone_code_expires_at();
            let applied = l.state.code_arrived(code, now);
            (applied, before, l.state.phone_code_expires_at())
        })?;
        let expires = after.filter(|_| after != before);
        if let (Some(at), Some(worker)) = (expires, self.me.upgrade()) {
            let delay = (at - now).max(0.0) as u32 + self.timings.fast_poll_ms;
            let id = id.clone();
            self.shell.spawn(Box::pin(async move {
                worker.shell.sleep(delay).await;
                let due = worker.read(&id, |l| {
                    l.state.phone_code_expires_at() == Some(at) && !l.state.is_busy()
                });
                if due == Some(true) {
                    worker.refresh(&id).await;
                }
            }));
        }
        Some(applied)
    }

    /// Moves a session to a fresh ID on the same server, keeping its name, colour and tab;
    /// the old one, closed, is forgotten with its token.
    async fn rename_session(
        &self,
        server: &impl Server,
        old: &SessionId,
        secret: &SecretKey,
    ) -> Result<(SessionId, Token), ApiError> {
        let fresh = SessionId::generate(self.shell.now_ms() as u64, self.shell.random_u64());
        let token = self.mint(server, &fresh, secret).await?;
        let now = self.shell.now_ms();
        let tab = {
            let mut state = self.state.borrow_mut();
            let mut live = state.sessions.remove(old).ok_or_else(vanished)?;
            live.entry.created_at = now;
            live.entry.updated_at = now;
            live.entry.last_status = None;
            live.state = live.state.renamed();
            // The old name's poll loop ends with it; the new name gets its own.
            live.polling = false;
            let tab = live.tab;
            state.sessions.insert(fresh.clone(), live);
            if let Some(tab) = tab {
                state.tabs.insert(tab, fresh.clone());
            }
            tab
        };
        self.mark_forgotten(old, true);
        self.render(&fresh);
        self.save_index().await;
        let store = self.store();
        if let Some(tab) = tab {
            store.bind_tab(tab, &fresh).await?;
        }
        store.forget_token(old).await?;
        Ok((fresh, token))
    }

    /// Logs the session out on the server, then forgets it: its token, its tab binding and
    /// its index entry. If the server cannot be told, nothing is forgotten.
    pub(crate) async fn logout(self: &Rc<Self>, id: &SessionId) {
        let settings = self.load_settings().await;
        // The server is known from the claim on: a tab closing meanwhile changes nothing.
        let claim = self.update(id, |l| l.state.claim().then(|| l.entry.server.clone()));
        let Some(Some(server_id)) = claim else {
            return;
        };
        let result = match self.logout_steps(id, &settings, &server_id).await {
            Ok(()) => self.forget(id).await.map_err(ApiError::from),
            Err(err) => Err(err),
        };
        if let Err(err) = result {
            let now = self.shell.now_ms();
            self.update(id, |l| {
                l.entry.record_error(err.code(), now);
                l.state.release(Err(err));
            });
            if !self.is_forgotten(id) {
                self.save_index().await;
            }
        }
    }

    async fn logout_steps(
        &self,
        id: &SessionId,
        settings: &Settings,
        server_id: &ServerId,
    ) -> Result<(), ApiError> {
        let config = usable_server(settings, server_id)?;
        let server = self.server(&config.server_url);
        let token = match self.store().token(id).await? {
            Some(token) => token,
            // Never started: the server has nothing to log out.
            None if self.read(id, |l| l.entry.last_status.is_none()) == Some(true) => {
                return Ok(());
            }
            None => self.renew_token(&server, id, config).await?,
        };
        match logout_with(&server, id, &token).await {
            Err(ApiError::Unauthorized) => {
                let token = self.renew_token(&server, id, config).await?;
                logout_with(&server, id, &token).await
            }
            other => other,
        }
    }

    /// Forgets a session here, without telling the server: its token, its tab binding and
    /// its index entry, and from then on no write may bring any of them back.
    pub(crate) async fn forget(
        &self,
        id: &SessionId,
    ) -> Result<(), crate::core::store::StoreError> {
        self.mark_forgotten(id, true);
        let removed = self.remove_session(id);
        self.save_index().await;
        let store = self.store();
        if let Some(tab) = removed.as_ref().and_then(|l| l.tab) {
            store.unbind_tab(tab).await?;
        }
        store.forget_token(id).await
    }

    /// close-session: the server frees the session's browser and keeps its login, so a
    /// restart needs no QR.
    pub(crate) async fn close(self: &Rc<Self>, id: &SessionId) {
        let settings = self.load_settings().await;
        if !self.update(id, |l| l.state.claim()).unwrap_or(false) {
            return;
        }
        let result = async {
            let (config, server, token) = self.authed(id, &settings).await?;
            let outcome = match server.close_session(id, &token).await {
                Err(ApiError::Unauthorized) => {
                    let token = self.renew_token(&server, id, config).await?;
                    server.close_session(id, &token).await
                }
                other => other,
            };
            outcome.map(drop)
        }
        .await;
        let now = self.shell.now_ms();
        self.update(id, |l| {
            if result.is_ok() {
                l.state.observe(
                    crate::core::api::StatusReply {
                        status: ServerStatus::Closed,
                        qr: None,
                    },
                    now,
                );
                l.state.closed_by_user();
            }
            l.state.release(result);
        });
        self.observed(id).await;
    }

    /// Starts the session again: a closed one without a QR when its login was kept; a
    /// running one is closed first.
    pub(crate) async fn restart(self: &Rc<Self>, id: &SessionId) {
        let now = self.shell.now_ms();
        let running = self.read(id, |l| {
            matches!(
                l.state.phase(now),
                Phase::Connected | Phase::QrCode | Phase::PhoneCode | Phase::Initializing
            )
        });
        if running == Some(true) {
            self.close(id).await;
        }
        self.pair(id).await;
    }

    /// One `status-session` for the session, with a fresh token when the last one was
    /// refused or none was minted in this browser session (after a restart): generate-token
    /// has no side effect, so the session recovers once the server accepts it again.
    pub(crate) async fn refresh(self: &Rc<Self>, id: &SessionId) {
        let settings = self.load_settings().await;
        let Some((server_id, renew)) =
            self.read(id, |l| (l.entry.server.clone(), l.state.needs_new_token()))
        else {
            return;
        };
        let Ok(config) = usable_server(&settings, &server_id) else {
            return;
        };
        let server = self.server(&config.server_url);
        let now = self.shell.now_ms();
        self.update(id, |l| l.checked_at = now);
        let result = async {
            let token = match self.store().token(id).await? {
                Some(token) if !renew => token,
                _ => self.renew_token(&server, id, config).await?,
            };
            server.status_session(id, &token).await
        }
        .await;
        let now = self.shell.now_ms();
        self.update(id, |l| match result {
            Ok(status) => l.state.observe(status, now),
            Err(err) => l.state.fail(err),
        });
        self.observed(id).await;
    }

    /// After the server said something about a session (or a request about it failed): the
    /// index records it (status, connected time, error), a drop is counted and notified once,
    /// and a connected account is read once.
    async fn observed(self: &Rc<Self>, id: &SessionId) {
        let now = self.shell.now_ms();
        let settings = self.settings();
        let verdict = self.read(id, |l| {
            let was_connected = l.entry.last_status == Some(ServerStatus::Connected);
            let phase = l.state.phase(now);
            let down = matches!(
                l.state.error,
                Some(ApiError::Unreachable | ApiError::Timeout)
            );
            let dropped = was_connected
                && (down || (l.state.error.is_none() && phase != Phase::Connected))
                && !l.state.was_closed_by_user();
            let connected = phase == Phase::Connected && l.state.error.is_none();
            (dropped, down, connected, l.account_read)
        });
        let Some((dropped, down, connected, account_read)) = verdict else {
            return;
        };
        if dropped {
            self.dropped(id, down, &settings);
        }
        if connected {
            self.update(id, |l| l.entry.drop_notified = false);
        }
        self.save_status(id).await;
        if connected && !account_read {
            self.update(id, |l| l.account_read = true);
            let worker = Rc::clone(self);
            let id = id.clone();
            self.shell
                .spawn(Box::pin(async move { worker.read_account(&id).await }));
        }
    }

    /// A connected account dropped: counted once per drop, and one notification per drop,
    /// naming the account, when the user wants them.
    fn dropped(&self, id: &SessionId, server_down: bool, settings: &Settings) {
        let Some((label, account, notified, server)) = self.read(id, |l| {
            (
                l.entry.label.as_str().to_owned(),
                l.entry.account.clone(),
                l.entry.drop_notified,
                l.entry.server.clone(),
            )
        }) else {
            return;
        };
        if notified {
            return;
        }
        let now = self.shell.now_ms();
        // Saved with the status, just after: a drop always changes the status or the error.
        self.update(id, |l| l.entry.record_drop(now));
        if settings.notify_drops {
            self.notify_drop(id, &label, account.as_ref(), &server, server_down, settings);
        }
    }

    fn notify_drop(
        &self,
        id: &SessionId,
        label: &str,
        account: Option<&Account>,
        server: &ServerId,
        server_down: bool,
        settings: &Settings,
    ) {
        let who = match account {
            Some(account) => format!("{label}: {}", account.display()),
            None => label.to_owned(),
        };
        let server_name = settings.server(server).map(|s| s.name.clone());
        let message = match (server_down, server_name) {
            (true, Some(name)) => Text::new("notify_drop_server_down").arg(who).arg(name),
            (true, None) => Text::new("notify_drop_its_server_down").arg(who),
            (false, _) => Text::new("notify_drop_unlinked").arg(who),
        };
        self.shell.notify(&Notice {
            id: format!("{DROP_NOTIFICATION_PREFIX}{id}"),
            title: Text::new("notify_drop_title"),
            message,
        });
    }

    /// Reads the account of a connected session: host-device, or get-phone-number when the
    /// first fails. A failure leaves it unread, to try on the next connection.
    async fn read_account(&self, id: &SessionId) {
        let settings = self.settings();
        let Ok((_, server, token)) = self.authed(id, &settings).await else {
            return;
        };
        let account = match server.host_device(id, &token).await {
            Ok(account) => Ok(account),
            Err(_) => server.phone_number(id, &token).await,
        };
        let now = self.shell.now_ms();
        match account {
            Ok(account) => {
                self.update(id, |l| {
                    l.entry.account = Some(account);
                    l.entry.updated_at = now;
                });
                if !self.is_forgotten(id) {
                    self.save_index().await;
                }
            }
            Err(err) => {
                self.update(id, |l| l.account_read = false);
                self.warn(&format!("could not read the account: {err}"));
            }
        }
    }

    /// Polls fast while a popup watches a session that is pairing; stops by itself otherwise.
    pub(crate) fn ensure_polling(self: &Rc<Self>, id: &SessionId) {
        let watched = self.watched(id);
        let now = self.shell.now_ms();
        let start = self.update(id, |l| {
            let start = watched && !l.polling && l.state.poll_delay_ms(now).is_some();
            l.polling |= start;
            start
        });
        if start == Some(true) {
            let worker = Rc::clone(self);
            let id = id.clone();
            self.shell
                .spawn(Box::pin(async move { worker.poll_loop(id).await }));
        }
    }

    async fn poll_loop(self: Rc<Self>, id: SessionId) {
        loop {
            let now = self.shell.now_ms();
            let watched = self.watched(&id);
            // Deciding to stop and clearing the flag happen together, so a concurrent
            // `ensure_polling` either sees the loop running or starts a new one.
            let delay = self.update(&id, |l| {
                let delay = l.state.poll_delay_ms(now).filter(|_| watched);
                l.polling = delay.is_some();
                delay
            });
            let Some(Some(delay)) = delay else { return };
            self.shell.sleep(delay).await;
            match self.read(&id, |l| l.state.is_busy()) {
                Some(true) => continue,
                // A live push connection brings QRs and logins: only a safety check is due.
                // The view may still change with time alone (a start turning stuck).
                Some(false) if self.push_covers(&id) => self.render(&id),
                Some(false) if self.watched(&id) => self.refresh(&id).await,
                Some(false) => continue,
                None => return,
            }
        }
    }

    // ---- helpers ----

    /// The settings as stored (defaults when none), cached for the views. A remembered
    /// secret key whose time is up (by this worker's clock) is forgotten here, on every read.
    pub(crate) async fn load_settings(&self) -> Settings {
        let settings = match self.store().settings().await {
            Ok(settings) => {
                let mut settings = settings.unwrap_or_default();
                let now = self.shell.now_ms();
                let expired = crate::core::lock::expire_remembered(&mut settings, now);
                if !expired.is_empty() {
                    let ids: Vec<&str> = expired.iter().map(ServerId::as_str).collect();
                    self.warn(&format!(
                        "the remembered secret key of server {} expired: asked for again",
                        ids.join(", ")
                    ));
                    if let Err(err) = self.store().save_settings(&settings).await {
                        self.storage_failed(&err);
                    }
                }
                settings
            }
            Err(err) => {
                self.storage_failed(&err);
                self.settings()
            }
        };
        self.cache_settings(settings.clone());
        settings
    }

    /// What the settings allow for the session's server.
    fn verdict_of(&self, id: &SessionId) -> SettingsVerdict {
        let settings = self.settings();
        self.read(id, |l| {
            settings
                .server(&l.entry.server)
                .map_or(SettingsVerdict::Missing, SettingsVerdict::of)
        })
        .unwrap_or_default()
    }

    /// The session's server and a token for it (minted when this browser session has none).
    async fn authed<'a>(
        &'a self,
        id: &SessionId,
        settings: &'a Settings,
    ) -> Result<(&'a ServerConfig, impl Server + 'a, Token), ApiError> {
        let server_id = self
            .read(id, |l| l.entry.server.clone())
            .ok_or_else(vanished)?;
        let config = usable_server(settings, &server_id)?;
        let server = self.server(&config.server_url);
        let token = match self.store().token(id).await? {
            Some(token) => token,
            None => self.renew_token(&server, id, config).await?,
        };
        Ok((config, server, token))
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

    /// A fresh token, minted with the secret of the session's own server and no other.
    async fn renew_token(
        &self,
        server: &impl Server,
        id: &SessionId,
        config: &ServerConfig,
    ) -> Result<Token, ApiError> {
        let secret = config.secret_key.as_ref().ok_or(ApiError::WrongSecret)?;
        self.mint(server, id, secret).await
    }

    /// A warning: on the console, and in the diagnostics log, where a user can see it.
    pub(crate) fn warn(&self, message: &str) {
        self.shell.warn(&format!("wpp-tabs: {message}"));
        let kind = crate::core::diagnostics::EventKind::Warning;
        self.log_event(kind, None, None, message);
    }
}

/// Runs both futures until one ends (`Ok`: `a`'s output, `Err`: `b`'s); the other is dropped.
async fn first_of<A: Future, B: Future>(a: A, b: B) -> Result<A::Output, B::Output> {
    let (mut a, mut b) = (std::pin::pin!(a), std::pin::pin!(b));
    std::future::poll_fn(|cx| match a.as_mut().poll(cx) {
        Poll::Ready(out) => Poll::Ready(Ok(out)),
        Poll::Pending => b.as_mut().poll(cx).map(Err),
    })
    .await
}

fn vanished() -> ApiError {
    ApiError::Storage("the session vanished".into())
}

/// The session's server, when the settings still have it and allow requests to it.
fn usable_server<'s>(settings: &'s Settings, id: &ServerId) -> Result<&'s ServerConfig, ApiError> {
    let config = settings.server(id).ok_or_else(|| ApiError::Server {
        status: 0,
        message: "this session's server was removed from the settings".into(),
    })?;
    match SettingsVerdict::of(config) {
        SettingsVerdict::Missing => Err(ApiError::WrongSecret),
        SettingsVerdict::Locked => Err(ApiError::Server {
            status: 0,
            message: "this server's secret key is locked: enter its passphrase".into(),
        }),
        SettingsVerdict::InsecureRefused => Err(ApiError::Server {
            status: 0,
            message: "plain http:// to another computer is not allowed for this server".into(),
        }),
        SettingsVerdict::InsecureAllowed | SettingsVerdict::Ready => Ok(config),
    }
}

/// logout-session, or close-session when the server only logs out connected sessions.
async fn logout_with(server: &impl Server, id: &SessionId, token: &Token) -> Result<(), ApiError> {
    match server.logout_session(id, token).await? {
        LogoutOutcome::LoggedOut => Ok(()),
        LogoutOutcome::NotConnected => server.close_session(id, token).await.map(drop),
    }
}
