//! `[expect.acked]`: how a target acknowledges work, and how to read what survived.
//!
//! Acknowledgements come from the target's stdout, one per matching line, or from its
//! probe marks (`ack 7`); survivors from a file, a JSON array inside a file, or a command's
//! stdout. Turning text into ids is pure and lives here; reading the file or running the
//! command is the OS side's (`crate::survivors`).

use std::fmt;

use serde::de::{self, Deserializer};
use serde::{Deserialize, Serialize, Serializer};

use super::values::{Arg, WorkPath};
use crate::outcome::Mark;

/// `[expect.acked]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AckedSpec {
    /// Where the target reports the ids it acknowledges.
    pub ack: Reports,
    /// Where the ids that survived are read after the case.
    pub survivors: Survivors,
    /// Whether the promise holds after SIGKILL too (work acknowledged only once it is
    /// durable). Default: only after a clean run or a graceful stop.
    #[serde(default)]
    pub after_kill: bool,
}

/// Where a target reports ids (acknowledgements, units done): written in a scenario as a
/// regular expression matched against each line of stdout (its first capture group, or
/// the whole match, is the id), as `{ probe = "ack" }`: the argument of each probe mark
/// of that name (`ack 7` reports `7`), or as the responses a built-in client got:
/// `{ response_header = "X-Id" }` or `{ response_body = 'id=(\d+)' }`, with `status`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reports {
    Stdout(Pattern),
    Probe(String),
    /// Each complete response of a built-in client with an acknowledging status.
    Response(ResponseAck),
}

/// Acknowledgements read from the built-in clients' responses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResponseAck {
    pub from: ResponsePart,
    /// The statuses that acknowledge; default `2xx`. A TCP response has no status: it
    /// acknowledges whenever it is complete.
    pub status: StatusRange,
}

/// Where in a response the id is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ResponsePart {
    /// The value of this header (it must be among the client's `capture`, which holds
    /// `X-Id` by default).
    Header(String),
    /// The first capture group (or the whole match) of this pattern, in each line of the
    /// body's first 4 KiB (the clients keep them when acknowledgements are read there).
    Body(Pattern),
}

/// HTTP statuses `low..=high`: written `"2xx"` (a class) or `"201"` (one status).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StatusRange {
    pub low: u16,
    pub high: u16,
}

impl Default for StatusRange {
    fn default() -> Self {
        StatusRange {
            low: 200,
            high: 299,
        }
    }
}

impl StatusRange {
    pub fn contains(&self, status: u16) -> bool {
        (self.low..=self.high).contains(&status)
    }
}

impl fmt::Display for StatusRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.low == self.high {
            write!(f, "{}", self.low)
        } else {
            write!(f, "{}xx", self.low / 100)
        }
    }
}

impl std::str::FromStr for StatusRange {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        let bad = || {
            format!(
                "`status = \"{text}\"` is not a status: a class like \"2xx\" or a status like \"201\""
            )
        };
        let class = text.strip_suffix("xx").or_else(|| text.strip_suffix("XX"));
        if let Some(digit) = class {
            let d: u16 = digit.parse().map_err(|_| bad())?;
            return if (1..=5).contains(&d) {
                Ok(StatusRange {
                    low: d * 100,
                    high: d * 100 + 99,
                })
            } else {
                Err(bad())
            };
        }
        let status: u16 = text.parse().map_err(|_| bad())?;
        if !(100..=599).contains(&status) {
            return Err(bad());
        }
        Ok(StatusRange {
            low: status,
            high: status,
        })
    }
}

impl Reports {
    /// The ids a run reported, in order: from the clients' stdout (or the target's),
    /// its probe marks, or its built-in clients' responses.
    pub fn reported(&self, outcome: &crate::outcome::Outcome) -> Vec<String> {
        let Reports::Response(ack) = self else {
            return self.ids(&outcome.ack_stdout(), &outcome.marks);
        };
        let mut ids = Vec::new();
        for history in outcome.clients.iter().filter_map(|c| c.history.as_ref()) {
            for request in &history.requests {
                let ok =
                    request.is_complete() && request.status.is_none_or(|s| ack.status.contains(s));
                if !ok {
                    continue;
                }
                match &ack.from {
                    ResponsePart::Header(name) => {
                        if let Some((_, value)) = request
                            .captured
                            .iter()
                            .find(|(k, _)| k.eq_ignore_ascii_case(name))
                        {
                            ids.push(value.clone());
                        }
                    }
                    ResponsePart::Body(pattern) => ids.extend(pattern.ids(&request.body)),
                }
            }
        }
        ids
    }

    /// Whether the ids are read from response bodies, which the clients must keep.
    pub fn reads_bodies(&self) -> bool {
        matches!(
            self,
            Reports::Response(ResponseAck {
                from: ResponsePart::Body(_),
                ..
            })
        )
    }

    /// The ids reported, in order.
    pub fn ids(&self, stdout: &str, marks: &[Mark]) -> Vec<String> {
        match self {
            Reports::Stdout(pattern) => pattern.ids(stdout),
            Reports::Probe(name) => marks
                .iter()
                .filter(|m| m.name == *name && !m.arg.is_empty())
                .map(|m| m.arg.clone())
                .collect(),
            // Only a case's outcome has histories: see `reported`. A resume has none.
            Reports::Response(_) => Vec::new(),
        }
    }
}

impl fmt::Display for Reports {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reports::Stdout(pattern) => write!(f, "stdout lines matching `{}`", pattern.as_str()),
            Reports::Probe(name) => write!(f, "`{name} ID` probe marks"),
            Reports::Response(ResponseAck {
                from: ResponsePart::Header(name),
                status,
            }) => write!(
                f,
                "the `{name}` header of the built-in clients' {status} responses"
            ),
            Reports::Response(ResponseAck {
                from: ResponsePart::Body(pattern),
                status,
            }) => write!(
                f,
                "the built-in clients' {status} response bodies, matching `{}`",
                pattern.as_str()
            ),
        }
    }
}

const REPORTS_EXPECTED: &str = "expected a regular expression for stdout lines (e.g. '^ACK (\\d+)$'), a probe mark name (e.g. { probe = \"ack\" }) or the built-in clients' responses (e.g. { response_header = \"X-Id\" } or { response_body = 'id=(\\d+)' })";

#[derive(Serialize, Deserialize)]
#[serde(untagged)]
enum RawReports {
    Pattern(String),
    Probe {
        probe: String,
    },
    Response {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        response_header: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        response_body: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        status: Option<String>,
    },
}

impl Serialize for Reports {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Reports::Stdout(pattern) => RawReports::Pattern(pattern.as_str().to_string()),
            Reports::Probe(name) => RawReports::Probe {
                probe: name.clone(),
            },
            Reports::Response(ack) => {
                let (response_header, response_body) = match &ack.from {
                    ResponsePart::Header(name) => (Some(name.clone()), None),
                    ResponsePart::Body(pattern) => (None, Some(pattern.as_str().to_string())),
                };
                RawReports::Response {
                    response_header,
                    response_body,
                    status: (ack.status != StatusRange::default()).then(|| ack.status.to_string()),
                }
            }
        }
        .serialize(s)
    }
}

impl<'de> Deserialize<'de> for Reports {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = RawReports::deserialize(d).map_err(|_| de::Error::custom(REPORTS_EXPECTED))?;
        match raw {
            RawReports::Pattern(text) => {
                text.parse().map(Reports::Stdout).map_err(de::Error::custom)
            }
            RawReports::Probe { probe }
                if probe.is_empty() || probe.contains(char::is_whitespace) =>
            {
                Err(de::Error::custom(format!(
                    "`probe = \"{probe}\"` is not a mark name: one word, e.g. \"ack\""
                )))
            }
            RawReports::Probe { probe } => Ok(Reports::Probe(probe)),
            RawReports::Response {
                response_header,
                response_body,
                status,
            } => {
                let from = match (response_header, response_body) {
                    (Some(name), None) if name.is_empty() => {
                        return Err(de::Error::custom(
                            "`response_header` names a header, e.g. \"X-Id\"",
                        ));
                    }
                    (Some(name), None) => ResponsePart::Header(name),
                    (None, Some(text)) => {
                        ResponsePart::Body(text.parse().map_err(de::Error::custom)?)
                    }
                    (Some(_), Some(_)) => {
                        return Err(de::Error::custom(
                            "`response_header` and `response_body` are two places for one id: keep one",
                        ));
                    }
                    (None, None) => return Err(de::Error::custom(REPORTS_EXPECTED)),
                };
                let status = match status {
                    Some(text) => text.parse().map_err(de::Error::custom)?,
                    None => StatusRange::default(),
                };
                Ok(Reports::Response(ResponseAck { from, status }))
            }
        }
    }
}

/// Where survivors are read: exactly one of `file` and `command`, with `json` (a JSON
/// pointer to an array, only with `file`) or `pattern` (one id per matching line).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, try_from = "RawSurvivors")]
pub struct Survivors {
    pub source: SurvivorSource,
    pub read: IdReader,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SurvivorSource {
    /// A file in the sandbox.
    File(WorkPath),
    /// A command run in the sandbox after the case; its stdout holds the ids and a
    /// non-zero exit means what survived is unusable (its stderr says why).
    Command(Vec<Arg>),
}

/// How ids are picked out of the survivors' text.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum IdReader {
    /// One id per line that matches (first capture group, or the whole match).
    Lines(Pattern),
    /// The elements of the JSON array at this pointer (`/done`); numbers and strings.
    Json(String),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSurvivors {
    file: Option<WorkPath>,
    command: Option<Vec<Arg>>,
    json: Option<String>,
    pattern: Option<Pattern>,
}

impl TryFrom<RawSurvivors> for Survivors {
    type Error = String;

    fn try_from(raw: RawSurvivors) -> Result<Self, String> {
        let source = match (raw.file, raw.command) {
            (Some(file), None) => SurvivorSource::File(file),
            (None, Some(command)) if !command.is_empty() => SurvivorSource::Command(command),
            (None, Some(_)) => return Err("`command` is empty".into()),
            _ => {
                return Err(
                    "give exactly one of `file` (e.g. \"store.log\") and `command` (e.g. [\"python3\", \"check.py\", \"{work}\"])"
                        .into(),
                );
            }
        };
        let read = match (raw.json, raw.pattern) {
            (Some(_), Some(_)) => return Err("give `json` or `pattern`, not both".into()),
            (Some(pointer), None) => {
                if matches!(source, SurvivorSource::Command(_)) {
                    return Err("`json` reads a file: use it with `file`".into());
                }
                if !(pointer.is_empty() || pointer.starts_with('/')) {
                    return Err(format!(
                        "`json = \"{pointer}\"` is not a JSON pointer: write e.g. \"/done\""
                    ));
                }
                IdReader::Json(pointer)
            }
            (None, Some(pattern)) => IdReader::Lines(pattern),
            (None, None) => IdReader::Lines(Pattern::whole_line()),
        };
        Ok(Survivors { source, read })
    }
}

impl IdReader {
    /// The ids in `text`, in order of appearance.
    pub fn ids(&self, text: &str) -> Result<Vec<String>, String> {
        match self {
            IdReader::Lines(pattern) => Ok(pattern.ids(text)),
            IdReader::Json(pointer) => {
                let value: serde_json::Value =
                    serde_json::from_str(text).map_err(|e| format!("not valid JSON: {e}"))?;
                let found = value
                    .pointer(pointer)
                    .ok_or_else(|| format!("no `{pointer}` in the JSON document"))?;
                let items = found
                    .as_array()
                    .ok_or_else(|| format!("`{pointer}` is not an array"))?;
                items
                    .iter()
                    .map(|item| match item {
                        serde_json::Value::String(s) => Ok(s.clone()),
                        serde_json::Value::Number(n) => Ok(n.to_string()),
                        other => Err(format!("`{pointer}` holds {other}, not an id")),
                    })
                    .collect()
            }
        }
    }
}

/// A regular expression from a scenario file; equal when its text is.
#[derive(Clone)]
pub struct Pattern(regex::Regex);

impl Pattern {
    fn whole_line() -> Pattern {
        Pattern(regex::Regex::new(r"^(.+)$").expect("a valid pattern"))
    }

    pub fn as_str(&self) -> &str {
        self.0.as_str()
    }

    pub fn is_match(&self, line: &str) -> bool {
        self.0.is_match(line)
    }

    /// The id of each matching line: the first capture group, or the whole match.
    pub fn ids(&self, text: &str) -> Vec<String> {
        text.lines()
            .filter_map(|line| {
                let found = self.0.captures(line)?;
                let id = found.get(1).or_else(|| found.get(0))?.as_str().trim();
                (!id.is_empty()).then(|| id.to_string())
            })
            .collect()
    }
}

impl std::str::FromStr for Pattern {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        regex::Regex::new(text)
            .map(Pattern)
            .map_err(|e| format!("not a valid regular expression: {e}"))
    }
}

impl fmt::Debug for Pattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Pattern({:?})", self.as_str())
    }
}

impl PartialEq for Pattern {
    fn eq(&self, other: &Self) -> bool {
        self.as_str() == other.as_str()
    }
}

impl Eq for Pattern {}

impl Serialize for Pattern {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for Pattern {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        text.parse().map_err(de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn acknowledgements_can_be_a_response_header_of_the_built_in_clients() {
        #[derive(Deserialize)]
        struct Wrap {
            ack: Reports,
        }
        let read = |text: &str| {
            toml::from_str::<Wrap>(text)
                .map(|w| w.ack)
                .map_err(|e| e.message().to_string())
        };
        let header = Reports::Response(ResponseAck {
            from: ResponsePart::Header("X-Id".into()),
            status: StatusRange::default(),
        });
        assert_eq!(
            read("ack = { response_header = \"X-Id\" }"),
            Ok(header.clone())
        );
        assert_eq!(
            read("ack = { response_body = '\"id\": (\\d+)', status = \"201\" }"),
            Ok(Reports::Response(ResponseAck {
                from: ResponsePart::Body(r#""id": (\d+)"#.parse().unwrap()),
                status: StatusRange {
                    low: 201,
                    high: 201
                },
            }))
        );
        assert_eq!(
            read("ack = { response_header = \"X-Id\", status = \"3xx\" }"),
            Ok(Reports::Response(ResponseAck {
                from: ResponsePart::Header("X-Id".into()),
                status: StatusRange {
                    low: 300,
                    high: 399
                },
            }))
        );
        assert_eq!(
            read("ack = { response_header = \"X-Id\", status = \"2x\" }"),
            Err(
                "`status = \"2x\"` is not a status: a class like \"2xx\" or a status like \"201\""
                    .into()
            )
        );
        assert_eq!(
            read("ack = { response_header = \"X-Id\", response_body = \"x\" }"),
            Err("`response_header` and `response_body` are two places for one id: keep one".into())
        );
        assert_eq!(
            read("ack = { response_headers = \"X-Id\" }"),
            Err(REPORTS_EXPECTED.into())
        );
        assert_eq!(
            read("ack = { response_header = \"\" }"),
            Err("`response_header` names a header, e.g. \"X-Id\"".into())
        );
        // Only complete 2xx responses acknowledge; the header is matched in any case.
        let mut outcome = crate::invariants::testing::clean_outcome();
        let request = |id: u32, status: u16, complete: bool| {
            let mut r = crate::history::RequestRecord::started(id, id, std::time::Duration::ZERO);
            r.status = Some(status);
            if complete {
                r.completed_at = Some(std::time::Duration::from_millis(1));
            } else {
                r.failed_at = Some(std::time::Duration::from_millis(1));
                r.error = Some(crate::history::ClientError::Reset);
            }
            r.captured.insert("x-id".into(), format!("item-{id}"));
            r.body = format!("{{\"id\": {id}}}\n");
            r
        };
        outcome.clients = vec![crate::outcome::ClientRecord {
            command: "http POST /items".into(),
            started_at: std::time::Duration::ZERO,
            ended_at: None,
            status: None,
            cut_off: false,
            error: None,
            stdout: Default::default(),
            stderr: Default::default(),
            history: Some(crate::history::History {
                label: "POST /items".into(),
                planned: 3,
                requests: vec![
                    request(1, 201, true),
                    request(2, 503, true),
                    request(3, 201, false),
                ],
                connections: 3,
                end: crate::history::HistoryEnd::Finished,
                ended_at: std::time::Duration::from_millis(2),
                error: None,
            }),
        }];
        assert_eq!(header.reported(&outcome), ["item-1"]);
        // From the body, the statuses chosen: 503 too.
        let body = Reports::Response(ResponseAck {
            from: ResponsePart::Body(r#""id": (\d+)"#.parse().unwrap()),
            status: "5xx".parse().unwrap(),
        });
        assert!(body.reads_bodies() && !header.reads_bodies());
        assert_eq!(body.reported(&outcome), ["2"]);
        // And back to the file's form.
        assert_eq!(
            toml::to_string(&std::collections::BTreeMap::from([("ack", &body)])).unwrap(),
            "[ack]\nresponse_body = '\"id\": (\\d+)'\nstatus = \"5xx\"\n"
        );
    }

    fn survivors(toml_text: &str) -> Result<Survivors, String> {
        #[derive(Deserialize)]
        struct Wrap {
            survivors: Survivors,
        }
        toml::from_str::<Wrap>(toml_text)
            .map(|w| w.survivors)
            .map_err(|e| e.message().to_string())
    }

    #[test]
    fn acks_are_the_first_group_of_each_matching_line() {
        let p: Pattern = r"^ACK (\d+)$".parse().unwrap();
        assert_eq!(
            p.ids("ACK 1\nnoise\nACK 2\nACK x\n ACK 3\nACK 4"),
            ["1", "2", "4"]
        );
        let whole: Pattern = r"\d+".parse().unwrap();
        assert_eq!(whole.ids("a 7 b\nnone\n12"), ["7", "12"]);
    }

    #[test]
    fn reports_come_from_stdout_lines_or_probe_marks() {
        #[derive(Deserialize)]
        struct Wrap {
            ack: Reports,
        }
        let read = |text: &str| {
            toml::from_str::<Wrap>(text)
                .map(|w| w.ack)
                .map_err(|e| e.message().to_string())
        };
        let mark = |line: &str| Mark::parse(line, std::time::Duration::ZERO);
        let marks = [mark("ack 3"), mark("unit 4"), mark("ack"), mark("ack 5")];
        let stdout = read(r#"ack = '^DONE (\d+)$'"#).unwrap();
        assert_eq!(stdout.ids("DONE 1\nDONE 2\n", &marks), ["1", "2"]);
        let probe = read(r#"ack = { probe = "ack" }"#).unwrap();
        assert_eq!(probe.ids("DONE 1\n", &marks), ["3", "5"]);
        assert_eq!(probe.to_string(), "`ack ID` probe marks");
        let bad = read(r#"ack = { probe = "two words" }"#).unwrap_err();
        assert!(bad.contains("not a mark name"), "{bad}");
        let neither = read(r#"ack = { pattern = "x" }"#).unwrap_err();
        assert!(neither.contains(", a probe mark name"), "{neither}");
    }

    #[test]
    fn survivors_read_lines_json_or_a_command() {
        let s = survivors(r#"survivors = { file = "store.log", pattern = '^(\d+) ' }"#).unwrap();
        assert_eq!(s.source, SurvivorSource::File("store.log".parse().unwrap()));
        assert_eq!(s.read.ids("1 a\n2 b\n3").unwrap(), ["1", "2"]);

        let s = survivors(r#"survivors = { file = "ckpt.json", json = "/done" }"#).unwrap();
        assert_eq!(
            s.read
                .ids(r#"{"status": "x", "done": [1, "2", 30]}"#)
                .unwrap(),
            ["1", "2", "30"]
        );
        assert_eq!(
            s.read.ids(r#"{"status": "x", "done": [1, 2"#).unwrap_err(),
            "not valid JSON: EOF while parsing a list at line 1 column 29"
        );
        assert_eq!(
            s.read.ids(r#"{"status": "x"}"#).unwrap_err(),
            "no `/done` in the JSON document"
        );

        let s = survivors(r#"survivors = { command = ["verify", "{work}"] }"#).unwrap();
        assert!(matches!(s.source, SurvivorSource::Command(ref c) if c.len() == 2));
        assert_eq!(s.read.ids("5\n\n6\n").unwrap(), ["5", "6"]);
    }

    #[test]
    fn inconsistent_survivors_are_refused_with_a_reason() {
        let both = survivors(r#"survivors = { file = "a", command = ["b"] }"#).unwrap_err();
        assert!(both.contains("exactly one of `file`"), "{both}");
        let json_cmd = survivors(r#"survivors = { command = ["b"], json = "/x" }"#).unwrap_err();
        assert_eq!(json_cmd, "`json` reads a file: use it with `file`");
        let pointer = survivors(r#"survivors = { file = "a", json = "done" }"#).unwrap_err();
        assert!(pointer.contains("not a JSON pointer"), "{pointer}");
        let regex = survivors(r#"survivors = { file = "a", pattern = "(" }"#).unwrap_err();
        assert!(regex.contains("not a valid regular expression"), "{regex}");
    }
}
