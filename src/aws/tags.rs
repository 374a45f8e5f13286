//! Tag arithmetic shared by every service: what to add and what to remove so that a resource's
//! tags become the desired ones. Tags AWS manages itself (`aws:*`) are never touched.

use crate::resources::Tags;

/// The tag writes that turn `current` into `desired`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TagChanges {
    /// Tags to add or overwrite.
    pub add: Tags,
    /// Keys to remove.
    pub remove: Vec<String>,
}

impl TagChanges {
    /// What to add (missing or different values) and remove (keys we no longer want), leaving
    /// AWS-reserved `aws:` tags alone.
    pub fn between(desired: &Tags, current: &Tags) -> TagChanges {
        let add = desired
            .iter()
            .filter(|(k, v)| current.get(*k) != Some(*v))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        let remove = current
            .keys()
            .filter(|k| !desired.contains_key(*k) && !k.starts_with("aws:"))
            .cloned()
            .collect();
        TagChanges { add, remove }
    }

    /// Whether nothing needs writing.
    pub fn is_empty(&self) -> bool {
        self.add.is_empty() && self.remove.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tags(pairs: &[(&str, &str)]) -> Tags {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn changes_add_changed_and_remove_unwanted_but_never_aws_tags() {
        let desired = tags(&[("Team", "a"), ("Feature", "x")]);
        let current = tags(&[
            ("Team", "b"),
            ("Old", "1"),
            ("aws:cloudformation:stack", "s"),
        ]);
        let changes = TagChanges::between(&desired, &current);
        assert_eq!(changes.add, tags(&[("Team", "a"), ("Feature", "x")]));
        assert_eq!(changes.remove, vec!["Old".to_string()]);
        assert!(TagChanges::between(&desired, &desired).is_empty());
    }
}
