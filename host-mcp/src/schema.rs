//! Tool schemas in standard JSON Schema. schemars marks Rust integer types
//! with `format: uint64`, `uint32`, `int64` and the like; those are not JSON
//! Schema formats, and the official TypeScript SDK warns about them on every
//! call. Integers keep their bounds instead (`minimum: 0` for unsigned ones);
//! the standard formats (`date-time`, `uri`, ...) stay.

use std::sync::Arc;

use rmcp::model::{JsonObject, Tool};
use serde_json::Value;

/// The formats JSON Schema (2020-12) defines.
const STANDARD_FORMATS: [&str; 19] = [
    "date-time",
    "date",
    "time",
    "duration",
    "email",
    "idn-email",
    "hostname",
    "idn-hostname",
    "ipv4",
    "ipv6",
    "uri",
    "uri-reference",
    "iri",
    "iri-reference",
    "uuid",
    "uri-template",
    "json-pointer",
    "relative-json-pointer",
    "regex",
];

/// Makes a tool's input and output schemas standard.
pub fn standardise_tool(tool: &mut Tool) {
    standardise_object(Arc::make_mut(&mut tool.input_schema));
    if let Some(output) = &mut tool.output_schema {
        standardise_object(Arc::make_mut(output));
    }
}

/// Makes one schema standard, in place, at every depth.
pub fn standardise_object(schema: &mut JsonObject) {
    if let Some(Value::String(format)) = schema.get("format")
        && !STANDARD_FORMATS.contains(&format.as_str())
    {
        let unsigned = format.starts_with("uint");
        schema.remove("format");
        if unsigned && !schema.contains_key("minimum") {
            schema.insert("minimum".into(), Value::from(0));
        }
    }
    for value in schema.values_mut() {
        standardise_value(value);
    }
}

fn standardise_value(value: &mut Value) {
    match value {
        Value::Object(map) => standardise_object(map),
        Value::Array(items) => items.iter_mut().for_each(standardise_value),
        _ => {}
    }
}

/// Non-standard `format`s left anywhere in `value`, for tests.
pub fn non_standard_formats(value: &Value) -> Vec<String> {
    let mut found = Vec::new();
    let mut stack = vec![value];
    while let Some(v) = stack.pop() {
        match v {
            Value::Object(map) => {
                if let Some(Value::String(f)) = map.get("format")
                    && !STANDARD_FORMATS.contains(&f.as_str())
                {
                    found.push(f.clone());
                }
                stack.extend(map.values());
            }
            Value::Array(items) => stack.extend(items),
            _ => {}
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn integer_formats_become_bounds() {
        let mut v = json!({
            "type": "object",
            "properties": {
                "limit": {"type": ["integer", "null"], "format": "uint32"},
                "count": {"type": "integer", "format": "uint64", "minimum": 0},
                "offset": {"type": "integer", "format": "int64"},
                "at": {"type": "string", "format": "date-time"},
                "runs": {"type": "array", "items": {"type": "integer", "format": "uint"}},
            }
        });
        standardise_value(&mut v);
        assert_eq!(non_standard_formats(&v), Vec::<String>::new());
        assert_eq!(v["properties"]["limit"]["minimum"], 0);
        assert_eq!(v["properties"]["count"]["minimum"], 0);
        assert!(v["properties"]["offset"].get("minimum").is_none());
        assert_eq!(v["properties"]["at"]["format"], "date-time");
        assert_eq!(v["properties"]["runs"]["items"]["minimum"], 0);
    }
}
