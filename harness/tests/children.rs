//! End-to-end tests of the harness's own children: the helper commands it runs beside the
//! cases (a survivors command after every case) are its children as the targets are, and
//! the orphan reaping of parallel cases must never take one of them.

use std::fs;

use serde_json::Value;

mod common;
use common::campaign;

/// A correct store, read back by a survivors command after every case, with two cases at
/// a time: while one case's survivors command runs, the other case ends and reaps the
/// orphans re-parented to the harness. The survivors command's shell has exited while its
/// background child still holds the stdout pipe, so it is a zombie of the harness for a
/// while after each case; reaping it would make its status unreadable and every id
/// acknowledged look lost.
#[test]
fn parallel_cases_never_reap_another_cases_survivors_command() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("store.toml");
    fs::write(
        &file,
        r#"name = "sh-store"
command = ["sh", "-c", "for i in 1 2 3; do echo $i >> store.log; echo \"ACK $i\"; done"]
timeout = "10s"
shrink = { iterations = 0 }

[[strike]]
signal = "SIGTERM"
at = { after = "0ms..3ms" }

[expect]
clean = [0]
interrupted = ["SIGTERM"]
handler_io = "off"

[expect.acked]
ack = '^ACK (\d+)$'
survivors = { command = ["sh", "-c", "cat store.log 2>/dev/null; sleep 0.02 &"], pattern = '^(\d+)' }
"#,
    )
    .unwrap();
    let ran = campaign(&[
        file.to_str().unwrap(),
        "--jobs",
        "2",
        "--cases",
        "200",
        "--no-regressions",
        "--seed",
        "1",
    ]);
    let scenario = &ran.json["scenarios"][0];
    let lost: Vec<&Value> = scenario["cases"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|c| {
            c["violated"]
                .as_array()
                .is_some_and(|v| v.iter().any(|i| i == "acked-survives"))
        })
        .collect();
    assert_eq!(lost, Vec::<&Value>::new(), "{}{}", ran.stdout, ran.stderr);
    assert_eq!(ran.code, 0, "{}{}", ran.stdout, ran.stderr);
    assert_eq!(
        scenario["result"]["result"], "passed",
        "{}{}",
        ran.stdout, ran.stderr
    );
    assert_eq!(scenario["cases_run"], 200, "{}", ran.stdout);
}
