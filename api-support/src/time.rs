//! Times as the APIs give them: one instant type, [`Timestamp`] (UTC, from any RFC 3339
//! offset), and a lenient decoder so that one odd date never fails a listing.

pub use jiff::Timestamp;
use serde::{Deserialize, Deserializer};

/// Decodes an optional RFC 3339 time; a value that is not one (another format, a number) is
/// `None`, not an error, so that one odd item never fails a page of thousands.
///
/// # Errors
/// Only when the input is not a value at all (the deserializer's own error).
pub fn lenient<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Timestamp>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Raw {
        Text(String),
        Other(serde::de::IgnoredAny),
    }
    Ok(match Option::<Raw>::deserialize(d)? {
        Some(Raw::Text(t)) => parse(&t),
        Some(Raw::Other(_)) | None => None,
    })
}

/// `text` as an instant when it is RFC 3339 (`2026-11-01T00:00:00Z`, `…+02:00`, with or
/// without fractions of a second).
pub fn parse(text: &str) -> Option<Timestamp> {
    text.trim().parse().ok()
}

/// Now, as a [`Timestamp`].
pub fn now() -> Timestamp {
    Timestamp::now()
}

#[cfg(test)]
mod tests {
    use super::{Timestamp, lenient};

    #[derive(serde::Deserialize)]
    struct Item {
        #[serde(default, deserialize_with = "lenient")]
        at: Option<Timestamp>,
    }

    fn at(json: &str) -> Option<Timestamp> {
        serde_json::from_str::<Item>(json).expect("decodes").at
    }

    #[test]
    fn offsets_compare_as_instants_and_odd_values_are_none() {
        let utc = at(r#"{"at": "2026-01-02T03:04:05.123456+00:00"}"#).expect("a time");
        let east = at(r#"{"at": "2026-01-02T05:04:05+02:00"}"#).expect("a time");
        assert!(east < utc, "05:04:05+02:00 is before 03:04:05.123456Z");
        assert_eq!(at(r#"{"at": "yesterday"}"#), None);
        assert_eq!(at(r#"{"at": 1767322245}"#), None);
        assert_eq!(at(r#"{"at": null}"#), None);
        assert_eq!(at("{}"), None);
    }
}
