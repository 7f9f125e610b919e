//! What the popup shows of a [`TabView`] apart from its controls: the text, visibility and
//! attributes of its information elements, as one list of changes. The popup's Wasm applies it
//! on every render. Before that Wasm has loaded, `popup.js` applies the list the worker sends
//! with its first state to a popup, so the live status shows without waiting for the popup's
//! module. Controls are left to the Wasm: one shown before it can act would do nothing.

use crate::core::session::{display_id, TabView};
use crate::core::text::Text;
use serde::{Deserialize, Serialize};
use std::borrow::Cow;

/// The attributes a paint sets or removes: all that `popup.js` accepts from one.
pub const PAINTED_ATTRIBUTES: [&str; 5] =
    ["title", "src", "data-status", "data-phase", "data-error"];

/// One element's change.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Paint {
    /// The element's ID.
    pub id: Cow<'static, str>,
    pub shown: bool,
    /// Its new text, if it has text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<PaintText>,
    /// Attributes set (`Some`) or removed (`None`), each one of [`PAINTED_ATTRIBUTES`].
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub attributes: Vec<(Cow<'static, str>, Option<String>)>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum PaintText {
    /// Written as is.
    Plain(String),
    /// A catalogue message, in the browser's language.
    Message(Text),
}

impl Paint {
    fn new(id: &'static str, shown: bool) -> Self {
        Paint {
            id: Cow::Borrowed(id),
            shown,
            text: None,
            attributes: Vec::new(),
        }
    }

    /// Its text as given; none clears it.
    fn plain(mut self, text: Option<String>) -> Self {
        self.text = Some(PaintText::Plain(text.unwrap_or_default()));
        self
    }

    fn message(mut self, text: Text) -> Self {
        self.text = Some(PaintText::Message(text));
        self
    }

    fn attribute(mut self, name: &'static str, value: Option<String>) -> Self {
        debug_assert!(PAINTED_ATTRIBUTES.contains(&name), "{name} is not painted");
        self.attributes.push((Cow::Borrowed(name), value));
        self
    }
}

/// The popup's information elements, as `view` has them.
pub fn paint(view: &TabView) -> Vec<Paint> {
    let id = view.session_id.as_ref();
    let error = match &view.error {
        Some(error) => Paint::new("error", true)
            .message(error.message.clone())
            .attribute("data-error", Some(error.code.clone())),
        None => Paint::new("error", false)
            .plain(None)
            .attribute("data-error", None),
    };
    let phase = serde_json::to_value(view.phase).ok();
    let phase = phase.as_ref().and_then(|p| p.as_str()).unwrap_or_default();
    vec![
        Paint::new("session-id", true)
            .plain(Some(id.map_or_else(|| "—".to_owned(), display_id)))
            .attribute("title", id.map(|id| id.as_str().to_owned())),
        Paint::new("account", view.account.is_some())
            .plain(view.account.as_ref().map(|a| a.display())),
        Paint::new("server-name", view.server_name.is_some()).plain(view.server_name.clone()),
        Paint::new("status", true)
            .message(view.status_text.clone())
            .attribute(
                "data-status",
                Some(view.status.map_or("NONE", |s| s.as_str()).to_owned()),
            )
            .attribute("data-phase", Some(phase.to_owned())),
        Paint::new("qr", view.qr.is_some()).attribute("src", view.qr.clone()),
        Paint::new("qr-hint", view.qr.is_some()),
        Paint::new("phone-code", true).plain(view.phone_code.as_ref().map(|c| c.display())),
        Paint::new("phone-code-box", view.phone_code.is_some()),
        error,
        Paint::new("insecure-warning", view.insecure_server),
        // A locked key needs its passphrase, not the options.
        Paint::new("open-options", view.needs_settings && view.unlock.is_none()),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::session::{Phase, ViewError};
    use crate::core::session_id::SessionId;
    use crate::core::status::ServerStatus;

    fn find<'a>(paints: &'a [Paint], id: &str) -> &'a Paint {
        paints.iter().find(|p| p.id == id).unwrap()
    }

    fn attribute<'a>(paint: &'a Paint, name: &str) -> Option<&'a str> {
        let (_, value) = paint.attributes.iter().find(|(n, _)| n == name).unwrap();
        value.as_deref()
    }

    fn qr_view() -> TabView {
        let id = SessionId::parse("session_a_b").unwrap();
        let mut view = TabView::cached(&id, Some(ServerStatus::QrCode), 0.0);
        view.qr = Some("data:image/png;base64,iVBORw0KGgo=".into());
        view.phase = Phase::QrCode;
        view
    }

    #[test]
    fn a_qr_view_shows_the_code_its_hint_and_the_status_and_no_error() {
        let view = qr_view();
        let paints = paint(&view);
        let qr = find(&paints, "qr");
        assert!(qr.shown);
        assert_eq!(attribute(qr, "src"), view.qr.as_deref());
        assert!(find(&paints, "qr-hint").shown);
        let status = find(&paints, "status");
        assert_eq!(
            status.text,
            Some(PaintText::Message(view.status_text.clone()))
        );
        assert_eq!(attribute(status, "data-status"), Some("QRCODE"));
        assert_eq!(attribute(status, "data-phase"), Some("qrCode"));
        let id = find(&paints, "session-id");
        assert_eq!(
            attribute(id, "title"),
            view.session_id.as_ref().map(|i| i.as_str())
        );
        assert!(!find(&paints, "error").shown);
        assert!(!find(&paints, "phone-code-box").shown);
    }

    #[test]
    fn an_error_is_shown_with_its_code_and_the_qr_removed() {
        let mut view = qr_view();
        view.qr = None;
        view.error = Some(ViewError {
            code: "unreachable".into(),
            message: Text::new("popup_error_no_tab"),
        });
        let paints = paint(&view);
        let error = find(&paints, "error");
        assert!(error.shown);
        assert_eq!(attribute(error, "data-error"), Some("unreachable"));
        let qr = find(&paints, "qr");
        assert!(!qr.shown);
        assert_eq!(attribute(qr, "src"), None);
    }

    #[test]
    fn every_paint_names_a_popup_element_and_only_painted_attributes() {
        let html = include_str!("../../extension/popup.html");
        for p in paint(&qr_view()) {
            assert!(
                html.contains(&format!("id=\"{}\"", p.id)),
                "no #{} in popup.html",
                p.id
            );
            for (name, _) in &p.attributes {
                assert!(PAINTED_ATTRIBUTES.contains(&name.as_ref()), "{name}");
            }
        }
    }
}
