//! Valid instances of an OpenAPI document's schemas, for contract tests: what a vendor's own
//! document allows its servers to send, generated so that the clients can be shown to decode it.
//!
//! [`Instances::minimal`] gives only what a schema requires; [`Instances::maximal`] gives every
//! property (to a depth), arrays of two, and values at the edges the schema leaves open
//! (negative integers where no minimum is set, long strings where no maximum is). Choices
//! (`enum`, `oneOf`, `anyOf`) are drawn from a seeded generator, so a failure can be replayed.

use serde_json::{Map, Value};

/// How much of a schema an instance fills in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Fill {
    Minimal,
    Maximal,
}

/// A generator of instances for one OpenAPI document.
#[derive(Debug)]
pub struct Instances<'a> {
    spec: &'a Value,
    rng: fastrand::Rng,
}

/// Nesting beyond which a maximal instance fills in only what is required.
const MAX_DEPTH: usize = 6;

impl<'a> Instances<'a> {
    /// A generator for `spec` (a whole OpenAPI 3 document), seeded.
    pub fn new(spec: &'a Value, seed: u64) -> Self {
        Self {
            spec,
            rng: fastrand::Rng::with_seed(seed),
        }
    }

    /// The schema at a `#/components/schemas/NAME` reference, or named directly.
    pub fn schema(&self, name_or_ref: &str) -> Option<&'a Value> {
        let name = name_or_ref
            .strip_prefix("#/components/schemas/")
            .unwrap_or(name_or_ref);
        self.spec.get("components")?.get("schemas")?.get(name)
    }

    /// An instance with only the required properties.
    pub fn minimal(&mut self, schema: &Value) -> Value {
        self.instance(schema, Fill::Minimal, 0)
    }

    /// An instance with every property, to a depth.
    pub fn maximal(&mut self, schema: &Value) -> Value {
        self.instance(schema, Fill::Maximal, 0)
    }

    /// [`Instances::maximal`] when `maximal`, else [`Instances::minimal`]: the two sizes a
    /// contract test walks through.
    pub fn filled(&mut self, schema: &Value, maximal: bool) -> Value {
        let fill = if maximal {
            Fill::Maximal
        } else {
            Fill::Minimal
        };
        self.instance(schema, fill, 0)
    }

    fn resolve(&self, schema: &'a Value) -> &'a Value {
        let mut schema = schema;
        for _ in 0..16 {
            match schema.get("$ref").and_then(Value::as_str) {
                Some(r) => match self.schema(r) {
                    Some(s) => schema = s,
                    None => return schema,
                },
                None => return schema,
            }
        }
        schema
    }

    fn instance(&mut self, schema: &Value, fill: Fill, depth: usize) -> Value {
        let schema = match schema.get("$ref").and_then(Value::as_str) {
            Some(r) => match self.schema(r) {
                Some(s) => self.resolve(s),
                None => return Value::Null,
            },
            None => schema,
        };
        let fill = if depth > MAX_DEPTH {
            Fill::Minimal
        } else {
            fill
        };
        if depth > MAX_DEPTH * 2 {
            return Value::Null;
        }
        if let Some(all) = schema.get("allOf").and_then(Value::as_array) {
            let mut merged = Map::new();
            for part in all {
                if let Value::Object(o) = self.instance(part, fill, depth) {
                    merged.extend(o);
                }
            }
            if let Value::Object(o) = self.object(schema, fill, depth) {
                merged.extend(o);
            }
            return Value::Object(merged);
        }
        for key in ["oneOf", "anyOf"] {
            if let Some(choices) = schema.get(key).and_then(Value::as_array)
                && !choices.is_empty()
            {
                let pick = self.rng.usize(..choices.len());
                return self.instance(&choices[pick], fill, depth);
            }
        }
        if let Some(values) = schema.get("enum").and_then(Value::as_array)
            && !values.is_empty()
        {
            return values[self.rng.usize(..values.len())].clone();
        }
        let kind = match schema.get("type") {
            Some(Value::String(t)) => t.as_str(),
            Some(Value::Array(ts)) => ts
                .iter()
                .filter_map(Value::as_str)
                .find(|t| *t != "null")
                .unwrap_or("null"),
            _ if schema.get("properties").is_some() => "object",
            _ if schema.get("items").is_some() => "array",
            _ => "object",
        };
        match kind {
            "object" => self.object(schema, fill, depth),
            "array" => {
                let min = schema.get("minItems").and_then(Value::as_u64).unwrap_or(0);
                let count = match fill {
                    Fill::Minimal => min,
                    Fill::Maximal => min.max(2),
                };
                let items = schema.get("items").cloned().unwrap_or(Value::Null);
                Value::Array(
                    (0..count)
                        .map(|_| self.instance(&items, fill, depth + 1))
                        .collect(),
                )
            }
            "string" => self.string(schema, fill),
            "integer" => {
                let min = schema.get("minimum").and_then(Value::as_i64);
                let max = schema.get("maximum").and_then(Value::as_i64);
                Value::from(match (fill, min, max) {
                    (Fill::Minimal, Some(m), _) => m,
                    (Fill::Minimal, None, _) => 0,
                    (Fill::Maximal, _, Some(m)) => m,
                    (Fill::Maximal, None, None) => -self.rng.i64(1..1_000_000),
                    (Fill::Maximal, Some(_), None) => self.rng.i64(1_000_000..i64::from(i32::MAX)),
                })
            }
            "number" => Value::from(match fill {
                Fill::Minimal => 0.0,
                Fill::Maximal => -1.5,
            }),
            "boolean" => Value::Bool(fill == Fill::Maximal),
            _ => Value::Null,
        }
    }

    fn object(&mut self, schema: &Value, fill: Fill, depth: usize) -> Value {
        let mut out = Map::new();
        let Some(properties) = schema.get("properties").and_then(Value::as_object) else {
            return Value::Object(out);
        };
        let required: Vec<&str> = schema
            .get("required")
            .and_then(Value::as_array)
            .map(|r| r.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        for (name, property) in properties {
            let wanted = fill == Fill::Maximal || required.contains(&name.as_str());
            if wanted {
                let value = self.instance(property, fill, depth + 1);
                out.insert(name.clone(), value);
            }
        }
        Value::Object(out)
    }

    fn string(&mut self, schema: &Value, fill: Fill) -> Value {
        let format = schema.get("format").and_then(Value::as_str).unwrap_or("");
        let text = match format {
            "date-time" => "2026-03-04T05:06:07.123456+00:00".to_owned(),
            "date" => "2026-03-04".to_owned(),
            "uuid" => format!("4a18d42f-0706-4ad0-b127-{:012x}", self.rng.u64(..1 << 48)),
            "uri" | "url" => format!("https://example.test/{}", self.rng.u32(..)),
            "email" => "someone@example.test".to_owned(),
            _ => match fill {
                Fill::Minimal => {
                    let min = schema.get("minLength").and_then(Value::as_u64).unwrap_or(0);
                    "s".repeat(usize::try_from(min).unwrap_or(0))
                }
                Fill::Maximal => {
                    let max = schema
                        .get("maxLength")
                        .and_then(Value::as_u64)
                        .map_or(300, |m| usize::try_from(m).unwrap_or(300));
                    let mut s = format!("ünïcode-{}-", self.rng.u32(..));
                    while s.chars().count() < max.min(300) {
                        s.push('x');
                    }
                    s.chars().take(max).collect()
                }
            },
        };
        Value::String(text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn minimal_has_what_is_required_and_maximal_everything() {
        let spec = json!({"components": {"schemas": {
            "base": {"type": "object", "required": ["type"], "properties": {"type": {"type": "string"}}},
            "thing": {"allOf": [{"$ref": "#/components/schemas/base"}, {"type": "object",
                "properties": {"size": {"type": "integer"}, "tags": {"type": "array", "items": {"type": "string", "enum": ["a"]}}}}]}
        }}});
        let mut generator = Instances::new(&spec, 7);
        let thing = generator.schema("thing").unwrap().clone();
        assert_eq!(generator.minimal(&thing), json!({"type": ""}));
        let max = generator.maximal(&thing);
        assert!(max["size"].as_i64().unwrap() < 0, "{max}");
        assert_eq!(max["tags"], json!(["a", "a"]));
        assert!(max["type"].as_str().unwrap().starts_with("ünïcode-"));
    }
}
