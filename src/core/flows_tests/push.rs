//! Push over Socket.IO (`core::push`): the scenarios on the paused clock, with the shell's
//! socket calls recorded and the server's frames delivered by hand.

use super::*;

const SOCKET_URL: &str = "ws://127.0.0.1:21465/socket.io/?EIO=4&transport=websocket";
const OPEN: &str =
    r#"0{"sid":"abc","upgrades":[],"pingInterval":25000,"pingTimeout":20000,"maxPayload":1000000}"#;
const QR2: &str = "data:image/png;base64,iVBORw0KGgoSECOND";

fn calls(w: &TestWorker) -> Vec<SocketCall> {
    shell(w).sockets.borrow().clone()
}

/// The key of the last connection opened to `url`.
fn last_opened(w: &TestWorker) -> Option<SocketKey> {
    calls(w).iter().rev().find_map(|c| match c {
        SocketCall::Open(key, url) if url == SOCKET_URL => Some(*key),
        _ => None,
    })
}

fn frame(w: &TestWorker, key: SocketKey, text: &str) {
    w.socket_signal(key, SocketSignal::Text(text.to_owned()));
}

fn event(name: &str, payload: Value) -> String {
    format!("42{}", json!([name, payload]))
}

/// The server's `session-logged` for `id`.
fn logged_in(w: &TestWorker, key: SocketKey, id: &SessionId) {
    let payload = json!({"status": true, "session": id.as_str()});
    frame(w, key, &event("session-logged", payload));
}

/// The server's side of a handshake: open packet, then the namespace's ack.
async fn handshake(w: &TestWorker, key: SocketKey) {
    w.socket_signal(key, SocketSignal::Opened);
    frame(w, key, OPEN);
    assert_eq!(
        calls(w).last(),
        Some(&SocketCall::Send(key, "40".into())),
        "the client joins the namespace after the open packet"
    );
    frame(w, key, r#"40{"sid":"xyz"}"#);
    assert!(w.push_live(&ServerId::first()));
    pass(1).await;
}

/// Pairs tab `n` to a shown QR with a live connection.
async fn pairing_with_push(w: &TestWorker, n: i64) -> (PortKey, SessionId, SocketKey) {
    save_settings(w).await;
    let port = open_popup(w, n).await;
    let id = session_of(w, port);
    let key = last_opened(w).expect("pairing opens a connection to the server");
    handshake(w, key).await;
    shell(w).server.set(&id, ServerStatus::QrCode);
    frame(
        w,
        key,
        &event("qrCode", json!({"data": QR, "session": id.as_str()})),
    );
    pass(1).await;
    assert_eq!(shown(w, port).qr.as_deref(), Some(QR));
    (port, id, key)
}

#[test]
fn qr_rotations_arrive_by_push_with_no_request_and_at_most_three_a_minute() {
    run(|w| async move {
        let (port, id, key) = pairing_with_push(&w, 1).await;
        let before = shell(&w).server.count("status-session");
        frame(
            &w,
            key,
            &event("qrCode", json!({"data": QR2, "session": id.as_str()})),
        );
        assert_eq!(shown(&w, port).qr.as_deref(), Some(QR2));
        assert_eq!(shell(&w).server.count("status-session"), before);
        // A minute with the popup open and the QR rotating: only the safety checks.
        let start = shell(&w).server.calls.borrow().len();
        for rotation in 0..3 {
            pass(20_000).await;
            let data = format!("{QR}{rotation}");
            frame(
                &w,
                key,
                &event("qrCode", json!({"data": data, "session": id.as_str()})),
            );
            assert_eq!(shown(&w, port).qr.as_deref(), Some(data.as_str()));
        }
        let authenticated = shell(&w).server.calls.borrow().len() - start;
        assert!(
            (1..=3).contains(&authenticated),
            "{authenticated} requests in a minute of pairing with push"
        );
    });
}

#[test]
fn another_sessions_qr_is_never_shown_nor_stored() {
    run(|w| async move {
        let (port, id, key) = pairing_with_push(&w, 1).await;
        let before = shell(&w).server.calls.borrow().len();
        frame(
            &w,
            key,
            &event("qrCode", json!({"data": QR2, "session": "someone-else"})),
        );
        // The same name on another server is another session too: only this server's count.
        frame(
            &w,
            key,
            &event("qrCode", json!({"data": QR2, "session": 42})),
        );
        pass(1).await;
        assert_eq!(shown(&w, port).qr.as_deref(), Some(QR));
        assert_eq!(shell(&w).server.calls.borrow().len(), before);
        let index = stored(&w, keys::SESSIONS)
            .map(|v| v.to_string())
            .unwrap_or_default();
        assert!(!index.contains("SECOND"));
        assert_eq!(session_of(&w, port), id);
    });
}

#[test]
fn events_without_a_session_cost_one_check_of_the_pairing_sessions() {
    // Upstream #1931: after close-session and a restart, qrCode carries no session.
    run(|w| async move {
        let (port, id, key) = pairing_with_push(&w, 1).await;
        pass(u64::from(T.starting_poll_ms)).await;
        let before = shell(&w).server.count("status-session");
        frame(&w, key, &event("qrCode", json!({"data": QR2})));
        frame(&w, key, &event("qrCode", json!({"data": QR2})));
        pass(1).await;
        assert_eq!(shell(&w).server.count("status-session"), before + 1);
        // The QR shown is the one the server reports for this session, not the event's.
        assert_eq!(shown(&w, port).qr.as_deref(), Some(QR));
        assert_eq!(session_of(&w, port), id);
    });
}

#[test]
fn a_login_event_is_confirmed_with_one_status_check_then_the_account_is_read() {
    run(|w| async move {
        let (port, id, key) = pairing_with_push(&w, 1).await;
        let before = shell(&w).server.count("status-session");
        shell(&w).server.set(&id, ServerStatus::Connected);
        logged_in(&w, key, &id);
        pass(1).await;
        assert_eq!(shell(&w).server.count("status-session"), before + 1);
        assert_eq!(shown(&w, port).phase, Phase::Connected);
        assert_eq!(shell(&w).server.count("host-device"), 1);
    });
}

#[test]
fn pings_are_answered() {
    run(|w| async move {
        let (_, _, key) = pairing_with_push(&w, 1).await;
        frame(&w, key, "2");
        assert_eq!(calls(&w).last(), Some(&SocketCall::Send(key, "3".into())));
    });
}

#[test]
fn a_lost_connection_falls_back_to_polling_and_comes_back_with_backoff() {
    run(|w| async move {
        let (port, id, key) = pairing_with_push(&w, 1).await;
        w.socket_signal(key, SocketSignal::Closed);
        assert!(!w.push_live(&ServerId::first()));
        // Polling at the usual pace brings the next QR.
        let before = shell(&w).server.count("status-session");
        pass(u64::from(T.fast_poll_ms) * 2 + 10).await;
        assert!(shell(&w).server.count("status-session") > before);
        // The connection was retried after about a second (jittered), and joins again.
        let again = last_opened(&w).unwrap();
        assert_ne!(again, key);
        handshake(&w, again).await;
        frame(
            &w,
            again,
            &event("qrCode", json!({"data": QR2, "session": id.as_str()})),
        );
        assert_eq!(shown(&w, port).qr.as_deref(), Some(QR2));
        // A refused connection backs off further each time.
        w.socket_signal(again, SocketSignal::Closed);
        pass(1_300).await;
        let third = last_opened(&w).unwrap();
        assert_ne!(third, again);
        w.socket_signal(third, SocketSignal::Closed);
        pass(1_300).await;
        assert_eq!(
            last_opened(&w),
            Some(third),
            "the third try waits about 4 s"
        );
        pass(4_000).await;
        assert_ne!(last_opened(&w), Some(third));
    });
}

#[test]
fn after_a_reconnect_polling_stops_at_once_not_at_the_next_qr() {
    run(|w| async move {
        let (port, id, key) = pairing_with_push(&w, 1).await;
        w.socket_signal(key, SocketSignal::Closed);
        // Down long enough that the last pushed QR is old: polling alone keeps it current.
        pass(u64::from(T.qr_silence_ms) + 10).await;
        let again = last_opened(&w).expect("the connection is retried");
        assert_ne!(again, key);
        handshake(&w, again).await;
        let joined = shell(&w).server.count("status-session");
        // Until the next rotation, which the connection brings, at most the one catch-up.
        pass(u64::from(T.qr_silence_ms) - 10).await;
        let checks = shell(&w).server.count("status-session") - joined;
        assert!(
            checks <= 1,
            "{checks} status checks between the reconnect and the next QR event"
        );
        frame(
            &w,
            again,
            &event("qrCode", json!({"data": QR2, "session": id.as_str()})),
        );
        assert_eq!(shown(&w, port).qr.as_deref(), Some(QR2));
    });
}

#[test]
fn a_silent_connection_is_given_up_and_replaced() {
    run(|w| async move {
        let (_, _, key) = pairing_with_push(&w, 1).await;
        // Pings keep it: the server speaks every 25 s.
        for _ in 0..3 {
            pass(25_000).await;
            frame(&w, key, "2");
        }
        assert!(w.push_live(&ServerId::first()));
        // Then nothing for pingInterval + pingTimeout.
        pass(45_001).await;
        assert!(calls(&w).contains(&SocketCall::Close(key)));
        // Opened again after the first backoff (about a second).
        pass(1_300).await;
        assert_ne!(last_opened(&w), Some(key));
    });
}

#[test]
fn nothing_holds_a_connection_once_no_page_is_open_and_nothing_pairs() {
    run(|w| async move {
        let (port, id, key) = pairing_with_push(&w, 1).await;
        shell(&w).server.set(&id, ServerStatus::Connected);
        logged_in(&w, key, &id);
        pass(1).await;
        assert!(
            !calls(&w).contains(&SocketCall::Close(key)),
            "the popup is open"
        );
        w.page_disconnected(port);
        assert_eq!(calls(&w).last(), Some(&SocketCall::Close(key)));
        // The minute alarm checks the session without opening one.
        minute_alarm(&w).await;
        assert_eq!(last_opened(&w), Some(key));
    });
}

#[test]
fn malformed_frames_change_nothing() {
    run(|w| async move {
        let (port, id, key) = pairing_with_push(&w, 1).await;
        let before = shell(&w).server.calls.borrow().len();
        for text in [
            "",
            "4",
            "42",
            "42[",
            r#"42["qrCode",{"data":"javascript:alert(1)","session":"x"}]"#,
        ] {
            frame(&w, key, text);
        }
        frame(
            &w,
            key,
            &event(
                "qrCode",
                json!({"data": "not a data url", "session": id.as_str()}),
            ),
        );
        pass(1).await;
        assert!(w.push_live(&ServerId::first()));
        assert_eq!(shown(&w, port).qr.as_deref(), Some(QR));
        assert_eq!(shell(&w).server.calls.borrow().len(), before);
    });
}

#[test]
fn the_minute_alarm_spreads_its_checks_over_most_of_the_minute() {
    run(|w| async move {
        save_settings(&w).await;
        for n in 1..=50 {
            let (port, _) = connected(&w, n).await;
            w.page_disconnected(port);
        }
        pass(120_000).await;
        shell(&w).server.calls.borrow_mut().clear();
        let worker = Rc::clone(&w);
        tokio::task::spawn_local(async move { worker.alarm(REFRESH_ALARM).await });
        let count = || shell(&w).server.count("status-session");
        let mut per_second = vec![];
        for second in 0..60 {
            let before = count();
            pass(1_000).await;
            per_second.push(count() - before);
            if second == 10 {
                // A second alarm while the first still sweeps adds nothing.
                w.alarm(REFRESH_ALARM).await;
            }
        }
        assert_eq!(per_second.iter().sum::<usize>(), 50, "{per_second:?}");
        assert!(per_second.iter().all(|n| *n <= 2), "{per_second:?}");
        let busy = per_second.iter().filter(|n| **n > 0).count();
        assert!(busy >= 40, "spread over {busy} seconds: {per_second:?}");
    });
}

#[test]
fn an_unwatched_pairing_session_holds_the_connection_only_until_its_qr_expires() {
    run(|w| async move {
        let (port, id, key) = pairing_with_push(&w, 1).await;
        w.page_disconnected(port);
        assert!(
            !calls(&w).contains(&SocketCall::Close(key)),
            "a session still pairing keeps it: its QR may be scanned"
        );
        // The server closes the unscanned QR (no event says so); the alarm finds it out.
        shell(&w).server.set(&id, ServerStatus::Closed);
        minute_alarm(&w).await;
        assert!(calls(&w).contains(&SocketCall::Close(key)));
    });
}

#[test]
fn a_qr_no_event_replaces_is_checked_so_an_expiry_shows() {
    run(|w| async move {
        let (port, id, _) = pairing_with_push(&w, 1).await;
        // The server auto-closes the unscanned QR: no event says so, and none replaces it.
        shell(&w).server.set(&id, ServerStatus::Closed);
        pass(u64::from(T.qr_silence_ms + T.fast_poll_ms) + 10).await;
        assert_eq!(shown(&w, port).phase, Phase::Expired);
    });
}
