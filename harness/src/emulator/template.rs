//! Fleet-provisioning templates, evaluated the way AWS IoT does for `RegisterThing`: Parameters (with
//! `Default`), Mappings, the intrinsics `Ref`, `Fn::Join`, `Fn::Select`, `Fn::Split`, `Fn::Sub` and
//! `Fn::FindInMap`, Resources (`AWS::IoT::Thing`, `AWS::IoT::Certificate`, `AWS::IoT::Policy`),
//! `OverrideSettings` and `DeviceConfiguration`.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

/// Why a template could not be applied; `code` is AWS's `errorCode`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TemplateError {
    /// AWS's error code (`InvalidParameters`, `InvalidTemplate`, …).
    pub code: &'static str,
    /// The message.
    pub message: String,
}

fn invalid_params(message: impl Into<String>) -> TemplateError {
    TemplateError {
        code: "InvalidParameters",
        message: message.into(),
    }
}

fn invalid_template(message: impl Into<String>) -> TemplateError {
    TemplateError {
        code: "InvalidTemplate",
        message: message.into(),
    }
}

/// What a template asks for, with every intrinsic resolved.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Plan {
    /// The thing to create or update.
    pub thing: Option<ThingPlan>,
    /// The certificate status to set (`ACTIVE`, …).
    pub certificate_status: Option<String>,
    /// Policies to attach (by name, or inline documents named after the resource).
    pub policies: Vec<(String, Option<Value>)>,
    /// Returned to the device as `deviceConfiguration`.
    pub device_configuration: BTreeMap<String, String>,
}

/// A thing resource.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ThingPlan {
    /// Its name.
    pub name: String,
    /// Attributes.
    pub attributes: BTreeMap<String, String>,
    /// Thing type.
    pub thing_type: Option<String>,
    /// Groups it joins (must exist).
    pub groups: Vec<String>,
    /// Billing group.
    pub billing_group: Option<String>,
    /// `OverrideSettings.AttributePayload`: `REPLACE`, `MERGE` or `DO_NOTHING` (AWS's default for an
    /// existing thing is `DO_NOTHING`, here `MERGE` when absent for simplicity of the first
    /// provisioning, which is the case the device cares about).
    pub attribute_override: String,
}

struct Context<'a> {
    parameters: BTreeMap<String, String>,
    mappings: &'a Map<String, Value>,
    certificate_id: &'a str,
}

/// Evaluates `template` for a `RegisterThing` with `parameters`, for the certificate `certificate_id`.
pub fn evaluate(
    template: &Value,
    parameters: &BTreeMap<String, String>,
    certificate_id: &str,
) -> Result<Plan, TemplateError> {
    let root = template
        .as_object()
        .ok_or_else(|| invalid_template("the template is not an object"))?;
    let empty = Map::new();
    let declared = root
        .get("Parameters")
        .and_then(Value::as_object)
        .unwrap_or(&empty);
    let mut values = BTreeMap::new();
    for (name, spec) in declared {
        match parameters.get(name) {
            Some(v) => {
                values.insert(name.clone(), v.clone());
            }
            None => {
                if let Some(default) = spec.get("Default") {
                    values.insert(
                        name.clone(),
                        scalar(default).ok_or_else(|| {
                            invalid_template(format!("Default of {name} is not a scalar"))
                        })?,
                    );
                }
            }
        }
    }
    let ctx = Context {
        parameters: values,
        mappings: root
            .get("Mappings")
            .and_then(Value::as_object)
            .unwrap_or(&empty),
        certificate_id,
    };
    let mut plan = Plan::default();
    let resources = root
        .get("Resources")
        .and_then(Value::as_object)
        .ok_or_else(|| invalid_template("the template has no Resources"))?;
    for (logical, resource) in resources {
        let kind = resource.get("Type").and_then(Value::as_str).unwrap_or("");
        let props = match resource.get("Properties") {
            Some(p) => resolve(p, &ctx)?,
            None => Value::Object(Map::new()),
        };
        let overrides = resource.get("OverrideSettings").and_then(Value::as_object);
        match kind {
            "AWS::IoT::Thing" => {
                let name = props
                    .get("ThingName")
                    .and_then(Value::as_str)
                    .filter(|n| !n.is_empty())
                    .ok_or_else(|| invalid_params("ThingName resolved to nothing"))?
                    .to_owned();
                let attributes = match props.get("AttributePayload") {
                    Some(Value::Object(a)) => a
                        .iter()
                        .map(|(k, v)| {
                            scalar(v).map(|v| (k.clone(), v)).ok_or_else(|| {
                                invalid_template(format!("attribute {k} is not a scalar"))
                            })
                        })
                        .collect::<Result<_, _>>()?,
                    None => BTreeMap::new(),
                    Some(_) => return Err(invalid_template("AttributePayload is not an object")),
                };
                let groups = match props.get("ThingGroups") {
                    Some(Value::Array(g)) => g
                        .iter()
                        .filter_map(|v| v.as_str().map(str::to_owned))
                        .collect(),
                    None => Vec::new(),
                    Some(_) => return Err(invalid_template("ThingGroups is not a list")),
                };
                plan.thing = Some(ThingPlan {
                    name,
                    attributes,
                    thing_type: props
                        .get("ThingTypeName")
                        .and_then(Value::as_str)
                        .map(str::to_owned),
                    groups,
                    billing_group: props
                        .get("BillingGroup")
                        .and_then(Value::as_str)
                        .map(str::to_owned),
                    attribute_override: overrides
                        .and_then(|o| o.get("AttributePayload"))
                        .and_then(Value::as_str)
                        .unwrap_or("MERGE")
                        .to_owned(),
                });
            }
            "AWS::IoT::Certificate" => {
                let id = props
                    .get("CertificateId")
                    .and_then(Value::as_str)
                    .unwrap_or("");
                if id != certificate_id {
                    return Err(invalid_template(
                        "the Certificate resource must reference AWS::IoT::Certificate::Id",
                    ));
                }
                plan.certificate_status = Some(
                    props
                        .get("Status")
                        .and_then(Value::as_str)
                        .unwrap_or("ACTIVE")
                        .to_owned(),
                );
            }
            "AWS::IoT::Policy" => {
                if let Some(name) = props.get("PolicyName").and_then(Value::as_str) {
                    plan.policies.push((name.to_owned(), None));
                } else if let Some(doc) = props.get("PolicyDocument") {
                    plan.policies.push((logical.clone(), Some(doc.clone())));
                } else {
                    return Err(invalid_template(format!(
                        "policy {logical} has neither PolicyName nor PolicyDocument"
                    )));
                }
            }
            other => {
                return Err(invalid_template(format!(
                    "unsupported resource type {other:?}"
                )))
            }
        }
    }
    if let Some(config) = root.get("DeviceConfiguration") {
        let config = resolve(config, &ctx)?;
        let config = config
            .as_object()
            .ok_or_else(|| invalid_template("DeviceConfiguration is not an object"))?;
        for (k, v) in config {
            plan.device_configuration.insert(
                k.clone(),
                scalar(v).ok_or_else(|| {
                    invalid_template(format!("DeviceConfiguration {k} is not a scalar"))
                })?,
            );
        }
    }
    Ok(plan)
}

fn scalar(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

fn reference(name: &str, ctx: &Context<'_>) -> Result<String, TemplateError> {
    match name {
        "AWS::IoT::Certificate::Id" => Ok(ctx.certificate_id.to_owned()),
        _ => ctx.parameters.get(name).cloned().ok_or_else(|| {
            invalid_params(format!("Parameter {name} is missing and has no default"))
        }),
    }
}

fn strings(v: &Value, what: &str) -> Result<Vec<String>, TemplateError> {
    v.as_array()
        .ok_or_else(|| invalid_template(format!("{what} expects a list")))?
        .iter()
        .map(|i| {
            scalar(i).ok_or_else(|| invalid_template(format!("{what} expects a list of strings")))
        })
        .collect()
}

/// Resolves every intrinsic inside `v`.
fn resolve(v: &Value, ctx: &Context<'_>) -> Result<Value, TemplateError> {
    match v {
        Value::Object(map) if map.len() == 1 => {
            let (key, arg) = map
                .iter()
                .next()
                .ok_or_else(|| invalid_template("empty object"))?;
            match key.as_str() {
                "Ref" => {
                    let name = arg
                        .as_str()
                        .ok_or_else(|| invalid_template("Ref expects a name"))?;
                    Ok(Value::String(reference(name, ctx)?))
                }
                "Fn::Join" => {
                    let args = resolve(arg, ctx)?;
                    let parts = args.as_array().filter(|a| a.len() == 2).ok_or_else(|| {
                        invalid_template("Fn::Join expects [delimiter, [values]]")
                    })?;
                    let delim = parts[0]
                        .as_str()
                        .ok_or_else(|| invalid_template("Fn::Join delimiter must be a string"))?;
                    Ok(Value::String(strings(&parts[1], "Fn::Join")?.join(delim)))
                }
                "Fn::Select" => {
                    let args = resolve(arg, ctx)?;
                    let parts = args
                        .as_array()
                        .filter(|a| a.len() == 2)
                        .ok_or_else(|| invalid_template("Fn::Select expects [index, [values]]"))?;
                    let index = parts[0]
                        .as_u64()
                        .or_else(|| parts[0].as_str().and_then(|s| s.parse().ok()))
                        .ok_or_else(|| invalid_template("Fn::Select index must be a number"))?;
                    let list = parts[1]
                        .as_array()
                        .ok_or_else(|| invalid_template("Fn::Select expects a list"))?;
                    list.get(usize::try_from(index).unwrap_or(usize::MAX))
                        .cloned()
                        .ok_or_else(|| {
                            invalid_params(format!("Fn::Select index {index} is out of range"))
                        })
                }
                "Fn::Split" => {
                    let args = resolve(arg, ctx)?;
                    let parts = args
                        .as_array()
                        .filter(|a| a.len() == 2)
                        .ok_or_else(|| invalid_template("Fn::Split expects [delimiter, string]"))?;
                    let (Some(delim), Some(s)) = (parts[0].as_str(), parts[1].as_str()) else {
                        return Err(invalid_template("Fn::Split expects strings"));
                    };
                    Ok(Value::Array(
                        s.split(delim)
                            .map(|p| Value::String(p.to_owned()))
                            .collect(),
                    ))
                }
                "Fn::Sub" => {
                    let (text, vars) = match arg {
                        Value::String(s) => (s.clone(), Map::new()),
                        Value::Array(a) if a.len() == 2 => {
                            let text = a[0]
                                .as_str()
                                .ok_or_else(|| invalid_template("Fn::Sub expects a string"))?
                                .to_owned();
                            let vars = resolve(&a[1], ctx)?;
                            (
                                text,
                                vars.as_object().cloned().ok_or_else(|| {
                                    invalid_template("Fn::Sub variables must be an object")
                                })?,
                            )
                        }
                        _ => {
                            return Err(invalid_template(
                                "Fn::Sub expects a string or [string, {vars}]",
                            ))
                        }
                    };
                    substitute(&text, &vars, ctx).map(Value::String)
                }
                "Fn::FindInMap" => {
                    let args = resolve(arg, ctx)?;
                    let keys = strings(&args, "Fn::FindInMap")?;
                    let [map, top, second] = keys.as_slice() else {
                        return Err(invalid_template("Fn::FindInMap expects [map, key, key]"));
                    };
                    ctx.mappings
                        .get(map)
                        .and_then(|m| m.get(top))
                        .and_then(|m| m.get(second))
                        .cloned()
                        .ok_or_else(|| {
                            invalid_params(format!(
                                "Fn::FindInMap found nothing at {map}/{top}/{second}"
                            ))
                        })
                }
                _ => Ok(Value::Object(
                    map.iter()
                        .map(|(k, v)| resolve(v, ctx).map(|v| (k.clone(), v)))
                        .collect::<Result<_, _>>()?,
                )),
            }
        }
        Value::Object(map) => Ok(Value::Object(
            map.iter()
                .map(|(k, v)| resolve(v, ctx).map(|v| (k.clone(), v)))
                .collect::<Result<_, _>>()?,
        )),
        Value::Array(items) => Ok(Value::Array(
            items
                .iter()
                .map(|i| resolve(i, ctx))
                .collect::<Result<_, _>>()?,
        )),
        other => Ok(other.clone()),
    }
}

/// `${Name}` → variable or parameter (or `AWS::IoT::Certificate::Id`); `${!Literal}` → `${Literal}`.
fn substitute(
    text: &str,
    vars: &Map<String, Value>,
    ctx: &Context<'_>,
) -> Result<String, TemplateError> {
    let mut out = String::new();
    let mut rest = text;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let end = after
            .find('}')
            .ok_or_else(|| invalid_template("Fn::Sub has an unclosed ${"))?;
        let name = &after[..end];
        if let Some(literal) = name.strip_prefix('!') {
            out.push_str("${");
            out.push_str(literal);
            out.push('}');
        } else if let Some(v) = vars.get(name) {
            out.push_str(&scalar(v).ok_or_else(|| {
                invalid_template(format!("Fn::Sub variable {name} is not a scalar"))
            })?);
        } else {
            out.push_str(&reference(name, ctx)?);
        }
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn params(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn the_intrinsics_resolve() {
        let template = json!({
            "Parameters": {
                "SerialNumber": {"Type": "String"},
                "Model": {"Type": "String", "Default": "m1"},
                "Location": {"Type": "String"}
            },
            "Mappings": {"ModelToType": {"m1": {"Type": "thermostat"}}},
            "Resources": {
                "thing": {
                    "Type": "AWS::IoT::Thing",
                    "OverrideSettings": {"AttributePayload": "REPLACE"},
                    "Properties": {
                        "ThingName": {"Fn::Join": ["-", ["dev", {"Ref": "SerialNumber"}]]},
                        "AttributePayload": {
                            "model": {"Ref": "Model"},
                            "building": {"Fn::Select": [0, {"Fn::Split": ["/", {"Ref": "Location"}]}]},
                            "kind": {"Fn::FindInMap": ["ModelToType", {"Ref": "Model"}, "Type"]}
                        },
                        "ThingGroups": ["installers"]
                    }
                },
                "certificate": {"Type": "AWS::IoT::Certificate", "Properties": {
                    "CertificateId": {"Ref": "AWS::IoT::Certificate::Id"}, "Status": "ACTIVE"}},
                "policy": {"Type": "AWS::IoT::Policy", "Properties": {"PolicyName": "DevicePolicy"}}
            },
            "DeviceConfiguration": {"topic": {"Fn::Sub": "devices/${SerialNumber}/${!literal}"}, "cert": {"Fn::Sub": "${AWS::IoT::Certificate::Id}"}}
        });
        let plan = evaluate(
            &template,
            &params(&[("SerialNumber", "42"), ("Location", "B7/floor3")]),
            "abc",
        )
        .expect("evaluates");
        let thing = plan.thing.expect("thing");
        assert_eq!(thing.name, "dev-42");
        assert_eq!(
            thing.attributes.get("model").map(String::as_str),
            Some("m1")
        );
        assert_eq!(
            thing.attributes.get("building").map(String::as_str),
            Some("B7")
        );
        assert_eq!(
            thing.attributes.get("kind").map(String::as_str),
            Some("thermostat")
        );
        assert_eq!(thing.groups, vec!["installers".to_owned()]);
        assert_eq!(thing.attribute_override, "REPLACE");
        assert_eq!(plan.certificate_status.as_deref(), Some("ACTIVE"));
        assert_eq!(plan.policies, vec![("DevicePolicy".to_owned(), None)]);
        assert_eq!(
            plan.device_configuration.get("topic").map(String::as_str),
            Some("devices/42/${literal}")
        );
        assert_eq!(
            plan.device_configuration.get("cert").map(String::as_str),
            Some("abc")
        );
    }

    #[test]
    fn missing_parameters_and_bad_templates_are_aws_errors() {
        let template = json!({
            "Parameters": {"SerialNumber": {"Type": "String"}},
            "Resources": {"thing": {"Type": "AWS::IoT::Thing", "Properties": {"ThingName": {"Ref": "SerialNumber"}}}}
        });
        let err = evaluate(&template, &BTreeMap::new(), "abc").expect_err("missing");
        assert_eq!(err.code, "InvalidParameters");
        assert!(err.message.contains("SerialNumber"));
        let err = evaluate(
            &json!({"Resources": {"x": {"Type": "AWS::S3::Bucket"}}}),
            &BTreeMap::new(),
            "abc",
        )
        .expect_err("bad");
        assert_eq!(err.code, "InvalidTemplate");
        let err = evaluate(
            &json!({"Resources": {"c": {"Type": "AWS::IoT::Certificate", "Properties": {"CertificateId": "someone-else"}}}}),
            &BTreeMap::new(),
            "abc",
        )
        .expect_err("foreign certificate");
        assert_eq!(err.code, "InvalidTemplate");
        let select = json!({"Resources": {"t": {"Type": "AWS::IoT::Thing", "Properties": {"ThingName": {"Fn::Select": [5, ["a"]]}}}}});
        assert_eq!(
            evaluate(&select, &BTreeMap::new(), "abc")
                .expect_err("range")
                .code,
            "InvalidParameters"
        );
    }
}
