//! Every threshold and delay the worker keeps, in one place. The shipped build uses
//! [`Timings::SHIPPED`]; the browser suite's build (feature `test-hooks`) uses
//! [`Timings::TEST`], so that no test waits out a real 150 s threshold.

#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Timings {
    /// While a popup shows pairing, poll this often: the QR rotates about every 20 s, so a
    /// new one shows within 2 s; each poll costs the server a bcrypt compare, so no faster.
    pub fast_poll_ms: u32,
    /// Right after start-session the server reaches INITIALIZING or QRCODE within a second.
    pub starting_poll_ms: u32,
    /// The slowest retry after repeated failures while a popup is open.
    pub max_backoff_ms: u32,
    /// Without a popup, sessions are refreshed this often (an alarm; Chrome's minimum is 30 s).
    pub slow_refresh_minutes: f64,
    /// INITIALIZING for longer than this is the known server hang (contract §9.1).
    pub stuck_after_ms: f64,
    /// A fresh start-session answers CLOSED, meaning "starting" (§2.1): CLOSED this soon
    /// after a start is not an expiry.
    pub start_grace_ms: f64,
    /// start-session with a phone number is held until the server has the pairing code; a
    /// server that never answers (a saved login, a failed launch: §2.1) is given up on then.
    pub phone_code_wait_ms: u32,
    /// A pairing code is good for this long: the library's autoClose (§3) closes the session
    /// then, as it does an unscanned QR.
    pub phone_code_valid_ms: f64,
    /// While the Sessions page is open, each session is checked once per this period, and
    /// each server's list read once.
    pub list_refresh_ms: u32,
    /// The Sessions page's checks are never closer together than this.
    pub list_min_gap_ms: u32,
    /// While the server's Socket.IO push is live, QRs and logins arrive as events: a pairing
    /// session is then only checked this often, for an event the socket may have missed.
    pub push_safety_poll_ms: u32,
    /// A shown QR that no `qrCode` event replaced for this long was probably closed by the
    /// server (its auto-close sends no event), or the socket misses events: poll again. WhatsApp
    /// rotates its QR about every 20 s (wpp-sim's test config: every 2 s).
    pub qr_silence_ms: u32,
    /// The minute alarm's checks are spread over this share of its period, not sent at once.
    pub idle_spread_ms: u32,
}

impl Timings {
    pub const SHIPPED: Timings = Timings {
        fast_poll_ms: 2_000,
        starting_poll_ms: 1_000,
        max_backoff_ms: 30_000,
        slow_refresh_minutes: 1.0,
        stuck_after_ms: 150_000.0,
        start_grace_ms: 10_000.0,
        phone_code_wait_ms: 60_000,
        phone_code_valid_ms: 60_000.0,
        list_refresh_ms: 60_000,
        list_min_gap_ms: 1_000,
        push_safety_poll_ms: 30_000,
        qr_silence_ms: 25_000,
        idle_spread_ms: 45_000,
    };

    /// Short enough for the browser suite, in the same proportions where they matter: a
    /// session is stuck only well after a QR would have shown.
    pub const TEST: Timings = Timings {
        fast_poll_ms: 400,
        starting_poll_ms: 200,
        max_backoff_ms: 2_000,
        slow_refresh_minutes: 1.0,
        stuck_after_ms: 4_000.0,
        start_grace_ms: 10_000.0,
        phone_code_wait_ms: 5_000,
        // The browser suite's sim closes an unused code after this (its autoClose).
        phone_code_valid_ms: 6_000.0,
        list_refresh_ms: 3_000,
        list_min_gap_ms: 100,
        // As shipped: the suite proves QRs arrive by push, with no check in between.
        push_safety_poll_ms: 30_000,
        qr_silence_ms: 3_000,
        idle_spread_ms: 3_000,
    };

    /// The timings this build runs with.
    pub const fn current() -> Timings {
        if cfg!(feature = "test-hooks") {
            Timings::TEST
        } else {
            Timings::SHIPPED
        }
    }
}
