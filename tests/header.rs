//! The checked-in header against the crate: version macros, and a doc block before
//! every declaration (the header is the C manual).

use std::fs;

fn header() -> String {
    fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/include/sessync.h"))
        .expect("include/sessync.h exists (scripts/gen-header.sh writes it)")
}

fn macro_value(h: &str, name: &str) -> String {
    h.lines()
        .find_map(|l| l.strip_prefix(&format!("#define {name} ")))
        .unwrap_or_else(|| panic!("no #define {name}"))
        .trim()
        .to_string()
}

#[test]
fn version_macros_match_the_crate_version() {
    let h = header();
    let v = format!(
        "{}.{}.{}",
        macro_value(&h, "SESSYNC_VERSION_MAJOR"),
        macro_value(&h, "SESSYNC_VERSION_MINOR"),
        macro_value(&h, "SESSYNC_VERSION_PATCH")
    );
    assert_eq!(
        v,
        env!("CARGO_PKG_VERSION"),
        "update after_includes in cbindgen.toml"
    );
}

#[test]
fn every_declaration_has_a_doc_block() {
    let h = header();
    let lines: Vec<&str> = h.lines().collect();
    let mut undocumented = Vec::new();
    let mut in_struct = false;
    for (i, line) in lines.iter().enumerate() {
        let t = line.trim_start();
        if t.starts_with("typedef struct") && t.ends_with('{') {
            in_struct = true;
        } else if in_struct && t.starts_with('}') {
            in_struct = false;
        }
        let field = in_struct && line.starts_with("  ") && t.ends_with(';') && !t.starts_with('*');
        let is_decl = field
            || (t.starts_with("#define SESSYNC_") && !t.starts_with("#define SESSYNC_H"))
            || t.starts_with("typedef struct")
            || t.starts_with("enum sessync_")
            || t.starts_with("SESSYNC_STATUS_")
            || t.starts_with("SESSYNC_COOKIE_FORMAT_")
            || ((t.starts_with("SESSYNC_MUST_USE")
                || t.starts_with("sessync_status sessync_")
                || t.starts_with("const char *sessync_")
                || t.starts_with("void sessync_")
                || t.starts_with("bool sessync_")
                || t.starts_with("uint32_t sessync_"))
                && !lines[i.saturating_sub(1)]
                    .trim_start()
                    .starts_with("SESSYNC_MUST_USE"));
        if !is_decl {
            continue;
        }
        let prev = lines[..i]
            .iter()
            .rev()
            .find(|l| !l.trim().is_empty())
            .map(|l| l.trim_end())
            .unwrap_or("");
        if !prev.ends_with("*/") {
            undocumented.push(format!("{}: {}", i + 1, line));
        }
    }
    assert!(
        undocumented.is_empty(),
        "declarations without a /** */ block before them:\n{}",
        undocumented.join("\n")
    );
}
