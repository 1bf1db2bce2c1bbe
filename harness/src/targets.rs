//! Turning a scenario's `command` into a concrete program and arguments for one case.
//!
//! `{python}` is the Python 3 interpreter: `$KILLPOINT_PYTHON`, or the executable that
//! `python3` on the PATH reports as `sys.executable`. Asking once, instead of running
//! `python3` in every case, keeps version-manager shims (pyenv's forks some forty
//! processes) out of each case's process tree, its timing and its syscall counts.
//!
//! `{bin:NAME}` names a binary of the cargo package beside the scenario file (the nearest
//! `Cargo.toml` at or above its directory); it is built once per process with
//! `cargo build --release` and located through cargo's JSON messages. Setting
//! `KILLPOINT_BIN_DIR` skips cargo and takes binaries from that directory instead.

use std::collections::{BTreeMap, HashMap};
use std::ffi::OsString;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use crate::os::command::{Helper, HelperError, run_helper};
use crate::os::exec;
use crate::os::run::Launch;
use crate::scenario::{Scenario, not_installed};
use crate::values::{Arg, ArgPart};

/// The binaries a scenario's command names, by name.
pub type Binaries = BTreeMap<String, PathBuf>;

/// The key of `{python}` in [`Binaries`].
const PYTHON: &str = "{python}";

/// Finds (building if needed) every `{bin:NAME}` the scenario uses, and `{python}`,
/// once every program of `[requires]` has been found on the PATH.
pub fn binaries(scenario: &Scenario) -> Result<Binaries, String> {
    check_requires(scenario)?;
    let mut found = bin_binaries(scenario)?;
    if scenario
        .commands()
        .into_iter()
        .flatten()
        .any(Arg::uses_python)
    {
        found.insert(PYTHON.to_string(), python()?);
    }
    Ok(found)
}

/// The programs of `[requires]` that are not on the PATH the target gets (the
/// scenario's `env` may set it), each with its Debian package.
pub fn missing_programs(scenario: &Scenario) -> Vec<(String, String)> {
    let path = match scenario.env.get("PATH") {
        Some(path) => Some(OsString::from(path)),
        None => std::env::var_os("PATH"),
    };
    scenario
        .requires
        .iter()
        .filter(|(program, _)| !exec::on_path(program, path.as_deref()))
        .map(|(program, package)| (program.clone(), package.clone()))
        .collect()
}

/// An error naming every required program that is missing and its package; the
/// command's own program, when it is one of them, is named as the one that cannot run.
fn check_requires(scenario: &Scenario) -> Result<(), String> {
    let missing = missing_programs(scenario);
    if missing.is_empty() {
        return Ok(());
    }
    let own = match scenario.command.first().map(|a| a.parts.as_slice()) {
        Some([ArgPart::Text(program)]) => Some(program.as_str()),
        _ => None,
    };
    let lines: Vec<String> = missing
        .iter()
        .map(|(program, package)| {
            let why = not_installed(program, package);
            if own == Some(program.as_str()) {
                format!("cannot run `{program}`: not found on PATH: {why}")
            } else {
                why
            }
        })
        .collect();
    Err(lines.join("; "))
}

/// The Python interpreter, found once per process.
fn python() -> Result<PathBuf, String> {
    static FOUND: Mutex<Option<Result<PathBuf, String>>> = Mutex::new(None);
    let mut found = FOUND.lock().unwrap_or_else(|e| e.into_inner());
    found
        .get_or_insert_with(|| {
            if let Some(path) = std::env::var_os("KILLPOINT_PYTHON") {
                return Ok(PathBuf::from(path));
            }
            let helper = Helper {
                interruptible: true,
                ..Helper::new("python3", ["-c", "import sys; print(sys.executable)"])
            };
            let out = run_helper(&helper).map_err(|e| match e {
                HelperError::Spawn { source, .. } => format!(
                    "`{{python}}` needs `python3` on the PATH (or set KILLPOINT_PYTHON): {source}"
                ),
                e => format!("`{{python}}`: {e}"),
            })?;
            // Its stderr is the user's to see, as if it had been shared.
            let _ = std::io::stderr().write_all(&out.stderr);
            let path = String::from_utf8_lossy(&out.stdout).trim().to_string();
            if !out.status.success() || path.is_empty() {
                return Err(format!(
                    "`{{python}}`: `python3 -c 'import sys; print(sys.executable)'` failed ({})",
                    out.status
                ));
            }
            Ok(PathBuf::from(path))
        })
        .clone()
}

fn bin_binaries(scenario: &Scenario) -> Result<Binaries, String> {
    let mut names: Vec<&str> = scenario
        .commands()
        .into_iter()
        .flatten()
        .flat_map(|a| a.bins())
        .collect();
    names.sort();
    names.dedup();
    if names.is_empty() {
        return Ok(Binaries::new());
    }
    let available = match std::env::var_os("KILLPOINT_BIN_DIR") {
        Some(dir) => from_dir(Path::new(&dir), &names),
        None => {
            let from = scenario_dir(scenario);
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
    let mut helper = Helper {
        interruptible: true,
        ..Helper::new(
            cargo,
            [
                "build",
                "--release",
                "--bins",
                "--message-format=json-render-diagnostics",
                "--manifest-path",
            ],
        )
    };
    helper.args.push(manifest.into());
    let output = run_helper(&helper).map_err(|e| match e {
        HelperError::Spawn { source, .. } => format!(
            "cannot run cargo to build the targets of {}: {source}",
            manifest.display()
        ),
        HelperError::Interrupted { .. } => format!(
            "building the targets of {} was interrupted",
            manifest.display()
        ),
        e => format!("building the targets of {}: {e}", manifest.display()),
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

/// The scenario file's directory, absolute (the working directory for a scenario that
/// was not loaded from a file).
pub fn scenario_dir(scenario: &Scenario) -> PathBuf {
    let dir = scenario
        .source
        .as_deref()
        .and_then(Path::parent)
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    std::path::absolute(dir).unwrap_or_else(|_| dir.to_path_buf())
}

/// A command with every placeholder but `{work}` filled in, resolved once per scenario:
/// each run fills in its own sandbox.
#[derive(Debug, Clone)]
pub(crate) struct Resolved {
    args: Vec<Vec<Piece>>,
}

#[derive(Debug, Clone)]
enum Piece {
    Text(OsString),
    Work,
    /// `{path}`: the output a `valid` or `normalize` command judges.
    Path,
    /// `{port}`: the run's loopback port.
    Port,
}

/// What a run's placeholders stand for: `{work}` its sandbox, `{port}` the loopback port
/// picked for it (a scenario that uses `{port}` gets one for every run).
#[derive(Debug, Clone, Copy)]
pub struct Place<'a> {
    pub work: &'a Path,
    pub port: Option<u16>,
}

impl Resolved {
    /// Resolves `command`'s `{dir}`, `{python}` and `{bin:NAME}` (`binaries` holds every
    /// one the scenario names).
    pub fn new(command: &[Arg], scenario: &Scenario, binaries: &Binaries) -> Resolved {
        let args = command
            .iter()
            .map(|arg| {
                arg.parts
                    .iter()
                    .map(|part| match part {
                        ArgPart::Text(text) => Piece::Text(text.into()),
                        ArgPart::Work => Piece::Work,
                        ArgPart::Path => Piece::Path,
                        ArgPart::Port => Piece::Port,
                        ArgPart::Dir => Piece::Text(scenario_dir(scenario).into()),
                        ArgPart::Python => Piece::Text(binaries[PYTHON].clone().into()),
                        ArgPart::Bin(name) => Piece::Text(binaries[name].clone().into()),
                    })
                    .collect()
            })
            .collect();
        Resolved { args }
    }

    /// The program and its arguments for a run at `place`.
    pub fn argv(&self, place: Place) -> Vec<OsString> {
        self.argv_judging(place, Path::new(""))
    }

    /// The arguments for a run at `place`, `{path}` standing for `output` (a judging
    /// command's; parsing keeps `{path}` out of every other command).
    pub fn argv_judging(&self, place: Place, output: &Path) -> Vec<OsString> {
        self.args
            .iter()
            .map(|pieces| {
                let mut out = OsString::new();
                for piece in pieces {
                    match piece {
                        Piece::Text(text) => out.push(text),
                        Piece::Work => out.push(place.work),
                        Piece::Path => out.push(output),
                        Piece::Port => out.push(
                            place
                                .port
                                .expect("a scenario that uses {port} gets a port for every run")
                                .to_string(),
                        ),
                    }
                }
                out
            })
            .collect()
    }

    /// What to run at `place`, with the scenario's environment.
    pub fn launch(&self, place: Place, env: &BTreeMap<String, String>) -> Launch {
        let mut argv = self.argv(place);
        Launch {
            program: PathBuf::from(argv.remove(0)),
            args: argv,
            env: env.clone(),
            cwd: place.work.to_path_buf(),
            capture: true,
            isolate_network: false,
        }
    }
}
