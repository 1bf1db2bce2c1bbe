//! `[expect] outputs`: the files that must be atomic, and how each is told complete.
//!
//! Most outputs are compared byte for byte with the census's (the golden). An output
//! that differs from run to run (a database, a dump that embeds a time) is judged
//! instead: `valid` names a command that accepts a complete file, `normalize` one that
//! rewrites both the golden and the case's file before they are compared.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize, Serializer};

use super::values::{Arg, WorkPath};

/// One declared output: `"out.json"`, or a table with `path` and `valid` or
/// `normalize`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutputSpec {
    pub path: WorkPath,
    pub judge: Judge,
}

/// How an output's content is told complete.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Judge {
    /// Byte-identical to the census's content.
    #[default]
    Golden,
    /// The command exits 0 on it (`{path}` names the file).
    Valid(Vec<Arg>),
    /// Identical to the census's content once both went through the command (the file
    /// on its stdin, the normalized content on its stdout).
    Normalize(Vec<Arg>),
}

impl OutputSpec {
    /// An output compared byte for byte with the golden.
    pub fn golden(path: WorkPath) -> OutputSpec {
        OutputSpec {
            path,
            judge: Judge::Golden,
        }
    }

    /// The judging command, if any: `valid` or `normalize`.
    pub fn command(&self) -> Option<&[Arg]> {
        match &self.judge {
            Judge::Golden => None,
            Judge::Valid(command) | Judge::Normalize(command) => Some(command),
        }
    }
}

impl FromStr for OutputSpec {
    type Err = String;

    fn from_str(path: &str) -> Result<OutputSpec, String> {
        Ok(OutputSpec::golden(path.parse()?))
    }
}

impl fmt::Display for OutputSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.path)
    }
}

const KEYS: &str = "`path`, and `valid` or `normalize` (a command)";

impl<'de> Deserialize<'de> for OutputSpec {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<OutputSpec, D::Error> {
        struct Visitor;
        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = OutputSpec;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                write!(
                    f,
                    "a path in the sandbox, or a table of {KEYS}, e.g. {{ path = \"dump.rdb\", valid = [\"redis-check-rdb\", \"{{path}}\"] }}"
                )
            }
            fn visit_str<E: serde::de::Error>(self, path: &str) -> Result<OutputSpec, E> {
                path.parse().map_err(E::custom)
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<OutputSpec, A::Error> {
                use serde::de::Error;
                let (mut path, mut valid, mut normalize) =
                    (None::<WorkPath>, None::<Command>, None::<Command>);
                while let Some(key) = map.next_key::<String>()? {
                    match key.as_str() {
                        "path" => path = Some(map.next_value()?),
                        "valid" => valid = Some(map.next_value()?),
                        "normalize" => normalize = Some(map.next_value()?),
                        other => {
                            return Err(A::Error::custom(format!(
                                "unknown key `{other}` in an output: expected {KEYS}"
                            )));
                        }
                    }
                }
                let path = path.ok_or_else(|| {
                    A::Error::custom("an output table needs `path`: the file in the sandbox")
                })?;
                let judge = match (valid, normalize) {
                    (Some(_), Some(_)) => {
                        return Err(A::Error::custom(
                            "an output is judged by `valid` (a command that accepts a complete file) or compared after `normalize`, not both",
                        ));
                    }
                    (Some(Command(c)), None) => Judge::Valid(c),
                    (None, Some(Command(c))) => Judge::Normalize(c),
                    (None, None) => Judge::Golden,
                };
                Ok(OutputSpec { path, judge })
            }
        }
        d.deserialize_any(Visitor)
    }
}

/// A judging command as the file writes it: not empty, `{path}` allowed.
struct Command(Vec<Arg>);

impl<'de> Deserialize<'de> for Command {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Command, D::Error> {
        use serde::de::Error;
        let raw = Vec::<String>::deserialize(d)?;
        if raw.is_empty() {
            return Err(D::Error::custom(
                "the command is empty: give the program and its arguments, e.g. [\"sqlite3\", \"{path}\", \"PRAGMA integrity_check\"]",
            ));
        }
        raw.iter()
            .map(|a| Arg::judging(a))
            .collect::<Result<_, _>>()
            .map(Command)
            .map_err(D::Error::custom)
    }
}

impl Serialize for OutputSpec {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let (key, command) = match &self.judge {
            Judge::Golden => return self.path.serialize(s),
            Judge::Valid(command) => ("valid", command),
            Judge::Normalize(command) => ("normalize", command),
        };
        let mut map = s.serialize_map(Some(2))?;
        map.serialize_entry("path", &self.path)?;
        map.serialize_entry(key, command)?;
        map.end()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::values::ArgPart;

    #[derive(Debug, Deserialize, Serialize)]
    struct Outputs {
        outputs: Vec<OutputSpec>,
    }

    fn parse(text: &str) -> Result<Vec<OutputSpec>, String> {
        toml::from_str::<Outputs>(text)
            .map(|o| o.outputs)
            .map_err(|e| e.message().to_string())
    }

    #[test]
    fn an_output_is_a_path_or_a_table_with_its_judge() {
        let outputs = parse(
            r#"outputs = ["out.json", { path = "t.db", valid = ["sqlite3", "{path}", "PRAGMA quick_check"] }, { path = "out.gz", normalize = ["gzip", "-dc"] }]"#,
        )
        .unwrap();
        assert_eq!(outputs[0], "out.json".parse().unwrap());
        assert_eq!(outputs[1].path.as_str(), "t.db");
        let Judge::Valid(valid) = &outputs[1].judge else {
            panic!("{:?}", outputs[1].judge)
        };
        assert_eq!(valid[1].parts, [ArgPart::Path]);
        assert!(matches!(&outputs[2].judge, Judge::Normalize(c) if c.len() == 2));
        // And back: the same text reads the same outputs.
        let again = toml::to_string(&Outputs {
            outputs: outputs.clone(),
        })
        .unwrap();
        assert_eq!(parse(&again).unwrap(), outputs);
    }

    #[test]
    fn a_bad_output_table_says_what_is_wrong() {
        assert_eq!(
            parse(r#"outputs = [{ path = "a", valid = ["x"], normalize = ["y"] }]"#).unwrap_err(),
            "an output is judged by `valid` (a command that accepts a complete file) or compared after `normalize`, not both"
        );
        assert_eq!(
            parse(r#"outputs = [{ valid = ["x"] }]"#).unwrap_err(),
            "an output table needs `path`: the file in the sandbox"
        );
        assert!(
            parse(r#"outputs = [{ path = "a", valid = [] }]"#)
                .unwrap_err()
                .starts_with("the command is empty")
        );
        assert_eq!(
            parse(r#"outputs = [{ path = "a", check = ["x"] }]"#).unwrap_err(),
            "unknown key `check` in an output: expected `path`, and `valid` or `normalize` (a command)"
        );
        assert_eq!(
            parse(r#"outputs = [{ path = "/etc/passwd" }]"#).unwrap_err(),
            "`/etc/passwd` is absolute: paths are relative to the case's sandbox, e.g. `out.json`"
        );
        assert!(parse(r#"outputs = [{ path = "a", valid = ["x", "{work}/{path}.bak"] }]"#).is_ok());
    }
}
