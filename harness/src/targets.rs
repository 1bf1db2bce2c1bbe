//! Turning a scenario's `command` into a concrete program and arguments for one case.
//!
//! `{bin:NAME}` names a binary of the cargo package beside the scenario file (the nearest
//! `Cargo.toml` at or above its directory); it is built once per process with
//! `cargo build --release` and located through cargo's JSON messages. Setting
//! `KILLPOINT_BIN_DIR` skips cargo and takes binaries from that directory instead.

use std::collections::{BTreeMap, HashMap};
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Mutex;

use crate::os::run::Launch;
use crate::scenario::{ArgPart, Scenario};

/// The binaries a scenario's command names, by name.
pub type Binaries = BTreeMap<String, PathBuf>;

/// Finds (building if needed) every `{bin:NAME}` the scenario uses.
pub fn binaries(scenario: &Scenario) -> Result<Binaries, String> {
    let names: Vec<&str> = scenario.command.iter().flat_map(|a| a.bins()).collect();
    if names.is_empty() {
        return Ok(Binaries::new());
    }
    let available = match std::env::var_os("KILLPOINT_BIN_DIR") {
        Some(dir) => from_dir(Path::new(&dir), &names),
        None => {
            let from = scenario
                .source
                .as_deref()
                .and_then(Path::parent)
                .map(Path::to_path_buf)
                .unwrap_or_else(|| PathBuf::from("."));
            let manifest = package_manifest(&from).ok_or_else(|| {
                format!(
                    "`{{bin:{}}}` needs a cargo package at or above {} (or set KILLPOINT_BIN_DIR)",
                    names[0],
                    from.display()
                )
            })?;
            built(&manifest)?
        }
    };
    names
        .iter()
        .map(|&name| {
            available
                .get(name)
                .map(|path| (name.to_string(), path.clone()))
                .ok_or_else(|| {
                    let known: Vec<&str> = available.keys().map(String::as_str).collect();
                    format!(
                        "`{{bin:{name}}}`: no such binary; available: {}",
                        known.join(", ")
                    )
                })
        })
        .collect()
}

fn from_dir(dir: &Path, names: &[&str]) -> Binaries {
    names
        .iter()
        .map(|n| (n.to_string(), dir.join(n)))
        .filter(|(_, path)| path.is_file())
        .collect()
}

fn package_manifest(from: &Path) -> Option<PathBuf> {
    let from = from.canonicalize().ok()?;
    from.ancestors()
        .map(|dir| dir.join("Cargo.toml"))
        .find(|manifest| {
            std::fs::read_to_string(manifest)
                .is_ok_and(|text| text.lines().any(|l| l.trim() == "[package]"))
        })
}

/// Builds every binary of the package once per process and returns where they are.
fn built(manifest: &Path) -> Result<Binaries, String> {
    static BUILT: Mutex<Option<HashMap<PathBuf, Binaries>>> = Mutex::new(None);
    let mut cache = BUILT.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(found) = cache.get_or_insert_with(HashMap::new).get(manifest) {
        return Ok(found.clone());
    }
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let output = Command::new(cargo)
        .args([
            "build",
            "--release",
            "--bins",
            "--message-format=json-render-diagnostics",
            "--manifest-path",
        ])
        .arg(manifest)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| {
            format!(
                "cannot run cargo to build the targets of {}: {e}",
                manifest.display()
            )
        })?;
    if !output.status.success() {
        return Err(format!(
            "building the targets of {} failed:\n{}",
            manifest.display(),
            String::from_utf8_lossy(&output.stderr)
        ));
    }
    let mut found = Binaries::new();
    for line in output.stdout.split(|&b| b == b'\n') {
        let Ok(message) = serde_json::from_slice::<serde_json::Value>(line) else {
            continue;
        };
        let is_bin = message["target"]["kind"]
            .as_array()
            .is_some_and(|k| k.iter().any(|k| k == "bin"));
        if message["reason"] == "compiler-artifact"
            && is_bin
            && let (Some(name), Some(exe)) = (
                message["target"]["name"].as_str(),
                message["executable"].as_str(),
            )
        {
            found.insert(name.to_string(), PathBuf::from(exe));
        }
    }
    cache
        .get_or_insert_with(HashMap::new)
        .insert(manifest.to_path_buf(), found.clone());
    Ok(found)
}

/// The program, arguments and environment of one case, placeholders filled in.
pub fn launch(scenario: &Scenario, binaries: &Binaries, work: &Path) -> Launch {
    let mut argv: Vec<OsString> = scenario
        .command
        .iter()
        .map(|arg| {
            let mut out = OsString::new();
            for part in &arg.parts {
                match part {
                    ArgPart::Text(text) => out.push(text),
                    ArgPart::Work => out.push(work),
                    ArgPart::Bin(name) => out.push(&binaries[name]),
                }
            }
            out
        })
        .collect();
    let program = PathBuf::from(argv.remove(0));
    Launch {
        program,
        args: argv,
        env: scenario.env.clone(),
        cwd: work.to_path_buf(),
        capture: true,
    }
}
