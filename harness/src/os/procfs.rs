//! What `/proc` tells about processes: signal handlers, command lines, the tree.

use std::fs;

/// The process's caught-signals mask (`SigCgt` in `/proc/PID/status`).
pub fn caught_signals(pid: i32) -> Option<u64> {
    let status = fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let mask = status.lines().find_map(|l| l.strip_prefix("SigCgt:"))?;
    u64::from_str_radix(mask.trim(), 16).ok()
}

/// Whether the process has a handler installed for `signal`.
pub fn catches(pid: i32, signal: i32) -> bool {
    caught_signals(pid).is_some_and(|mask| mask & (1 << (signal - 1)) != 0)
}

/// Whether the thread blocks `signal` (`SigBlk` in `/proc/TID/status`).
pub fn blocks(tid: i32, signal: i32) -> bool {
    status_field(tid, "SigBlk:")
        .and_then(|v| u64::from_str_radix(&v, 16).ok())
        .is_some_and(|mask| mask & (1 << (signal - 1)) != 0)
}

/// Whether `signal` is waiting to be delivered to the process: in its shared queue
/// (`ShdPnd`, where `kill` puts it) or its main thread's own (`SigPnd`). `None`: gone.
pub fn pending(pid: i32, signal: i32) -> Option<bool> {
    let status = fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let bit = 1u64 << (signal - 1);
    let pending = status
        .lines()
        .filter_map(|l| {
            l.strip_prefix("ShdPnd:")
                .or_else(|| l.strip_prefix("SigPnd:"))
        })
        .filter_map(|v| u64::from_str_radix(v.trim(), 16).ok())
        .any(|mask| mask & bit != 0);
    Some(pending)
}

/// The pid of the process tracing this one (0: none).
pub fn tracer_pid(pid: i32) -> Option<i32> {
    status_field(pid, "TracerPid:")?.parse().ok()
}

fn status_field(pid: i32, name: &str) -> Option<String> {
    let status = fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix(name))
        .map(|v| v.trim().to_string())
}

/// The thread group (process) a thread belongs to.
pub fn tgid(tid: i32) -> Option<i32> {
    status_field(tid, "Tgid:")?.parse().ok()
}

/// The command line of a process, its arguments joined by spaces.
pub fn command_line(pid: i32) -> String {
    let raw = fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
    let text: Vec<String> = raw
        .split(|&b| b == 0)
        .filter(|part| !part.is_empty())
        .map(|part| String::from_utf8_lossy(part).into_owned())
        .collect();
    if text.is_empty() {
        // Kernel threads and processes that exited have no command line; the name remains.
        fs::read_to_string(format!("/proc/{pid}/comm"))
            .map(|c| format!("[{}]", c.trim()))
            .unwrap_or_else(|_| "?".into())
    } else {
        text.join(" ")
    }
}

/// The fields of `/proc/PID/stat` the harness uses.
#[derive(Debug, Clone, Copy)]
pub struct Stat {
    pub pid: i32,
    pub state: char,
    pub ppid: i32,
    pub pgid: i32,
}

pub fn stat(pid: i32) -> Option<Stat> {
    let text = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name is in parentheses and may itself contain spaces and parentheses.
    let after = &text[text.rfind(')')? + 2..];
    let mut fields = after.split(' ');
    let state = fields.next()?.chars().next()?;
    let ppid = fields.next()?.parse().ok()?;
    let pgid = fields.next()?.parse().ok()?;
    Some(Stat {
        pid,
        state,
        ppid,
        pgid,
    })
}

/// The signal a process is stopped on in a tracing stop (state `t`); `None` if it is
/// not in one. `/proc/PID/stat`'s last field, the exit code, holds it while it stops.
pub fn stopped_on(pid: i32) -> Option<i32> {
    let text = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after = &text[text.rfind(')')? + 2..];
    if !after.starts_with("t ") {
        return None;
    }
    after.split_whitespace().last()?.parse().ok()
}

/// When a process started, in clock ticks since boot (`/proc/PID/stat` field 22): with
/// its pid, what tells it from a later process that reuses the pid.
pub fn start_time(pid: i32) -> Option<u64> {
    let text = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Field 3 (the state) is the first after the command name; field 22 is 19 later.
    let after = &text[text.rfind(')')? + 2..];
    after.split(' ').nth(19)?.parse().ok()
}

/// Every process on the machine.
pub fn all_pids() -> Vec<i32> {
    fs::read_dir("/proc")
        .map(|dir| {
            dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
                .collect()
        })
        .unwrap_or_default()
}

/// Whether the process's initial environment contains `entry` (`NAME=value`); `None`
/// when the environment reads as empty. That is a kernel thread, a process started
/// with no environment at all, or one caught inside `execve`: between installing the
/// new address space and laying out its stack, the kernel reports no environment.
pub fn environ_has(pid: i32, entry: &str) -> Option<bool> {
    let env = fs::read(format!("/proc/{pid}/environ")).unwrap_or_default();
    if env.is_empty() {
        return None;
    }
    Some(env.split(|&b| b == 0).any(|e| e == entry.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_its_own_stat_and_command_line() {
        let me = std::process::id() as i32;
        let stat = stat(me).unwrap();
        assert_eq!(stat.pid, me);
        assert_eq!(stat.ppid, std::os::unix::process::parent_id() as i32);
        assert!(
            command_line(me).contains("killpoint"),
            "{}",
            command_line(me)
        );
        assert!(all_pids().contains(&me));
    }
}
