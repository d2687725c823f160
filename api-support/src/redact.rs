//! Removing anything that looks like a credential from text before it is kept or shown.
//!
//! Error bodies are kept (at most [`MAX_EXCERPT`] bytes) so that a person can see what the server
//! said. Servers sometimes echo what they were sent, so every excerpt passes through [`redact`]
//! first, and then through the exact secrets of the credentials in use (see
//! [`crate::Authorizer::redact`]).

/// The marker that replaces a removed secret.
pub const REDACTED: &str = "[REDACTED]";

/// The largest excerpt of a body kept in an error, in bytes.
pub const MAX_EXCERPT: usize = 4096;

/// Key fragments whose values are treated as secrets, in JSON (`"client_secret": "…"`) and in
/// query or form pairs (`access_token=…`). Matched case-insensitively anywhere in the key.
const SENSITIVE_KEYS: &[&str] = &[
    "token",
    "secret",
    "password",
    "passwd",
    "authorization",
    "api_key",
    "apikey",
    "credential",
    "private_key",
];

/// Authorization schemes whose next word is a credential.
const SCHEMES: &[&str] = &["bearer", "basic", "token"];

/// Prefixes of well-known token formats (Atlassian API and access tokens, Snyk PATs).
const TOKEN_PREFIXES: &[&str] = &["atatt", "atctt", "snyk_uat.", "snyk_sat."];

/// Characters that can form part of a token.
fn is_token_char(c: u8) -> bool {
    c.is_ascii_alphanumeric() || b"-._~+/=".contains(&c)
}

fn is_key_char(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'_' || c == b'-'
}

/// Returns `text` with every credential-looking value replaced by [`REDACTED`]:
/// words after `Bearer`, `Basic` and `token`; values of JSON keys and query pairs whose name
/// mentions a token, secret, password or credential; and strings that start like Atlassian or
/// Snyk tokens.
pub fn redact(text: &str) -> String {
    // ASCII lowering keeps every byte index, so ranges found in `lower` apply to `text`.
    let lower = text.to_ascii_lowercase();
    let lb = lower.as_bytes();
    let mut ranges: Vec<(usize, usize)> = Vec::new();
    after_schemes(&lower, &mut ranges);
    token_prefixes(&lower, &mut ranges);
    for key in SENSITIVE_KEYS {
        for (pos, _) in lower.match_indices(key) {
            // Walk to the end of the key this fragment belongs to.
            let mut end = pos + key.len();
            while end < lb.len() && is_key_char(lb[end]) {
                end += 1;
            }
            ranges.extend(assigned_value(lb, end).or_else(|| json_value(lb, end)));
        }
    }
    url_user_info(&lower, &mut ranges);
    splice(text, ranges)
}

/// The end of the run of token characters starting at `from`.
fn token_run(lb: &[u8], from: usize) -> usize {
    let mut end = from;
    while end < lb.len() && is_token_char(lb[end]) {
        end += 1;
    }
    end
}

/// The index of the first byte at or after `from` that is not a space or tab.
fn skip_blanks(lb: &[u8], mut from: usize) -> usize {
    while from < lb.len() && (lb[from] == b' ' || lb[from] == b'\t') {
        from += 1;
    }
    from
}

/// Words after an authorization scheme (`Bearer …`), whole words only.
fn after_schemes(lower: &str, ranges: &mut Vec<(usize, usize)>) {
    let lb = lower.as_bytes();
    for scheme in SCHEMES {
        for (pos, _) in lower.match_indices(scheme) {
            // A whole word only: "tokens" or "mytoken" are not schemes.
            if pos > 0 && is_key_char(lb[pos - 1]) {
                continue;
            }
            let mut start = pos + scheme.len();
            if start >= lb.len() || lb[start] != b' ' {
                continue;
            }
            while start < lb.len() && lb[start] == b' ' {
                start += 1;
            }
            let end = token_run(lb, start);
            if end - start >= 8 {
                ranges.push((start, end));
            }
        }
    }
}

/// Strings that start like a well-known token format.
fn token_prefixes(lower: &str, ranges: &mut Vec<(usize, usize)>) {
    let lb = lower.as_bytes();
    for prefix in TOKEN_PREFIXES {
        for (pos, _) in lower.match_indices(prefix) {
            if pos > 0 && is_token_char(lb[pos - 1]) {
                continue;
            }
            let end = token_run(lb, pos);
            if end - pos > prefix.len() + 4 {
                ranges.push((pos, end));
            }
        }
    }
}

/// The value of a query or form pair (`token=…`), or of a TOML or shell assignment
/// (`token = "…"`), whose key ends at `end`: an empty range when the value is empty.
fn assigned_value(lb: &[u8], end: usize) -> Option<(usize, usize)> {
    let eq = skip_blanks(lb, end);
    if eq >= lb.len() || lb[eq] != b'=' {
        return None;
    }
    let mut start = skip_blanks(lb, eq + 1);
    let mut stop = start;
    if start < lb.len() && (lb[start] == b'"' || lb[start] == b'\'') {
        // A quoted value runs to its closing quote, or to the end of the line when it has
        // none (an unterminated string in a file being reported).
        let quote = lb[start];
        start += 1;
        stop = start;
        while stop < lb.len() && lb[stop] != quote && lb[stop] != b'\n' {
            stop += if lb[stop] == b'\\' { 2 } else { 1 };
        }
        stop = stop.min(lb.len());
    } else {
        while stop < lb.len() && !b"&; \t\r\n\"'<>,".contains(&lb[stop]) {
            stop += 1;
        }
    }
    // Found, even empty: the key is then not looked at as a JSON key.
    Some((start, stop))
}

/// The string value of a JSON key (`"key" : "value"`) whose name ends at `end`.
fn json_value(lb: &[u8], end: usize) -> Option<(usize, usize)> {
    if end >= lb.len() || lb[end] != b'"' {
        return None;
    }
    let mut i = end + 1;
    while i < lb.len() && lb[i].is_ascii_whitespace() {
        i += 1;
    }
    if i >= lb.len() || lb[i] != b':' {
        return None;
    }
    i += 1;
    while i < lb.len() && lb[i].is_ascii_whitespace() {
        i += 1;
    }
    if i >= lb.len() || lb[i] != b'"' {
        return None;
    }
    let start = i + 1;
    let mut stop = start;
    while stop < lb.len() && lb[stop] != b'"' {
        stop += if lb[stop] == b'\\' { 2 } else { 1 };
    }
    let stop = stop.min(lb.len());
    (stop > start).then_some((start, stop))
}

/// User information in a URL (`https://user:secret@host`): the password, or the whole of it
/// when there is no password (a token used as the user name).
fn url_user_info(lower: &str, ranges: &mut Vec<(usize, usize)>) {
    let lb = lower.as_bytes();
    for (pos, _) in lower.match_indices("://") {
        let start = pos + 3;
        let mut stop = start;
        while stop < lb.len() && !b"/?#@ \t\r\n\"'<>".contains(&lb[stop]) {
            stop += 1;
        }
        if stop < lb.len() && lb[stop] == b'@' && stop > start {
            let info = &lb[start..stop];
            let from = info
                .iter()
                .position(|&c| c == b':')
                .map_or(start, |i| start + i + 1);
            if stop > from {
                ranges.push((from, stop));
            }
        }
    }
}

/// `text` with each of `ranges` (overlapping or not) replaced by [`REDACTED`].
fn splice(text: &str, mut ranges: Vec<(usize, usize)>) -> String {
    ranges.retain(|(start, end)| end > start);
    if ranges.is_empty() {
        return text.to_owned();
    }
    ranges.sort_unstable();
    let mut out = String::with_capacity(text.len());
    let mut at = 0;
    for (start, end) in ranges {
        if end <= at {
            continue;
        }
        let start = start.max(at);
        out.push_str(&text[at..start]);
        out.push_str(REDACTED);
        at = end;
    }
    out.push_str(&text[at..]);
    out
}

/// Replaces every occurrence of `secret` in `text` with [`REDACTED`]. Secrets shorter than four
/// characters are left alone: they would match ordinary words.
pub fn redact_exact(text: &mut String, secret: &str) {
    if secret.len() >= 4 && text.contains(secret) {
        *text = text.replace(secret, REDACTED);
    }
}

/// Cuts `text` to at most `max` bytes on a character boundary, marking the cut.
pub(crate) fn truncate(mut text: String, max: usize) -> String {
    if text.len() <= max {
        return text;
    }
    let mut cut = max;
    while !text.is_char_boundary(cut) {
        cut -= 1;
    }
    text.truncate(cut);
    text.push('…');
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schemes_are_redacted() {
        assert_eq!(
            redact("Authorization: Bearer abcdefgh12345678"),
            "Authorization: Bearer [REDACTED]"
        );
        assert_eq!(redact("basic dXNlcjpwYXNzd29yZA=="), "basic [REDACTED]");
        assert_eq!(
            redact("header was token 0f4c2a6e-1111-2222-3333-444455556666 ok"),
            "header was token [REDACTED] ok"
        );
        // Ordinary prose is kept.
        assert_eq!(redact("the token is bad"), "the token is bad");
        assert_eq!(redact("tokens expire"), "tokens expire");
    }

    #[test]
    fn json_and_query_values_are_redacted() {
        let body = r#"{"access_token": "s3cr3t-value", "client_secret":"x\"y", "name":"ok"}"#;
        assert_eq!(
            redact(body),
            r#"{"access_token": "[REDACTED]", "client_secret":"[REDACTED]", "name":"ok"}"#
        );
        assert_eq!(
            redact("https://x/?access_token=abc123&page=2"),
            "https://x/?access_token=[REDACTED]&page=2"
        );
        assert_eq!(
            redact("grant_type=client_credentials&client_secret=hunter22"),
            "grant_type=client_credentials&client_secret=[REDACTED]"
        );
    }

    #[test]
    fn assignments_and_url_user_information_are_redacted() {
        // A TOML parse error's excerpt of a user's file, closed and unterminated strings.
        assert_eq!(
            redact("3 | token = \"hunter2-abc\"\n  |   ^"),
            "3 | token = \"[REDACTED]\"\n  |   ^"
        );
        assert_eq!(
            redact("3 | api_token = \"hunter2-abc\n  |   ^"),
            "3 | api_token = \"[REDACTED]\n  |   ^"
        );
        assert_eq!(redact("password=hunter2 ok"), "password=[REDACTED] ok");
        assert_eq!(
            redact("SNYK_API (http://user:s3cret@example.test/api) is wrong"),
            "SNYK_API (http://user:[REDACTED]@example.test/api) is wrong"
        );
        assert_eq!(
            redact("https://abcdef123456@example.test/x"),
            "https://[REDACTED]@example.test/x"
        );
        // No user information: kept.
        assert_eq!(
            redact("https://example.test/a@b and mailto me@example.test"),
            "https://example.test/a@b and mailto me@example.test"
        );
    }

    #[test]
    fn token_prefixes_are_redacted() {
        assert_eq!(
            redact("bad credential ATATT3xFfGF0abcdefghijkl=1234 given"),
            "bad credential [REDACTED] given"
        );
        assert_eq!(
            redact("pat snyk_uat.12345678.eyJoIjoiYXBpLnNueWsuaW8ifQ.sig"),
            "pat [REDACTED]"
        );
    }

    #[test]
    fn exact_secrets_and_truncation() {
        let mut s = String::from("echo: my-secret-value and my-secret-value");
        redact_exact(&mut s, "my-secret-value");
        assert_eq!(s, "echo: [REDACTED] and [REDACTED]");
        let mut short = String::from("abc");
        redact_exact(&mut short, "ab");
        assert_eq!(short, "abc");
        assert_eq!(truncate("héllo".into(), 2), "h…");
        assert_eq!(truncate("hello".into(), 10), "hello");
    }
}
