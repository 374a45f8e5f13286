//! The interaction payloads Slack posts to the Request URL: a form body `payload=<json>`. Only
//! `block_actions` (a button press) matters here; other types are recognised and ignored.

use serde::Deserialize;
use serde_json::Value;

use crate::slack::{
    ACKNOWLEDGE_ACTION_PREFIX, PostedMessage, RETRY_ACTION_PREFIX, SNOOZE_ACTION_PREFIX,
    SlackMessage,
};

/// Why a body is not an interaction this endpoint understands.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PayloadError {
    /// The body is not a form with a `payload` field.
    #[error("body is not a form with a payload field")]
    NotAForm,
    /// The `payload` field is not the JSON Slack sends.
    #[error("payload is not a Slack interaction: {0}")]
    NotAnInteraction(String),
    /// A `block_actions` payload lacks a field a button press always has.
    #[error("block_actions payload has no {0}")]
    Missing(&'static str),
}

/// What a press of one of alertops' buttons asks for (taken from the action id's prefix; the
/// button's signed value says the same and is what is trusted).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PressedButton {
    /// An Acknowledge button.
    Acknowledge,
    /// A Retry button.
    Retry,
    /// A Snooze button.
    Snooze,
    /// A button alertops did not render.
    Other,
}

/// One button press.
#[derive(Clone, Debug, PartialEq)]
pub struct ButtonPress {
    /// Slack user id of who pressed.
    pub user_id: String,
    /// Their user name, for logs.
    pub user_name: Option<String>,
    /// Which button, by its action id.
    pub button: PressedButton,
    /// The button's `value`: a signed action token.
    pub value: String,
    /// Where to answer (valid 30 minutes, 5 uses).
    pub response_url: String,
    /// The message the button is on, when Slack sent it.
    pub message: Option<SlackMessage>,
    /// Channel and timestamp of that message, when known (for thread replies and updates).
    pub posted: Option<PostedMessage>,
}

/// A parsed interaction.
#[derive(Clone, Debug, PartialEq)]
pub enum Interaction {
    /// A button press.
    ButtonPress(Box<ButtonPress>),
    /// Another interaction type (`view_submission`, `shortcut`...), or a press of no button.
    Ignored {
        /// The payload's `type`.
        kind: String,
    },
}

#[derive(Deserialize)]
struct Form {
    payload: String,
}

#[derive(Deserialize)]
struct Wire {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    user: Option<WireUser>,
    #[serde(default)]
    actions: Vec<WireAction>,
    #[serde(default)]
    response_url: Option<String>,
    #[serde(default)]
    message: Option<Value>,
    #[serde(default)]
    container: Option<WireContainer>,
    #[serde(default)]
    channel: Option<WireChannel>,
}

#[derive(Deserialize)]
struct WireUser {
    id: String,
    #[serde(default)]
    username: Option<String>,
    #[serde(default)]
    name: Option<String>,
}

#[derive(Deserialize)]
struct WireAction {
    #[serde(default)]
    action_id: String,
    #[serde(default)]
    value: Option<String>,
}

#[derive(Deserialize)]
struct WireContainer {
    #[serde(default)]
    message_ts: Option<String>,
    #[serde(default)]
    channel_id: Option<String>,
}

#[derive(Deserialize)]
struct WireChannel {
    id: String,
}

/// Parses a form body `payload=<json>` as Slack sends it to the Request URL.
pub fn parse_interaction(body: &[u8]) -> Result<Interaction, PayloadError> {
    let form: Form = serde_urlencoded::from_bytes(body).map_err(|_| PayloadError::NotAForm)?;
    let wire: Wire = serde_json::from_str(&form.payload)
        .map_err(|e| PayloadError::NotAnInteraction(e.to_string()))?;
    if wire.kind != "block_actions" {
        return Ok(Interaction::Ignored { kind: wire.kind });
    }
    let user = wire.user.ok_or(PayloadError::Missing("user"))?;
    // A button press carries exactly one action; prefer one of ours if a client sent more.
    let Some(action) = wire
        .actions
        .iter()
        .find(|a| button_of(&a.action_id) != PressedButton::Other)
        .or(wire.actions.first())
    else {
        return Err(PayloadError::Missing("actions"));
    };
    let button = button_of(&action.action_id);
    if button == PressedButton::Other {
        return Ok(Interaction::Ignored { kind: wire.kind });
    }
    let value = action.value.clone().ok_or(PayloadError::Missing("value"))?;
    let response_url = wire
        .response_url
        .filter(|u| !u.is_empty())
        .ok_or(PayloadError::Missing("response_url"))?;
    let message = wire.message.as_ref().and_then(message_of);
    let container = wire.container.as_ref();
    let channel = container
        .and_then(|c| c.channel_id.clone())
        .or(wire.channel.map(|c| c.id));
    let ts = container.and_then(|c| c.message_ts.clone()).or_else(|| {
        wire.message
            .as_ref()
            .and_then(|m| m["ts"].as_str().map(str::to_string))
    });
    let posted = channel
        .zip(ts)
        .map(|(channel, ts)| PostedMessage { channel, ts });
    Ok(Interaction::ButtonPress(Box::new(ButtonPress {
        user_id: user.id,
        user_name: user.username.or(user.name),
        button,
        value,
        response_url,
        message,
        posted,
    })))
}

fn button_of(action_id: &str) -> PressedButton {
    if action_id.starts_with(ACKNOWLEDGE_ACTION_PREFIX) {
        PressedButton::Acknowledge
    } else if action_id.starts_with(RETRY_ACTION_PREFIX) {
        PressedButton::Retry
    } else if action_id.starts_with(SNOOZE_ACTION_PREFIX) {
        PressedButton::Snooze
    } else {
        PressedButton::Other
    }
}

/// The message's fallback text and blocks, as [`SlackMessage`]; `None` without blocks.
fn message_of(message: &Value) -> Option<SlackMessage> {
    let blocks = message["blocks"].as_array()?.clone();
    Some(SlackMessage {
        text: message["text"].as_str().unwrap_or_default().to_string(),
        blocks,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn form(payload: &Value) -> Vec<u8> {
        serde_urlencoded::to_string([("payload", payload.to_string())])
            .unwrap()
            .into_bytes()
    }

    fn press(action_id: &str) -> Value {
        json!({
            "type": "block_actions",
            "user": {"id": "U1", "username": "ada", "name": "ada", "team_id": "T1"},
            "api_app_id": "A1",
            "container": {"type": "message", "message_ts": "1700000000.000100", "channel_id": "C1", "is_ephemeral": false},
            "channel": {"id": "C1", "name": "alerts"},
            "message": {"type": "message", "ts": "1700000000.000100", "text": "EMR failed",
                        "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": "EMR failed"}}]},
            "response_url": "https://hooks.slack.com/actions/T1/1/abc",
            "actions": [{"action_id": action_id, "block_id": "alertops_actions", "type": "button",
                         "value": "v1.token.mac", "action_ts": "1700000001.000200"}],
        })
    }

    #[test]
    fn a_retry_press_is_read_whole() {
        let parsed = parse_interaction(&form(&press("alertops_retry:abc"))).unwrap();
        let Interaction::ButtonPress(press) = parsed else {
            panic!("{parsed:?}")
        };
        assert_eq!(press.user_id, "U1");
        assert_eq!(press.user_name.as_deref(), Some("ada"));
        assert_eq!(press.button, PressedButton::Retry);
        assert_eq!(press.value, "v1.token.mac");
        assert_eq!(
            press.response_url,
            "https://hooks.slack.com/actions/T1/1/abc"
        );
        assert_eq!(press.message.as_ref().unwrap().text, "EMR failed");
        assert_eq!(press.message.as_ref().unwrap().blocks.len(), 1);
        assert_eq!(
            press.posted,
            Some(PostedMessage {
                channel: "C1".into(),
                ts: "1700000000.000100".into()
            })
        );
    }

    #[test]
    fn acknowledge_and_foreign_buttons_and_other_types() {
        let Interaction::ButtonPress(ack) =
            parse_interaction(&form(&press("alertops_ack:abc"))).unwrap()
        else {
            panic!("not a press")
        };
        assert_eq!(ack.button, PressedButton::Acknowledge);
        assert_eq!(
            parse_interaction(&form(&press("someone_elses_button"))).unwrap(),
            Interaction::Ignored {
                kind: "block_actions".into()
            }
        );
        assert_eq!(
            parse_interaction(&form(&json!({"type": "view_submission"}))).unwrap(),
            Interaction::Ignored {
                kind: "view_submission".into()
            }
        );
    }

    #[test]
    fn malformed_bodies_are_errors_not_panics() {
        assert_eq!(
            parse_interaction(b"nothing=here"),
            Err(PayloadError::NotAForm)
        );
        assert!(matches!(
            parse_interaction(b"payload=%7Bnot%20json"),
            Err(PayloadError::NotAnInteraction(_))
        ));
        let mut no_url = press("alertops_ack:abc");
        no_url["response_url"] = Value::Null;
        assert_eq!(
            parse_interaction(&form(&no_url)),
            Err(PayloadError::Missing("response_url"))
        );
        let mut no_user = press("alertops_ack:abc");
        no_user.as_object_mut().unwrap().remove("user");
        assert_eq!(
            parse_interaction(&form(&no_user)),
            Err(PayloadError::Missing("user"))
        );
        let mut no_actions = press("alertops_ack:abc");
        no_actions["actions"] = json!([]);
        assert_eq!(
            parse_interaction(&form(&no_actions)),
            Err(PayloadError::Missing("actions"))
        );
    }
}
