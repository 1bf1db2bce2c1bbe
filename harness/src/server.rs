//! What a scenario says about a server: when it is `ready`, how a run that no strike
//! reached `stop`s, and the `[[client]]`s started once it is ready.
//!
//! A server never ends by itself, and what it promises is about the clients it has when
//! it is stopped. So a server scenario names the moment it can take clients (a line on
//! stdout, a port accepting, a file, a probe mark), the clients that load it, and the
//! stop a deploy would send (SIGTERM once the clients are done, or a while after ready):
//! the census is then a graceful stop after the clients finished, and every case is that
//! run with a strike somewhere in it.

use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Serialize, Serializer};

use crate::client::BuiltInClient;
use crate::expect::Pattern;
use crate::values::{self, Arg, Signal, WorkPath};

/// `ready = { stdout = "REGEX" }` (or `stderr`, `port`, `file`, `probe`), with an
/// optional `timeout`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadySpec {
    pub on: ReadyOn,
    /// How long the target may take to be ready; `None`: the scenario's `timeout`.
    pub timeout: Option<Duration>,
}

/// What tells that the target can take clients.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReadyOn {
    /// A line of stdout matches.
    Stdout(Pattern),
    /// A line of stderr matches.
    Stderr(Pattern),
    /// A TCP connect to this loopback port succeeds.
    Port(Port),
    /// This file exists in the sandbox.
    File(WorkPath),
    /// The target made a probe mark of this name.
    Probe(String),
}

/// A loopback port: the case's own (`"{port}"`) or a fixed one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Port {
    /// The free port the harness picked for the case: what `{port}` stands for.
    Case,
    Fixed(u16),
}

impl Port {
    /// The port number, given the case's.
    pub fn number(self, case: Option<u16>) -> Option<u16> {
        match self {
            Port::Case => case,
            Port::Fixed(n) => Some(n),
        }
    }
}

impl fmt::Display for ReadyOn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ReadyOn::Stdout(p) => write!(f, "a line of stdout matching `{}`", p.as_str()),
            ReadyOn::Stderr(p) => write!(f, "a line of stderr matching `{}`", p.as_str()),
            ReadyOn::Port(Port::Case) => f.write_str("a TCP connect to 127.0.0.1:{port}"),
            ReadyOn::Port(Port::Fixed(n)) => write!(f, "a TCP connect to 127.0.0.1:{n}"),
            ReadyOn::File(path) => write!(f, "the file {path}"),
            ReadyOn::Probe(name) => write!(f, "the probe mark `{name}`"),
        }
    }
}

const READY_KEYS: &str = "one of `stdout`, `stderr` (a regex), `port` (\"{port}\" or a number), `file` (a sandbox path), `probe` (a mark name), and optionally `timeout`";

impl<'de> Deserialize<'de> for ReadySpec {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<ReadySpec, D::Error> {
        struct Visitor;
        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = ReadySpec;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                write!(
                    f,
                    "a table of {READY_KEYS}, e.g. {{ stdout = '^READY ', timeout = \"10s\" }}"
                )
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<ReadySpec, A::Error> {
                use serde::de::Error;
                let mut on = Vec::new();
                let mut timeout = None;
                while let Some(key) = map.next_key::<String>()? {
                    match key.as_str() {
                        "stdout" => on.push(ReadyOn::Stdout(map.next_value()?)),
                        "stderr" => on.push(ReadyOn::Stderr(map.next_value()?)),
                        "port" => on.push(ReadyOn::Port(map.next_value::<PortValue>()?.0)),
                        "file" => on.push(ReadyOn::File(map.next_value()?)),
                        "probe" => {
                            let name: String = map.next_value()?;
                            if name.is_empty() || name.contains(char::is_whitespace) {
                                return Err(A::Error::custom(format!(
                                    "`probe = \"{name}\"` is not a mark name: one word, as the target writes it"
                                )));
                            }
                            on.push(ReadyOn::Probe(name));
                        }
                        "timeout" => {
                            let text: String = map.next_value()?;
                            timeout =
                                Some(values::parse_duration(&text).map_err(A::Error::custom)?);
                        }
                        other => {
                            return Err(A::Error::custom(format!(
                                "unknown key `{other}` in `ready`: expected {READY_KEYS}"
                            )));
                        }
                    }
                }
                match on.len() {
                    1 => Ok(ReadySpec {
                        on: on.remove(0),
                        timeout,
                    }),
                    0 => Err(A::Error::custom(format!("`ready` needs {READY_KEYS}"))),
                    _ => Err(A::Error::custom(
                        "`ready` waits for one thing: keep one of `stdout`, `stderr`, `port`, `file`, `probe`",
                    )),
                }
            }
        }
        d.deserialize_map(Visitor)
    }
}

impl Serialize for ReadySpec {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut map = s.serialize_map(None)?;
        match &self.on {
            ReadyOn::Stdout(p) => map.serialize_entry("stdout", p.as_str())?,
            ReadyOn::Stderr(p) => map.serialize_entry("stderr", p.as_str())?,
            ReadyOn::Port(Port::Case) => map.serialize_entry("port", "{port}")?,
            ReadyOn::Port(Port::Fixed(n)) => map.serialize_entry("port", n)?,
            ReadyOn::File(path) => map.serialize_entry("file", path)?,
            ReadyOn::Probe(name) => map.serialize_entry("probe", name)?,
        }
        if let Some(timeout) = self.timeout {
            map.serialize_entry("timeout", &values::format_duration(timeout))?;
        }
        map.end()
    }
}

/// A port as a file writes it: `"{port}"` or a number from 1 to 65535.
struct PortValue(Port);

impl<'de> Deserialize<'de> for PortValue {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<PortValue, D::Error> {
        struct Visitor;
        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = PortValue;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("\"{port}\" (the case's own free port) or a port number")
            }
            fn visit_i64<E: serde::de::Error>(self, n: i64) -> Result<PortValue, E> {
                match u16::try_from(n) {
                    Ok(n) if n > 0 => Ok(PortValue(Port::Fixed(n))),
                    _ => Err(E::custom(format!(
                        "{n} is not a port: 1 to 65535, or \"{{port}}\""
                    ))),
                }
            }
            fn visit_str<E: serde::de::Error>(self, text: &str) -> Result<PortValue, E> {
                if text == "{port}" {
                    Ok(PortValue(Port::Case))
                } else {
                    Err(E::custom(format!(
                        "`{text}` is not a port: \"{{port}}\" (the case's own free port) or a number"
                    )))
                }
            }
        }
        d.deserialize_any(Visitor)
    }
}

/// `stop = { signal = "SIGTERM", after = "clients" }`: how a run that no strike reached
/// ends.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StopSpec {
    /// The signal a deploy sends; default SIGTERM.
    #[serde(default = "sigterm")]
    pub signal: Signal,
    pub after: StopAfter,
}

fn sigterm() -> Signal {
    Signal::SIGTERM
}

/// When the stop is sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopAfter {
    /// Once every client has finished.
    Clients,
    /// This long after the target was ready (after spawn, without `ready`).
    Delay(Duration),
}

impl<'de> Deserialize<'de> for StopAfter {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<StopAfter, D::Error> {
        let text = String::deserialize(d)?;
        if text == "clients" {
            return Ok(StopAfter::Clients);
        }
        values::parse_duration(&text)
            .map(StopAfter::Delay)
            .map_err(|_| {
                serde::de::Error::custom(format!(
                    "`after = \"{text}\"`: \"clients\" (once every client has finished) or a duration from ready, e.g. \"2s\""
                ))
            })
    }
}

impl Serialize for StopAfter {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            StopAfter::Clients => s.serialize_str("clients"),
            StopAfter::Delay(d) => s.serialize_str(&values::format_duration(*d)),
        }
    }
}

/// One `[[client]]`, started once the target is ready (at spawn without `ready`): a
/// command run in the sandbox with the scenario's env (its stdout and stderr kept), or
/// killpoint's own load client, `http = {…}` or `tcp = {…}`, which records a history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "RawClient", into = "RawClient")]
pub enum ClientSpec {
    Command(Vec<Arg>),
    BuiltIn(BuiltInClient),
}

impl ClientSpec {
    /// The command of a command client.
    pub fn command(&self) -> Option<&[Arg]> {
        match self {
            ClientSpec::Command(command) => Some(command),
            ClientSpec::BuiltIn(_) => None,
        }
    }

    /// Whether it needs the run's `{port}`.
    pub fn uses_port(&self) -> bool {
        match self {
            ClientSpec::Command(command) => command.iter().any(Arg::uses_port),
            ClientSpec::BuiltIn(BuiltInClient::Http(spec)) => spec.uses_target_port(),
            ClientSpec::BuiltIn(BuiltInClient::Tcp(spec)) => {
                spec.port == crate::client::PortSpec::Target
            }
        }
    }

    /// How reports name it: the command as written, or the built-in client's label.
    pub fn shown(&self) -> String {
        match self {
            ClientSpec::Command(command) => command
                .iter()
                .map(|a| a.raw.as_str())
                .collect::<Vec<_>>()
                .join(" "),
            ClientSpec::BuiltIn(BuiltInClient::Http(spec)) => format!("http {}", spec.label()),
            ClientSpec::BuiltIn(BuiltInClient::Tcp(spec)) => spec.label(),
        }
    }
}

/// A `[[client]]` as the file writes it: one of `command`, `http`, `tcp`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawClient {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    command: Option<Vec<Arg>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    http: Option<crate::client::HttpClientSpec>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    tcp: Option<crate::client::TcpClientSpec>,
}

impl TryFrom<RawClient> for ClientSpec {
    type Error = String;

    fn try_from(raw: RawClient) -> Result<ClientSpec, String> {
        match (raw.command, raw.http, raw.tcp) {
            (Some(command), None, None) if command.is_empty() => Err(
                "the client's command is empty: e.g. [\"curl\", \"-s\", \"http://127.0.0.1:{port}/\"]"
                    .into(),
            ),
            (Some(command), None, None) => Ok(ClientSpec::Command(command)),
            (None, Some(http), None) => Ok(ClientSpec::BuiltIn(BuiltInClient::Http(http))),
            (None, None, Some(tcp)) => Ok(ClientSpec::BuiltIn(BuiltInClient::Tcp(tcp))),
            (None, None, None) => Err(
                "a client is a `command = [...]`, or killpoint's own `http = { url = … }` or `tcp = { port = … }`"
                    .into(),
            ),
            _ => Err("a client is one of `command`, `http`, `tcp`: keep one".into()),
        }
    }
}

impl From<ClientSpec> for RawClient {
    fn from(client: ClientSpec) -> RawClient {
        match client {
            ClientSpec::Command(command) => RawClient {
                command: Some(command),
                ..RawClient::default()
            },
            ClientSpec::BuiltIn(BuiltInClient::Http(http)) => RawClient {
                http: Some(http),
                ..RawClient::default()
            },
            ClientSpec::BuiltIn(BuiltInClient::Tcp(tcp)) => RawClient {
                tcp: Some(tcp),
                ..RawClient::default()
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Deserialize, Serialize)]
    struct Keys {
        ready: Option<ReadySpec>,
        stop: Option<StopSpec>,
    }

    fn parse(text: &str) -> Result<Keys, String> {
        toml::from_str::<Keys>(text).map_err(|e| e.message().to_string())
    }

    #[test]
    fn ready_waits_for_one_thing_and_stop_for_clients_or_a_time() {
        let k = parse(
            "ready = { stdout = '^READY ', timeout = \"5s\" }\nstop = { after = \"clients\" }",
        )
        .unwrap();
        let ready = k.ready.unwrap();
        assert!(matches!(&ready.on, ReadyOn::Stdout(p) if p.as_str() == "^READY "));
        assert_eq!(ready.timeout, Some(Duration::from_secs(5)));
        assert_eq!(
            k.stop.unwrap(),
            StopSpec {
                signal: Signal::SIGTERM,
                after: StopAfter::Clients
            }
        );
        let k =
            parse("ready = { port = \"{port}\" }\nstop = { signal = \"SIGINT\", after = \"2s\" }")
                .unwrap();
        assert_eq!(k.ready.as_ref().unwrap().on, ReadyOn::Port(Port::Case));
        assert_eq!(
            k.stop.as_ref().unwrap().after,
            StopAfter::Delay(Duration::from_secs(2))
        );
        // And back: what is written reads the same.
        let again = toml::to_string(&k).unwrap();
        let k2 = parse(&again).unwrap();
        assert_eq!((k2.ready, k2.stop), (k.ready, k.stop));
        let k = parse("ready = { port = 8080 }").unwrap();
        assert_eq!(k.ready.unwrap().on, ReadyOn::Port(Port::Fixed(8080)));
    }

    #[test]
    fn a_bad_ready_or_stop_says_what_is_wrong() {
        for (text, message) in [
            (
                "ready = { stdout = 'a', port = 1 }",
                "`ready` waits for one thing: keep one of `stdout`, `stderr`, `port`, `file`, `probe`",
            ),
            (
                "ready = { timeout = \"1s\" }",
                "`ready` needs one of `stdout`, `stderr` (a regex), `port` (\"{port}\" or a number), `file` (a sandbox path), `probe` (a mark name), and optionally `timeout`",
            ),
            (
                "ready = { port = 0 }",
                "0 is not a port: 1 to 65535, or \"{port}\"",
            ),
            (
                "ready = { port = \"80\" }",
                "`80` is not a port: \"{port}\" (the case's own free port) or a number",
            ),
            (
                "ready = { socket = \"x\" }",
                "unknown key `socket` in `ready`: expected one of `stdout`, `stderr` (a regex), `port` (\"{port}\" or a number), `file` (a sandbox path), `probe` (a mark name), and optionally `timeout`",
            ),
            (
                "stop = { after = \"later\" }",
                "`after = \"later\"`: \"clients\" (once every client has finished) or a duration from ready, e.g. \"2s\"",
            ),
            ("stop = { signal = \"SIGTERM\" }", "missing field `after`"),
        ] {
            assert_eq!(parse(text).unwrap_err(), message, "{text}");
        }
    }
}
