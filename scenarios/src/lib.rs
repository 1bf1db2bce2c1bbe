//! Small helpers shared by the target programs: command-line flags, durations, sizes and
//! the documented exit codes. Each target's shutdown logic lives in its own binary, so a
//! reader sees the whole pattern, and its planted bugs, in one file.

use std::time::Duration;

/// Exit code of a target that a signal stopped gracefully before it finished its work.
pub const STOPPED: u8 = 14;

/// `--name value` flags, in any order, each at most once.
pub struct Flags {
    program: &'static str,
    pairs: Vec<(String, Option<String>)>,
}

impl Flags {
    /// Reads the process's arguments; `switches` are the flags that take no value.
    pub fn parse(program: &'static str, switches: &[&str]) -> Result<Flags, String> {
        let mut pairs = Vec::new();
        let mut args = std::env::args().skip(1);
        while let Some(flag) = args.next() {
            if !flag.starts_with("--") {
                return Err(format!("unexpected argument `{flag}`"));
            }
            if switches.contains(&flag.as_str()) {
                pairs.push((flag, None));
            } else {
                let value = args.next().ok_or_else(|| format!("{flag} needs a value"))?;
                pairs.push((flag, Some(value)));
            }
        }
        Ok(Flags { program, pairs })
    }

    /// Fails on a flag none of `known` names (call after reading every flag).
    pub fn check_known(&self, known: &[&str]) -> Result<(), String> {
        match self
            .pairs
            .iter()
            .find(|(f, _)| !known.contains(&f.as_str()))
        {
            Some((flag, _)) => Err(format!("unknown flag `{flag}`")),
            None => Ok(()),
        }
    }

    pub fn has(&self, flag: &str) -> bool {
        self.pairs.iter().any(|(f, _)| f == flag)
    }

    pub fn text(&self, flag: &str) -> Option<&str> {
        self.pairs
            .iter()
            .rev()
            .find(|(f, _)| f == flag)
            .and_then(|(_, v)| v.as_deref())
    }

    pub fn number(&self, flag: &str, default: u64) -> Result<u64, String> {
        match self.text(flag) {
            None => Ok(default),
            Some(v) => v
                .parse()
                .map_err(|_| format!("{flag}: `{v}` is not a number")),
        }
    }

    pub fn duration(&self, flag: &str, default: Duration) -> Result<Duration, String> {
        match self.text(flag) {
            None => Ok(default),
            Some(v) => parse_duration(v).map_err(|e| format!("{flag}: {e}")),
        }
    }

    /// The `--bug` value, checked against the bugs this program has.
    pub fn bug(&self, bugs: &[&'static str]) -> Result<Option<&'static str>, String> {
        match self.text("--bug") {
            None => Ok(None),
            Some(name) => bugs
                .iter()
                .find(|b| **b == name)
                .copied()
                .map(Some)
                .ok_or_else(|| format!("unknown bug `{name}`: {}", bugs.join(", "))),
        }
    }

    /// Prints `program: message` and returns the usage-error exit code.
    pub fn fail(&self, message: &str) -> std::process::ExitCode {
        eprintln!("{}: {message}", self.program);
        std::process::ExitCode::from(2)
    }
}

/// Parses the flags and runs `run`; a usage error prints `program: message` and exits 2.
pub fn main(
    program: &'static str,
    switches: &[&str],
    run: impl FnOnce(&Flags) -> Result<std::process::ExitCode, String>,
) -> std::process::ExitCode {
    let flags = match Flags::parse(program, switches) {
        Ok(flags) => flags,
        Err(e) => {
            eprintln!("{program}: {e}");
            return std::process::ExitCode::from(2);
        }
    };
    run(&flags).unwrap_or_else(|e| flags.fail(&e))
}

/// `250ms`, `2s`, `500us`.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let bad = || format!("`{text}` is not a duration (e.g. 250ms, 2s)");
    let (number, unit) = text
        .find(|c: char| !c.is_ascii_digit())
        .map(|i| text.split_at(i))
        .ok_or_else(bad)?;
    let n: u64 = number.parse().map_err(|_| bad())?;
    match unit {
        "us" => Ok(Duration::from_micros(n)),
        "ms" => Ok(Duration::from_millis(n)),
        "s" => Ok(Duration::from_secs(n)),
        _ => Err(bad()),
    }
}

/// Sleeps for `pace` unless it is zero.
pub fn pace(pace: Duration) {
    if !pace.is_zero() {
        std::thread::sleep(pace);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_with_their_unit() {
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("2s"), Ok(Duration::from_secs(2)));
        assert_eq!(parse_duration("500us"), Ok(Duration::from_micros(500)));
        assert!(parse_duration("2").is_err());
        assert!(parse_duration("ms").is_err());
    }
}
