//! Checks JSON answers against AWS's service model: an extract of botocore's
//! `iot/2015-05-28/service-2.json` (harness/tests/aws_model/, with its source and version), read the
//! way botocore's rest-json parser reads answers. Stricter than botocore, which ignores what it does
//! not know: every member must be in the shape, none may be `null`, enums must hold one of their
//! values, timestamps must be epoch seconds. (No output shape of these operations has required
//! members.)

use serde_json::Value;

/// The vendored extract of the model.
pub fn model() -> Value {
    serde_json::from_str(include_str!("../aws_model/iot-2015-05-28.json"))
        .expect("the vendored model is JSON")
}

/// Every way `value` departs from shape `shape` of `model` (empty: it conforms).
pub fn departures(model: &Value, shape: &str, value: &Value) -> Vec<String> {
    let mut found = Vec::new();
    check(model, shape, value, "$", &mut found);
    found
}

fn check(model: &Value, name: &str, value: &Value, at: &str, found: &mut Vec<String>) {
    let Some(shape) = model["shapes"].get(name) else {
        found.push(format!("{at}: shape {name} is not in the extract"));
        return;
    };
    if value.is_null() {
        found.push(format!("{at}: null ({name})"));
        return;
    }
    let kind = shape["type"].as_str().unwrap_or("");
    let ok = match kind {
        "structure" => {
            let Some(object) = value.as_object() else {
                found.push(format!("{at}: not an object ({name})"));
                return;
            };
            let members = shape["members"].as_object().cloned().unwrap_or_default();
            for (key, member) in object {
                match members.get(key) {
                    Some(m) => check(
                        model,
                        m["shape"].as_str().unwrap_or(""),
                        member,
                        &format!("{at}.{key}"),
                        found,
                    ),
                    None => found.push(format!("{at}.{key}: not a member of {name}")),
                }
            }
            true
        }
        "list" => {
            let member = shape["member"]["shape"].as_str().unwrap_or("");
            match value.as_array() {
                Some(items) => {
                    for (i, item) in items.iter().enumerate() {
                        check(model, member, item, &format!("{at}[{i}]"), found);
                    }
                    true
                }
                None => false,
            }
        }
        "map" => {
            let values = shape["value"]["shape"].as_str().unwrap_or("");
            match value.as_object() {
                Some(object) => {
                    for (key, item) in object {
                        check(model, values, item, &format!("{at}[{key:?}]"), found);
                    }
                    true
                }
                None => false,
            }
        }
        "string" => match value.as_str() {
            Some(s) => match shape.get("enum").and_then(Value::as_array) {
                Some(allowed) if !allowed.iter().any(|a| a.as_str() == Some(s)) => {
                    found.push(format!("{at}: {s:?} is not one of {name}'s values"));
                    true
                }
                _ => true,
            },
            None => false,
        },
        "long" | "integer" => value.is_i64() || value.is_u64(),
        "boolean" => value.is_boolean(),
        "timestamp" => value.is_number(),
        other => {
            found.push(format!("{at}: the checker does not know type {other}"));
            true
        }
    };
    if !ok {
        found.push(format!("{at}: {value} is not a {kind} ({name})"));
    }
}
