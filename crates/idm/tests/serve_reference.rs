//! README's `idm serve` reference lists exactly the keys the configuration parser takes, and
//! every flag of `idm serve --help` (issue 22: "the reference lists every key").

#![allow(clippy::unwrap_used)] // tests fail loudly by design

use std::collections::BTreeSet;
use std::process::Command;

fn readme() -> String {
    std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../README.md")).unwrap()
}

/// The reference table's rows: (table, key, flag column).
fn rows() -> Vec<(String, String, String)> {
    let text = readme();
    let start = text.find("#### `idm serve` reference").expect("the reference section");
    text[start..]
        .lines()
        .skip_while(|l| !l.starts_with("| table"))
        .skip(2)
        .take_while(|l| l.starts_with('|'))
        .map(|l| {
            let cells: Vec<&str> = l.split('|').map(str::trim).collect();
            (
                cells[1].trim_matches('`').to_owned(),
                cells[2].trim_matches('`').to_owned(),
                cells[4].to_owned(),
            )
        })
        .collect()
}

/// The keys the parser takes in `table`: serde's "unknown field, expected one of" list.
fn parser_keys(table: &str) -> BTreeSet<String> {
    let text = match table {
        "top" => "zz_unknown = 1\n".to_owned(),
        "issuer" => "[[issuer]]\nissuer = \"https://i.example\"\nzz_unknown = 1\n".to_owned(),
        "route" => "[[route]]\nprefix = \"/\"\nzz_unknown = 1\n".to_owned(),
        "claim_rules" => {
            "[[route]]\nprefix = \"/\"\nclaim_rules = [{ claim = \"a\", zz_unknown = 1 }]\n".to_owned()
        }
        "introspection" => {
            "[[issuer]]\nissuer = \"https://i.example\"\n[issuer.introspection]\nzz_unknown = 1\n".to_owned()
        }
        other => format!("[{other}]\nzz_unknown = 1\n"),
    };
    let path = std::env::temp_dir().join(format!("idm-reference-{}-{table}.toml", std::process::id()));
    std::fs::write(&path, text).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_idm"))
        .args(["serve", "--check-config", path.to_str().unwrap()])
        .output()
        .unwrap();
    std::fs::remove_file(&path).unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let expected = stderr.split("expected").nth(1).unwrap_or_else(|| panic!("{table}: {stderr}"));
    let line = expected.lines().next().unwrap();
    line.split('`').skip(1).step_by(2).map(str::to_owned).collect()
}

#[test]
fn the_reference_lists_every_key_of_every_table() {
    let rows = rows();
    assert!(rows.len() > 50, "{} rows", rows.len());
    let tables: BTreeSet<&str> = rows.iter().map(|(t, _, _)| t.as_str()).collect();
    for table in &tables {
        let documented: BTreeSet<String> =
            rows.iter().filter(|(t, _, _)| t == table).map(|(_, k, _)| k.clone()).collect();
        assert_eq!(documented, parser_keys(table), "table {table}: README vs the parser");
    }
    for table in
        ["top", "issuer", "route", "claim_rules", "token_cache", "rate_limit", "redis", "resource_metadata"]
    {
        assert!(tables.contains(table), "{table} missing from the reference");
    }
}

#[test]
fn every_flag_is_documented_and_every_documented_flag_exists() {
    let help = String::from_utf8(
        Command::new(env!("CARGO_BIN_EXE_idm")).args(["serve", "--help"]).output().unwrap().stdout,
    )
    .unwrap();
    let flags: BTreeSet<String> = help
        .split_whitespace()
        .filter_map(|w| w.find("--").map(|at| &w[at..]))
        .map(|w| w.chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '-').collect::<String>())
        .filter(|w| w.len() > 2 && w.as_bytes()[2].is_ascii_alphabetic())
        .filter(|w| w != "--help")
        .collect();
    let readme = readme();
    for flag in &flags {
        assert!(readme.contains(flag.as_str()), "{flag} is not in README");
    }
    for (_, _, flag_cell) in rows() {
        for flag in flag_cell.split([',', ' ']).map(|f| f.trim_matches('`')).filter(|f| f.starts_with("--")) {
            assert!(flags.contains(flag), "README names {flag}, which idm serve does not have");
        }
    }
}
