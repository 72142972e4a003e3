//! JSON Schema (as OpenAI tools and `response_format` carry it) → Gemini's `Schema`, a select
//! subset of the OpenAPI 3.0 schema object.
//!
//! Kept (documented fields of Gemini's `Schema`): `type` (upper-cased), `format` (only the values
//! both Gemini APIs accept: `enum`, `date-time`, `float`, `double`, `int32`, `int64`), `title`,
//! `description`, `nullable`, `default`, `example`, `enum` (values written as strings), `items`,
//! `minItems`, `maxItems`, `properties`, `required` (only names that are properties),
//! `propertyOrdering`, `minProperties`, `maxProperties`, `minLength`, `maxLength`, `pattern`,
//! `minimum`, `maximum`, `anyOf`.
//!
//! Rewritten: a type list such as `["string", "null"]` becomes `type` + `nullable: true` (several
//! non-null types become `anyOf`); `const` becomes a one-value `enum`; `oneOf` becomes `anyOf`; a
//! `{"type": "null"}` branch of `anyOf` becomes `nullable: true` (a single remaining branch is
//! merged into the parent); a one-element `allOf` is merged; `$ref` to `#/$defs/…` or
//! `#/definitions/…` is inlined (recursive references are cut after [`MAX_DEPTH`] levels and
//! become an unconstrained schema).
//!
//! Dropped (Gemini rejects or ignores them): `$schema`, `$id`, `$defs`, `definitions`,
//! `$comment`, `additionalProperties`, `unevaluatedProperties`, `patternProperties`,
//! `exclusiveMinimum`, `exclusiveMaximum`, `multipleOf`, `uniqueItems`, `contains`, `not`,
//! `if`/`then`/`else`, `prefixItems`, `examples`, `readOnly`, `writeOnly`, `deprecated`, `strict`
//! and every other key not listed above.

use serde_json::{Map, Value};

/// How deep `$ref`s are followed before a recursive schema is cut.
pub const MAX_DEPTH: usize = 24;

const KEEP_AS_IS: &[&str] = &[
    "title",
    "description",
    "default",
    "example",
    "minItems",
    "maxItems",
    "minProperties",
    "maxProperties",
    "minLength",
    "maxLength",
    "pattern",
    "minimum",
    "maximum",
    "propertyOrdering",
];

const FORMATS: &[&str] = &["enum", "date-time", "float", "double", "int32", "int64"];

/// Converts a JSON Schema into Gemini's OpenAPI-subset schema.
pub fn to_gemini_schema(schema: &Value) -> Value {
    let defs = collect_defs(schema);
    convert(schema, &defs, 0)
}

fn collect_defs(root: &Value) -> Map<String, Value> {
    let mut defs = Map::new();
    for key in ["definitions", "$defs"] {
        if let Some(Value::Object(m)) = root.get(key) {
            for (k, v) in m {
                defs.insert(format!("#/{key}/{k}"), v.clone());
            }
        }
    }
    defs
}

fn convert(schema: &Value, defs: &Map<String, Value>, depth: usize) -> Value {
    let Value::Object(src) = schema else {
        // `true` / `false` schemas and garbage: an unconstrained schema.
        return Value::Object(Map::new());
    };
    if depth > MAX_DEPTH {
        return Value::Object(Map::new());
    }
    if let Some(Value::String(r)) = src.get("$ref") {
        let mut out = match defs.get(r) {
            Some(target) => convert(target, defs, depth + 1),
            None => Value::Object(Map::new()),
        };
        // A description next to the `$ref` describes this use of the definition.
        if let (Value::Object(o), Some(d)) = (&mut out, src.get("description")) {
            o.insert("description".into(), d.clone());
        }
        return out;
    }

    let mut out = Map::new();
    let mut nullable = src.get("nullable").and_then(Value::as_bool).unwrap_or(false);

    match src.get("type") {
        Some(Value::String(t)) if t == "null" => nullable = true,
        Some(Value::String(t)) => {
            out.insert("type".into(), Value::String(t.to_ascii_uppercase()));
        }
        Some(Value::Array(types)) => {
            let mut non_null: Vec<&str> = Vec::new();
            for t in types.iter().filter_map(Value::as_str) {
                if t == "null" {
                    nullable = true;
                } else {
                    non_null.push(t);
                }
            }
            match non_null.as_slice() {
                [] => {}
                [one] => {
                    out.insert("type".into(), Value::String(one.to_ascii_uppercase()));
                }
                many => {
                    let branches =
                        many.iter().map(|t| serde_json::json!({"type": t.to_ascii_uppercase()})).collect();
                    out.insert("anyOf".into(), Value::Array(branches));
                }
            }
        }
        _ => {}
    }

    for key in KEEP_AS_IS {
        if let Some(v) = src.get(*key) {
            out.insert((*key).into(), v.clone());
        }
    }
    if let Some(Value::String(f)) = src.get("format")
        && FORMATS.contains(&f.as_str())
    {
        out.insert("format".into(), Value::String(f.clone()));
    }

    let enum_values = match (src.get("enum"), src.get("const")) {
        (Some(Value::Array(values)), _) => Some(values.clone()),
        (None, Some(c)) => Some(vec![c.clone()]),
        _ => None,
    };
    if let Some(values) = enum_values {
        let mut strings = Vec::with_capacity(values.len());
        for v in values {
            match v {
                Value::Null => nullable = true,
                Value::String(s) => strings.push(Value::String(s)),
                other => strings.push(Value::String(other.to_string())),
            }
        }
        out.insert("enum".into(), Value::Array(strings));
        if !out.contains_key("type") {
            out.insert("type".into(), Value::String("STRING".into()));
        }
    }

    if let Some(Value::Object(props)) = src.get("properties") {
        let mut converted = Map::new();
        for (name, sub) in props {
            converted.insert(name.clone(), convert(sub, defs, depth + 1));
        }
        if let Some(Value::Array(req)) = src.get("required") {
            let req: Vec<Value> = req
                .iter()
                .filter(|r| r.as_str().is_some_and(|n| converted.contains_key(n)))
                .cloned()
                .collect();
            if !req.is_empty() {
                out.insert("required".into(), Value::Array(req));
            }
        }
        out.insert("properties".into(), Value::Object(converted));
    }

    match src.get("items") {
        Some(items @ Value::Object(_)) => {
            out.insert("items".into(), convert(items, defs, depth + 1));
        }
        Some(Value::Array(tuple)) => {
            if let Some(first) = tuple.first() {
                out.insert("items".into(), convert(first, defs, depth + 1));
            }
        }
        _ => {}
    }

    let branches = src.get("anyOf").or_else(|| src.get("oneOf"));
    if let Some(Value::Array(branches)) = branches {
        let mut kept = Vec::new();
        for b in branches {
            if b.get("type").and_then(Value::as_str) == Some("null") {
                nullable = true;
            } else {
                kept.push(convert(b, defs, depth + 1));
            }
        }
        if kept.len() == 1 {
            if let Some(Value::Object(only)) = kept.pop() {
                for (k, v) in only {
                    out.entry(k).or_insert(v);
                }
            }
        } else if !kept.is_empty() {
            out.insert("anyOf".into(), Value::Array(kept));
        }
    }

    if let Some(Value::Array(all)) = src.get("allOf") {
        for part in all {
            if let Value::Object(m) = convert(part, defs, depth + 1) {
                for (k, v) in m {
                    match (out.get_mut(&k), v) {
                        (Some(Value::Object(mine)), Value::Object(theirs)) => {
                            for (pk, pv) in theirs {
                                mine.entry(pk).or_insert(pv);
                            }
                        }
                        (Some(_), _) => {}
                        (None, v) => {
                            out.insert(k, v);
                        }
                    }
                }
            }
        }
    }

    if nullable {
        out.insert("nullable".into(), Value::Bool(true));
    }
    Value::Object(out)
}

/// Whether a converted parameters schema declares nothing (Gemini rejects an `OBJECT` with empty
/// `properties` in a function declaration, so such declarations omit `parameters`).
pub(crate) fn is_empty_object(schema: &Value) -> bool {
    match schema {
        Value::Object(m) => {
            let no_props = match m.get("properties") {
                None => true,
                Some(Value::Object(p)) => p.is_empty(),
                Some(_) => true,
            };
            no_props
                && m.keys().all(|k| matches!(k.as_str(), "type" | "properties" | "description" | "title"))
        }
        _ => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn converts_types_nullables_refs_and_drops_unsupported() {
        let schema = json!({
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            "type": "object",
            "additionalProperties": false,
            "$defs": {"unit": {"type": "string", "enum": ["c", "f"]}},
            "properties": {
                "city": {"type": "string", "description": "City", "format": "hostname"},
                "unit": {"$ref": "#/$defs/unit"},
                "days": {"type": ["integer", "null"], "minimum": 1, "exclusiveMaximum": 30},
                "tags": {"type": "array", "items": {"type": "string"}, "uniqueItems": true},
                "when": {"anyOf": [{"type": "string", "format": "date-time"}, {"type": "null"}]},
                "kind": {"const": "forecast"},
                "either": {"oneOf": [{"type": "string"}, {"type": "number"}]}
            },
            "required": ["city", "ghost"]
        });
        assert_eq!(
            to_gemini_schema(&schema),
            json!({
                "type": "OBJECT",
                "properties": {
                    "city": {"type": "STRING", "description": "City"},
                    "unit": {"type": "STRING", "enum": ["c", "f"]},
                    "days": {"type": "INTEGER", "minimum": 1, "nullable": true},
                    "tags": {"type": "ARRAY", "items": {"type": "STRING"}},
                    "when": {"type": "STRING", "format": "date-time", "nullable": true},
                    "kind": {"type": "STRING", "enum": ["forecast"]},
                    "either": {"anyOf": [{"type": "STRING"}, {"type": "NUMBER"}]}
                },
                "required": ["city"]
            })
        );
    }

    #[test]
    fn recursive_refs_are_cut_not_looped() {
        let schema = json!({
            "$defs": {"node": {"type": "object", "properties": {"next": {"$ref": "#/$defs/node"}}}},
            "$ref": "#/$defs/node"
        });
        let out = to_gemini_schema(&schema);
        let mut depth = 0;
        let mut cur = &out;
        while let Some(next) = cur.get("properties").and_then(|p| p.get("next")) {
            depth += 1;
            cur = next;
        }
        assert!(depth > 3 && depth <= MAX_DEPTH + 1, "{depth}");
        assert_eq!(to_gemini_schema(&json!(true)), json!({}));
    }

    #[test]
    fn empty_object_detection() {
        assert!(is_empty_object(&json!({"type": "OBJECT", "properties": {}})));
        assert!(is_empty_object(&json!({"type": "OBJECT"})));
        assert!(!is_empty_object(&json!({"type": "OBJECT", "properties": {"a": {"type": "STRING"}}})));
    }
}
