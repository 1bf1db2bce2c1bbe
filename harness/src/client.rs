//! The built-in load clients as written: `http = { … }` and `tcp = { … }`, the two kinds of
//! load killpoint itself sends to a server once it is ready. Plain data, checked when read;
//! `os::load` runs them and records a [`History`](crate::history::History).
//!
//! ```toml
//! http = { url = "http://127.0.0.1:{port}/items", method = "POST", requests = 200, concurrency = 8, body_bytes = 4096 }
//! tcp = { port = "{port}", send = "PUT {id}\n", requests = 50, concurrency = 4 }
//! ```
//!
//! Traffic goes to loopback only: a url whose host is not `127.0.0.1`, `localhost` or
//! `[::1]` is refused when the scenario is read. `{port}` stays as text until the case
//! knows its port ([`HttpClientSpec::url`], [`HttpClientSpec::target`],
//! [`TcpClientSpec::port`]).

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// The most requests one client makes in a case: a load client is bounded.
pub const MAX_REQUESTS: u32 = 100_000;

/// The largest request body: 64 MiB.
pub const MAX_BODY_BYTES: u64 = 64 << 20;

/// How long one request may take, connect to last byte, unless the spec says.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// The header the HTTP client adds to every request: the request's id in the history, so
/// a server can log which request it acknowledged.
pub const REQUEST_ID_HEADER: &str = "X-Killpoint-Request";

/// The placeholder for the port the case's target listens on.
pub const PORT_PLACEHOLDER: &str = "{port}";

/// The bytes every request body is made of, repeated: printable, so a server's log of a
/// torn body reads, and position-dependent, so a server can check every byte.
pub const BODY_ALPHABET: &[u8; 64] =
    b"0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ-_";

/// The body of every request of a client with `body_bytes = len`: byte `i` is
/// `BODY_ALPHABET[i % 64]`. In Python: `(ALPHABET * (len // 64 + 1))[:len]`.
pub fn body(len: u64) -> Vec<u8> {
    (0..len).map(|i| BODY_ALPHABET[(i % 64) as usize]).collect()
}

/// One built-in client: the value of a `[[client]]` entry's `http` or `tcp` key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BuiltInClient {
    Http(HttpClientSpec),
    Tcp(TcpClientSpec),
}

impl BuiltInClient {
    /// The same client, keeping the start of each response body in its history.
    pub fn keeping_bodies(mut self) -> BuiltInClient {
        match &mut self {
            BuiltInClient::Http(spec) => spec.keep_body = true,
            BuiltInClient::Tcp(spec) => spec.keep_body = true,
        }
        self
    }

    /// How many requests it makes.
    pub fn requests(&self) -> u32 {
        match self {
            BuiltInClient::Http(spec) => spec.requests,
            BuiltInClient::Tcp(spec) => spec.requests,
        }
    }
}

/// Where a request goes on loopback.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoopbackHost {
    /// `127.0.0.1`.
    V4,
    /// `localhost`: connected to as 127.0.0.1, named `localhost` in the Host header.
    Localhost,
    /// `[::1]`.
    V6,
}

impl LoopbackHost {
    pub fn ip(self) -> std::net::IpAddr {
        match self {
            LoopbackHost::V4 | LoopbackHost::Localhost => std::net::Ipv4Addr::LOCALHOST.into(),
            LoopbackHost::V6 => std::net::Ipv6Addr::LOCALHOST.into(),
        }
    }

    /// As the url writes it.
    pub fn as_str(self) -> &'static str {
        match self {
            LoopbackHost::V4 => "127.0.0.1",
            LoopbackHost::Localhost => "localhost",
            LoopbackHost::V6 => "[::1]",
        }
    }
}

/// The port of a url or a `tcp` client: the target's (`{port}`) or a fixed one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PortSpec {
    Target,
    Fixed(u16),
}

impl PortSpec {
    /// The port, `{port}` filled with `target`.
    pub fn resolve(self, target: u16) -> u16 {
        match self {
            PortSpec::Target => target,
            PortSpec::Fixed(port) => port,
        }
    }
}

/// A url, `{port}` filled in: what a request connects to and asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpTarget {
    pub host: LoopbackHost,
    pub port: u16,
    /// The origin form: `/items?x=1` (`/` when the url has no path).
    pub path_and_query: String,
}

impl HttpTarget {
    pub fn addr(&self) -> std::net::SocketAddr {
        (self.host.ip(), self.port).into()
    }

    /// The Host header: `127.0.0.1:8080`.
    pub fn authority(&self) -> String {
        format!("{}:{}", self.host.as_str(), self.port)
    }
}

/// A checked url: `http://`, a loopback host, a port or `{port}`, a path.
#[derive(Debug, Clone, PartialEq, Eq)]
struct LoopbackUrl {
    host: LoopbackHost,
    port: PortSpec,
    path_and_query: String,
}

fn parse_url(url: &str) -> Result<LoopbackUrl, String> {
    let example = "write e.g. \"http://127.0.0.1:{port}/items\"";
    let Some(rest) = url.strip_prefix("http://") else {
        return Err(match url.split_once("://") {
            Some((scheme, _)) => format!(
                "`{url}`: the built-in client speaks plain HTTP/1.1, not {scheme}: {example}"
            ),
            None => format!("`{url}` is not an http url: {example}"),
        });
    };
    let split = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, path) = rest.split_at(split);
    let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
        let (inside, after) = v6
            .split_once(']')
            .ok_or_else(|| format!("`{url}`: `[` without `]` in the host"))?;
        (&authority[..inside.len() + 2], after.strip_prefix(':'))
    } else {
        match authority.split_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (authority, None),
        }
    };
    let host = match host.to_ascii_lowercase().as_str() {
        "127.0.0.1" => LoopbackHost::V4,
        "localhost" => LoopbackHost::Localhost,
        "[::1]" => LoopbackHost::V6,
        _ => {
            return Err(format!(
                "`{url}` goes to `{host}`: traffic goes only to loopback, so the host is 127.0.0.1, localhost or [::1]: {example}"
            ));
        }
    };
    let port = match port {
        None => PortSpec::Fixed(80),
        Some(PORT_PLACEHOLDER) => PortSpec::Target,
        Some(text) => match text.parse::<u16>() {
            Ok(port) if port > 0 => PortSpec::Fixed(port),
            _ => {
                return Err(format!(
                    "`{url}`: `{text}` is not a port: a number from 1 to 65535, or `{{port}}` for the target's"
                ));
            }
        },
    };
    let path_and_query = if path.is_empty() {
        "/".to_string()
    } else if path.starts_with('?') {
        format!("/{path}")
    } else {
        path.to_string()
    };
    if let Some(bad) = path_and_query
        .chars()
        .find(|c| !c.is_ascii_graphic() || *c == '#')
    {
        return Err(format!(
            "`{url}`: {bad:?} cannot be in a request's path: percent-encode it (a `#` fragment is never sent)"
        ));
    }
    if path_and_query.parse::<http::uri::PathAndQuery>().is_err() {
        return Err(format!(
            "`{url}`: `{path_and_query}` is not a request path: percent-encode what is not a letter, digit or /?=&-._~"
        ));
    }
    Ok(LoopbackUrl {
        host,
        port,
        path_and_query,
    })
}

/// `http = { … }`: HTTP/1.1 requests, `requests` of them over `concurrency` connections at
/// once. With `keep_alive` a connection carries one request after another until it breaks
/// or the server closes it, then its worker opens another.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "RawHttpClientSpec", into = "RawHttpClientSpec")]
pub struct HttpClientSpec {
    /// As written, `{port}` included: fill it with [`HttpClientSpec::url`].
    pub url: String,
    /// `GET` unless written; case-sensitive.
    pub method: String,
    pub requests: u32,
    pub concurrency: u32,
    /// The length of every request body ([`body`]); 0: none.
    pub body_bytes: u64,
    /// Sent with every request, after the client's own (Host, Content-Length,
    /// [`REQUEST_ID_HEADER`]); a Host here replaces the client's.
    pub headers: BTreeMap<String, String>,
    /// Response headers recorded in each request's record (`X-Id` unless written).
    pub capture: Vec<String>,
    /// For one request, from its start (connecting, on a new connection) to its last byte.
    pub timeout: Duration,
    pub keep_alive: bool,
    /// Keep the start of each response body ([`crate::history::BODY_KEPT`] bytes) in its
    /// record. Not a key of its own: set when the scenario's acknowledgements are read
    /// from response bodies (`ack = { response_body = … }`).
    pub keep_body: bool,
}

impl HttpClientSpec {
    /// A client of `requests` GETs of `url`, one at a time, with every other key at its
    /// default; `Err` says why the url is refused.
    pub fn get(url: &str, requests: u32) -> Result<HttpClientSpec, String> {
        HttpClientSpec::try_from(RawHttpClientSpec {
            url: url.to_string(),
            requests,
            ..RawHttpClientSpec::default()
        })
    }

    /// The url with `{port}` filled: `http://127.0.0.1:8080/items`.
    pub fn url(&self, port: u16) -> String {
        self.url.replace(PORT_PLACEHOLDER, &port.to_string())
    }

    /// Whether the url names the target's port (`{port}`) rather than a fixed one.
    pub fn uses_target_port(&self) -> bool {
        parse_url(&self.url).is_ok_and(|url| url.port == PortSpec::Target)
    }

    /// Where the requests go when the target listens on `port`. `Err` only for a url
    /// changed after the spec was checked to one that would have been refused.
    pub fn target(&self, port: u16) -> Result<HttpTarget, String> {
        let url = parse_url(&self.url)?;
        Ok(HttpTarget {
            host: url.host,
            port: url.port.resolve(port),
            path_and_query: url.path_and_query,
        })
    }

    /// What a report calls its requests: `POST /items`.
    pub fn label(&self) -> String {
        match parse_url(&self.url) {
            Ok(url) => format!("{} {}", self.method, url.path_and_query),
            Err(_) => format!("{} {}", self.method, self.url),
        }
    }

    /// The spec again, every key given (for the builder and tests: change a field, then
    /// check it again with `HttpClientSpec::try_from`).
    pub fn raw(&self) -> RawHttpClientSpec {
        RawHttpClientSpec::from(self.clone())
    }
}

/// `tcp = { … }`: raw TCP requests to 127.0.0.1, each on a connection of its own: connect, send
/// `send` (with `{id}` replaced by the request's id), optionally shut the writing side,
/// read until the server closes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "RawTcpClientSpec", into = "RawTcpClientSpec")]
pub struct TcpClientSpec {
    pub port: PortSpec,
    /// What each request sends; `{id}` becomes its id.
    pub send: String,
    pub requests: u32,
    pub concurrency: u32,
    /// Shut the connection's writing side once sent, for servers that read to the end.
    pub half_close: bool,
    pub timeout: Duration,
    /// Keep the start of each response, as [`HttpClientSpec::keep_body`].
    pub keep_body: bool,
}

impl TcpClientSpec {
    /// The bytes request `id` sends.
    pub fn message(&self, id: u32) -> Vec<u8> {
        self.send.replace("{id}", &id.to_string()).into_bytes()
    }

    pub fn label(&self) -> String {
        match self.port {
            PortSpec::Target => "tcp {port}".to_string(),
            PortSpec::Fixed(port) => format!("tcp {port}"),
        }
    }
}

/// An `http` table as written.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawHttpClientSpec {
    pub url: String,
    #[serde(default = "default_method")]
    pub method: String,
    pub requests: u32,
    #[serde(default = "one")]
    pub concurrency: u32,
    #[serde(default)]
    pub body_bytes: u64,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub headers: BTreeMap<String, String>,
    #[serde(default = "default_capture")]
    pub capture: Vec<String>,
    #[serde(default = "default_timeout", with = "crate::values::duration")]
    pub timeout: Duration,
    #[serde(default = "yes")]
    pub keep_alive: bool,
}

impl Default for RawHttpClientSpec {
    fn default() -> Self {
        RawHttpClientSpec {
            url: String::new(),
            method: default_method(),
            requests: 1,
            concurrency: 1,
            body_bytes: 0,
            headers: BTreeMap::new(),
            capture: default_capture(),
            timeout: DEFAULT_TIMEOUT,
            keep_alive: true,
        }
    }
}

fn default_method() -> String {
    "GET".into()
}
fn one() -> u32 {
    1
}
fn yes() -> bool {
    true
}
fn default_capture() -> Vec<String> {
    vec!["X-Id".into()]
}
fn default_timeout() -> Duration {
    DEFAULT_TIMEOUT
}

/// `requests` and `concurrency`, checked the same for both kinds.
fn check_counts(requests: u32, concurrency: u32) -> Result<(), String> {
    if requests == 0 {
        return Err("`requests = 0`: a client makes at least 1 request".into());
    }
    if requests > MAX_REQUESTS {
        return Err(format!(
            "`requests = {requests}` is more than a case's client makes: at most {MAX_REQUESTS}"
        ));
    }
    if concurrency == 0 {
        return Err("`concurrency = 0`: at least 1 request is in flight".into());
    }
    if concurrency > requests {
        return Err(format!(
            "`concurrency = {concurrency}` is more than `requests = {requests}`: at most one connection per request"
        ));
    }
    Ok(())
}

fn check_timeout(timeout: Duration) -> Result<(), String> {
    if timeout.is_zero() {
        return Err("`timeout = \"0ms\"`: a request needs some time, e.g. \"2s\"".into());
    }
    Ok(())
}

/// The headers the client sets itself, which a spec may not set.
const OWN_HEADERS: [&str; 4] = [
    "content-length",
    "transfer-encoding",
    "connection",
    "x-killpoint-request",
];

impl TryFrom<RawHttpClientSpec> for HttpClientSpec {
    type Error = String;

    fn try_from(raw: RawHttpClientSpec) -> Result<Self, String> {
        parse_url(&raw.url)?;
        let method = http::Method::from_bytes(raw.method.as_bytes())
            .map_err(|_| format!("`method = {:?}` is not an HTTP method", raw.method))?;
        if raw.method.bytes().any(|b| b.is_ascii_lowercase()) {
            return Err(format!(
                "`method = {:?}`: methods are case-sensitive, write \"{}\"",
                raw.method,
                raw.method.to_ascii_uppercase()
            ));
        }
        check_counts(raw.requests, raw.concurrency)?;
        check_timeout(raw.timeout)?;
        if raw.body_bytes > MAX_BODY_BYTES {
            return Err(format!(
                "`body_bytes = {}` is more than a request body of the built-in client: at most {MAX_BODY_BYTES} (64 MiB)",
                raw.body_bytes
            ));
        }
        if raw.body_bytes > 0 && (method == http::Method::GET || method == http::Method::HEAD) {
            return Err(format!(
                "`body_bytes = {}` with `method = \"{method}\"`: a {method} request has no body; send it with POST or PUT",
                raw.body_bytes
            ));
        }
        for (name, value) in &raw.headers {
            if http::HeaderName::from_bytes(name.as_bytes()).is_err() {
                return Err(format!("`headers`: `{name}` is not a header name"));
            }
            if OWN_HEADERS.contains(&name.to_ascii_lowercase().as_str()) {
                return Err(format!(
                    "`headers`: the client sets `{name}` itself (from `body_bytes` and `keep_alive`); drop it"
                ));
            }
            if http::HeaderValue::from_str(value).is_err() {
                return Err(format!(
                    "`headers`: the value of `{name}` is not a header value (visible ASCII, spaces and tabs)"
                ));
            }
        }
        for name in &raw.capture {
            if http::HeaderName::from_bytes(name.as_bytes()).is_err() {
                return Err(format!("`capture`: `{name}` is not a header name"));
            }
        }
        Ok(HttpClientSpec {
            url: raw.url,
            method: raw.method,
            requests: raw.requests,
            concurrency: raw.concurrency,
            body_bytes: raw.body_bytes,
            headers: raw.headers,
            capture: raw.capture,
            timeout: raw.timeout,
            keep_alive: raw.keep_alive,
            keep_body: false,
        })
    }
}

impl From<HttpClientSpec> for RawHttpClientSpec {
    fn from(spec: HttpClientSpec) -> RawHttpClientSpec {
        RawHttpClientSpec {
            url: spec.url,
            method: spec.method,
            requests: spec.requests,
            concurrency: spec.concurrency,
            body_bytes: spec.body_bytes,
            headers: spec.headers,
            capture: spec.capture,
            timeout: spec.timeout,
            keep_alive: spec.keep_alive,
        }
    }
}

/// A `tcp` table as written.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTcpClientSpec {
    pub port: RawPort,
    pub send: String,
    pub requests: u32,
    #[serde(default = "one")]
    pub concurrency: u32,
    #[serde(default)]
    pub half_close: bool,
    #[serde(default = "default_timeout", with = "crate::values::duration")]
    pub timeout: Duration,
}

/// A port as written: a number or `"{port}"`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum RawPort {
    Number(i64),
    Text(String),
}

impl TryFrom<RawPort> for PortSpec {
    type Error = String;

    fn try_from(raw: RawPort) -> Result<Self, String> {
        match raw {
            RawPort::Text(text) if text == PORT_PLACEHOLDER => Ok(PortSpec::Target),
            RawPort::Number(n) if (1..=65535).contains(&n) => Ok(PortSpec::Fixed(n as u16)),
            RawPort::Number(n) => Err(format!(
                "`port = {n}` is not a port: a number from 1 to 65535, or \"{{port}}\" for the target's"
            )),
            RawPort::Text(text) => Err(format!(
                "`port = {text:?}` is not a port: a number from 1 to 65535, or \"{{port}}\" for the target's"
            )),
        }
    }
}

impl From<PortSpec> for RawPort {
    fn from(port: PortSpec) -> RawPort {
        match port {
            PortSpec::Target => RawPort::Text(PORT_PLACEHOLDER.into()),
            PortSpec::Fixed(port) => RawPort::Number(port.into()),
        }
    }
}

impl TryFrom<RawTcpClientSpec> for TcpClientSpec {
    type Error = String;

    fn try_from(raw: RawTcpClientSpec) -> Result<Self, String> {
        let port = PortSpec::try_from(raw.port)?;
        check_counts(raw.requests, raw.concurrency)?;
        check_timeout(raw.timeout)?;
        Ok(TcpClientSpec {
            port,
            send: raw.send,
            requests: raw.requests,
            concurrency: raw.concurrency,
            half_close: raw.half_close,
            timeout: raw.timeout,
            keep_body: false,
        })
    }
}

impl From<TcpClientSpec> for RawTcpClientSpec {
    fn from(spec: TcpClientSpec) -> RawTcpClientSpec {
        RawTcpClientSpec {
            port: spec.port.into(),
            send: spec.send,
            requests: spec.requests,
            concurrency: spec.concurrency,
            half_close: spec.half_close,
            timeout: spec.timeout,
        }
    }
}

impl fmt::Display for PortSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PortSpec::Target => f.write_str(PORT_PLACEHOLDER),
            PortSpec::Fixed(port) => write!(f, "{port}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn http(text: &str) -> Result<HttpClientSpec, String> {
        #[derive(Deserialize)]
        struct Entry {
            http: HttpClientSpec,
        }
        toml::from_str::<Entry>(&format!("http = {{ {text} }}"))
            .map(|e| e.http)
            .map_err(|e| e.message().to_string())
    }

    fn tcp(text: &str) -> Result<TcpClientSpec, String> {
        #[derive(Deserialize)]
        struct Entry {
            tcp: TcpClientSpec,
        }
        toml::from_str::<Entry>(&format!("tcp = {{ {text} }}"))
            .map(|e| e.tcp)
            .map_err(|e| e.message().to_string())
    }

    #[test]
    fn an_http_client_reads_with_its_defaults() {
        let spec = http(r#"url = "http://127.0.0.1:{port}/items", requests = 200"#).unwrap();
        assert_eq!(spec.method, "GET");
        assert_eq!(spec.concurrency, 1);
        assert_eq!(spec.body_bytes, 0);
        assert!(spec.headers.is_empty());
        assert_eq!(spec.capture, ["X-Id"]);
        assert_eq!(spec.timeout, Duration::from_secs(10));
        assert!(spec.keep_alive);
        assert!(spec.uses_target_port());
        assert_eq!(spec.url(8080), "http://127.0.0.1:8080/items");
        assert_eq!(
            spec.target(8080).unwrap(),
            HttpTarget {
                host: LoopbackHost::V4,
                port: 8080,
                path_and_query: "/items".into()
            }
        );
        assert_eq!(spec.label(), "GET /items");
    }

    #[test]
    fn an_http_client_reads_every_key() {
        let spec = http(
            r#"url = "http://localhost:9000?q=1", method = "POST", requests = 200, concurrency = 8,
               body_bytes = 4096, headers = { "Content-Type" = "application/json" },
               capture = ["Location", "X-Id"], timeout = "250ms", keep_alive = false"#,
        )
        .unwrap();
        assert_eq!(
            (spec.requests, spec.concurrency, spec.body_bytes),
            (200, 8, 4096)
        );
        assert_eq!(spec.headers["Content-Type"], "application/json");
        assert_eq!(spec.capture, ["Location", "X-Id"]);
        assert_eq!(spec.timeout, Duration::from_millis(250));
        assert!(!spec.keep_alive);
        assert!(!spec.uses_target_port());
        let target = spec.target(1).unwrap();
        assert_eq!(target.authority(), "localhost:9000");
        assert_eq!(target.path_and_query, "/?q=1");
        assert_eq!(target.addr(), "127.0.0.1:9000".parse().unwrap());
        let v6 = http(r#"url = "http://[::1]:{port}", requests = 1"#).unwrap();
        assert_eq!(v6.target(7).unwrap().addr(), "[::1]:7".parse().unwrap());
        assert_eq!(v6.target(7).unwrap().authority(), "[::1]:7");
        // Written back as read.
        let again = HttpClientSpec::try_from(spec.raw()).unwrap();
        assert_eq!(again, spec);
    }

    #[test]
    fn a_url_off_loopback_is_refused_with_why() {
        let cases = [
            (
                r#"url = "http://example.com/items", requests = 1"#,
                "`http://example.com/items` goes to `example.com`: traffic goes only to loopback, so the host is 127.0.0.1, localhost or [::1]: write e.g. \"http://127.0.0.1:{port}/items\"",
            ),
            (
                r#"url = "http://10.0.0.1:{port}/", requests = 1"#,
                "`http://10.0.0.1:{port}/` goes to `10.0.0.1`: traffic goes only to loopback, so the host is 127.0.0.1, localhost or [::1]: write e.g. \"http://127.0.0.1:{port}/items\"",
            ),
            (
                r#"url = "https://127.0.0.1:{port}/", requests = 1"#,
                "`https://127.0.0.1:{port}/`: the built-in client speaks plain HTTP/1.1, not https: write e.g. \"http://127.0.0.1:{port}/items\"",
            ),
            (
                r#"url = "127.0.0.1:8080", requests = 1"#,
                "`127.0.0.1:8080` is not an http url: write e.g. \"http://127.0.0.1:{port}/items\"",
            ),
            (
                r#"url = "http://127.0.0.1:{prot}/", requests = 1"#,
                "`http://127.0.0.1:{prot}/`: `{prot}` is not a port: a number from 1 to 65535, or `{port}` for the target's",
            ),
            (
                r#"url = "http://127.0.0.1:{port}/a b", requests = 1"#,
                "`http://127.0.0.1:{port}/a b`: ' ' cannot be in a request's path: percent-encode it (a `#` fragment is never sent)",
            ),
        ];
        for (text, message) in cases {
            assert_eq!(http(text).unwrap_err(), message, "{text}");
        }
    }

    #[test]
    fn counts_methods_and_headers_are_checked() {
        let url = r#"url = "http://127.0.0.1:{port}/""#;
        let cases = [
            (
                "requests = 0".to_string(),
                "`requests = 0`: a client makes at least 1 request",
            ),
            (
                "requests = 100001".into(),
                "`requests = 100001` is more than a case's client makes: at most 100000",
            ),
            (
                "requests = 4, concurrency = 0".into(),
                "`concurrency = 0`: at least 1 request is in flight",
            ),
            (
                "requests = 4, concurrency = 5".into(),
                "`concurrency = 5` is more than `requests = 4`: at most one connection per request",
            ),
            (
                r#"requests = 1, method = "post""#.into(),
                "`method = \"post\"`: methods are case-sensitive, write \"POST\"",
            ),
            (
                r#"requests = 1, method = "GET /""#.into(),
                "`method = \"GET /\"` is not an HTTP method",
            ),
            (
                "requests = 1, body_bytes = 10".into(),
                "`body_bytes = 10` with `method = \"GET\"`: a GET request has no body; send it with POST or PUT",
            ),
            (
                r#"requests = 1, method = "PUT", body_bytes = 67108865"#.into(),
                "`body_bytes = 67108865` is more than a request body of the built-in client: at most 67108864 (64 MiB)",
            ),
            (
                r#"requests = 1, headers = { "Content-Length" = "3" }"#.into(),
                "`headers`: the client sets `Content-Length` itself (from `body_bytes` and `keep_alive`); drop it",
            ),
            (
                r#"requests = 1, headers = { "a b" = "3" }"#.into(),
                "`headers`: `a b` is not a header name",
            ),
            (
                r#"requests = 1, headers = { "X-A" = "a\nb" }"#.into(),
                "`headers`: the value of `X-A` is not a header value (visible ASCII, spaces and tabs)",
            ),
            (
                r#"requests = 1, capture = ["X:Id"]"#.into(),
                "`capture`: `X:Id` is not a header name",
            ),
            (
                r#"requests = 1, timeout = "0ms""#.into(),
                "`timeout = \"0ms\"`: a request needs some time, e.g. \"2s\"",
            ),
        ];
        for (keys, message) in cases {
            assert_eq!(
                http(&format!("{url}, {keys}")).unwrap_err(),
                message,
                "{keys}"
            );
        }
        assert_eq!(
            http(r#"url = "http://127.0.0.1/", requests = 1, concurency = 2"#).unwrap_err(),
            "unknown field `concurency`, expected one of `url`, `method`, `requests`, `concurrency`, `body_bytes`, `headers`, `capture`, `timeout`, `keep_alive`"
        );
        assert_eq!(
            http(r#"url = "http://127.0.0.1/""#).unwrap_err(),
            "missing field `requests`"
        );
    }

    #[test]
    fn a_tcp_client_reads_and_fills_its_message() {
        let spec = tcp(r#"port = "{port}", send = "PUT {id}\n", requests = 3"#).unwrap();
        assert_eq!(spec.port, PortSpec::Target);
        assert_eq!(spec.port.resolve(4000), 4000);
        assert_eq!(spec.concurrency, 1);
        assert!(!spec.half_close);
        assert_eq!(spec.timeout, DEFAULT_TIMEOUT);
        assert_eq!(spec.message(17), b"PUT 17\n");
        assert_eq!(spec.label(), "tcp {port}");
        let fixed = tcp(r#"port = 7000, send = "", requests = 2, concurrency = 2, half_close = true, timeout = "1s""#)
            .unwrap();
        assert_eq!(fixed.port, PortSpec::Fixed(7000));
        assert_eq!(fixed.label(), "tcp 7000");
        for (keys, message) in [
            (
                r#"port = 0, send = "", requests = 1"#,
                "`port = 0` is not a port: a number from 1 to 65535, or \"{port}\" for the target's",
            ),
            (
                r#"port = "8080", send = "", requests = 1"#,
                "`port = \"8080\"` is not a port: a number from 1 to 65535, or \"{port}\" for the target's",
            ),
            (
                r#"port = 1, send = "", requests = 2, concurrency = 3"#,
                "`concurrency = 3` is more than `requests = 2`: at most one connection per request",
            ),
        ] {
            assert_eq!(tcp(keys).unwrap_err(), message, "{keys}");
        }
    }

    #[test]
    fn a_client_entry_is_one_kind() {
        #[derive(Deserialize)]
        struct Entry {
            #[serde(flatten)]
            client: BuiltInClient,
        }
        let entry: Entry =
            toml::from_str(r#"http = { url = "http://127.0.0.1:{port}/", requests = 5 }"#).unwrap();
        assert!(matches!(entry.client, BuiltInClient::Http(_)));
        assert_eq!(entry.client.requests(), 5);
    }

    #[test]
    fn the_body_is_the_alphabet_repeated() {
        assert_eq!(body(0), b"");
        assert_eq!(body(3), b"012");
        let long = body(130);
        assert_eq!(&long[62..66], b"-_01");
        assert_eq!(long[129], b'1');
    }
}
