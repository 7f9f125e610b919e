//! Pairing by phone number: start-session with `{phone, waitQrCode: true}` held until the
//! code, the code from its answer or from the `phoneCode` event, switching from a QR and back,
//! the time limit, the code's expiry.

use super::*;
use crate::core::api::PairingPhone;

const PHONE: &str = "+55 21 99999-9999";

fn by_phone() -> PopupRequest {
    PopupRequest::PairByPhone {
        phone: PairingPhone::parse(PHONE).unwrap(),
        server: None,
    }
}

fn code_shown(view: &TabView) -> Option<String> {
    view.phone_code.as_ref().map(|c| c.display())
}

/// The server's calls since the last `clear`, without the polls.
fn requests(w: &TestWorker) -> Vec<(&'static str, String)> {
    let calls = shell(w).server.calls.borrow().clone();
    calls
        .into_iter()
        .filter(|(r, _)| *r != "status-session")
        .collect()
}

fn clear(w: &TestWorker) {
    shell(w).server.calls.borrow_mut().clear();
}

/// Sends `request` without waiting for its flow to end (a held start-session).
fn send_later(w: &TestWorker, port: PortKey, request: PopupRequest) {
    let w = Rc::clone(w);
    tokio::task::spawn_local(async move { send(&w, port, request).await });
}

/// Tab `n` with a QR shown, then switched to pairing by phone: its code shown.
async fn code_on_tab(w: &TestWorker, n: i64) -> (PortKey, SessionId) {
    let (port, _) = paired_to_qr(w, n).await;
    send(w, port, by_phone()).await;
    let view = shown(w, port);
    assert!(view.phone_code.is_some(), "{view:?}");
    (port, session_of(w, port))
}

#[test]
fn switching_from_a_qr_to_a_phone_code_closes_and_goes_on_under_a_fresh_name() {
    run(|w| async move {
        save_settings(&w).await;
        let (port, old) = paired_to_qr(&w, 1).await;
        assert!(shown(&w, port).can_pair_by_phone);
        describe(&w, port, "Shop", None).await;
        clear(&w);
        send(&w, port, by_phone()).await;
        let fresh = session_of(&w, port);
        assert_ne!(fresh, old);
        // The server would not switch the running QR session, and answers a code only to a
        // session it has no entry for.
        assert_eq!(
            requests(&w),
            [
                ("close-session", old.to_string()),
                ("close-session", old.to_string()),
                ("generate-token", fresh.to_string()),
                ("start-session-by-phone", fresh.to_string()),
            ]
        );
        let view = shown(&w, port);
        assert_eq!((view.phase, view.qr.as_deref()), (Phase::PhoneCode, None));
        assert_eq!(code_shown(&view).as_deref(), Some("ABCD-0001"));
        assert_eq!(view.pairing_phone.unwrap().digits(), "5521999999999");
        assert!(!view.busy && view.can_pair_by_qr && !view.can_pair_by_phone);
        assert_eq!(view.label.as_deref(), Some("Shop"), "the name moved along");
        assert_eq!(shell(&w).badges.borrow()[&tab(1)].text, Some("badge_pin"));
        assert_eq!(indexed(&w, &old), None);
        assert_eq!(stored(&w, &keys::token(&old)), None);
        assert_eq!(keys_of(&w, &fresh), attached_keys(1, &fresh));
        assert_eq!(indexed(&w, &fresh).unwrap()["lastStatus"], "PHONECODE");
        // Entering the code on the phone connects it; the code goes.
        shell(&w).server.set(&fresh, ServerStatus::Connected);
        pass(u64::from(T.fast_poll_ms) + 10).await;
        let view = shown(&w, port);
        assert_eq!((view.phase, view.phone_code), (Phase::Connected, None));
        assert!(!view.can_pair_by_phone && !view.can_pair_by_qr);
    });
}

#[test]
fn a_code_the_push_brings_first_is_shown_and_ends_the_held_start() {
    run(|w| async move {
        save_settings(&w).await;
        let (port, _) = paired_to_qr(&w, 1).await;
        shell(&w).server.hold_phone.set(true);
        send_later(&w, port, by_phone());
        pass(1).await;
        let fresh = session_of(&w, port);
        let view = shown(&w, port);
        assert!(view.busy && view.phone_code.is_none(), "{view:?}");
        assert_eq!(
            view.status_text.english(),
            "Asking the server for a pairing code…"
        );
        w.phone_code_pushed(&fresh, "WXYZ9876");
        let view = shown(&w, port);
        assert_eq!(code_shown(&view).as_deref(), Some("WXYZ-9876"));
        assert_eq!(view.phase, Phase::PhoneCode);
        // The held request is let go within a poll period, and never times out later.
        pass(u64::from(T.fast_poll_ms) + 10).await;
        assert!(!shown(&w, port).busy);
        shell(&w).server.set(&fresh, ServerStatus::PhoneCode);
        pass(u64::from(T.phone_code_wait_ms) * 2).await;
        let view = shown(&w, port);
        assert_eq!(
            (view.error.clone(), code_shown(&view).as_deref()),
            (None, Some("WXYZ-9876"))
        );
        assert_eq!(indexed(&w, &fresh).unwrap()["lastStatus"], "PHONECODE");
        // A code of an odd form, or for a session not pairing by phone, changes nothing.
        w.phone_code_pushed(&fresh, "<b>nope</b>");
        let (_, other) = paired_to_qr(&w, 2).await;
        w.phone_code_pushed(&other, "ABCD1234");
        assert_eq!(shown(&w, port).phone_code, view.phone_code);
        let warnings = shell(&w).warnings.borrow().join("\n");
        assert!(warnings.contains("unexpected form"), "{warnings}");
        assert!(warnings.contains("not pairing by phone"), "{warnings}");
    });
}

#[test]
fn a_server_that_never_answers_the_held_start_times_out_with_a_retry() {
    run(|w| async move {
        save_settings(&w).await;
        let port = open_popup(&w, 1).await;
        shell(&w).server.hold_phone.set(true);
        send_later(&w, port, by_phone());
        pass(u64::from(T.phone_code_wait_ms) - 1_000).await;
        assert!(shown(&w, port).busy, "still waiting, within the limit");
        pass(u64::from(T.fast_poll_ms) * 2).await;
        let view = shown(&w, port);
        assert!(!view.busy, "{view:?}");
        let error = view.error.clone().expect("an error");
        assert_eq!(error.code, "timeout");
        let message = error.message.english();
        assert!(
            message.contains("No pairing code came from the server within 60 s"),
            "{message}"
        );
        assert_eq!(view.action, Some(PairAction::Retry));
        assert!(view.can_pair_by_qr, "the QR stays within reach");
        // "Try again" asks again by phone, under a fresh name: the first may run on the
        // server.
        shell(&w).server.hold_phone.set(false);
        let stalled = session_of(&w, port);
        clear(&w);
        send(&w, port, PopupRequest::Pair { server: None }).await;
        let fresh = session_of(&w, port);
        assert_ne!(fresh, stalled);
        assert_eq!(
            requests(&w),
            [
                ("generate-token", fresh.to_string()),
                ("start-session-by-phone", fresh.to_string()),
            ]
        );
        let view = shown(&w, port);
        assert_eq!(
            (view.error.clone(), code_shown(&view).is_some()),
            (None, true)
        );
    });
}

#[test]
fn an_invalid_phone_number_is_refused_and_nothing_is_sent() {
    run(|w| async move {
        save_settings(&w).await;
        let (port, id) = paired_to_qr(&w, 1).await;
        let before = shown(&w, port);
        clear(&w);
        for phone in ["12345", "0021 99999 9999", "5521 9999x9999", ""] {
            let message = json!({"v": 3, "type": "pairByPhone", "phone": phone});
            w.page_message(port, &message.to_string()).await;
        }
        assert_eq!(requests(&w), []);
        assert_eq!(session_of(&w, port), id);
        assert_eq!(shown(&w, port).pairing_phone, before.pairing_phone);
        let warnings = shell(&w).warnings.borrow().join("\n");
        assert!(warnings.contains("phone_error_length"), "{warnings}");
        assert!(warnings.contains("phone_error_leading_zero"), "{warnings}");
    });
}

#[test]
fn an_expired_code_offers_a_new_code() {
    run(|w| async move {
        save_settings(&w).await;
        let (port, id) = code_on_tab(&w, 1).await;
        shell(&w).server.set(&id, ServerStatus::Closed);
        pass(u64::from(T.fast_poll_ms) + 10).await;
        let view = shown(&w, port);
        assert_eq!(view.phase, Phase::Expired);
        assert_eq!(view.phone_code, None, "an expired code is not shown");
        assert_eq!(view.status_text.english(), "The pairing code expired");
        assert_eq!(view.action, Some(PairAction::NewCode));
        assert_eq!(
            view.action_label.map(|l| l.english()).as_deref(),
            Some("Get a new code")
        );
        assert!(view.can_pair_by_qr);
        assert_eq!(shell(&w).badges.borrow()[&tab(1)].text, Some("badge_off"));
        let polls = shell(&w).server.count("status-session");
        pass(60_000).await;
        assert_eq!(
            shell(&w).server.count("status-session"),
            polls,
            "no polling"
        );
    });
}

#[test]
fn a_code_is_checked_once_when_it_expires_even_unwatched() {
    run(|w| async move {
        save_settings(&w).await;
        let (port, id) = code_on_tab(&w, 1).await;
        let expires_at = shown(&w, port).phone_code_expires_at.unwrap();
        // No popup: no polls, and the server tells no one when autoClose ends the code.
        w.page_disconnected(port);
        shell(&w).server.set(&id, ServerStatus::Closed);
        let polls = shell(&w).server.count("status-session");
        let until = expires_at - shell(&w).now_ms();
        pass(until as u64 + u64::from(T.fast_poll_ms) + 10).await;
        assert_eq!(shell(&w).server.count("status-session"), polls + 1);
        assert_eq!(shell(&w).badges.borrow()[&tab(1)].text, Some("badge_off"));
        assert_eq!(indexed(&w, &id).unwrap()["lastStatus"], "CLOSED");
        pass(120_000).await;
        assert_eq!(shell(&w).server.count("status-session"), polls + 1);
    });
}

#[test]
fn a_new_code_after_expiry_comes_under_a_fresh_name_and_connects() {
    run(|w| async move {
        save_settings(&w).await;
        let (port, expired) = code_on_tab(&w, 1).await;
        let first = code_shown(&shown(&w, port));
        shell(&w).server.set(&expired, ServerStatus::Closed);
        pass(u64::from(T.fast_poll_ms) + 10).await;
        clear(&w);
        send(&w, port, PopupRequest::Pair { server: None }).await;
        let fresh = session_of(&w, port);
        assert_ne!(fresh, expired);
        // Expired: nothing runs to close; the server still has an entry for the old name.
        assert_eq!(
            requests(&w),
            [
                ("generate-token", fresh.to_string()),
                ("start-session-by-phone", fresh.to_string()),
            ]
        );
        let view = shown(&w, port);
        assert_eq!(view.phase, Phase::PhoneCode);
        assert!(code_shown(&view).is_some() && code_shown(&view) != first);
        assert_eq!(indexed(&w, &expired), None);
        shell(&w).server.set(&fresh, ServerStatus::Connected);
        pass(u64::from(T.fast_poll_ms) + 10).await;
        assert_eq!(shown(&w, port).phase, Phase::Connected);
    });
}

#[test]
fn back_to_the_qr_from_a_code_closes_it_and_shows_a_qr() {
    run(|w| async move {
        save_settings(&w).await;
        let (port, by_code) = code_on_tab(&w, 1).await;
        clear(&w);
        send(&w, port, PopupRequest::PairByQr).await;
        let fresh = session_of(&w, port);
        // Closing the PHONECODE session leaves its name to a leaked browser (§2.5).
        assert_eq!(
            requests(&w),
            [
                ("close-session", by_code.to_string()),
                ("close-session", by_code.to_string()),
                ("generate-token", fresh.to_string()),
                ("start-session", fresh.to_string()),
            ]
        );
        let view = shown(&w, port);
        assert_eq!((view.pairing_phone, view.phone_code), (None, None));
        shell(&w).server.set(&fresh, ServerStatus::QrCode);
        pass(u64::from(T.fast_poll_ms) * 2).await;
        let view = shown(&w, port);
        assert_eq!((view.phase, view.qr.as_deref()), (Phase::QrCode, Some(QR)));
        assert!(view.can_pair_by_phone && !view.can_pair_by_qr);
    });
}

#[test]
fn a_tab_without_a_session_pairs_by_phone_at_once() {
    run(|w| async move {
        save_settings(&w).await;
        // A session to attach: the popup waits for the user instead of starting a QR.
        let (_, other) = paired_to_qr(&w, 1).await;
        send(&w, open_popup(&w, 1).await, PopupRequest::Detach).await;
        let port = open_popup(&w, 2).await;
        assert_eq!(shown(&w, port).session_id, None);
        assert!(shown(&w, port).can_pair_by_phone);
        clear(&w);
        send(&w, port, by_phone()).await;
        let id = session_of(&w, port);
        assert_ne!(id, other);
        let routes: Vec<&str> = requests(&w).iter().map(|(r, _)| *r).collect();
        assert_eq!(routes.last(), Some(&"start-session-by-phone"), "{routes:?}");
        assert!(shown(&w, port).phone_code.is_some());
    });
}
