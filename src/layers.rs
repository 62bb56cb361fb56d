//! The module map in `lib.rs` is the rule: every `crate::…` path in a module must name a module
//! of a lower layer. Read from the sources, so a new import pointing up (or sideways, which is
//! how circles start) fails the tests, and a new top-level module must be placed on the map.

use std::collections::BTreeMap;
use std::path::Path;

/// Layer of each top-level module, from the table in `lib.rs`'s documentation.
fn layers(lib_rs: &str) -> BTreeMap<String, u32> {
    let mut out = BTreeMap::new();
    for line in lib_rs.lines() {
        let Some(row) = line.strip_prefix("//! | ") else {
            continue;
        };
        let mut cells = row.split(" | ");
        let (Some(n), Some(mods)) = (cells.next(), cells.next()) else {
            continue;
        };
        let Ok(n) = n.trim().parse::<u32>() else {
            continue;
        };
        for m in mods.split(',') {
            out.insert(m.trim().trim_matches('`').to_string(), n);
        }
    }
    out
}

/// The top-level modules named by `crate::` paths in Rust source, comments left out.
fn crate_paths(src: &str) -> Vec<String> {
    let code: String = src
        .lines()
        .map(|line| line.find("//").map_or(line, |i| &line[..i]))
        .collect::<Vec<_>>()
        .join("\n");
    let mut out = Vec::new();
    {
        let mut rest = code.as_str();
        while let Some(i) = rest.find("crate::") {
            rest = &rest[i + "crate::".len()..];
            if let Some(group) = rest.strip_prefix('{') {
                // `crate::{a, b::c, d::{e, f}}`: the first name of each item at depth one
                let mut depth = 1;
                let mut item_start = true;
                let mut name = String::new();
                for c in group.chars() {
                    if depth == 1 && item_start && (c.is_alphanumeric() || c == '_') {
                        name.push(c);
                        continue;
                    }
                    if !name.is_empty() {
                        out.push(std::mem::take(&mut name));
                        item_start = false;
                    }
                    match c {
                        '{' => depth += 1,
                        '}' if depth == 1 => break,
                        '}' => depth -= 1,
                        ',' if depth == 1 => item_start = true,
                        _ => {}
                    }
                }
            } else {
                let name: String = rest
                    .chars()
                    .take_while(|c| c.is_alphanumeric() || *c == '_')
                    .collect();
                if !name.is_empty() {
                    out.push(name);
                }
            }
        }
    }
    out
}

/// `module → used` pairs that break the map.
fn violations(module: &str, src: &str, map: &BTreeMap<String, u32>) -> Vec<String> {
    let Some(&own) = map.get(module) else {
        return vec![format!("{module} is not on the module map in lib.rs")];
    };
    let mut out = Vec::new();
    for used in crate_paths(src) {
        if used == module || used == "self" || used == "super" {
            continue;
        }
        match map.get(&used) {
            Some(&l) if l < own => {}
            Some(&l) => out.push(format!(
                "{module} (layer {own}) uses {used} (layer {l}): move the code down or the caller up"
            )),
            // an item of lib.rs itself, e.g. a macro: not a layer
            None => {}
        }
    }
    out
}

fn rust_files(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_module_uses_a_layer_above_or_beside_it() {
        let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
        let map = layers(&std::fs::read_to_string(src.join("lib.rs")).unwrap());
        assert!(map.len() >= 15, "the module map was not read: {map:?}");
        let mut files = Vec::new();
        rust_files(&src, &mut files);
        let mut bad = Vec::new();
        for f in files {
            let rel = f.strip_prefix(&src).unwrap();
            let top = rel
                .components()
                .next()
                .unwrap()
                .as_os_str()
                .to_string_lossy()
                .trim_end_matches(".rs")
                .to_string();
            if top == "lib" || top == "main" || top == "layers" {
                continue;
            }
            let text = std::fs::read_to_string(&f).unwrap();
            for v in violations(&top, &text, &map) {
                bad.push(format!("{}: {v}", rel.display()));
            }
        }
        bad.dedup();
        assert!(
            bad.is_empty(),
            "imports against the layers:\n{}",
            bad.join("\n")
        );
    }

    #[test]
    fn the_checker_sees_every_form_of_path() {
        let map = layers(
            "//! | 0 | `sql`, `text` | x |\n//! | 1 | `domain` | x |\n//! | 5 | `engine` | x |\n//! | 6 | `report` | x |\n",
        );
        assert_eq!(map["text"], 0);
        assert_eq!(map["report"], 6);
        assert!(violations("domain", "use crate::sql::ident;", &map).is_empty());
        assert_eq!(
            violations("engine", "let x = crate::report::assess();", &map).len(),
            1
        );
        assert_eq!(
            violations("domain", "use crate::{sql, engine::Ctx};", &map).len(),
            1
        );
        assert_eq!(
            violations(
                "domain",
                "use crate::{\n    sql::{a, b},\n    report::{c},\n};",
                &map
            )
            .len(),
            1,
            "a group over several lines"
        );
        assert_eq!(
            violations("domain", "use crate::{sql::{a, b}, report::c};", &map).len(),
            1
        );
        assert_eq!(
            violations("sql", "use crate::text::x;", &map).len(),
            1,
            "sideways"
        );
        assert!(violations("domain", "// see crate::engine::run", &map).is_empty());
        assert_eq!(violations("newmod", "", &map).len(), 1, "unmapped module");
    }
}
