//! Live updates over each server's Socket.IO (contract §4). One connection per server, held
//! only while something needs it: a session of that server starting or pairing, a popup on
//! one of its sessions, or an open Sessions page. While a connection is live, QRs arrive as
//! events and a pairing session is checked only now and then, for a missed event; whenever it
//! is not, polling carries on as before, so nothing depends on the socket.
//!
//! The server broadcasts every session's events to every client, so each event is matched to
//! a session of *this* server by name, and anything else is dropped unseen.

use crate::core::api::StatusReply;
use crate::core::diagnostics::EventKind;
use crate::core::session::Phase;
use crate::core::session_id::SessionId;
use crate::core::settings::ServerId;
use crate::core::socketio::{self, Frame, OpenInfo, PushEvent};
use crate::core::status::ServerStatus;
use crate::core::worker::{SettingsVerdict, Shell, Worker};
use std::collections::{BTreeMap, BTreeSet};
use std::rc::Rc;

/// A connection's handle, shared with the shell.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SocketKey(pub u32);

/// What the shell reports of a connection.
#[derive(Clone, Debug, PartialEq)]
pub enum SocketSignal {
    Opened,
    Text(String),
    /// Closed by the server or the network, or failed to open.
    Closed,
}

/// One server's connection.
#[derive(Debug)]
struct Link {
    key: SocketKey,
    url: String,
    open: Option<OpenInfo>,
    /// The namespace is connected: events flow.
    live: bool,
    /// When the server last sent anything (ms): silence past its ping period means dead.
    heard_at: f64,
}

/// Every server's connection, and the backoff of those that failed.
#[derive(Debug, Default)]
pub(crate) struct Links {
    by_server: BTreeMap<ServerId, Link>,
    failures: BTreeMap<ServerId, u32>,
    retry_at: BTreeMap<ServerId, f64>,
    next_key: u32,
}

/// Phases in which the server announces the next step by an event.
fn pairing(phase: Phase) -> bool {
    matches!(
        phase,
        Phase::Starting | Phase::Initializing | Phase::QrCode | Phase::PhoneCode
    )
}

impl<S: Shell + 'static> Worker<S> {
    /// Whether the session's server has a live connection, the session was checked within
    /// the safety period, and a shown QR is still being replaced by events: then its next
    /// poll is skipped.
    pub(crate) fn push_covers(&self, id: &SessionId) -> bool {
        let now = self.shell.now_ms();
        let state = self.state.borrow();
        let Some(live) = state.sessions.get(id) else {
            return false;
        };
        let link_live = state
            .push
            .by_server
            .get(&live.entry.server)
            .is_some_and(|l| l.live);
        let phase = live.state.phase(now);
        let qr_current = phase != Phase::QrCode
            || now - live.qr_pushed_at < f64::from(self.timings.qr_silence_ms);
        link_live
            && pairing(phase)
            && qr_current
            && now - live.checked_at < f64::from(self.timings.push_safety_poll_ms)
    }

    /// Whether any connection is live (for the views and the tests).
    pub fn push_live(&self, server: &ServerId) -> bool {
        let state = self.state.borrow();
        state.push.by_server.get(server).is_some_and(|l| l.live)
    }

    /// The servers that need a connection now, with their socket URL.
    fn push_wanted(&self) -> BTreeMap<ServerId, String> {
        let now = self.shell.now_ms();
        let watched_tabs = self.watched_tabs();
        let list_open = self.list_watched();
        let settings = self.state.borrow().settings.clone();
        let Some(settings) = settings else {
            return BTreeMap::new();
        };
        let state = self.state.borrow();
        // Inserted, not collected: a collected set sorts first, in code of its own.
        let mut needed: BTreeSet<&ServerId> = BTreeSet::new();
        let watching = state.sessions.values().filter(|l| {
            list_open
                || l.tab.is_some_and(|t| watched_tabs.contains(&t))
                || (l.state.status.is_some() && pairing(l.state.phase(now)))
        });
        for live in watching {
            needed.insert(&live.entry.server);
        }
        let mut wanted = BTreeMap::new();
        for id in needed {
            let Some(config) = settings.server(id) else {
                continue;
            };
            if !SettingsVerdict::of(config).allows_requests() {
                continue;
            }
            if let Some(url) = socketio::socket_url(config.server_url.as_str()) {
                wanted.insert(id.clone(), url);
            }
        }
        wanted
    }

    /// Opens the connections that are needed and not open (unless backing off), and closes
    /// those no longer needed. Called after every render: it is cheap when nothing changes.
    pub(crate) fn reconcile_push(&self) {
        let wanted = self.push_wanted();
        let now = self.shell.now_ms();
        let (mut close, mut open) = (vec![], vec![]);
        {
            let mut state = self.state.borrow_mut();
            let links = &mut state.push;
            links.by_server.retain(|server, link| {
                let keep = wanted.get(server) == Some(&link.url);
                if !keep {
                    close.push(link.key);
                }
                keep
            });
            links
                .failures
                .retain(|server, _| wanted.contains_key(server));
            links
                .retry_at
                .retain(|server, _| wanted.contains_key(server));
            for (server, url) in wanted {
                let waiting = links.retry_at.get(&server).is_some_and(|at| now < *at);
                if links.by_server.contains_key(&server) || waiting {
                    continue;
                }
                links.next_key += 1;
                let key = SocketKey(links.next_key);
                open.push((key, url.clone()));
                links.by_server.insert(
                    server,
                    Link {
                        key,
                        url,
                        open: None,
                        live: false,
                        heard_at: now,
                    },
                );
            }
        }
        for key in close {
            self.shell.socket_close(key);
        }
        for (key, url) in open {
            self.shell.socket_open(key, &url);
            if let Some(me) = self.me.upgrade() {
                self.shell.spawn(Box::pin(me.watch_silence(key)));
            }
        }
    }

    /// A connection that hears nothing for longer than the server's ping period is dead,
    /// though the browser may not notice for minutes.
    async fn watch_silence(self: Rc<Self>, key: SocketKey) {
        loop {
            let deadline = {
                let state = self.state.borrow();
                let Some(link) = state.push.by_server.values().find(|l| l.key == key) else {
                    return;
                };
                link.heard_at + f64::from(socketio::silence_limit_ms(link.open.as_ref()))
            };
            let now = self.shell.now_ms();
            if now >= deadline {
                return self.link_lost(key, "the server went silent");
            }
            // Whole milliseconds, at least one, so the loop always moves on.
            self.shell
                .sleep((deadline - now).ceil().max(1.0) as u32)
                .await;
        }
    }

    /// What the shell saw on a connection. A signal of a connection already given up is
    /// ignored.
    pub fn socket_signal(self: &Rc<Self>, key: SocketKey, signal: SocketSignal) {
        let now = self.shell.now_ms();
        let server = {
            let mut state = self.state.borrow_mut();
            let found = state.push.by_server.iter_mut().find(|(_, l)| l.key == key);
            let Some((server, link)) = found else {
                return;
            };
            link.heard_at = now;
            server.clone()
        };
        let text = match signal {
            SocketSignal::Opened => return,
            SocketSignal::Closed => return self.link_lost(key, "the connection closed"),
            SocketSignal::Text(text) => text,
        };
        match socketio::decode(&text) {
            Ok(Frame::Open(info)) => {
                self.with_link(key, |l| l.open = Some(info));
                self.shell.socket_send(key, socketio::CONNECT_NAMESPACE);
            }
            Ok(Frame::Ping) => self.shell.socket_send(key, socketio::PONG),
            Ok(Frame::Connected) => {
                self.with_link(key, |l| l.live = true);
                let reconnected = self.state.borrow_mut().push.failures.remove(&server);
                self.log_event(EventKind::Push, Some(&server), None, "push connected");
                // From now on the connection brings every new QR of this server's sessions:
                // the one shown is as current as the last check (the flows' or the catch-up
                // below), so polling for QRs stops now rather than at the next rotation.
                for live in self.state.borrow_mut().sessions.values_mut() {
                    if live.entry.server == server {
                        live.qr_pushed_at = now;
                    }
                }
                // Events sent while it was down are lost: after a loss, catch up once, with
                // what polling (every `fast_poll_ms` while a popup watches) has not just
                // checked. A first connection missed nothing the flows did not just ask.
                if reconnected.is_some() {
                    self.check_pairing(&server, self.timings.fast_poll_ms);
                }
            }
            Ok(Frame::Close | Frame::Disconnected) => self.link_lost(key, "the server closed it"),
            Ok(Frame::ConnectError(_)) => self.link_lost(key, "the server refused it"),
            Ok(Frame::Event(event)) => self.push_event(&server, event),
            Ok(Frame::Pong | Frame::Noop) => {}
            Err(err) => self.log_event(
                EventKind::Push,
                Some(&server),
                None,
                &format!("push: ignored a frame: {err}"),
            ),
        }
    }

    fn with_link(&self, key: SocketKey, f: impl FnOnce(&mut Link)) {
        let mut state = self.state.borrow_mut();
        if let Some(link) = state.push.by_server.values_mut().find(|l| l.key == key) {
            f(link);
        }
    }

    /// Gives a connection up and retries after a growing delay, if it is still needed.
    /// Meanwhile the popups poll at their usual pace.
    fn link_lost(&self, key: SocketKey, why: &str) {
        let now = self.shell.now_ms();
        let random = self.shell.random_u64();
        let lost = {
            let mut state = self.state.borrow_mut();
            let links = &mut state.push;
            let server = links
                .by_server
                .iter()
                .find(|(_, l)| l.key == key)
                .map(|(s, _)| s.clone());
            server.map(|server| {
                links.by_server.remove(&server);
                let failures = links.failures.entry(server.clone()).or_default();
                *failures += 1;
                let delay = socketio::reconnect_delay_ms(*failures, random);
                links
                    .retry_at
                    .insert(server.clone(), now + f64::from(delay));
                (server, delay)
            })
        };
        let Some((server, delay)) = lost else {
            return;
        };
        self.shell.socket_close(key);
        self.log_event(
            EventKind::Push,
            Some(&server),
            None,
            &format!("push lost ({why}); polling until it is back"),
        );
        // Polling resumes by itself: the popups' loops no longer see a live connection.
        if let Some(me) = self.me.upgrade() {
            self.shell.spawn(Box::pin(async move {
                me.shell.sleep(delay).await;
                me.reconcile_push();
            }));
        }
    }

    /// The session of this server with this name, if the worker knows one.
    fn session_named(&self, server: &ServerId, name: &str) -> Option<SessionId> {
        let state = self.state.borrow();
        state
            .sessions
            .iter()
            .find(|(id, l)| id.as_str() == name && &l.entry.server == server)
            .map(|(id, _)| id.clone())
    }

    fn push_event(self: &Rc<Self>, server: &ServerId, event: PushEvent) {
        let id = match event.session() {
            // Another client's session, or one this worker forgot: not ours to show.
            Some(name) => match self.session_named(server, name) {
                Some(id) => Some(id),
                None => return,
            },
            None => None,
        };
        match (event, id) {
            (PushEvent::QrCode { data_url, .. }, Some(id)) => {
                let now = self.shell.now_ms();
                let reply = StatusReply {
                    status: ServerStatus::QrCode,
                    qr: Some(data_url),
                };
                self.update(&id, |l| {
                    l.state.observe(reply, now);
                    l.qr_pushed_at = now;
                });
                let worker = Rc::clone(self);
                self.shell
                    .spawn(Box::pin(async move { worker.save_status(&id).await }));
            }
            (PushEvent::PhoneCode { code, .. }, Some(id)) => self.phone_code_pushed(&id, &code),
            // A login or an error: one status check says what it means.
            (PushEvent::SessionLogged { .. } | PushEvent::SessionError { .. }, Some(id)) => {
                let worker = Rc::clone(self);
                self.shell
                    .spawn(Box::pin(async move { worker.refresh(&id).await }));
            }
            (PushEvent::Other, _) => {}
            // No session named (`whatsapp-status`, and upstream #1931 after a close and a
            // restart): one check of each session of this server that could be concerned.
            (_, _) => self.check_pairing(server, self.timings.starting_poll_ms),
        }
    }

    /// One status check of each session of `server` that is pairing or shown in a popup,
    /// unless it was checked within `fresh_ms` (a burst of unnamed events costs one check).
    fn check_pairing(self: &Rc<Self>, server: &ServerId, fresh_ms: u32) {
        let now = self.shell.now_ms();
        let watched = self.watched_tabs();
        let due: Vec<SessionId> = {
            let state = self.state.borrow();
            state
                .sessions
                .iter()
                .filter(|(_, l)| {
                    &l.entry.server == server
                        && !l.state.is_busy()
                        && now - l.checked_at >= f64::from(fresh_ms)
                        && (pairing(l.state.phase(now))
                            || l.tab.is_some_and(|t| watched.contains(&t)))
                })
                .map(|(id, _)| id.clone())
                .collect()
        };
        for id in due {
            // Marked now, so the next event of a burst finds it checked.
            if let Some(live) = self.state.borrow_mut().sessions.get_mut(&id) {
                live.checked_at = now;
            }
            let worker = Rc::clone(self);
            self.shell
                .spawn(Box::pin(async move { worker.refresh(&id).await }));
        }
    }
}
