//! One tab's session as the worker follows it: what the server said, what the user can do
//! next, how soon to ask again, and the view the popup renders. Pure: time comes in as ms.

use crate::core::api::{Account, ApiError, PairingCode, PairingPhone, StatusReply};
use crate::core::index::Colour;
use crate::core::messages::SessionRow;
use crate::core::session_id::SessionId;
use crate::core::settings::ServerId;
use crate::core::status::ServerStatus;
use crate::core::text::Text;
use crate::core::timings::Timings;
use serde::{Deserialize, Serialize};

/// The worker's reading of a session, richer than the server status.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Phase {
    /// No session started from this tab yet.
    NotStarted,
    Starting,
    Initializing,
    /// INITIALIZING for longer than [`Timings::stuck_after_ms`].
    Stuck,
    QrCode,
    PhoneCode,
    Connected,
    /// The QR or pairing code went unused and the server closed the session.
    Expired,
    Closed,
}

/// What the popup's `#pair` button does next.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum PairAction {
    Start,
    RefreshQr,
    Restart,
    Retry,
    /// The pairing code expired: ask for a new one, for the same number.
    NewCode,
}

impl PairAction {
    pub fn label(self) -> Text {
        Text::new(match self {
            PairAction::Start => "popup_pair_start",
            PairAction::RefreshQr => "popup_pair_refresh_qr",
            PairAction::Restart => "popup_pair_restart",
            PairAction::Retry => "popup_pair_retry",
            PairAction::NewCode => "popup_pair_new_code",
        })
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ViewError {
    pub code: String,
    pub message: Text,
}

impl From<&ApiError> for ViewError {
    fn from(err: &ApiError) -> Self {
        ViewError {
            code: err.code().to_owned(),
            message: err.text(),
        }
    }
}

/// What the toolbar badge of a tab shows.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Badge {
    /// The catalogue key of its text; `None`: no text.
    pub text: Option<&'static str>,
    /// CSS colour.
    pub color: &'static str,
}

/// What opening a popup on a tab leads to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OnSubscribe {
    /// Nothing ever started and nothing failed: start pairing at once.
    StartPairing,
    /// A session exists: ask the server how it is now.
    Refresh,
    /// Wait for the user (settings missing, or the last attempt failed).
    Wait,
}

/// Pairing by phone number, which the user chose over the QR: the number, and the code the
/// server gave for it. Kept in memory only: the code is good for a minute.
#[derive(Clone, Debug, PartialEq)]
pub struct PhonePairing {
    pub phone: PairingPhone,
    pub code: Option<PairingCode>,
    /// When the code arrived (ms).
    pub code_at: Option<f64>,
}

impl PhonePairing {
    fn new(phone: PairingPhone) -> Self {
        PhonePairing {
            phone,
            code: None,
            code_at: None,
        }
    }
}

/// A pairing request that changes how the session pairs.
#[derive(Clone, Debug, PartialEq)]
pub enum Switch {
    ToPhone(PairingPhone),
    ToQr,
}

/// What pairing does before its start-session, decided when the request claims the session.
#[derive(Clone, Debug, PartialEq)]
pub struct PairPlan {
    /// The session runs on the server, which would not switch it: close it first. A close
    /// answered as a placeholder's (500) leaves the name to a leaked browser holding its
    /// profile, so the session then goes on under a fresh name (§2.5).
    pub close_first: bool,
    /// Go on under a fresh name, whatever the close answered: the server answers a pairing
    /// code only to a session it has no entry for, and after a close its events name none
    /// (§2.1, §2.5, §4).
    pub fresh_name: bool,
    /// Pair by this number, not by QR.
    pub phone: Option<PairingPhone>,
}

/// Live state of one session. Rebuilt from the stored record when the worker restarts.
#[derive(Clone, Debug, PartialEq)]
pub struct SessionState {
    /// The server's last word; `None` before the first start.
    pub status: Option<ServerStatus>,
    pub qr: Option<String>,
    pub error: Option<ApiError>,
    /// When start-session was last sent (ms).
    started_at: Option<f64>,
    /// Since when the server has said INITIALIZING (ms).
    initializing_since: Option<f64>,
    /// A QR or pairing code was offered since the last start, so CLOSED means it expired.
    awaited_scan: bool,
    failures: u32,
    /// A request the user triggered is under way.
    busy: bool,
    /// The user closed it (close-session): CLOSED is then no drop and no expiry.
    closed_by_user: bool,
    /// Pairing by phone number instead of a QR.
    phone: Option<PhonePairing>,
    timings: Timings,
}

impl Default for SessionState {
    fn default() -> Self {
        SessionState::new(Timings::current())
    }
}

impl SessionState {
    pub fn new(timings: Timings) -> Self {
        SessionState {
            status: None,
            qr: None,
            error: None,
            started_at: None,
            initializing_since: None,
            awaited_scan: false,
            failures: 0,
            busy: false,
            closed_by_user: false,
            phone: None,
            timings,
        }
    }

    /// After a worker restart: the last status stored in the session record.
    pub fn restored(last_status: Option<ServerStatus>, timings: Timings) -> Self {
        SessionState {
            status: last_status,
            awaited_scan: matches!(
                last_status,
                Some(ServerStatus::QrCode | ServerStatus::PhoneCode)
            ),
            ..SessionState::new(timings)
        }
    }

    /// Claims the session for a request the user triggered; `false` if one is under way.
    pub fn claim(&mut self) -> bool {
        !std::mem::replace(&mut self.busy, true)
    }

    /// The user's request ended, with `result`.
    pub fn release(&mut self, result: Result<(), ApiError>) {
        self.busy = false;
        if let Err(err) = result {
            self.fail(err);
        }
    }

    pub fn is_busy(&self) -> bool {
        self.busy
    }

    /// Claims the session for pairing, switched to phone or QR if asked, and says what the
    /// pairing does; `None` when a request is under way, or when asked to switch a connected
    /// session (that would drop its account).
    pub fn claim_pairing(&mut self, switch: Option<Switch>, now: f64) -> Option<PairPlan> {
        let phase = self.phase(now);
        if (switch.is_some() && phase == Phase::Connected) || !self.claim() {
            return None;
        }
        let running = matches!(
            phase,
            Phase::Starting | Phase::Initializing | Phase::Stuck | Phase::QrCode | Phase::PhoneCode
        );
        let by_phone = self.phone.is_some() || phase == Phase::PhoneCode;
        let (close_first, fresh_name) = match switch {
            Some(Switch::ToPhone(phone)) => {
                self.phone = Some(PhonePairing::new(phone));
                (running, true)
            }
            // A start by phone may run on the server even when it failed here.
            Some(Switch::ToQr) => {
                self.phone = None;
                let leaving = by_phone && !matches!(phase, Phase::Expired | Phase::Closed);
                (leaving, false)
            }
            None if self.phone.is_some() => (running, true),
            None => (phase == Phase::Stuck, false),
        };
        Some(PairPlan {
            close_first,
            fresh_name,
            phone: self.phone.as_ref().map(|p| p.phone.clone()),
        })
    }

    /// The state of the session under a fresh name: nothing known yet, claimed by the request
    /// under way, pairing the same way.
    pub fn renamed(&self) -> SessionState {
        let mut state = SessionState::new(self.timings);
        state.busy = true;
        state.phone = self
            .phone
            .as_ref()
            .map(|p| PhonePairing::new(p.phone.clone()));
        state
    }

    pub fn phone_pairing(&self) -> Option<&PhonePairing> {
        self.phone.as_ref()
    }

    /// A pairing code came (start-session's answer, or the `phoneCode` event): the session
    /// is in PHONECODE. `false` if it is not pairing by phone. The first arrival of a code
    /// dates it; the same code again changes nothing.
    pub fn code_arrived(&mut self, code: PairingCode, now: f64) -> bool {
        if self.phone.is_none() {
            return false;
        }
        if self.status != Some(ServerStatus::PhoneCode) {
            let reply = StatusReply {
                status: ServerStatus::PhoneCode,
                qr: None,
            };
            self.observe(reply, now);
        }
        if let Some(pairing) = self.phone.as_mut() {
            if pairing.code.as_ref() != Some(&code) {
                pairing.code = Some(code);
                pairing.code_at = Some(now);
            }
        }
        true
    }

    /// The code to show: only while the status is PHONECODE.
    pub fn phone_code(&self) -> Option<&PairingCode> {
        let pairing = self.phone.as_ref()?;
        pairing
            .code
            .as_ref()
            .filter(|_| self.status == Some(ServerStatus::PhoneCode))
    }

    /// When the shown code stops working, by the library's autoClose.
    pub fn phone_code_expires_at(&self) -> Option<f64> {
        self.phone_code()?;
        let at = self.phone.as_ref()?.code_at?;
        Some(at + self.timings.phone_code_valid_ms)
    }

    /// What a popup opening on this session leads to.
    pub fn on_subscribe(&self, now: f64, settings_ready: bool) -> OnSubscribe {
        match self.phase(now) {
            Phase::NotStarted if self.error.is_none() && settings_ready => {
                OnSubscribe::StartPairing
            }
            Phase::NotStarted => OnSubscribe::Wait,
            _ => OnSubscribe::Refresh,
        }
    }

    /// start-session was just sent.
    pub fn starting(&mut self, now: f64) {
        self.started_at = Some(now);
        self.awaited_scan = false;
        self.closed_by_user = false;
        self.initializing_since = None;
        self.error = None;
        if let Some(pairing) = self.phone.as_mut() {
            pairing.code = None;
            pairing.code_at = None;
        }
    }

    /// A status reply arrived (from start-session or status-session).
    pub fn observe(&mut self, reply: StatusReply, now: f64) {
        let status = reply.status;
        match status {
            ServerStatus::Initializing => {
                if self.status != Some(ServerStatus::Initializing)
                    || self.initializing_since.is_none()
                {
                    self.initializing_since = Some(now);
                }
            }
            ServerStatus::QrCode | ServerStatus::PhoneCode => {
                self.awaited_scan = true;
                self.initializing_since = None;
            }
            // Paired: a later pairing starts with the QR again.
            ServerStatus::Connected => {
                self.initializing_since = None;
                self.phone = None;
            }
            ServerStatus::Closed => self.initializing_since = None,
        }
        self.status = Some(status);
        self.qr = reply.qr.filter(|_| status == ServerStatus::QrCode);
        self.error = None;
        self.failures = 0;
    }

    /// start-session failed: nothing started, so the session is not "starting". Otherwise a
    /// status check would read the server's CLOSED for it as a start in progress, clear the
    /// error and hide "Try again" until the start grace ran out.
    pub fn start_failed(&mut self) {
        self.started_at = None;
    }

    /// The user closed the session on the server (its login kept).
    pub fn closed_by_user(&mut self) {
        self.closed_by_user = true;
        self.awaited_scan = false;
        self.started_at = None;
    }

    pub fn was_closed_by_user(&self) -> bool {
        self.closed_by_user
    }

    /// A request failed. Nothing already known is forgotten: the last status and QR stay.
    pub fn fail(&mut self, err: ApiError) {
        self.error = Some(err);
        self.failures = self.failures.saturating_add(1);
    }

    pub fn phase(&self, now: f64) -> Phase {
        let since_start = self.started_at.map(|t| now - t);
        match self.status {
            None if self.started_at.is_some() => Phase::Starting,
            None => Phase::NotStarted,
            Some(ServerStatus::Initializing) => match self.initializing_since {
                Some(since) if now - since > self.timings.stuck_after_ms => Phase::Stuck,
                _ => Phase::Initializing,
            },
            Some(ServerStatus::QrCode) => Phase::QrCode,
            Some(ServerStatus::PhoneCode) => Phase::PhoneCode,
            Some(ServerStatus::Connected) => Phase::Connected,
            Some(ServerStatus::Closed) if self.awaited_scan => Phase::Expired,
            Some(ServerStatus::Closed)
                if since_start.is_some_and(|d| d < self.timings.start_grace_ms) =>
            {
                Phase::Starting
            }
            Some(ServerStatus::Closed) => Phase::Closed,
        }
    }

    /// The next thing the user can ask for, if any.
    pub fn action(&self, now: f64) -> Option<PairAction> {
        if self.busy {
            return None;
        }
        let phase = self.phase(now);
        match (&self.error, phase) {
            (Some(_), Phase::NotStarted | Phase::Starting) => Some(PairAction::Retry),
            (Some(ApiError::Unauthorized | ApiError::WrongSecret), _) => Some(PairAction::Retry),
            (_, Phase::NotStarted | Phase::Closed) => Some(PairAction::Start),
            (_, Phase::Expired) if self.phone.is_some() => Some(PairAction::NewCode),
            (_, Phase::Expired) => Some(PairAction::RefreshQr),
            (_, Phase::Stuck) => Some(PairAction::Restart),
            _ => None,
        }
    }

    /// Whether pairing needs a fresh token first: none yet, or the server refused it.
    pub fn needs_new_token(&self) -> bool {
        matches!(
            self.error,
            Some(ApiError::Unauthorized | ApiError::WrongSecret)
        )
    }

    /// How long until the next status poll while a popup watches; `None`: no fast polling.
    pub fn poll_delay_ms(&self, now: f64) -> Option<u32> {
        let phase = self.phase(now);
        let pairing = matches!(
            phase,
            Phase::Starting | Phase::Initializing | Phase::Stuck | Phase::QrCode | Phase::PhoneCode
        );
        // A refused secret will not start working by itself: wait for the user. A refused
        // token is replaced before the next poll, so polling goes on.
        if !pairing || matches!(self.error, Some(ApiError::WrongSecret)) {
            return None;
        }
        let base = match phase {
            Phase::Starting => self.timings.starting_poll_ms,
            _ => self.timings.fast_poll_ms,
        };
        let backoff = base.saturating_mul(1 << self.failures.min(4));
        Some(backoff.min(self.timings.max_backoff_ms))
    }

    pub fn badge(&self, now: f64) -> Badge {
        const GREY: &str = "#6b7280";
        if self.error.is_some() {
            return Badge {
                text: Some("badge_error"),
                color: "#dc2626",
            };
        }
        match self.phase(now) {
            Phase::NotStarted => Badge {
                text: None,
                color: GREY,
            },
            Phase::Starting | Phase::Initializing => Badge {
                text: Some("badge_busy"),
                color: GREY,
            },
            Phase::Stuck => Badge {
                text: Some("badge_error"),
                color: "#dc2626",
            },
            Phase::QrCode => Badge {
                text: Some("badge_qr"),
                color: "#d97706",
            },
            Phase::PhoneCode => Badge {
                text: Some("badge_pin"),
                color: "#d97706",
            },
            Phase::Connected => Badge {
                text: Some("badge_on"),
                color: "#16a34a",
            },
            Phase::Expired | Phase::Closed => Badge {
                text: Some("badge_off"),
                color: GREY,
            },
        }
    }

    pub fn view(&self, session_id: Option<&SessionId>, now: f64) -> TabView {
        let phase = self.phase(now);
        let by_phone = self.phone.is_some();
        let status_text = match phase {
            Phase::NotStarted => Text::new("status_not_paired"),
            Phase::Starting if by_phone => Text::new("status_asking_code"),
            Phase::Starting => Text::new("status_starting"),
            Phase::Stuck => Text::new("status_stuck"),
            Phase::Expired if by_phone => Text::new("status_code_expired"),
            Phase::Expired => Text::new("status_qr_expired"),
            Phase::Closed => Text::new("status_session_closed"),
            // Each of these phases is the server status of its name.
            Phase::Initializing => ServerStatus::Initializing.describe(),
            Phase::QrCode => ServerStatus::QrCode.describe(),
            Phase::PhoneCode => ServerStatus::PhoneCode.describe(),
            Phase::Connected => ServerStatus::Connected.describe(),
        };
        let action = self.action(now);
        let mut error = self.error.as_ref().map(ViewError::from);
        if let (Some(err), Some(pairing)) = (error.as_mut(), &self.phone) {
            if self.error == Some(ApiError::Timeout) && pairing.code.is_none() {
                err.message =
                    Text::new("error_no_pairing_code").arg(self.timings.phone_code_wait_ms / 1_000);
            }
        }
        let pairing = !self.busy && phase != Phase::Connected;
        let code_unknown = phase == Phase::PhoneCode && self.phone_code().is_none();
        TabView {
            session_id: session_id.cloned(),
            status: self.status,
            phase,
            status_text,
            qr: self
                .qr
                .clone()
                .filter(|_| self.status == Some(ServerStatus::QrCode)),
            action,
            action_label: action.map(PairAction::label),
            error,
            can_pair_by_phone: pairing
                && (action.is_some() || phase == Phase::QrCode || code_unknown),
            can_pair_by_qr: pairing && (by_phone || phase == Phase::PhoneCode),
            pairing_phone: self.phone.as_ref().map(|p| p.phone.clone()),
            phone_code: self.phone_code().cloned(),
            phone_code_expires_at: self.phone_code_expires_at(),
            needs_settings: false,
            insecure_server: false,
            busy: self.busy,
            label: None,
            colour: None,
            account: None,
            server_name: None,
            attachable: Vec::new(),
            servers: Vec::new(),
            default_server: None,
            unlock: None,
        }
    }
}

/// Everything the popup shows for a tab; the popup renders it and nothing else.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TabView {
    pub session_id: Option<SessionId>,
    /// The server's last word; `None` before it said anything about the session.
    pub status: Option<ServerStatus>,
    pub phase: Phase,
    pub status_text: Text,
    /// A PNG data URL, only while the status is QRCODE.
    pub qr: Option<String>,
    pub action: Option<PairAction>,
    pub action_label: Option<Text>,
    pub error: Option<ViewError>,
    /// The server URL or secret is not set: the popup links to the options page.
    pub needs_settings: bool,
    /// The user allowed plain HTTP to a server on another computer: the popup says so.
    pub insecure_server: bool,
    pub busy: bool,
    /// The session's name and colour, as the user chose them.
    pub label: Option<String>,
    pub colour: Option<Colour>,
    /// The WhatsApp account, once read from the connected session.
    pub account: Option<Account>,
    pub server_name: Option<String>,
    /// A tab without a session: the sessions it can attach instead of pairing a new one.
    pub attachable: Vec<SessionRow>,
    /// A tab without a session, with several servers: where a new one can go.
    pub servers: Vec<(ServerId, String)>,
    pub default_server: Option<ServerId>,
    /// The secret key the tab needs is locked: the popup asks for its passphrase.
    #[serde(default)]
    pub unlock: Option<crate::core::lock::UnlockPrompt>,
    /// "Link with phone number instead" applies: pairing is on offer, or a QR is shown.
    #[serde(default)]
    pub can_pair_by_phone: bool,
    /// Going back to the QR applies: the session pairs by phone.
    #[serde(default)]
    pub can_pair_by_qr: bool,
    /// The number the session pairs by, when the user chose to.
    #[serde(default)]
    pub pairing_phone: Option<PairingPhone>,
    /// The code to type on the phone, only while the status is PHONECODE.
    #[serde(default)]
    pub phone_code: Option<PairingCode>,
    /// When that code stops working (ms since the epoch).
    #[serde(default)]
    pub phone_code_expires_at: Option<f64>,
}

impl TabView {
    /// Every catalogue message the view carries.
    pub fn texts(&self) -> impl Iterator<Item = &Text> {
        let prompt = self.unlock.as_ref().and_then(|u| u.error.as_ref());
        std::iter::once(&self.status_text)
            .chain(&self.action_label)
            .chain(self.error.as_ref().map(|e| &e.message))
            .chain(prompt)
            .chain(self.attachable.iter().flat_map(SessionRow::texts))
    }

    /// What the popup paints from storage before the worker answers: the last known status,
    /// and no action yet (only the worker knows whether one is possible).
    pub fn cached(session_id: &SessionId, last_status: Option<ServerStatus>, now: f64) -> Self {
        let mut view =
            SessionState::restored(last_status, Timings::current()).view(Some(session_id), now);
        view.action = None;
        view.action_label = None;
        view.can_pair_by_phone = false;
        view.can_pair_by_qr = false;
        view
    }

    /// The toolbar button's tooltip: the extension, and the tab's session when it has one.
    pub fn title(&self) -> TabTitle {
        TabTitle {
            session: self.label.as_ref().map(|label| {
                let account = self.account.as_ref().map(Account::display);
                (label.clone(), account, self.status_text.clone())
            }),
        }
    }

    /// Logging out a connected account unlinks it from the phone: the user confirms first.
    pub fn logout_needs_confirmation(&self) -> bool {
        self.phase == Phase::Connected
    }

    /// Whether "Log out" applies: there is a session, and settings to reach its server.
    pub fn can_log_out(&self) -> bool {
        self.session_id.is_some() && !self.needs_settings
    }

    /// A tab whose settings are missing: nothing can start until they are set.
    pub fn needs_settings(session_id: Option<&SessionId>, insecure_url: bool) -> Self {
        let text = match insecure_url {
            true => "status_insecure_url",
            false => "status_needs_settings",
        };
        let mut view = Self::inactive(session_id, Text::new(text));
        view.needs_settings = true;
        view
    }

    /// A popup asked about a tab the browser does not know (closed, or a made-up ID).
    pub fn no_such_tab() -> Self {
        let mut view = Self::inactive(None, Text::new("status_no_tab"));
        view.error = Some(ViewError {
            code: "no-tab".to_owned(),
            message: Text::new("error_tab_closed"),
        });
        view
    }

    /// A never-started session's view with no action to offer.
    fn inactive(session_id: Option<&SessionId>, status_text: Text) -> Self {
        let mut view = SessionState::default().view(session_id, 0.0);
        view.action = None;
        view.action_label = None;
        view.can_pair_by_phone = false;
        view.status_text = status_text;
        view
    }
}

/// The toolbar button's tooltip for a tab: `wpp-tabs`, or `wpp-tabs: <label> · <account> ·
/// <status>` for a tab with a session.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TabTitle {
    /// The session's label, account and status.
    pub session: Option<(String, Option<String>, Text)>,
}

impl TabTitle {
    /// The tooltip, with its status in the language `tr` gives.
    pub fn render(&self, tr: impl Fn(&Text) -> String) -> String {
        let Some((label, account, status)) = &self.session else {
            return "wpp-tabs".to_owned();
        };
        let mut title = format!("wpp-tabs: {label}");
        if let Some(account) = account {
            title.push_str(&format!(" · {account}"));
        }
        title.push_str(&format!(" · {}", tr(status)));
        title
    }
}

/// The session ID as the popup shows it: long IDs keep their start and end.
pub fn display_id(id: &SessionId) -> String {
    const HEAD: usize = 14;
    const TAIL: usize = 6;
    let s = id.as_str();
    if s.len() <= HEAD + TAIL + 1 {
        return s.to_owned();
    }
    format!("{}…{}", &s[..HEAD], &s[s.len() - TAIL..])
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: Timings = Timings::SHIPPED;
    const QR: &str = "data:image/png;base64,iVBORw0K";

    fn reply(status: ServerStatus, qr: Option<&str>) -> StatusReply {
        StatusReply {
            status,
            qr: qr.map(str::to_owned),
        }
    }

    #[test]
    fn a_fresh_session_walks_to_connected() {
        let mut s = SessionState::new(T);
        assert_eq!(s.phase(0.0), Phase::NotStarted);
        assert_eq!(s.action(0.0), Some(PairAction::Start));
        assert_eq!(s.poll_delay_ms(0.0), None);

        s.starting(1_000.0);
        assert_eq!(s.phase(1_000.0), Phase::Starting);
        // start-session's first answer is CLOSED, meaning "starting".
        s.observe(reply(ServerStatus::Closed, None), 1_100.0);
        assert_eq!(s.phase(1_100.0), Phase::Starting);
        assert_eq!(s.poll_delay_ms(1_100.0), Some(T.starting_poll_ms));
        assert_eq!(s.action(1_100.0), None);

        s.observe(reply(ServerStatus::Initializing, None), 3_000.0);
        assert_eq!(s.phase(3_000.0), Phase::Initializing);
        assert_eq!(s.poll_delay_ms(3_000.0), Some(T.fast_poll_ms));
        s.observe(reply(ServerStatus::QrCode, Some(QR)), 5_000.0);
        assert_eq!(s.phase(5_000.0), Phase::QrCode);
        assert_eq!(s.view(None, 5_000.0).qr.as_deref(), Some(QR));
        assert_eq!(s.badge(5_000.0).text, Some("badge_qr"));

        // The server keeps a stale QR after CONNECTED; the view must not show it.
        s.observe(reply(ServerStatus::Connected, Some(QR)), 9_000.0);
        let view = s.view(None, 9_000.0);
        assert_eq!(
            (view.phase, view.qr, view.status),
            (Phase::Connected, None, Some(ServerStatus::Connected))
        );
        assert_eq!(s.poll_delay_ms(9_000.0), None);
        assert_eq!(s.action(9_000.0), None);
        assert_eq!(s.badge(9_000.0).text, Some("badge_on"));
    }

    #[test]
    fn closed_after_a_qr_is_an_expiry_with_a_refresh_action() {
        let mut s = SessionState::new(T);
        s.starting(0.0);
        s.observe(reply(ServerStatus::QrCode, Some(QR)), 1_000.0);
        s.observe(reply(ServerStatus::Closed, Some(QR)), 61_000.0);
        assert_eq!(s.phase(61_000.0), Phase::Expired);
        assert_eq!(s.action(61_000.0), Some(PairAction::RefreshQr));
        assert_eq!(s.view(None, 61_000.0).qr, None);
        assert_eq!(s.poll_delay_ms(61_000.0), None);
        s.starting(62_000.0);
        assert_eq!(s.phase(62_000.0), Phase::Starting);
    }

    #[test]
    fn closed_long_after_a_start_without_a_qr_is_just_closed() {
        let mut s = SessionState::new(T);
        s.starting(0.0);
        s.observe(reply(ServerStatus::Closed, None), T.start_grace_ms + 1.0);
        assert_eq!(s.phase(T.start_grace_ms + 1.0), Phase::Closed);
        assert_eq!(s.action(T.start_grace_ms + 1.0), Some(PairAction::Start));
    }

    #[test]
    fn initializing_for_minutes_is_stuck_with_a_restart_action() {
        let mut s = SessionState::new(T);
        s.starting(0.0);
        s.observe(reply(ServerStatus::Initializing, None), 1_000.0);
        s.observe(reply(ServerStatus::Initializing, None), 100_000.0);
        assert_eq!(s.phase(100_000.0), Phase::Initializing);
        let later = 1_000.0 + T.stuck_after_ms + 1.0;
        s.observe(reply(ServerStatus::Initializing, None), later);
        assert_eq!(s.phase(later), Phase::Stuck);
        assert_eq!(s.action(later), Some(PairAction::Restart));
        assert_eq!(s.badge(later).text, Some("badge_error"));
        assert!(
            s.poll_delay_ms(later).is_some(),
            "keep watching: it may still recover"
        );
    }

    #[test]
    fn failures_keep_the_last_state_and_back_off() {
        let mut s = SessionState::new(T);
        s.starting(0.0);
        s.observe(reply(ServerStatus::QrCode, Some(QR)), 1_000.0);
        s.fail(ApiError::Unreachable);
        let view = s.view(None, 2_000.0);
        assert_eq!(view.status, Some(ServerStatus::QrCode));
        assert_eq!(view.error.as_ref().unwrap().code, "unreachable");
        assert_eq!(s.badge(2_000.0).text, Some("badge_error"));
        assert_eq!(s.poll_delay_ms(2_000.0), Some(2 * T.fast_poll_ms));
        for _ in 0..10 {
            s.fail(ApiError::Timeout);
        }
        assert_eq!(s.poll_delay_ms(2_000.0), Some(T.max_backoff_ms));
        s.observe(reply(ServerStatus::QrCode, Some(QR)), 3_000.0);
        assert_eq!(s.error, None);
        assert_eq!(s.poll_delay_ms(3_000.0), Some(T.fast_poll_ms));
    }

    #[test]
    fn a_refused_token_is_replaced_and_polling_goes_on() {
        let mut s = SessionState::new(T);
        s.starting(0.0);
        s.observe(reply(ServerStatus::QrCode, Some(QR)), 1_000.0);
        s.fail(ApiError::Unauthorized);
        assert!(s.needs_new_token());
        assert_eq!(s.poll_delay_ms(2_000.0), Some(2 * T.fast_poll_ms));
        assert_eq!(s.action(2_000.0), Some(PairAction::Retry));
        s.observe(reply(ServerStatus::QrCode, Some(QR)), 3_000.0);
        assert!(!s.needs_new_token());
    }

    #[test]
    fn a_refused_secret_stops_polling_until_the_user_acts() {
        let mut s = SessionState::new(T);
        s.starting(0.0);
        s.observe(reply(ServerStatus::QrCode, Some(QR)), 1_000.0);
        s.fail(ApiError::WrongSecret);
        assert!(s.needs_new_token());
        assert_eq!(s.poll_delay_ms(2_000.0), None);
        assert_eq!(s.action(2_000.0), Some(PairAction::Retry));
    }

    #[test]
    fn a_failed_first_start_offers_retry() {
        let mut s = SessionState::new(T);
        s.fail(ApiError::WrongSecret);
        assert_eq!(s.action(0.0), Some(PairAction::Retry));
        assert!(s.claim());
        assert_eq!(s.action(0.0), None, "no second click while busy");
        assert!(!s.claim(), "a second request waits for the first");
        s.release(Err(ApiError::Timeout));
        assert_eq!(s.action(0.0), Some(PairAction::Retry));
        assert_eq!(s.error, Some(ApiError::Timeout));
    }

    #[test]
    fn restored_state_remembers_a_pending_qr_as_awaiting_a_scan() {
        let s = SessionState::restored(Some(ServerStatus::QrCode), T);
        assert_eq!(s.phase(0.0), Phase::QrCode);
        assert_eq!(
            s.view(None, 0.0).qr,
            None,
            "the QR comes from the next poll"
        );
        let mut s = s;
        s.observe(reply(ServerStatus::Closed, None), 1.0);
        assert_eq!(s.phase(1.0), Phase::Expired);
        assert_eq!(
            SessionState::restored(None, T).phase(0.0),
            Phase::NotStarted
        );
    }

    #[test]
    fn view_serializes_with_the_fields_the_popup_reads() {
        let id = SessionId::parse("session_abc_def").unwrap();
        let view = SessionState::new(T).view(Some(&id), 0.0);
        let json = serde_json::to_value(&view).unwrap();
        assert_eq!(json["sessionId"], "session_abc_def");
        assert_eq!(json["status"], serde_json::Value::Null);
        assert_eq!(json["phase"], "notStarted");
        assert_eq!(json["action"], "start");
        assert_eq!(serde_json::from_value::<TabView>(json).unwrap(), view);
        let needs = TabView::needs_settings(Some(&id), false);
        assert!(needs.needs_settings && needs.action.is_none());
        assert!(!needs.can_log_out());
        assert!(view.can_log_out());
        let cached = TabView::cached(&id, Some(ServerStatus::Closed), 0.0);
        assert_eq!(
            (cached.action, cached.status),
            (None, Some(ServerStatus::Closed))
        );
        let gone = TabView::no_such_tab();
        assert_eq!((gone.session_id, gone.action), (None, None));
        assert_eq!(gone.error.unwrap().code, "no-tab");
    }

    #[test]
    fn subscribing_starts_pairing_only_for_a_fresh_session_with_settings() {
        let fresh = SessionState::new(T);
        assert_eq!(fresh.on_subscribe(0.0, true), OnSubscribe::StartPairing);
        assert_eq!(fresh.on_subscribe(0.0, false), OnSubscribe::Wait);
        let mut failed = SessionState::new(T);
        failed.fail(ApiError::WrongSecret);
        assert_eq!(failed.on_subscribe(0.0, true), OnSubscribe::Wait);
        let restored = SessionState::restored(Some(ServerStatus::Connected), T);
        assert_eq!(restored.on_subscribe(0.0, true), OnSubscribe::Refresh);
        assert_eq!(restored.on_subscribe(0.0, false), OnSubscribe::Refresh);
    }

    #[test]
    fn the_test_timings_call_a_session_stuck_within_seconds() {
        let mut s = SessionState::new(Timings::TEST);
        s.starting(0.0);
        s.observe(reply(ServerStatus::Initializing, None), 100.0);
        let later = 100.0 + Timings::TEST.stuck_after_ms + 1.0;
        assert_eq!(s.phase(later), Phase::Stuck);
        const { assert!(Timings::TEST.stuck_after_ms < 10_000.0) };
    }

    fn phone() -> PairingPhone {
        PairingPhone::parse("5521999999999").unwrap()
    }

    fn code(raw: &str) -> PairingCode {
        PairingCode::parse(raw).unwrap()
    }

    #[test]
    fn a_phone_code_shows_while_phonecode_and_its_expiry_offers_a_new_one() {
        let mut s = SessionState::new(T);
        s.starting(0.0);
        s.observe(reply(ServerStatus::QrCode, Some(QR)), 1_000.0);
        assert!(
            s.view(None, 1_000.0).can_pair_by_phone,
            "offered beside the QR"
        );
        let plan = s
            .claim_pairing(Some(Switch::ToPhone(phone())), 2_000.0)
            .unwrap();
        assert_eq!(
            plan,
            PairPlan {
                close_first: true,
                fresh_name: true,
                phone: Some(phone())
            }
        );
        let mut s = s.renamed();
        assert!(s.is_busy() && s.phone_pairing().is_some());
        s.starting(3_000.0);
        assert_eq!(
            s.view(None, 3_000.0).status_text.english(),
            "Asking the server for a pairing code…"
        );
        assert!(s.code_arrived(code("ABCD-1234"), 4_000.0));
        s.release(Ok(()));
        let view = s.view(None, 4_000.0);
        assert_eq!(view.phase, Phase::PhoneCode);
        assert_eq!(
            view.phone_code
                .as_ref()
                .map(PairingCode::display)
                .as_deref(),
            Some("ABCD-1234")
        );
        assert_eq!(
            view.phone_code_expires_at,
            Some(4_000.0 + T.phone_code_valid_ms)
        );
        assert_eq!(view.pairing_phone, Some(phone()));
        assert!(view.can_pair_by_qr && !view.can_pair_by_phone && view.action.is_none());
        assert_eq!(s.badge(4_000.0).text, Some("badge_pin"));
        assert_eq!(s.poll_delay_ms(4_000.0), Some(T.fast_poll_ms));
        // The same code again (the event after the answer) keeps its date.
        s.code_arrived(code("ABCD1234"), 5_000.0);
        assert_eq!(s.phone_pairing().unwrap().code_at, Some(4_000.0));

        s.observe(reply(ServerStatus::Closed, None), 64_000.0);
        let view = s.view(None, 64_000.0);
        assert_eq!((view.phase, view.phone_code), (Phase::Expired, None));
        assert_eq!(view.action, Some(PairAction::NewCode));
        assert_eq!(
            view.action_label.map(|l| l.english()).as_deref(),
            Some("Get a new code")
        );
        assert_eq!(view.status_text.english(), "The pairing code expired");
        let plan = s.claim_pairing(None, 65_000.0).unwrap();
        assert_eq!((plan.close_first, plan.fresh_name), (false, true));
        assert_eq!(plan.phone, Some(phone()));
    }

    /// Pairing by phone, its code shown (arrived at 1 ms), the start released.
    fn showing_a_code() -> SessionState {
        let mut s = SessionState::new(T);
        s.claim_pairing(Some(Switch::ToPhone(phone())), 0.0)
            .unwrap();
        s.starting(0.0);
        s.code_arrived(code("ABCD1234"), 1.0);
        s.release(Ok(()));
        s
    }

    #[test]
    fn connecting_ends_pairing_by_phone_and_a_connected_session_is_not_switched() {
        let mut s = showing_a_code();
        s.observe(reply(ServerStatus::Connected, None), 2.0);
        let view = s.view(None, 2.0);
        assert_eq!((view.phone_code, view.pairing_phone), (None, None));
        assert!(!view.can_pair_by_phone && !view.can_pair_by_qr);
        assert_eq!(s.claim_pairing(Some(Switch::ToPhone(phone())), 3.0), None);
        assert_eq!(s.claim_pairing(Some(Switch::ToQr), 3.0), None);
        assert!(!s.is_busy());
        let mut plain = SessionState::new(T);
        assert!(
            !plain.code_arrived(code("ABCD1234"), 0.0),
            "not pairing by phone"
        );
        assert_eq!(plain.status, None);
    }

    #[test]
    fn back_to_the_qr_closes_a_running_phone_start_but_not_an_expired_one() {
        let mut s = showing_a_code();
        let plan = s.claim_pairing(Some(Switch::ToQr), 2.0).unwrap();
        assert_eq!(
            plan,
            PairPlan {
                close_first: true,
                fresh_name: false,
                phone: None
            }
        );
        assert_eq!(s.phone_pairing(), None);
        s.release(Ok(()));
        let mut expired = SessionState::new(T);
        expired
            .claim_pairing(Some(Switch::ToPhone(phone())), 0.0)
            .unwrap();
        expired.starting(0.0);
        expired.code_arrived(code("ABCD1234"), 1.0);
        expired.release(Ok(()));
        expired.observe(reply(ServerStatus::Closed, None), 70_000.0);
        let plan = expired.claim_pairing(Some(Switch::ToQr), 70_001.0).unwrap();
        assert!(!plan.close_first && !plan.fresh_name && plan.phone.is_none());
    }

    #[test]
    fn a_phone_start_that_timed_out_says_so_and_offers_retry() {
        let mut s = SessionState::new(T);
        s.claim_pairing(Some(Switch::ToPhone(phone())), 0.0)
            .unwrap();
        s.starting(0.0);
        s.start_failed();
        s.release(Err(ApiError::Timeout));
        let view = s.view(None, 70_000.0);
        assert_eq!(view.action, Some(PairAction::Retry));
        let error = view.error.unwrap();
        assert_eq!(error.code, "timeout");
        let message = error.message.english();
        assert!(
            message.contains("No pairing code came from the server within 60 s"),
            "{message}"
        );
        assert!(view.can_pair_by_phone && view.can_pair_by_qr);
        let plan = s.claim_pairing(None, 70_001.0).unwrap();
        assert_eq!(
            (plan.close_first, plan.fresh_name, plan.phone),
            (false, true, Some(phone()))
        );
    }

    #[test]
    fn a_restored_phonecode_without_its_code_offers_both_ways_again() {
        let s = SessionState::restored(Some(ServerStatus::PhoneCode), T);
        let view = s.view(None, 0.0);
        assert_eq!(
            (view.phase, view.phone_code, view.action),
            (Phase::PhoneCode, None, None)
        );
        assert!(view.can_pair_by_phone && view.can_pair_by_qr);
        let cached = TabView::cached(
            &SessionId::parse("session_a_b").unwrap(),
            Some(ServerStatus::PhoneCode),
            0.0,
        );
        assert!(!cached.can_pair_by_phone && !cached.can_pair_by_qr);
    }

    #[test]
    fn display_id_keeps_both_ends_of_long_ids() {
        let id = SessionId::generate(1_795_000_000_000, u64::MAX);
        let shown = display_id(&id);
        assert!(shown.contains('…'));
        assert!(id.as_str().starts_with(shown.split('…').next().unwrap()));
        assert!(id.as_str().ends_with(shown.split('…').nth(1).unwrap()));
        let short = SessionId::parse("session_a_b").unwrap();
        assert_eq!(display_id(&short), "session_a_b");
    }
}
