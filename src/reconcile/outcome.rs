//! What an apply reports besides the status fields it fills: notices (Kubernetes Events) and
//! blockers (why a resource is not Ready although AWS answered). Shared by every reconciler.

/// Something a person should know about, reported as a Kubernetes Event.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Notice {
    /// Whether it is a warning.
    pub warning: bool,
    /// CamelCase reason.
    pub reason: &'static str,
    /// What happened.
    pub note: String,
}

impl Notice {
    /// A normal notice.
    pub fn normal(reason: &'static str, note: impl Into<String>) -> Notice {
        Notice {
            warning: false,
            reason,
            note: note.into(),
        }
    }
}

/// A reason a resource is not Ready although AWS answered, e.g. a name taken by someone else.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Blocker {
    /// CamelCase reason for the Ready condition.
    pub reason: &'static str,
    /// What is wrong and what to do.
    pub message: String,
}

impl Blocker {
    /// A blocker.
    pub fn new(reason: &'static str, message: impl Into<String>) -> Blocker {
        Blocker {
            reason,
            message: message.into(),
        }
    }
}
