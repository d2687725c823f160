//! What the sandbox understands of Bitbucket's query language (`q`: clauses joined by `AND`,
//! parenthesised `OR` groups) and of partial responses (`fields`).

use serde_json::{Map, Value};

/// Applies a `fields` selection: names project the answer to those paths; `-path` removes one;
/// `+path` keeps the defaults (everything here).
pub(super) fn apply_fields(body: Value, fields: &str) -> Value {
    let list: Vec<&str> = fields
        .split(',')
        .map(str::trim)
        .filter(|f| !f.is_empty())
        .collect();
    let keep: Vec<Vec<&str>> = list
        .iter()
        .filter(|f| !f.starts_with(['+', '-']))
        .chain(list.iter().filter(|f| f.starts_with('+')))
        .map(|f| f.trim_start_matches('+').split('.').collect())
        .collect();
    let projects = list.iter().any(|f| !f.starts_with(['+', '-']));
    let mut body = if projects {
        project(&body, &keep)
    } else {
        body
    };
    for f in list.iter().filter(|f| f.starts_with('-')) {
        remove(&mut body, &f[1..].split('.').collect::<Vec<_>>());
    }
    body
}

fn project(value: &Value, paths: &[Vec<&str>]) -> Value {
    match value {
        Value::Array(items) => Value::Array(items.iter().map(|v| project(v, paths)).collect()),
        Value::Object(map) => {
            let mut out = Map::new();
            for (key, v) in map {
                let tails: Vec<Vec<&str>> = paths
                    .iter()
                    .filter(|p| p.first() == Some(&key.as_str()) || p.first() == Some(&"*"))
                    .map(|p| p[1..].to_vec())
                    .collect();
                if tails.is_empty() {
                    continue;
                }
                if tails.iter().any(Vec::is_empty) {
                    out.insert(key.clone(), v.clone());
                } else {
                    out.insert(key.clone(), project(v, &tails));
                }
            }
            Value::Object(out)
        }
        other => other.clone(),
    }
}

fn remove(value: &mut Value, path: &[&str]) {
    match value {
        Value::Array(items) => items.iter_mut().for_each(|v| remove(v, path)),
        Value::Object(map) => match path {
            [] => {}
            [last] => {
                map.remove(*last);
            }
            [first, rest @ ..] => {
                if let Some(v) = map.get_mut(*first) {
                    remove(v, rest);
                }
            }
        },
        _ => {}
    }
}

#[derive(Debug)]
pub(super) struct Clause {
    path: Vec<String>,
    op: &'static str,
    value: String,
}

impl Clause {
    pub(super) fn matches(&self, item: &Value) -> bool {
        let mut v = item;
        for part in &self.path {
            v = &v[part.as_str()];
        }
        let actual = match v {
            Value::String(s) => s.clone(),
            Value::Bool(b) => b.to_string(),
            Value::Number(n) => n.to_string(),
            Value::Null => "null".to_owned(),
            other => other.to_string(),
        };
        // Timestamps compare on their first 19 characters (to the second).
        let looks_like_time = |s: &str| s.len() >= 19 && s.as_bytes().get(10) == Some(&b'T');
        let (a, b) = if looks_like_time(&actual) && self.value.len() >= 10 {
            let cut = |s: &str| s.chars().take(19).collect::<String>();
            (cut(&actual), cut(&self.value))
        } else {
            (actual, self.value.clone())
        };
        match self.op {
            "=" => a == b,
            "!=" => a != b,
            ">" => a > b,
            ">=" => a >= b,
            "<" => a < b,
            "<=" => a <= b,
            "~" => a.to_lowercase().contains(&b.to_lowercase()),
            _ => false,
        }
    }
}

/// Reads a `q` filter: terms joined by `AND`, each a clause or a parenthesised group of
/// clauses joined by `OR` (`(uuid="{a}" OR uuid="{b}")`); returns the terms, each the clauses
/// of which one must match.
pub(super) fn parse_query(q: &str) -> Result<Vec<Vec<Clause>>, String> {
    let mut terms = Vec::new();
    let mut rest = q;
    loop {
        let lower_rest = rest.to_ascii_lowercase();
        let (part, next) = match lower_rest.find(" and ") {
            Some(i) => (&rest[..i], Some(&rest[i + 5..])),
            None => (rest, None),
        };
        let part = part.trim();
        let grouped = part.starts_with('(') && part.ends_with(')');
        let inner = part.trim_start_matches('(').trim_end_matches(')').trim();
        let mut alternatives = Vec::new();
        let mut left = inner;
        loop {
            let lower_left = left.to_ascii_lowercase();
            let (one, more) = match lower_left.find(" or ") {
                Some(i) if grouped => (&left[..i], Some(&left[i + 4..])),
                Some(_) => {
                    return Err("Invalid query: put OR alternatives in parentheses".to_owned());
                }
                None => (left, None),
            };
            alternatives.push(parse_clause(one.trim())?);
            match more {
                Some(m) => left = m,
                None => break,
            }
        }
        terms.push(alternatives);
        match next {
            Some(n) => rest = n,
            None => break,
        }
    }
    Ok(terms)
}

/// One `field op value` clause.
fn parse_clause(part: &str) -> Result<Clause, String> {
    let op = [">=", "<=", "!=", "=", ">", "<", "~"]
        .into_iter()
        .find(|op| part.contains(op))
        .ok_or_else(|| format!("Invalid query: `{part}`"))?;
    let (field, value) = part.split_once(op).unwrap_or_default();
    let value = value.trim();
    let value = if value.len() >= 2 && value.starts_with('"') && value.ends_with('"') {
        value[1..value.len() - 1]
            .replace("\\\"", "\"")
            .replace("\\\\", "\\")
    } else {
        value.to_owned()
    };
    Ok(Clause {
        path: field.trim().split('.').map(str::to_owned).collect(),
        op,
        value,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn fields_projection_keeps_only_what_was_asked() {
        let body = json!({"next": "n", "size": 3, "values": [{"slug": "a", "mainbranch": {"name": "main", "type": "branch"}, "uuid": "u"}]});
        assert_eq!(
            apply_fields(body.clone(), "values.slug,values.mainbranch.name"),
            json!({"values": [{"slug": "a", "mainbranch": {"name": "main"}}]})
        );
        assert!(
            apply_fields(body.clone(), "-values.uuid")["values"][0]
                .get("uuid")
                .is_none()
        );
        assert_eq!(apply_fields(body, "next,values.uuid")["next"], "n");
    }

    #[test]
    fn queries_filter() {
        let item = json!({"project": {"key": "CORE"}, "updated_on": "2026-03-01T10:00:00.000000+00:00", "is_private": true});
        let ok = |q: &str| {
            parse_query(q)
                .unwrap()
                .iter()
                .all(|any| any.iter().any(|c| c.matches(&item)))
        };
        assert!(ok(r#"project.key="CORE""#));
        assert!(!ok(r#"project.key="WEB""#));
        assert!(ok("updated_on>2026-01-01T00:00:00Z"));
        assert!(!ok("updated_on>2026-06-01T00:00:00Z"));
        assert!(ok(r#"(project.key="CORE") AND (is_private=true)"#));
        assert!(
            parse_query("a=1 OR b=2").is_err(),
            "OR needs its parentheses"
        );
        assert!(ok(
            r#"(project.key="WEB" OR project.key="CORE") AND is_private=true"#
        ));
        assert!(!ok(r#"(project.key="WEB" OR project.key="APP")"#));
    }
}
