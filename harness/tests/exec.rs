//! End-to-end tests of what stops killpoint from running a program, and of killpoint's
//! own stopping: a command that cannot be executed is an error at once (exit 2) for
//! `trace`, `run`, `repro` and the API; `[requires]`; SIGTERM during a traced run and
//! during the `{bin:…}` build; what a SIGKILLed killpoint leaves, removed by the next.

use std::fs;
use std::io::Read;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use killpoint::{Scenario, ScenarioResult, Signal, Strike, SyscallClass};

mod common;
use common::{killpoint, processes_mentioning, root};

/// Waits until process `pid` has exited (a zombie has), or `bound` has passed; returns
/// whether it exited. Its pidfd becomes readable when it exits: no polling of `/proc`.
fn exits_within(pid: i32, bound: Duration) -> bool {
    let Some(pid) = rustix::process::Pid::from_raw(pid) else {
        return true;
    };
    let pidfd = match rustix::process::pidfd_open(pid, rustix::process::PidfdFlags::empty()) {
        Ok(fd) => fd,
        Err(rustix::io::Errno::SRCH) => return true,
        Err(e) => panic!("pidfd_open({pid:?}): {e}"),
    };
    let until = Instant::now() + bound;
    loop {
        let left = until.saturating_duration_since(Instant::now());
        let timeout = rustix::event::Timespec::try_from(left).unwrap();
        let mut fds = [rustix::event::PollFd::new(
            &pidfd,
            rustix::event::PollFlags::IN,
        )];
        match rustix::event::poll(&mut fds, Some(&timeout)) {
            Ok(0) => return false,
            Ok(_) => return true,
            Err(rustix::io::Errno::INTR) => continue,
            Err(e) => panic!("poll: {e}"),
        }
    }
}

/// Waits for `child` until `bound`; past it, kills it and fails the test, so that a hang
/// is a failure rather than a test that never ends.
fn wait_within(child: &mut Child, bound: Duration, what: &str) -> (ExitStatus, Duration) {
    let started = Instant::now();
    if !exits_within(child.id() as i32, bound) {
        let _ = child.kill();
        let _ = child.wait();
        panic!("{what}: still running after {bound:?}");
    }
    (child.wait().unwrap(), started.elapsed())
}

/// Runs `command` to its end (bounded), returning its exit code, stdout and stderr.
fn output_within(mut command: Command, bound: Duration, what: &str) -> (i32, String, String) {
    let mut child = command
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (status, _) = wait_within(&mut child, bound, what);
    let mut stdout = String::new();
    let mut stderr = String::new();
    child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut stdout)
        .unwrap();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    (status.code().unwrap_or(-1), stdout, stderr)
}

fn script(dir: &Path, name: &str, text: &str, mode: u32) -> PathBuf {
    let path = dir.join(name);
    fs::write(&path, text).unwrap();
    fs::set_permissions(&path, fs::Permissions::from_mode(mode)).unwrap();
    path
}

fn mkfifo(path: &Path) {
    nix::unistd::mkfifo(path, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
}

fn entries(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

fn alive(pid: i32) -> bool {
    // A zombie has exited: only its parent's wait is missing.
    fs::read_to_string(format!("/proc/{pid}/stat"))
        .is_ok_and(|s| s.rsplit(')').next().is_some_and(|r| !r.starts_with(" Z")))
}

fn sigterm(child: &Child) {
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
}

/// A scenario file whose command is `command` (TOML), struck at a write: its census runs
/// under the tracer.
fn traced_scenario(dir: &Path, command: &str, extra: &str) -> PathBuf {
    let file = dir.join("s.toml");
    fs::write(
        &file,
        format!(
            "name = \"cannot-run\"\ncommand = {command}\n{extra}[[strike]]\nsignal = \"SIGTERM\"\nat = {{ syscall = \"write\" }}\n"
        ),
    )
    .unwrap();
    file
}

/// The bound within which a command that cannot run is reported: it used to hang.
const AT_ONCE: Duration = Duration::from_secs(10);

#[test]
fn trace_of_a_command_that_cannot_be_executed_exits_2_naming_it_and_why() {
    let tmp = tempfile::tempdir().unwrap();
    script(tmp.path(), "x.sh", "#!/bin/sh\necho hi\n", 0o644);
    script(tmp.path(), "y.sh", "#!/no/such\necho hi\n", 0o755);
    for (program, why) in [
        ("no-such-program", "`no-such-program`: not found on PATH"),
        ("./x.sh", "`./x.sh`: not executable"),
        (
            "./y.sh",
            "`./y.sh`: its interpreter `/no/such` does not exist",
        ),
    ] {
        let mut command = killpoint(&["trace", "--", program], tmp.path());
        command.current_dir(tmp.path());
        let (code, stdout, stderr) = output_within(command, AT_ONCE, program);
        assert_eq!(code, 2, "{program}: {stdout}{stderr}");
        assert_eq!(stderr, format!("error: cannot run {why}\n"), "{program}");
        assert_eq!(stdout, "", "{program}");
    }
    assert_eq!(entries(tmp.path()), ["x.sh", "y.sh"]);
}

#[test]
fn run_and_repro_of_a_traced_command_that_cannot_be_executed_exit_2_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let bad = script(dir.path(), "y.sh", "#!/no/such\n", 0o755);
    for (command, extra, why) in [
        (
            "[\"no-such-program\", \"{work}/out\"]".to_string(),
            "",
            "`no-such-program`: not found on PATH".to_string(),
        ),
        (
            // A setup file is written without an executable bit.
            "[\"./x.sh\"]".to_string(),
            "[setup]\n\"x.sh\" = \"#!/bin/sh\\n\"\n",
            "`./x.sh`: not executable".to_string(),
        ),
        (
            format!("[\"{}\"]", bad.display()),
            "",
            format!(
                "`{}`: its interpreter `/no/such` does not exist",
                bad.display()
            ),
        ),
    ] {
        let file = traced_scenario(dir.path(), &command, extra);
        let tmp = tempfile::tempdir().unwrap();
        let run = killpoint(&["run", file.to_str().unwrap(), "--cases", "1"], tmp.path());
        let (code, stdout, stderr) = output_within(run, AT_ONCE, &command);
        assert_eq!(code, 2, "{command}: {stdout}{stderr}");
        assert!(
            stdout.contains(&format!("s.toml (cannot-run)\n  ERROR: cannot run {why}\n")),
            "{stdout}"
        );
        assert!(
            stdout.contains(
                "1 scenario(s): 0 passed, 0 caught as expected, 0 failed, 1 could not run"
            ),
            "{stdout}"
        );
        let repro = killpoint(
            &["repro", file.to_str().unwrap(), "--case", "1"],
            tmp.path(),
        );
        let (code, stdout, stderr) = output_within(repro, AT_ONCE, &command);
        assert_eq!(code, 2, "{command}: {stdout}{stderr}");
        assert!(stdout.contains(&format!("cannot run {why}")), "{stdout}");
        assert_eq!(entries(tmp.path()), Vec::<String>::new(), "nothing left");
    }
}

#[test]
fn an_exec_that_fails_in_the_traced_child_is_reported_not_waited_for() {
    // A binary open for writing passes every check made before the spawn, and its exec
    // fails (ETXTBSY) inside the traced child, where it used to hang killpoint.
    let tmp = tempfile::tempdir().unwrap();
    let busy = tmp.path().join("busy");
    fs::copy("/bin/true", &busy).unwrap();
    let _writer = fs::OpenOptions::new().write(true).open(&busy).unwrap();
    let why = format!(
        "cannot start `{}`: its exec failed in the traced child (the kernel refused to run it)",
        busy.display()
    );
    let trace = killpoint(&["trace", "--", busy.to_str().unwrap()], tmp.path());
    let (code, stdout, stderr) = output_within(trace, AT_ONCE, "trace");
    assert_eq!(code, 2, "{stdout}{stderr}");
    assert_eq!(stderr, format!("error: {why}\n"));

    let dir = tempfile::tempdir().unwrap();
    let file = traced_scenario(dir.path(), &format!("[\"{}\"]", busy.display()), "");
    let sandboxes = tempfile::tempdir().unwrap();
    let run = killpoint(
        &["run", file.to_str().unwrap(), "--cases", "1"],
        sandboxes.path(),
    );
    let (code, stdout, stderr) = output_within(run, AT_ONCE, "run");
    assert_eq!(code, 2, "{stdout}{stderr}");
    assert!(stdout.contains(&format!("  ERROR: {why}\n")), "{stdout}");
    assert_eq!(entries(sandboxes.path()), Vec::<String>::new());
}

#[test]
fn the_api_reports_a_command_that_cannot_run_and_the_required_programs_missing() {
    let strike = || Strike::syscall(SyscallClass::Write).signal(Signal::SIGTERM);
    let report = Scenario::command("no-such-program").strike(strike()).run();
    assert_eq!(
        report.result,
        ScenarioResult::Error {
            message: "cannot run `no-such-program`: not found on PATH".into()
        }
    );

    let needs = Scenario::command("sh")
        .args(["-c", "exit 0"])
        .requires("sh", "dash")
        .requires("no-such-tool", "no-such-tools")
        .strike(strike());
    assert_eq!(
        needs.missing_programs(),
        vec![("no-such-tool".to_string(), "no-such-tools".to_string())]
    );
    assert_eq!(
        needs.run().result,
        ScenarioResult::Error {
            message: "no-such-tool is not installed (Debian package no-such-tools: apt-get install no-such-tools)".into()
        }
    );
    // The command's own program, required and missing, is named with its package.
    let own = Scenario::command("no-such-tool")
        .requires("no-such-tool", "no-such-tools")
        .strike(strike());
    assert_eq!(
        own.run().result,
        ScenarioResult::Error {
            message: "cannot run `no-such-tool`: not found on PATH: no-such-tool is not installed (Debian package no-such-tools: apt-get install no-such-tools)".into()
        }
    );
    let installed = Scenario::command("sh")
        .requires("sh", "dash")
        .requires("gzip", "gzip");
    assert_eq!(installed.missing_programs(), Vec::<(String, String)>::new());
}

#[test]
fn sigterm_to_trace_and_run_of_a_blocked_traced_target_exits_130_promptly() {
    let fifos = tempfile::tempdir().unwrap();
    let fifo = fifos.path().join("started");
    mkfifo(&fifo);
    // The target says its pid through the FIFO, then blocks.
    let target = format!("echo $$ > {}; exec sleep 1000", fifo.display());
    let dir = tempfile::tempdir().unwrap();
    let file = traced_scenario(
        dir.path(),
        &format!("[\"/bin/sh\", \"-c\", \"{target}\"]"),
        "",
    );
    let tmp = tempfile::tempdir().unwrap();
    for (args, said) in [
        (
            vec!["trace", "--", "/bin/sh", "-c", target.as_str()],
            "killpoint trace: interrupted\n",
        ),
        (vec!["run", file.to_str().unwrap(), "--cases", "1"], ""),
    ] {
        let mut child = killpoint(&args, tmp.path())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let pid: i32 = fs::read_to_string(&fifo).unwrap().trim().parse().unwrap();
        sigterm(&child);
        let (status, took) = wait_within(&mut child, Duration::from_secs(10), args[0]);
        assert_eq!(status.code(), Some(130), "{}", args[0]);
        assert!(took < Duration::from_secs(3), "{}: {took:?}", args[0]);
        let mut stderr = String::new();
        child
            .stderr
            .take()
            .unwrap()
            .read_to_string(&mut stderr)
            .unwrap();
        if !said.is_empty() {
            assert_eq!(stderr, said);
        }
        assert!(
            exits_within(pid, Duration::from_secs(5)),
            "{}: the target outlived killpoint",
            args[0]
        );
        assert_eq!(entries(tmp.path()), Vec::<String>::new(), "{}", args[0]);
    }
}

/// A new cgroup v2 directory inside this process's, if cgroups can be made there.
fn own_cgroup() -> Option<PathBuf> {
    let mount = fs::read_to_string("/proc/self/mountinfo")
        .ok()?
        .lines()
        .find_map(|line| {
            let (left, right) = line.split_once(" - ")?;
            right
                .starts_with("cgroup2 ")
                .then(|| left.split(' ').nth(4).map(PathBuf::from))?
        })?;
    let own = fs::read_to_string("/proc/self/cgroup")
        .ok()?
        .lines()
        .find_map(|l| l.strip_prefix("0::").map(str::to_string))?;
    let dir = mount
        .join(own.trim_start_matches('/'))
        .join(format!("kptest-{}", std::process::id()));
    fs::create_dir(&dir).ok()?;
    if dir.join("cgroup.kill").exists() {
        Some(dir)
    } else {
        let _ = fs::remove_dir(&dir);
        None
    }
}

/// `killpoint ARGS…` started inside the cgroup `cgroup` (when there is one), so that its
/// case cgroups are made there, out of sight of other killpoints on the machine.
fn killpoint_in(cgroup: Option<&Path>, args: &[&str], tmp: &Path) -> Command {
    let Some(cgroup) = cgroup else {
        return killpoint(args, tmp);
    };
    let mut command = Command::new("/bin/sh");
    command
        .arg("-c")
        .arg("echo $$ > \"$0\" && exec \"$@\"")
        .arg(cgroup.join("cgroup.procs"))
        .arg(env!("CARGO_BIN_EXE_killpoint"))
        .args(args)
        .current_dir(root())
        .env("TMPDIR", tmp)
        .env_remove("KILLPOINT_SEED")
        .env_remove("KILLPOINT_CASES");
    command
}

/// Removes the test's cgroup once killpoint is gone from it.
struct TestCgroup(Option<PathBuf>);

impl Drop for TestCgroup {
    fn drop(&mut self) {
        if let Some(dir) = &self.0 {
            for name in entries(dir).iter().filter(|n| n.starts_with("killpoint-")) {
                let _ = fs::remove_dir(dir.join(name));
            }
            let _ = fs::remove_dir(dir);
        }
    }
}

#[test]
fn what_a_sigkilled_killpoint_left_is_removed_by_the_next_run_and_named() {
    let cgroup = TestCgroup(own_cgroup());
    let tmp = tempfile::tempdir().unwrap();
    // A kept sandbox has no owner mark, and a live killpoint's (this process stands in
    // for one) has its own: neither may be touched.
    fs::create_dir(tmp.path().join("killpoint-kept01")).unwrap();
    fs::create_dir(tmp.path().join("killpoint-alive1")).unwrap();
    let me = std::process::id();
    let start: u64 = fs::read_to_string(format!("/proc/{me}/stat"))
        .unwrap()
        .rsplit(')')
        .next()
        .unwrap()
        .split(' ')
        .nth(20)
        .unwrap()
        .parse()
        .unwrap();
    fs::write(
        tmp.path().join("killpoint-alive1.owner"),
        format!("killpoint {me} {start}\n"),
    )
    .unwrap();
    let untouched = [
        "killpoint-alive1",
        "killpoint-alive1.owner",
        "killpoint-kept01",
    ];

    let fifos = tempfile::tempdir().unwrap();
    let fifo = fifos.path().join("started");
    mkfifo(&fifo);
    let dir = tempfile::tempdir().unwrap();
    let blocked = dir.path().join("blocked.toml");
    fs::write(
        &blocked,
        format!(
            "name = \"blocked\"\ncommand = [\"/bin/sh\", \"-c\", \"echo $$ > {}; exec sleep 1000\"]\n[[strike]]\nsignal = \"SIGTERM\"\n",
            fifo.display()
        ),
    )
    .unwrap();
    let mut first = killpoint_in(
        cgroup.0.as_deref(),
        &["run", blocked.to_str().unwrap(), "--cases", "1"],
        tmp.path(),
    )
    .stdout(Stdio::null())
    .stderr(Stdio::null())
    .spawn()
    .unwrap();
    // The census's target is running in its sandbox once it has said its pid.
    let target: i32 = fs::read_to_string(&fifo).unwrap().trim().parse().unwrap();
    let owner = first.id() as i32;
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(owner),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    first.wait().unwrap();
    assert!(exits_within(target, Duration::from_secs(5)), "PDEATHSIG");

    let left: Vec<String> = entries(tmp.path())
        .into_iter()
        .filter(|n| !untouched.contains(&n.as_str()))
        .collect();
    assert_eq!(left.len(), 2, "a sandbox and its owner mark: {left:?}");
    assert!(
        left[1].ends_with(".owner") && left[1].starts_with(&left[0]),
        "{left:?}"
    );
    let cgroups = |dir: &Path| -> Vec<String> {
        entries(dir)
            .into_iter()
            .filter(|n| n.starts_with("killpoint-"))
            .collect()
    };
    if let Some(dir) = &cgroup.0 {
        let left = cgroups(dir);
        assert_eq!(left.len(), 1, "{left:?}");
        assert!(
            left[0].starts_with(&format!("killpoint-{owner}-")),
            "{left:?}"
        );
    }

    let quick = dir.path().join("quick.toml");
    fs::write(
        &quick,
        "name = \"quick\"\ncommand = [\"true\"]\n[[strike]]\nsignal = \"SIGTERM\"\n",
    )
    .unwrap();
    let next = killpoint_in(
        cgroup.0.as_deref(),
        &["run", quick.to_str().unwrap(), "--cases", "1"],
        tmp.path(),
    );
    let (code, stdout, stderr) = output_within(next, Duration::from_secs(60), "the next run");
    assert_eq!(code, 0, "{stdout}{stderr}");
    let removed = match cgroup.0 {
        Some(_) => "1 sandbox and 1 cgroup",
        None => "1 sandbox",
    };
    assert_eq!(
        stderr,
        format!(
            "killpoint: removed {removed} left by killpoint pid {owner}, which is no longer running\n"
        )
    );
    assert_eq!(entries(tmp.path()), untouched);
    if let Some(dir) = &cgroup.0 {
        assert_eq!(cgroups(dir), Vec::<String>::new());
    }
}

#[test]
fn sigterm_during_the_bin_build_stops_cargo_and_its_children_at_once() {
    // A package whose build script says its pid through one FIFO, then waits on another
    // that nobody ever writes.
    let package = tempfile::tempdir().unwrap();
    let p = package.path();
    fs::write(
        p.join("Cargo.toml"),
        "[package]\nname = \"blocker\"\nversion = \"0.1.0\"\nedition = \"2021\"\nbuild = \"build.rs\"\n\n[workspace]\n",
    )
    .unwrap();
    fs::create_dir(p.join("src")).unwrap();
    fs::write(p.join("src/main.rs"), "fn main() {}\n").unwrap();
    fs::write(
        p.join("build.rs"),
        r#"fn main() {
    let dir = std::path::PathBuf::from(std::env::var("KILLPOINT_TEST_FIFOS").unwrap());
    std::fs::write(dir.join("started"), std::process::id().to_string()).unwrap();
    let _ = std::fs::read(dir.join("release"));
}
"#,
    )
    .unwrap();
    let fifos = tempfile::tempdir().unwrap();
    mkfifo(&fifos.path().join("started"));
    mkfifo(&fifos.path().join("release"));
    fs::write(
        p.join("s.toml"),
        "name = \"built\"\ncommand = [\"{bin:blocker}\"]\n[[strike]]\nsignal = \"SIGTERM\"\n",
    )
    .unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let mut child = killpoint(
        &["run", p.join("s.toml").to_str().unwrap(), "--cases", "1"],
        tmp.path(),
    )
    .env("KILLPOINT_TEST_FIFOS", fifos.path())
    .env("CARGO_TARGET_DIR", p.join("target"))
    .env("CARGO_NET_OFFLINE", "true")
    .env_remove("KILLPOINT_BIN_DIR")
    .stdout(Stdio::piped())
    .stderr(Stdio::piped())
    .spawn()
    .unwrap();
    let script: i32 = fs::read_to_string(fifos.path().join("started"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert!(alive(script));
    sigterm(&child);
    let (status, took) = wait_within(&mut child, Duration::from_secs(30), "killpoint");
    let mut stdout = String::new();
    child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut stdout)
        .unwrap();
    assert_eq!(status.code(), Some(130), "{stdout}");
    assert!(took < Duration::from_secs(3), "took {took:?}");
    assert!(stdout.contains("(interrupted)"), "{stdout}");
    assert!(
        exits_within(script, Duration::from_secs(5)),
        "the build script outlived killpoint"
    );
    let needle = p.to_str().unwrap();
    for (pid, command) in processes_mentioning(needle) {
        assert!(
            exits_within(pid, Duration::from_secs(5)),
            "left running: pid {pid}: {command}"
        );
    }
    assert_eq!(entries(tmp.path()), Vec::<String>::new());
}
