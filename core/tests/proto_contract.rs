//! `proto/claimlink_aws.proto` and the Rust messages of the `aws-claim` / `aws-status` extension
//! (`core/src/protocomm/proto.rs`, from its "claimlink's extension" marker on) say the same thing:
//! every message, field name, number, type and label, every oneof and every enum value. Both
//! files are read as text (no `protoc`, no extra dependency): the `.proto` with a small parser of
//! the proto3 subset the file uses (it refuses anything else, so a construct it does not know
//! cannot slip through unchecked), the Rust with a reader of prost's derive attributes.

use std::collections::BTreeMap;

/// A schema as both files describe it: `message Name` / `enum Name` → its members, one line each,
/// in a canonical form (`3 data bytes`, `oneof payload: 10 cmd_begin CmdClaimBegin`, `Idle = 0`).
type Schema = BTreeMap<String, Vec<String>>;

const PROTO: &str = include_str!("../../proto/claimlink_aws.proto");
const RUST: &str = include_str!("../src/protocomm/proto.rs");
/// Where the extension's messages start in proto.rs (ESP-IDF's own messages come before it).
const RUST_MARKER: &str = "// ---- claimlink's extension";

fn tokens(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    for line in text.lines() {
        let line = line.split("//").next().unwrap_or("");
        let mut word = String::new();
        for c in line.chars() {
            if c.is_alphanumeric() || c == '_' || c == '.' || c == '"' {
                word.push(c);
            } else {
                if !word.is_empty() {
                    out.push(std::mem::take(&mut word));
                }
                if !c.is_whitespace() {
                    out.push(c.to_string());
                }
            }
        }
        if !word.is_empty() {
            out.push(word);
        }
    }
    out
}

/// Parses the `.proto`: `syntax`, `import`, `enum`, `message` with scalar, message, enum and map
/// fields and `oneof`s. Panics (fails the test) on anything else.
fn parse_proto(text: &str) -> Schema {
    let t = tokens(text);
    let mut schema = Schema::new();
    let mut i = 0;
    let expect = |i: &mut usize, what: &str| {
        assert_eq!(t[*i], what, "expected {what} at token {}", *i);
        *i += 1;
    };
    while i < t.len() {
        match t[i].as_str() {
            "syntax" => {
                assert_eq!(t[i + 2], "\"proto3\"", "proto3 only");
                i += 4;
            }
            "import" => i += 3,
            "enum" => {
                let name = t[i + 1].clone();
                i += 2;
                expect(&mut i, "{");
                let mut values = Vec::new();
                while t[i] != "}" {
                    values.push(format!("{} = {}", t[i], t[i + 2]));
                    assert_eq!(t[i + 1], "=");
                    assert_eq!(t[i + 3], ";");
                    i += 4;
                }
                i += 1;
                assert!(schema.insert(format!("enum {name}"), values).is_none());
            }
            "message" => {
                let name = t[i + 1].clone();
                i += 2;
                expect(&mut i, "{");
                let mut fields = Vec::new();
                while t[i] != "}" {
                    if t[i] == "oneof" {
                        let oneof = t[i + 1].clone();
                        i += 2;
                        expect(&mut i, "{");
                        while t[i] != "}" {
                            let (ty, field, number) = (&t[i], &t[i + 1], &t[i + 3]);
                            assert_eq!(t[i + 2], "=");
                            assert_eq!(t[i + 4], ";");
                            fields.push(format!("oneof {oneof}: {number} {field} {ty}"));
                            i += 5;
                        }
                        i += 1;
                        continue;
                    }
                    let (ty, rest) = if t[i] == "map" {
                        // map < K , V > name = N ;
                        assert_eq!((t[i + 1].as_str(), t[i + 3].as_str()), ("<", ","));
                        assert_eq!(t[i + 5], ">");
                        (format!("map<{},{}>", t[i + 2], t[i + 4]), i + 6)
                    } else {
                        assert!(
                            !matches!(t[i].as_str(), "repeated" | "optional" | "reserved"),
                            "the parser does not know {}",
                            t[i]
                        );
                        (t[i].clone(), i + 1)
                    };
                    let (field, number) = (&t[rest], &t[rest + 2]);
                    assert_eq!(t[rest + 1], "=");
                    assert_eq!(t[rest + 3], ";", "no field options are expected");
                    fields.push(format!("{number} {field} {ty}"));
                    i = rest + 4;
                }
                i += 1;
                assert!(schema.insert(format!("message {name}"), fields).is_none());
            }
            other => panic!("the .proto parser does not know `{other}`"),
        }
    }
    schema
}

/// `CmdBegin` → `cmd_begin`.
fn snake(camel: &str) -> String {
    let mut out = String::new();
    for (n, c) in camel.chars().enumerate() {
        if c.is_uppercase() {
            if n > 0 {
                out.push('_');
            }
            out.extend(c.to_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

/// The value of `key = "…"` in a prost attribute.
fn attr_value<'a>(attr: &'a str, key: &str) -> Option<&'a str> {
    let start = attr.find(&format!("{key} = \""))? + key.len() + 4;
    let len = attr[start..].find('"')?;
    Some(&attr[start..start + len])
}

/// The proto type a prost attribute (and the Rust type after it) declares.
fn proto_type(attr: &str, rust_type: &str) -> String {
    let kind = attr.split(',').next().unwrap_or("").trim();
    let last_path = |s: &str| s.rsplit("::").next().unwrap_or(s).to_owned();
    if let Some(e) = attr_value(attr, "enumeration") {
        return last_path(e);
    }
    if let Some(m) = attr_value(attr, "btree_map").or(attr_value(attr, "hash_map")) {
        return format!("map<{}>", m.replace(' ', ""));
    }
    match kind {
        "message" => {
            // `Option<RsaPrimes>` (a field) or `super::CmdClaimBegin` (a oneof variant).
            let inner = rust_type
                .trim_start_matches("Option<")
                .trim_end_matches('>')
                .trim_end_matches(')');
            assert!(
                !attr.contains("repeated"),
                "repeated fields are not expected"
            );
            last_path(inner)
        }
        k if k.starts_with("bytes") => "bytes".to_owned(),
        k => k.to_owned(),
    }
}

/// Reads prost's derive attributes from `text` (proto.rs from the marker on).
fn parse_rust(text: &str) -> Schema {
    let mut schema = Schema::new();
    // Oneof enums first: `pub mod aws_claim_payload { … pub enum Payload { … } }`.
    let mut oneofs: BTreeMap<String, Vec<(String, String, String)>> = BTreeMap::new();
    let lines: Vec<&str> = text.lines().map(str::trim).collect();
    let mut module = None;
    let mut attr = String::new();
    let mut item: Option<(String, Vec<String>)> = None;
    for line in &lines {
        if let Some(m) = line.strip_prefix("pub mod ") {
            module = Some(m.trim_end_matches(" {").to_owned());
            continue;
        }
        if let Some(name) = line
            .strip_prefix("pub struct ")
            .or(line.strip_prefix("pub enum "))
        {
            let name = name.trim_end_matches(" {").trim_end_matches(" {}");
            // A container attribute (`#[prost(skip_debug)]`) says nothing about fields.
            attr.clear();
            let kind = if line.starts_with("pub struct") {
                "message"
            } else {
                "enum"
            };
            if line.ends_with("{}") {
                schema.insert(format!("{kind} {name}"), Vec::new());
            } else {
                item = Some((format!("{kind} {name}"), Vec::new()));
            }
            continue;
        }
        if line.starts_with("#[prost(") || !attr.is_empty() && !attr.ends_with(")]") {
            attr.push_str(line);
            attr.push(' ');
            if !line.ends_with(")]") {
                continue;
            }
            attr = attr.trim().trim_start_matches("#[prost(").to_owned();
            attr = attr.trim_end_matches(")]").to_owned();
            attr.push_str(")]");
            continue;
        }
        if *line == "}" {
            if let Some((name, members)) = item.take() {
                match (&module, name.strip_prefix("enum ")) {
                    (Some(m), Some(_)) => {
                        let parsed = members
                            .iter()
                            .map(|v| {
                                let mut p = v.splitn(3, ' ');
                                let tag = p.next().unwrap_or("").to_owned();
                                let field = p.next().unwrap_or("").to_owned();
                                (tag, field, p.next().unwrap_or("").to_owned())
                            })
                            .collect();
                        oneofs.insert(m.clone(), parsed);
                    }
                    _ => {
                        schema.insert(name, members);
                    }
                }
            } else {
                module = None;
            }
            continue;
        }
        let Some((_, members)) = item.as_mut() else {
            continue;
        };
        let attribute = std::mem::take(&mut attr);
        let attribute = attribute.trim_end_matches(")]");
        if let Some((name, rust_type)) = line
            .strip_prefix("pub ")
            .and_then(|l| l.trim_end_matches(',').split_once(": "))
        {
            if let Some(oneof) = attr_value(attribute, "oneof") {
                members.push(format!("oneof {name} -> {oneof}"));
            } else {
                let tag = attr_value(attribute, "tag").unwrap_or("?");
                members.push(format!("{tag} {name} {}", proto_type(attribute, rust_type)));
            }
        } else if let Some((variant, number)) = line.trim_end_matches(',').split_once(" = ") {
            members.push(format!("{variant} = {number}"));
        } else if let Some((variant, ty)) = line.trim_end_matches("),").split_once('(') {
            let tag = attr_value(attribute, "tag").unwrap_or("?");
            members.push(format!(
                "{tag} {} {}",
                snake(variant),
                proto_type(attribute, ty)
            ));
        }
    }
    // Inline each message's oneof as the .proto lists it.
    for members in schema.values_mut() {
        let mut expanded = Vec::new();
        for m in members.drain(..) {
            match m.strip_prefix("oneof ").and_then(|o| o.split_once(" -> ")) {
                Some((field, path)) => {
                    let module = path.split("::").next().unwrap_or("");
                    for (tag, name, ty) in oneofs.get(module).into_iter().flatten() {
                        expanded.push(format!("oneof {field}: {tag} {name} {ty}"));
                    }
                }
                None => expanded.push(m),
            }
        }
        *members = expanded;
    }
    schema
}

fn rust_extension() -> &'static str {
    let start = RUST
        .find(RUST_MARKER)
        .expect("proto.rs still marks where claimlink's extension starts");
    let end = RUST
        .find("// Messages that carry secrets")
        .unwrap_or(RUST.len());
    &RUST[start..end]
}

#[test]
fn the_proto_file_and_the_rust_messages_agree() {
    let proto = parse_proto(PROTO);
    let rust = parse_rust(rust_extension());
    let names = |s: &Schema| s.keys().cloned().collect::<Vec<_>>();
    assert_eq!(
        names(&proto),
        names(&rust),
        "the same messages and enums on both sides"
    );
    for (name, members) in &proto {
        assert_eq!(
            members, &rust[name],
            "{name}: the .proto (left) and proto.rs (right) differ"
        );
    }
    // The parsers saw what matters (not two empty schemas agreeing).
    assert_eq!(proto.len(), 18, "13 messages and 5 enums");
    assert_eq!(
        proto["message ClaimBundle"][7],
        "8 template_parameters map<string,string>"
    );
    assert_eq!(
        proto["message AwsClaimPayload"][3],
        "oneof payload: 10 cmd_begin CmdClaimBegin"
    );
}

#[test]
fn a_drift_on_either_side_is_seen() {
    let rust = parse_rust(rust_extension());
    for (from, to) in [
        ("uint32 offset = 1;", "uint32 offset = 4;"),
        ("bytes sha256 = 2;", "bytes sha_256 = 2;"),
        ("bool committed = 2;", "uint32 committed = 2;"),
        ("Incomplete = 6;", "Incomplete = 7;"),
        (
            "RespClaimAbort resp_abort = 15;",
            "RespClaimAbort resp_abort = 16;",
        ),
    ] {
        assert!(PROTO.contains(from), "{from}");
        let changed = parse_proto(&PROTO.replace(from, to));
        assert_ne!(changed, rust, "changing {from} to {to} must be seen");
    }
    let changed = parse_rust(&rust_extension().replace(
        "#[prost(uint64, tag = \"4\")]",
        "#[prost(uint32, tag = \"4\")]",
    ));
    assert_ne!(changed, rust, "a Rust type change must be seen");
}
