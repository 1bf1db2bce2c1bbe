//! The bundled scenarios as nextest sees them: one test per scenario file, named after its
//! path, and partitions that between them run each exactly once.

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;

/// The scenario tests `cargo nextest list` selects with these arguments.
fn listed(args: &[&str]) -> Vec<String> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut command = Command::new(cargo);
    command
        .args(["nextest", "list", "--workspace", "--message-format", "json"])
        .args(["-E", "binary_id(killpoint-e2e::campaign)"])
        .args(args)
        .current_dir(root);
    // This run's own nextest settings are not the listing's.
    for (key, _) in std::env::vars_os() {
        if key.to_string_lossy().starts_with("NEXTEST") {
            command.env_remove(key);
        }
    }
    let out = command.output().expect("run cargo nextest list");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let list: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let suite = &list["rust-suites"]["killpoint-e2e::campaign"]["testcases"];
    suite
        .as_object()
        .expect("the campaign binary's tests")
        .iter()
        .filter(|(_, t)| t["filter-match"]["status"] == "matches")
        .map(|(name, _)| name.clone())
        .collect()
}

fn scenario_files(dir: &Path, found: &mut BTreeSet<String>) {
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        if path.is_dir() && !path.ends_with("target") {
            scenario_files(&path, found);
        } else if path.extension().is_some_and(|x| x == "toml") && !path.ends_with("Cargo.toml") {
            let root = Path::new(env!("CARGO_MANIFEST_DIR"));
            found.insert(path.strip_prefix(root).unwrap().display().to_string());
        }
    }
}

#[test]
fn each_scenario_file_is_one_test_and_two_partitions_run_each_once() {
    let mut files = BTreeSet::new();
    scenario_files(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios"),
        &mut files,
    );
    assert!(files.len() >= 40, "{files:?}");
    let all = listed(&[]);
    assert_eq!(all.iter().cloned().collect::<BTreeSet<_>>(), files);
    assert_eq!(all.len(), files.len());

    let first = listed(&["--partition", "hash:1/2"]);
    let second = listed(&["--partition", "hash:2/2"]);
    assert!(
        !first.is_empty() && !second.is_empty(),
        "{first:?} {second:?}"
    );
    let mut both: Vec<String> = first.iter().chain(&second).cloned().collect();
    both.sort();
    assert_eq!(both, all, "each file in exactly one share");
}
