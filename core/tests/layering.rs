//! The layering of `claimlink-core`, checked from its source: a module may import only the modules
//! below it in the table (the one `src/lib.rs` documents), never one above it or a sibling. Reads
//! every `crate::…` path, grouped `use crate::{…}`, and `super::` chains that climb out of a module,
//! in code and in doc links alike.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

/// Each top-level module and the modules it may use. Data flows one way: `provision` at the top,
/// `secret` and `endpoint` at the bottom.
const ALLOWED: &[(&str, &[&str])] = &[
    (
        "provision",
        &[
            "claim",
            "protocomm",
            "transport",
            "endpoint",
            "net",
            "time",
            "secret",
        ],
    ),
    ("qr", &["protocomm", "secret"]),
    ("claim", &["net", "time", "secret"]),
    ("protocomm", &["transport", "endpoint", "time", "secret"]),
    ("transport", &["endpoint", "net", "secret"]),
    ("net", &[]),
    ("time", &[]),
    ("endpoint", &[]),
    ("secret", &[]),
];

fn src_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let mut entries: Vec<_> = fs::read_dir(dir)
        .expect("read src dir")
        .map(|e| e.expect("dir entry").path())
        .collect();
    entries.sort();
    for path in entries {
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The module path of a file under `src/`: `provision/mod.rs` → `["provision"]`,
/// `transport/ble/btle.rs` → `["transport", "ble", "btle"]`, `lib.rs` → `[]`.
fn module_path(file: &Path) -> Vec<String> {
    let rel = file.strip_prefix(src_dir()).expect("file under src");
    let mut parts: Vec<String> = rel
        .iter()
        .map(|p| p.to_string_lossy().into_owned())
        .collect();
    let last = parts.pop().expect("a file name");
    let stem = last.trim_end_matches(".rs");
    if stem != "mod" && stem != "lib" {
        parts.push(stem.to_owned());
    }
    parts
}

fn ident_at(s: &str) -> String {
    s.chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
        .collect()
}

/// For each byte of `text`, how many inline modules (`mod tests { … }`) enclose it.
fn inline_module_depths(text: &str) -> Vec<usize> {
    let mut depth = vec![0usize; text.len() + 1];
    let mut offset = 0;
    for line in text.split_inclusive('\n') {
        let code = line.trim_start();
        let code = code.strip_prefix("pub(crate) ").unwrap_or(code);
        let code = code.strip_prefix("pub ").unwrap_or(code);
        if let Some(rest) = code.strip_prefix("mod ") {
            if rest.trim_end().ends_with('{') {
                // The module's body runs from its `{` to the matching `}`.
                let open = offset + line.rfind('{').unwrap_or(0);
                let mut level = 0i32;
                let mut end = text.len();
                for (i, c) in text[open..].char_indices() {
                    match c {
                        '{' => level += 1,
                        '}' => {
                            level -= 1;
                            if level == 0 {
                                end = open + i;
                                break;
                            }
                        }
                        _ => {}
                    }
                }
                for d in &mut depth[open..end] {
                    *d += 1;
                }
            }
        }
        offset += line.len();
    }
    depth
}

/// The top-level modules a file's text refers to through `crate::` or `super::` paths.
fn referenced_modules(text: &str, path: &[String]) -> BTreeSet<String> {
    let inline = inline_module_depths(text);
    let mut found = BTreeSet::new();
    for (i, _) in text.match_indices("crate::") {
        // `claimlink_core::crate::` cannot occur; skip identifiers that merely end in "crate".
        if text[..i]
            .chars()
            .last()
            .is_some_and(|c| c.is_ascii_alphanumeric() || c == '_')
        {
            continue;
        }
        let rest = &text[i + "crate::".len()..];
        if let Some(group) = rest.strip_prefix('{') {
            let end = group.find('}').unwrap_or(group.len());
            for item in group[..end].split(',') {
                let name = ident_at(item.trim());
                if !name.is_empty() {
                    found.insert(name);
                }
            }
        } else {
            found.insert(ident_at(rest));
        }
    }
    for (i, _) in text.match_indices("super::") {
        if text[..i].ends_with("super::") {
            continue; // counted from the first `super` of the chain
        }
        let mut rest = &text[i..];
        let mut climbs = 0;
        while let Some(r) = rest.strip_prefix("super::") {
            climbs += 1;
            rest = r;
        }
        // A file's own module is `path` (plus the inline modules around the path); each `super`
        // climbs one level. Reaching the root, the next name is a top-level module.
        if climbs >= path.len() + inline[i] {
            found.insert(ident_at(rest));
        }
    }
    found
}

#[test]
fn no_module_imports_upward_or_sideways() {
    let allowed: BTreeMap<&str, &[&str]> = ALLOWED.iter().copied().collect();
    let mut files = Vec::new();
    rust_files(&src_dir(), &mut files);
    let mut violations = Vec::new();
    for file in &files {
        let path = module_path(file);
        let Some(top) = path.first() else {
            continue; // lib.rs: the crate root re-exports everything
        };
        let rules = allowed
            .get(top.as_str())
            .unwrap_or_else(|| panic!("module `{top}` is missing from the layering table"));
        let text = fs::read_to_string(file).expect("read source");
        for used in referenced_modules(&text, &path) {
            if used != *top && !rules.contains(&used.as_str()) {
                violations.push(format!("{} uses `{used}`", file.display()));
            }
        }
    }
    assert!(
        violations.is_empty(),
        "imports against the layering:\n{}",
        violations.join("\n")
    );
}

#[test]
fn the_layering_table_and_lib_rs_name_every_module() {
    let lib = fs::read_to_string(src_dir().join("lib.rs")).expect("read lib.rs");
    let declared: BTreeSet<String> = lib
        .lines()
        .filter_map(|l| l.trim().strip_prefix("mod "))
        .map(ident_at)
        .collect();
    let tabled: BTreeSet<String> = ALLOWED.iter().map(|(m, _)| (*m).to_owned()).collect();
    assert_eq!(
        declared, tabled,
        "lib.rs's modules and the layering table differ"
    );
    for module in &declared {
        assert!(
            lib.contains(&format!("//! * `{module}` —")),
            "lib.rs's data-flow list does not describe `{module}`"
        );
    }
}

#[test]
fn the_checker_sees_upward_imports() {
    let path = vec!["transport".to_owned(), "ble".to_owned()];
    let text = "use crate::protocomm::endpoint;\nuse super::super::claim::Claim;\nuse crate::{secret, time::Clock};\nuse super::DeviceLink;\nmod tests {\n    use super::*;\n    use super::super::super::net::X;\n}\n";
    let found = referenced_modules(text, &path);
    let expected: BTreeSet<String> = ["protocomm", "claim", "secret", "time", "net"]
        .into_iter()
        .map(String::from)
        .collect();
    assert_eq!(found, expected);
}

#[test]
fn the_core_knows_nothing_of_uniffi_or_the_harness() {
    let mut files = Vec::new();
    rust_files(&src_dir(), &mut files);
    for file in files {
        let text = fs::read_to_string(&file).expect("read source");
        for word in ["uniffi::", "#[uniffi", "claimlink_harness"] {
            assert!(!text.contains(word), "{} mentions {word}", file.display());
        }
    }
    let manifest = fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("Cargo.toml"))
        .expect("read Cargo.toml");
    assert!(!manifest.contains("uniffi"), "core/Cargo.toml names uniffi");
}
