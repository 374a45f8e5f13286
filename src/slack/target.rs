//! The Slack target a route's or schedule's destination names, with its secret read from the
//! resource's namespace.

use crate::k8s::{ClusterApi, ClusterError};
use crate::resources::{SecretKeyRef, SlackDestination};

use super::SlackTarget;

/// Why a Slack destination could not be turned into a target.
#[derive(Debug, thiserror::Error)]
pub enum SlackTargetError {
    /// The Secret or its key does not exist, or the value is blank.
    #[error("Secret {namespace}/{name} has no key {key:?} (the Slack {purpose})")]
    MissingSecret {
        /// Namespace of the Secret.
        namespace: String,
        /// Name of the Secret.
        name: String,
        /// The key.
        key: String,
        /// `webhook URL` or `bot token`.
        purpose: &'static str,
    },
    /// The destination breaks a rule of the CRD (which the API server normally enforces).
    #[error("{0}")]
    InvalidDestination(&'static str),
    /// Reading the Secret failed.
    #[error("reading the Slack secret: {0}")]
    Cluster(#[from] ClusterError),
}

/// The Slack target of a destination: exactly one of a webhook, or a bot token with a
/// non-empty channel. Secret values are trimmed; a blank one counts as missing.
pub async fn resolve_target<C: ClusterApi>(
    cluster: &C,
    namespace: &str,
    destination: &SlackDestination,
) -> Result<SlackTarget, SlackTargetError> {
    let read = |secret: &SecretKeyRef, purpose: &'static str| {
        let secret = secret.clone();
        async move {
            cluster
                .secret_value(namespace, &secret.name, &secret.key)
                .await?
                .map(|v| v.trim().to_string())
                .filter(|v| !v.is_empty())
                .ok_or(SlackTargetError::MissingSecret {
                    namespace: namespace.to_string(),
                    name: secret.name,
                    key: secret.key,
                    purpose,
                })
        }
    };
    match (
        &destination.webhook_secret_ref,
        &destination.bot_token_secret_ref,
    ) {
        (Some(webhook), None) => Ok(SlackTarget::Webhook {
            url: read(webhook, "webhook URL").await?,
        }),
        (None, Some(bot)) => {
            let channel = destination
                .channel
                .clone()
                .filter(|c| !c.is_empty())
                .ok_or(SlackTargetError::InvalidDestination(
                    "botTokenSecretRef needs a channel",
                ))?;
            Ok(SlackTarget::Bot {
                token: read(bot, "bot token").await?,
                channel,
            })
        }
        _ => Err(SlackTargetError::InvalidDestination(
            "set exactly one of webhookSecretRef or botTokenSecretRef",
        )),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::k8s::MemoryCluster;

    fn secret_ref(name: &str, key: &str) -> Option<SecretKeyRef> {
        Some(SecretKeyRef {
            name: name.into(),
            key: key.into(),
        })
    }

    fn cluster_with_slack_secret() -> MemoryCluster {
        let cluster = MemoryCluster::new();
        cluster
            .apply_manifest(json!({
                "apiVersion": "v1", "kind": "Secret",
                "metadata": {"name": "slack", "namespace": "team"},
                "stringData": {
                    "webhook": " https://hooks.example/T/B/x\n",
                    "token": "xoxb-1",
                    "blank": "  \n",
                },
            }))
            .unwrap();
        cluster
    }

    fn bot(key: &str, channel: Option<&str>) -> SlackDestination {
        SlackDestination {
            webhook_secret_ref: None,
            bot_token_secret_ref: secret_ref("slack", key),
            channel: channel.map(str::to_string),
            mentions: vec![],
        }
    }

    #[tokio::test]
    async fn a_webhook_or_a_bot_token_and_channel_become_targets_with_trimmed_secrets() {
        let cluster = cluster_with_slack_secret();
        let webhook = SlackDestination {
            webhook_secret_ref: secret_ref("slack", "webhook"),
            bot_token_secret_ref: None,
            channel: None,
            mentions: vec![],
        };
        assert_eq!(
            resolve_target(&cluster, "team", &webhook).await.unwrap(),
            SlackTarget::Webhook {
                url: "https://hooks.example/T/B/x".into()
            }
        );
        assert_eq!(
            resolve_target(&cluster, "team", &bot("token", Some("C1")))
                .await
                .unwrap(),
            SlackTarget::Bot {
                token: "xoxb-1".into(),
                channel: "C1".into()
            }
        );
    }

    #[tokio::test]
    async fn missing_or_blank_secrets_are_named_with_their_purpose() {
        let cluster = cluster_with_slack_secret();
        for key in ["nope", "blank"] {
            let error = resolve_target(&cluster, "team", &bot(key, Some("C1")))
                .await
                .unwrap_err();
            assert_eq!(
                error.to_string(),
                format!("Secret team/slack has no key \"{key}\" (the Slack bot token)")
            );
        }
        let elsewhere = resolve_target(&cluster, "other", &bot("token", Some("C1"))).await;
        assert!(matches!(
            elsewhere,
            Err(SlackTargetError::MissingSecret { ref namespace, .. }) if namespace == "other"
        ));
    }

    #[tokio::test]
    async fn destinations_the_crd_rejects_are_invalid() {
        let cluster = cluster_with_slack_secret();
        let both = SlackDestination {
            webhook_secret_ref: secret_ref("slack", "webhook"),
            ..bot("token", Some("C1"))
        };
        let neither = SlackDestination {
            bot_token_secret_ref: None,
            ..bot("token", Some("C1"))
        };
        for (destination, problem) in [
            (
                both,
                "set exactly one of webhookSecretRef or botTokenSecretRef",
            ),
            (
                neither,
                "set exactly one of webhookSecretRef or botTokenSecretRef",
            ),
            (bot("token", None), "botTokenSecretRef needs a channel"),
            (bot("token", Some("")), "botTokenSecretRef needs a channel"),
        ] {
            let error = resolve_target(&cluster, "team", &destination)
                .await
                .unwrap_err();
            assert!(
                matches!(error, SlackTargetError::InvalidDestination(p) if p == problem),
                "{error}"
            );
        }
    }
}
