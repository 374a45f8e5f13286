//! A cluster-wide listing held compactly. At fleet scale the listing is most of what the
//! controller keeps besides its Kubernetes cache (100,000 alarms decoded are ~1.4 KB each, most
//! of it the same topic ARNs, name prefixes and state reasons over and over), so items are kept
//! in groups, one per name "folder" (the name up to its last separator: `/` for alarms and `.`
//! for rules, so a folder is one AlarmPolicy's alarms or rules), each group as deflated JSON. A read decodes only the groups under its prefix; a write
//! re-packs only the groups it touches.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{Read, Write};
use std::marker::PhantomData;

use flate2::Compression;
use flate2::read::DeflateDecoder;
use flate2::write::DeflateEncoder;
use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio::time::Instant;

/// The named items of one group, sorted by name.
type Items<T> = Vec<(String, T)>;

/// One group's items: deflated JSON, or as they are when they do not survive a round trip
/// through JSON (a non-finite threshold would come back as `null`).
#[derive(Debug)]
enum Packed<T> {
    Deflated(Box<[u8]>, PhantomData<fn() -> T>),
    Plain(Items<T>),
}

impl<T: Serialize + DeserializeOwned + Clone> Packed<T> {
    fn pack(items: Items<T>) -> Packed<T> {
        match deflate(&items) {
            Some(bytes) if inflate::<T>(&bytes).is_some() => {
                Packed::Deflated(bytes.into_boxed_slice(), PhantomData)
            }
            _ => Packed::Plain(items),
        }
    }

    fn unpack(&self) -> Items<T> {
        match self {
            // Packed only after a successful round trip, so this decodes.
            Packed::Deflated(bytes, _) => inflate(bytes).unwrap_or_default(),
            Packed::Plain(items) => items.clone(),
        }
    }
}

fn deflate<T: Serialize>(items: &Items<T>) -> Option<Vec<u8>> {
    let mut encoder = DeflateEncoder::new(Vec::new(), Compression::default());
    serde_json::to_writer(&mut encoder, items).ok()?;
    encoder.flush().ok()?;
    encoder.finish().ok()
}

fn inflate<T: DeserializeOwned>(bytes: &[u8]) -> Option<Items<T>> {
    let mut json = Vec::new();
    DeflateDecoder::new(bytes).read_to_end(&mut json).ok()?;
    serde_json::from_slice(&json).ok()
}

/// The group of a name: the name up to and including its last `separator` (empty without
/// one). Any name starting with a prefix is then in the prefix's own group or in a group whose
/// key starts with the prefix.
fn group_of(name: &str, separator: char) -> &str {
    name.rfind(separator).map_or("", |i| &name[..=i])
}

/// A cluster-wide listing of one kind of resource, by name, with the names written since.
#[derive(Debug)]
pub(super) struct Listing<T> {
    pub(super) listed_at: Instant,
    /// Ends a name's folder: `/` in alarm names, `.` in rule names.
    separator: char,
    groups: BTreeMap<String, Packed<T>>,
    /// Written since the listing: the next read of a prefix holding one re-lists that prefix.
    pub(super) stale: BTreeSet<String>,
}

impl<T: Serialize + DeserializeOwned + Clone> Listing<T> {
    pub(super) fn new(separator: char, items: impl IntoIterator<Item = (String, T)>) -> Self {
        let mut listing = Listing {
            listed_at: Instant::now(),
            separator,
            groups: BTreeMap::new(),
            stale: BTreeSet::new(),
        };
        listing.add(items);
        listing
    }

    /// The keys of the groups that may hold names starting with `prefix`: the prefix's own
    /// group, and every group whose key starts with the prefix.
    fn groups_under(&self, prefix: &str) -> Vec<String> {
        let own = group_of(prefix, self.separator);
        let mut keys: Vec<String> = self
            .groups
            .range(prefix.to_string()..)
            .take_while(|(key, _)| key.starts_with(prefix))
            .map(|(key, _)| key.clone())
            .collect();
        if own != prefix && self.groups.contains_key(own) {
            keys.push(own.to_string());
        }
        keys
    }

    /// Every item whose name starts with `prefix`, sorted by name.
    pub(super) fn under(&self, prefix: &str) -> Vec<(String, T)> {
        let mut found: Items<T> = self
            .groups_under(prefix)
            .iter()
            .filter_map(|key| self.groups.get(key))
            .flat_map(|group| group.unpack())
            .filter(|(name, _)| name.starts_with(prefix))
            .collect();
        found.sort_by(|a, b| a.0.cmp(&b.0));
        found
    }

    pub(super) fn has_stale_under(&self, prefix: &str) -> bool {
        self.stale
            .range(prefix.to_string()..)
            .next()
            .is_some_and(|name| name.starts_with(prefix))
    }

    /// Replaces what is under `prefix` with a fresh read of it.
    pub(super) fn refresh(&mut self, prefix: &str, fresh: impl IntoIterator<Item = (String, T)>) {
        for key in self.groups_under(prefix) {
            self.repack(&key, |items| {
                items.retain(|(name, _)| !name.starts_with(prefix))
            });
        }
        self.stale.retain(|name| !name.starts_with(prefix));
        self.add(fresh);
    }

    /// Forgets one item (deleted by alertops).
    pub(super) fn remove(&mut self, name: &str) {
        let key = group_of(name, self.separator).to_string();
        self.repack(&key, |items| items.retain(|(n, _)| n != name));
    }

    /// Adds items, replacing those of the same name.
    pub(super) fn add(&mut self, items: impl IntoIterator<Item = (String, T)>) {
        let mut by_group: BTreeMap<String, Items<T>> = BTreeMap::new();
        for (name, item) in items {
            by_group
                .entry(group_of(&name, self.separator).to_string())
                .or_default()
                .push((name, item));
        }
        for (key, added) in by_group {
            self.repack(&key, move |items| {
                for (name, item) in added {
                    match items.binary_search_by(|(n, _)| n.as_str().cmp(&name)) {
                        Ok(i) => items[i].1 = item,
                        Err(i) => items.insert(i, (name, item)),
                    }
                }
            });
        }
    }

    /// Unpacks group `key` (empty when absent), changes it, and packs it again (drops it when
    /// it is left empty).
    fn repack(&mut self, key: &str, change: impl FnOnce(&mut Items<T>)) {
        let mut items = self.groups.get(key).map(Packed::unpack).unwrap_or_default();
        change(&mut items);
        if items.is_empty() {
            self.groups.remove(key);
        } else {
            self.groups.insert(key.to_string(), Packed::pack(items));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names_of<T>(items: &[(String, T)]) -> Vec<&str> {
        items.iter().map(|(n, _)| n.as_str()).collect()
    }

    fn listing(names: &[&str]) -> Listing<u32> {
        Listing::new(
            '/',
            names
                .iter()
                .enumerate()
                .map(|(i, n)| (n.to_string(), i as u32)),
        )
    }

    #[test]
    fn a_prefix_finds_its_names_across_groups_sorted_and_nothing_else() {
        let listing = listing(&["a/p/x", "a/p/c/y", "a/p2/z", "a/pz", "a/q/w", "b/p/x"]);
        assert_eq!(names_of(&listing.under("a/p/")), ["a/p/c/y", "a/p/x"]);
        // A prefix ending inside a name: its own group ("a/") and the groups below it.
        assert_eq!(
            names_of(&listing.under("a/p")),
            ["a/p/c/y", "a/p/x", "a/p2/z", "a/pz"]
        );
        assert_eq!(listing.under("a/r").len(), 0);
        assert_eq!(listing.under("").len(), 6);
    }

    #[test]
    fn rule_names_are_grouped_by_their_policy_prefix() {
        let names = ["ao.h1.deploy", "ao.h1.scale", "ao.h2.deploy"];
        let listing = Listing::new('.', names.map(|n| (n.to_string(), 0_u32)));
        assert_eq!(
            names_of(&listing.under("ao.h1.")),
            ["ao.h1.deploy", "ao.h1.scale"]
        );
        assert_eq!(listing.groups.len(), 2, "one group per policy");
        assert_eq!(listing.under("ao.").len(), 3);
    }

    #[test]
    fn refresh_replaces_exactly_what_is_under_the_prefix() {
        let mut listing = listing(&["a/p/x", "a/p/y", "a/p2/z"]);
        listing.stale.insert("a/p/y".into());
        listing.refresh("a/p/", [("a/p/new".to_string(), 7)]);
        let all = listing.under("a/");
        assert_eq!(names_of(&all), ["a/p/new", "a/p2/z"]);
        assert_eq!(all[0].1, 7);
        assert!(!listing.has_stale_under("a/p/"));
    }

    #[test]
    fn a_removed_name_is_gone_and_an_emptied_group_is_dropped() {
        let mut listing = listing(&["a/p/x", "a/q/y"]);
        listing.remove("a/p/x");
        assert_eq!(names_of(&listing.under("a/")), ["a/q/y"]);
        assert!(!listing.groups.contains_key("a/p/"));
    }

    #[test]
    fn groups_are_kept_deflated_and_what_json_cannot_carry_is_kept_as_is() {
        let listing = Listing::new(
            '/',
            [("a/x".to_string(), 1.5_f64), ("b/y".to_string(), f64::NAN)],
        );
        assert!(matches!(listing.groups["a/"], Packed::Deflated(..)));
        assert!(matches!(listing.groups["b/"], Packed::Plain(_)));
        assert_eq!(listing.under("a/")[0].1, 1.5);
        assert!(listing.under("b/")[0].1.is_nan());
    }
}
