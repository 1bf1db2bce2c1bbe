//! The small value types of the scenario format: durations, delay ranges, signals, exit
//! statuses, sandbox-relative paths and command arguments with placeholders. Each parses
//! itself from TOML and fails with a message that says what was expected, so a bad file
//! is reported at the offending key.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use serde::de::{self, Deserializer, SeqAccess, Visitor};
use serde::{Deserialize, Serialize, Serializer};

// ---------------------------------------------------------------------------------------
// Durations: "300ms", "2s", "1.5s", "1m", "250us".

/// Parses a duration written as a number and a unit (`ns`, `us`, `ms`, `s`, `m`).
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .ok_or_else(|| format!("`{text}` has no unit: write e.g. `300ms` or `2s`"))?;
    let (number, unit) = text.split_at(split);
    let value: f64 = number
        .parse()
        .map_err(|_| format!("`{text}` is not a duration: write e.g. `300ms` or `2s`"))?;
    let seconds = match unit.trim() {
        "ns" => value / 1e9,
        "us" | "µs" => value / 1e6,
        "ms" => value / 1e3,
        "s" => value,
        "m" | "min" => value * 60.0,
        other => {
            return Err(format!(
                "`{other}` is not a duration unit: use ns, us, ms, s or m (e.g. `300ms`)"
            ));
        }
    };
    Ok(Duration::from_secs_f64(seconds))
}

/// Writes a duration the way the scenario format reads it, in the largest exact unit.
pub fn format_duration(d: Duration) -> String {
    let nanos = d.as_nanos();
    if nanos == 0 {
        "0ms".to_string()
    } else if nanos.is_multiple_of(1_000_000_000) {
        format!("{}s", nanos / 1_000_000_000)
    } else if nanos.is_multiple_of(1_000_000) {
        format!("{}ms", nanos / 1_000_000)
    } else if nanos.is_multiple_of(1_000) {
        format!("{}us", nanos / 1_000)
    } else {
        format!("{nanos}ns")
    }
}

/// serde adapter for `Duration` fields written as `"300ms"`.
pub mod duration {
    use super::*;

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&format_duration(*d))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let text = String::deserialize(d)
            .map_err(|_| de::Error::custom("expected a duration string such as `300ms` or `2s`"))?;
        parse_duration(&text).map_err(de::Error::custom)
    }
}

/// serde adapter for `Option<Duration>` fields.
pub mod opt_duration {
    use super::*;

    pub fn serialize<S: Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
        match d {
            Some(d) => s.serialize_str(&format_duration(*d)),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
        super::duration::deserialize(d).map(Some)
    }
}

/// A closed range of delays, written `"0ms..300ms"` (or one duration for a fixed delay).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DelayRange {
    pub start: Duration,
    pub end: Duration,
}

impl FromStr for DelayRange {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        let (start, end) = match text.split_once("..") {
            Some((a, b)) => (
                parse_duration(a)?,
                parse_duration(b.trim_start_matches('='))?,
            ),
            None => {
                let d = parse_duration(text)?;
                (d, d)
            }
        };
        if start > end {
            return Err(format!("the range `{text}` ends before it starts"));
        }
        Ok(DelayRange { start, end })
    }
}

impl fmt::Display for DelayRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}..{}",
            format_duration(self.start),
            format_duration(self.end)
        )
    }
}

impl Serialize for DelayRange {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for DelayRange {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)
            .map_err(|_| de::Error::custom("expected a delay range string such as `0ms..300ms`"))?;
        text.parse().map_err(de::Error::custom)
    }
}

// ---------------------------------------------------------------------------------------
// Signals.

/// A signal, written by name: `"SIGTERM"` (or `"TERM"`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Signal(pub nix::sys::signal::Signal);

impl Signal {
    pub const SIGTERM: Signal = Signal(nix::sys::signal::Signal::SIGTERM);
    pub const SIGINT: Signal = Signal(nix::sys::signal::Signal::SIGINT);
    pub const SIGKILL: Signal = Signal(nix::sys::signal::Signal::SIGKILL);
    pub const SIGHUP: Signal = Signal(nix::sys::signal::Signal::SIGHUP);
    pub const SIGQUIT: Signal = Signal(nix::sys::signal::Signal::SIGQUIT);

    pub fn number(self) -> i32 {
        self.0 as i32
    }

    pub fn from_number(n: i32) -> Option<Signal> {
        nix::sys::signal::Signal::try_from(n).ok().map(Signal)
    }

    pub fn name(self) -> &'static str {
        self.0.as_str()
    }

    /// A signal a program can catch and answer with a graceful shutdown.
    /// How plain a signal is, for shrinking and exhaustive order: SIGTERM (what every
    /// orchestrator sends), then SIGINT (Ctrl-C), then the others by number.
    pub fn plainness(self) -> (u8, i32) {
        match self {
            Signal::SIGTERM => (0, 0),
            Signal::SIGINT => (1, 0),
            other => (2, other.number()),
        }
    }

    pub fn is_catchable(self) -> bool {
        !matches!(
            self.0,
            nix::sys::signal::Signal::SIGKILL | nix::sys::signal::Signal::SIGSTOP
        )
    }
}

impl FromStr for Signal {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        let upper = text.trim().to_ascii_uppercase();
        let name = if upper.starts_with("SIG") {
            upper
        } else {
            format!("SIG{upper}")
        };
        nix::sys::signal::Signal::from_str(&name)
            .map(Signal)
            .map_err(|_| {
                format!("`{text}` is not a signal name: write e.g. `SIGTERM`, `SIGINT`, `SIGKILL`")
            })
    }
}

impl fmt::Display for Signal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl Serialize for Signal {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.name())
    }
}

impl<'de> Deserialize<'de> for Signal {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)
            .map_err(|_| de::Error::custom("expected a signal name such as `SIGTERM`"))?;
        text.parse().map_err(de::Error::custom)
    }
}

/// One signal or a list of signals to choose from: `"SIGTERM"` or `["SIGTERM", "SIGINT"]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct SignalSet(pub Vec<Signal>);

impl<'de> Deserialize<'de> for SignalSet {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = SignalSet;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str(
                    "a signal name or a list of signal names, e.g. [\"SIGTERM\", \"SIGINT\"]",
                )
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<SignalSet, E> {
                Ok(SignalSet(vec![v.parse().map_err(E::custom)?]))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<SignalSet, A::Error> {
                let mut all = Vec::new();
                while let Some(s) = seq.next_element::<Signal>()? {
                    all.push(s);
                }
                if all.is_empty() {
                    return Err(de::Error::custom(
                        "the signal list is empty: name at least one signal",
                    ));
                }
                Ok(SignalSet(all))
            }
        }
        d.deserialize_any(V)
    }
}

// ---------------------------------------------------------------------------------------
// Exit statuses.

/// How a process ended: an exit code, or death by a signal.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ExitStatus {
    Code(i32),
    Signal(Signal),
}

impl fmt::Display for ExitStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ExitStatus::Code(c) => write!(f, "exit {c}"),
            ExitStatus::Signal(s) => write!(f, "killed by {s}"),
        }
    }
}

/// Written as an integer exit code (`14`) or a signal name (`"SIGKILL"`, death by it).
impl Serialize for ExitStatus {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            ExitStatus::Code(c) => s.serialize_i32(*c),
            ExitStatus::Signal(sig) => s.serialize_str(sig.name()),
        }
    }
}

impl<'de> Deserialize<'de> for ExitStatus {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = ExitStatus;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an exit code (0-255) or a signal name such as \"SIGKILL\"")
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<ExitStatus, E> {
                if (0..=255).contains(&v) {
                    Ok(ExitStatus::Code(v as i32))
                } else {
                    Err(E::custom(format!(
                        "exit code {v} is out of range: exit codes are 0-255"
                    )))
                }
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<ExitStatus, E> {
                self.visit_i64(v.min(i64::MAX as u64) as i64)
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<ExitStatus, E> {
                v.parse().map(ExitStatus::Signal).map_err(E::custom)
            }
        }
        d.deserialize_any(V)
    }
}

// ---------------------------------------------------------------------------------------
// Paths inside the sandbox.

/// A path relative to the case's sandbox directory; it may not climb out of it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct WorkPath(String);

impl WorkPath {
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The directory part (`""` for a file at the top of the sandbox).
    pub fn parent(&self) -> &str {
        self.0.rsplit_once('/').map(|(dir, _)| dir).unwrap_or("")
    }
}

impl FromStr for WorkPath {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        let path = text.trim_start_matches("./").trim_start_matches("{work}/");
        if path.is_empty() {
            return Err(
                "the path is empty: name a file inside the sandbox, e.g. `out.json`".into(),
            );
        }
        if path.starts_with('/') {
            return Err(format!(
                "`{text}` is absolute: paths are relative to the case's sandbox, e.g. `out.json`"
            ));
        }
        if path.split('/').any(|part| part == ".." || part.is_empty()) {
            return Err(format!("`{text}` leaves the sandbox or has an empty part"));
        }
        Ok(WorkPath(path.to_string()))
    }
}

impl fmt::Display for WorkPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for WorkPath {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)
            .map_err(|_| de::Error::custom("expected a path string relative to the sandbox"))?;
        text.parse().map_err(de::Error::custom)
    }
}

// ---------------------------------------------------------------------------------------
// Syscall strike points: path globs and call ordinals.

/// A glob over the paths a syscall names (`out.json*`, `*.tmp`, `logs/**`), matched against
/// sandbox-relative paths (absolute ones outside it). `*` does not cross `/`, and a
/// leading `.` is an ordinary character: `*.tmp` matches `.out.json.tmp`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PathGlob(glob::Pattern);

impl PathGlob {
    pub fn as_str(&self) -> &str {
        self.0.as_str()
    }

    pub fn matches(&self, path: &str) -> bool {
        self.0.matches_with(
            path,
            glob::MatchOptions {
                case_sensitive: true,
                require_literal_separator: true,
                require_literal_leading_dot: false,
            },
        )
    }
}

impl FromStr for PathGlob {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        let text = text.trim_start_matches("./").trim_start_matches("{work}/");
        if text.is_empty() {
            return Err("the path glob is empty: e.g. `out.json*`".into());
        }
        glob::Pattern::new(text)
            .map(PathGlob)
            .map_err(|e| format!("`{text}` is not a valid glob: {e}"))
    }
}

impl fmt::Display for PathGlob {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for PathGlob {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for PathGlob {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)
            .map_err(|_| de::Error::custom("expected a path glob, e.g. \"out.json*\""))?;
        text.parse().map_err(de::Error::custom)
    }
}

/// A glob over program names (`rsync`, `python*`, `sh`): the file name a process last
/// exec'd, without its directory, as the kernel names it (`comm`, untruncated). For
/// `python3 script.py` that is `python3`; for `sh -c …`, `sh` (not the `dash` it may link
/// to); for a `#!` script run by its path, the script's own name. `*`, `?` and `[…]` as
/// in a shell; `[m]ain` is a program literally named `main`, where `process = "main"` is
/// the keyword for the main process.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ProgramGlob(glob::Pattern);

impl ProgramGlob {
    pub fn as_str(&self) -> &str {
        self.0.as_str()
    }

    pub fn matches(&self, program: &str) -> bool {
        self.0.matches_with(
            program,
            glob::MatchOptions {
                case_sensitive: true,
                require_literal_separator: false,
                require_literal_leading_dot: false,
            },
        )
    }
}

impl FromStr for ProgramGlob {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        if text.is_empty() {
            return Err("the program name is empty: e.g. \"rsync\" or \"python*\"".into());
        }
        if text.contains('/') {
            let name = text.rsplit('/').next().unwrap_or(text);
            return Err(format!(
                "`{text}` is a path: a program is matched by its file name alone, e.g. \"{name}\""
            ));
        }
        glob::Pattern::new(text)
            .map(ProgramGlob)
            .map_err(|e| format!("`{text}` is not a valid glob: {e}"))
    }
}

impl fmt::Display for ProgramGlob {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for ProgramGlob {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for ProgramGlob {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)
            .map_err(|_| de::Error::custom("expected a program name glob, e.g. \"python*\""))?;
        text.parse().map_err(de::Error::custom)
    }
}

/// Which matching calls a syscall strike may land on, counted from 1 over the whole
/// process tree: `3`, `"2..5"` (2 to 4), `"2..=5"`, `"1.."` (any), `"last"`. Open ends
/// and `last` are resolved against the census.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Nth {
    pub start: NthBound,
    /// Inclusive; `None`: up to the census's last call.
    pub end: Option<NthBound>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum NthBound {
    At(u64),
    Last,
}

impl NthBound {
    fn resolve(self, count: u64) -> u64 {
        match self {
            NthBound::At(n) => n,
            NthBound::Last => count,
        }
    }
}

impl Default for Nth {
    fn default() -> Self {
        Nth {
            start: NthBound::At(1),
            end: None,
        }
    }
}

impl Nth {
    /// The inclusive range of call numbers, given how many matching calls the census saw;
    /// `None` when it holds none of them.
    pub fn resolve(&self, count: u64) -> Option<(u64, u64)> {
        let start = self.start.resolve(count).max(1);
        let end = self.end.map_or(count, |e| e.resolve(count)).min(count);
        (start <= end).then_some((start, end))
    }
}

impl FromStr for Nth {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        let bound = |part: &str| -> Result<NthBound, String> {
            match part.trim() {
                "last" => Ok(NthBound::Last),
                n => match n.parse::<u64>() {
                    Ok(0) => Err("calls are counted from 1".to_string()),
                    Ok(n) => Ok(NthBound::At(n)),
                    Err(_) => Err(format!(
                        "`{text}` is not a call number or range: use e.g. 3, \"2..5\", \"2..=5\", \"1..\" or \"last\""
                    )),
                },
            }
        };
        let nth = match text.split_once("..") {
            None => {
                let at = bound(text)?;
                Nth {
                    start: at,
                    end: Some(at),
                }
            }
            Some((a, b)) => {
                let start = if a.trim().is_empty() {
                    NthBound::At(1)
                } else {
                    bound(a)?
                };
                let end = if let Some(b) = b.strip_prefix('=') {
                    Some(bound(b)?)
                } else if b.trim().is_empty() {
                    None
                } else {
                    match bound(b)? {
                        NthBound::At(1) => return Err(format!("`{text}` is empty")),
                        NthBound::At(n) => Some(NthBound::At(n - 1)),
                        NthBound::Last => {
                            return Err(format!(
                                "`{text}`: write \"..=last\" or \"..\" to include the last call"
                            ));
                        }
                    }
                };
                Nth { start, end }
            }
        };
        if let (NthBound::At(a), Some(NthBound::At(b))) = (nth.start, nth.end)
            && a > b
        {
            return Err(format!("the range `{text}` ends before it starts"));
        }
        Ok(nth)
    }
}

impl fmt::Display for Nth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let bound = |b: NthBound| match b {
            NthBound::At(n) => n.to_string(),
            NthBound::Last => "last".to_string(),
        };
        match self.end {
            Some(end) if end == self.start => f.write_str(&bound(end)),
            Some(end) => write!(f, "{}..={}", bound(self.start), bound(end)),
            None => write!(f, "{}..", bound(self.start)),
        }
    }
}

impl Serialize for Nth {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Nth {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Nth;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a call number or a range, e.g. 3, \"2..5\", \"1..\" or \"last\"")
            }
            fn visit_i64<E: de::Error>(self, n: i64) -> Result<Nth, E> {
                n.to_string().parse().map_err(E::custom)
            }
            fn visit_u64<E: de::Error>(self, n: u64) -> Result<Nth, E> {
                n.to_string().parse().map_err(E::custom)
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<Nth, E> {
                s.parse().map_err(E::custom)
            }
        }
        d.deserialize_any(V)
    }
}

// ---------------------------------------------------------------------------------------
// Command arguments with placeholders.

/// A piece of a command argument.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ArgPart {
    Text(String),
    /// `{work}`: the case's sandbox directory.
    Work,
    /// `{dir}`: the directory of the scenario file (for scripts that sit beside it).
    Dir,
    /// `{python}`: the Python 3 interpreter itself (not a version manager's shim).
    Python,
    /// `{bin:NAME}`: a binary of the cargo package beside the scenario file.
    Bin(String),
    /// `{path}`: the output a `valid` or `normalize` command judges (only there).
    Path,
    /// `{port}`: a free loopback port picked for each run (the same for the target, its
    /// clients and its helpers in that run).
    Port,
}

/// One argument of `command`, parsed into text and placeholders.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Arg {
    pub raw: String,
    pub parts: Vec<ArgPart>,
}

impl Arg {
    pub fn uses_python(&self) -> bool {
        self.parts.contains(&ArgPart::Python)
    }

    pub fn uses_port(&self) -> bool {
        self.parts.contains(&ArgPart::Port)
    }

    pub fn bins(&self) -> impl Iterator<Item = &str> {
        self.parts.iter().filter_map(|p| match p {
            ArgPart::Bin(name) => Some(name.as_str()),
            _ => None,
        })
    }
}

impl FromStr for Arg {
    type Err = String;

    /// Text with placeholders; `{{` and `}}` stand for literal braces
    /// (`awk '{{print $1}}'`).
    fn from_str(raw: &str) -> Result<Self, String> {
        Arg::parse(raw, false)
    }
}

impl Arg {
    /// An argument of an output's `valid` or `normalize` command, where `{path}` names
    /// the output judged.
    pub fn judging(raw: &str) -> Result<Arg, String> {
        Arg::parse(raw, true)
    }

    fn parse(raw: &str, judging: bool) -> Result<Arg, String> {
        let mut parts = Vec::new();
        let mut text = String::new();
        let mut chars = raw.char_indices().peekable();
        while let Some((at, c)) = chars.next() {
            match c {
                '{' if chars.peek().is_some_and(|&(_, n)| n == '{') => {
                    chars.next();
                    text.push('{');
                }
                '}' if chars.peek().is_some_and(|&(_, n)| n == '}') => {
                    chars.next();
                    text.push('}');
                }
                '}' => {
                    return Err(format!(
                        "`{raw}` has a `}}` that closes no placeholder: write `}}}}` for a literal brace"
                    ));
                }
                '{' => {
                    let close = raw[at..].find('}').ok_or_else(|| {
                        format!(
                            "`{raw}` opens a placeholder with `{{` but never closes it (write `{{{{` for a literal brace)"
                        )
                    })? + at;
                    let inner = &raw[at + 1..close];
                    if !text.is_empty() {
                        parts.push(ArgPart::Text(std::mem::take(&mut text)));
                    }
                    parts.push(match inner.split_once(':') {
                        None if inner == "work" => ArgPart::Work,
                        None if inner == "dir" => ArgPart::Dir,
                        None if inner == "python" => ArgPart::Python,
                        None if inner == "port" => ArgPart::Port,
                        None if inner == "path" && judging => ArgPart::Path,
                        None if inner == "path" => {
                            return Err(format!(
                                "`{raw}`: `{{path}}` names the output a `valid` or `normalize` command judges, and exists only there; elsewhere write `{{work}}/FILE`"
                            ));
                        }
                        Some(("bin", name)) if !name.is_empty() => ArgPart::Bin(name.to_string()),
                        _ => {
                            return Err(format!(
                                "unknown placeholder `{{{inner}}}`: use `{{work}}`, `{{dir}}`, `{{port}}`, `{{python}}` or `{{bin:NAME}}`, and `{{{{` `}}}}` for literal braces"
                            ));
                        }
                    });
                    while chars.peek().is_some_and(|&(i, _)| i <= close) {
                        chars.next();
                    }
                }
                c => text.push(c),
            }
        }
        if !text.is_empty() {
            parts.push(ArgPart::Text(text));
        }
        Ok(Arg {
            raw: raw.to_string(),
            parts,
        })
    }
}

impl Serialize for Arg {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.raw)
    }
}

impl<'de> Deserialize<'de> for Arg {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text =
            String::deserialize(d).map_err(|_| de::Error::custom("expected a string argument"))?;
        text.parse().map_err(de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_in_every_unit() {
        assert_eq!(parse_duration("300ms"), Ok(Duration::from_millis(300)));
        assert_eq!(parse_duration("2s"), Ok(Duration::from_secs(2)));
        assert_eq!(parse_duration("1.5s"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse_duration("250us"), Ok(Duration::from_micros(250)));
        assert_eq!(parse_duration("1m"), Ok(Duration::from_secs(60)));
        assert!(parse_duration("300").unwrap_err().contains("no unit"));
        assert!(
            parse_duration("3 parsecs")
                .unwrap_err()
                .contains("not a duration unit")
        );
    }

    #[test]
    fn durations_format_back_to_what_parses() {
        for text in ["0ms", "2s", "300ms", "250us", "7ns"] {
            assert_eq!(format_duration(parse_duration(text).unwrap()), text);
        }
    }

    #[test]
    fn delay_ranges_parse_and_refuse_reversed_bounds() {
        let r: DelayRange = "0ms..300ms".parse().unwrap();
        assert_eq!(
            (r.start, r.end),
            (Duration::ZERO, Duration::from_millis(300))
        );
        let fixed: DelayRange = "5ms".parse().unwrap();
        assert_eq!(fixed.start, fixed.end);
        assert!(
            "2s..1s"
                .parse::<DelayRange>()
                .unwrap_err()
                .contains("ends before it starts")
        );
    }

    #[test]
    fn signals_parse_with_or_without_prefix() {
        assert_eq!("SIGTERM".parse::<Signal>(), Ok(Signal::SIGTERM));
        assert_eq!("int".parse::<Signal>(), Ok(Signal::SIGINT));
        assert!(
            "SIGFOO"
                .parse::<Signal>()
                .unwrap_err()
                .contains("not a signal name")
        );
    }

    #[test]
    fn work_paths_stay_inside_the_sandbox() {
        assert_eq!("out/a.json".parse::<WorkPath>().unwrap().parent(), "out");
        assert_eq!(
            "{work}/a.json".parse::<WorkPath>().unwrap().as_str(),
            "a.json"
        );
        assert!("/etc/passwd".parse::<WorkPath>().is_err());
        assert!("../x".parse::<WorkPath>().is_err());
    }

    #[test]
    fn args_split_into_placeholders() {
        let arg: Arg = "--out={work}/x.json".parse().unwrap();
        assert_eq!(
            arg.parts,
            vec![
                ArgPart::Text("--out=".into()),
                ArgPart::Work,
                ArgPart::Text("/x.json".into())
            ]
        );
        let bin: Arg = "{bin:atomic-writer}".parse().unwrap();
        assert_eq!(bin.bins().collect::<Vec<_>>(), vec!["atomic-writer"]);
        assert!(
            "{home}"
                .parse::<Arg>()
                .unwrap_err()
                .contains("unknown placeholder")
        );
        assert!("{work".parse::<Arg>().unwrap_err().contains("never closes"));
    }

    #[test]
    fn doubled_braces_are_literal_braces() {
        let awk: Arg = "{{print $1}} > {work}/out".parse().unwrap();
        assert_eq!(
            awk.parts,
            vec![
                ArgPart::Text("{print $1} > ".into()),
                ArgPart::Work,
                ArgPart::Text("/out".into())
            ]
        );
        let shell: Arg = "true || {{ echo x; }}".parse().unwrap();
        assert_eq!(
            shell.parts,
            vec![ArgPart::Text("true || { echo x; }".into())]
        );
        assert_eq!(
            "a } b".parse::<Arg>().unwrap_err(),
            "`a } b` has a `}` that closes no placeholder: write `}}` for a literal brace"
        );
        assert!(
            "{print $1}"
                .parse::<Arg>()
                .unwrap_err()
                .ends_with("and `{{` `}}` for literal braces")
        );
    }

    #[test]
    fn nth_ranges_resolve_against_the_census_count() {
        let nth = |t: &str| t.parse::<Nth>().unwrap();
        assert_eq!(nth("3").resolve(10), Some((3, 3)));
        assert_eq!(nth("3").resolve(2), None, "the census saw only 2");
        assert_eq!(
            nth("2..5").resolve(10),
            Some((2, 4)),
            "`..` excludes its end"
        );
        assert_eq!(nth("2..=5").resolve(10), Some((2, 5)));
        assert_eq!(nth("2..=5").resolve(3), Some((2, 3)));
        assert_eq!(nth("1..").resolve(7), Some((1, 7)));
        assert_eq!(nth("..=3").resolve(7), Some((1, 3)));
        assert_eq!(nth("last").resolve(1024), Some((1024, 1024)));
        assert_eq!(nth("2..=last").resolve(5), Some((2, 5)));
        assert_eq!(Nth::default().resolve(0), None);
        assert_eq!(nth("2..=5").to_string(), "2..=5");
        assert_eq!(nth("2..5").to_string(), "2..=4");
        assert_eq!(nth("last").to_string(), "last");
        assert!("0".parse::<Nth>().unwrap_err().contains("from 1"));
        assert!("5..2".parse::<Nth>().unwrap_err().contains("ends before"));
        assert!("1..1".parse::<Nth>().unwrap_err().contains("empty"));
        assert!(
            "x".parse::<Nth>()
                .unwrap_err()
                .contains("not a call number")
        );
    }

    #[test]
    fn program_globs_match_program_names_and_refuse_paths() {
        let glob = |t: &str| t.parse::<ProgramGlob>().unwrap();
        assert!(glob("python*").matches("python3"));
        assert!(glob("python*").matches("python3.11"));
        assert!(!glob("python*").matches("ipython3"));
        assert!(glob("sh").matches("sh"));
        assert!(!glob("sh").matches("bash"));
        assert!(glob("[m]ain").matches("main"));
        assert!(
            glob("*.py").matches(".hidden.py"),
            "a leading dot is ordinary"
        );
        assert!(!glob("Rsync").matches("rsync"), "case counts");
        assert_eq!(
            "/usr/bin/rsync".parse::<ProgramGlob>().unwrap_err(),
            "`/usr/bin/rsync` is a path: a program is matched by its file name alone, e.g. \"rsync\""
        );
        assert!("".parse::<ProgramGlob>().unwrap_err().contains("empty"));
        assert!(
            "py["
                .parse::<ProgramGlob>()
                .unwrap_err()
                .starts_with("`py[` is not a valid glob")
        );
    }

    #[test]
    fn path_globs_match_relative_paths() {
        let glob = |t: &str| t.parse::<PathGlob>().unwrap();
        assert!(glob("out.json*").matches("out.json"));
        assert!(glob("out.json*").matches("out.json.tmp"));
        assert!(!glob("out.json*").matches(".out.json.tmp"));
        assert!(
            glob("*.tmp*").matches(".out.json.tmp-12"),
            "a leading dot is ordinary"
        );
        assert!(
            !glob("*.json").matches("sub/out.json"),
            "`*` stays in one directory"
        );
        assert!(glob("**/*.json").matches("sub/out.json"));
        assert!(glob("{work}/out.json").matches("out.json"));
        assert!(
            "[".parse::<PathGlob>()
                .unwrap_err()
                .contains("not a valid glob")
        );
    }
}
