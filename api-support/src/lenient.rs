//! Decoding a listing's items one by one, so that one item the model cannot read never fails a
//! listing of thousands.
//!
//! A page is first read with its items as plain JSON values; each value is then decoded on its
//! own. An item that does not decode is set aside as a [`SkippedItem`] naming its position, its
//! identity when it shows one (uuid, id, full name, slug or name) and the JSON path and reason of
//! the failure. Only a page that is not a page fails the listing.

use std::fmt;

use serde::de::DeserializeOwned;

/// An item of a listing that could not be decoded, and why.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct SkippedItem {
    /// Its position on its page, from 0.
    pub index: usize,
    /// Its uuid, id, full name, slug or name, the first it has.
    pub id: Option<String>,
    /// Its `uuid`, when it has a readable one: what a listing judged by absence needs to
    /// know that this item, at least, is there.
    pub uuid: Option<String>,
    /// The JSON path, within the item, of the value that failed (`.` for the item itself).
    pub path: String,
    /// What was wrong with that value.
    pub reason: String,
}

impl fmt::Display for SkippedItem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "item {}", self.index)?;
        if let Some(id) = &self.id {
            write!(f, " ({id})")?;
        }
        write!(f, " at `{}`: {}", self.path, self.reason)
    }
}

/// Logs the items of a page left out of `listing` (a path), each with its position in the
/// whole listing (`before`: the items of the pages before).
pub fn warn_skipped(listing: &str, before: u64, skipped: &[SkippedItem]) {
    for item in skipped {
        tracing::warn!(
            listing,
            "an item of the listing could not be read and is left out (item {} of the listing): {item}",
            before + item.index as u64
        );
    }
}

/// The JSON path of a decoding failure, `.` for the value itself.
pub(crate) fn shown_path(path: &serde_path_to_error::Path) -> String {
    let path = path.to_string();
    if path.is_empty() {
        ".".to_owned()
    } else {
        path
    }
}

/// Fields that identify an item, in the order they are preferred.
const IDENTITY: &[&str] = &["uuid", "id", "full_name", "slug", "name"];

fn identity(value: &serde_json::Value) -> Option<String> {
    let object = value.as_object()?;
    IDENTITY.iter().find_map(|key| match object.get(*key)? {
        serde_json::Value::String(s) if !s.is_empty() => Some(s.chars().take(200).collect()),
        serde_json::Value::Number(n) => Some(n.to_string()),
        _ => None,
    })
}

/// Decodes each value into `T`, returning the items that decoded, in order, and those that did
/// not.
pub fn decode_items<T: DeserializeOwned>(
    values: Vec<serde_json::Value>,
) -> (Vec<T>, Vec<SkippedItem>) {
    let mut items = Vec::with_capacity(values.len());
    let mut skipped = Vec::new();
    for (index, value) in values.into_iter().enumerate() {
        let id = identity(&value);
        let uuid = value
            .get("uuid")
            .and_then(serde_json::Value::as_str)
            .filter(|u| !u.is_empty() && u.len() <= 200)
            .map(str::to_owned);
        match serde_path_to_error::deserialize::<_, T>(value) {
            Ok(item) => items.push(item),
            Err(e) => {
                skipped.push(SkippedItem {
                    index,
                    id,
                    uuid,
                    path: shown_path(e.path()),
                    reason: crate::redact::redact(&e.into_inner().to_string()),
                });
            }
        }
    }
    (items, skipped)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize, PartialEq)]
    struct Item {
        uuid: String,
        size: u64,
    }

    #[test]
    fn an_item_that_does_not_decode_is_set_aside_with_its_identity_and_path() {
        let values = serde_json::json!([
            {"uuid": "{a}", "size": 1},
            {"uuid": "{b}", "size": -5},
            {"full_name": "ws/c"},
            7,
            {"uuid": "{d}", "size": 4}
        ]);
        let serde_json::Value::Array(values) = values else {
            unreachable!()
        };
        let (items, skipped) = decode_items::<Item>(values);
        assert_eq!(
            items,
            vec![
                Item {
                    uuid: "{a}".into(),
                    size: 1
                },
                Item {
                    uuid: "{d}".into(),
                    size: 4
                }
            ]
        );
        let shown: Vec<String> = skipped.iter().map(ToString::to_string).collect();
        assert_eq!(shown.len(), 3);
        assert!(
            shown[0].starts_with("item 1 ({b}) at `size`: invalid value"),
            "{}",
            shown[0]
        );
        assert!(
            shown[1].starts_with("item 2 (ws/c) at `.`: missing field `uuid`"),
            "{}",
            shown[1]
        );
        assert!(
            shown[2].starts_with("item 3 at `.`: invalid type"),
            "{}",
            shown[2]
        );
    }
}
