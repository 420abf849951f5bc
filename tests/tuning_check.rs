//! `tuning/check`, the host report of `tuning/README.md`, run as an operator would run it:
//! it exits 0 on any host and reports every item as `ok`, `differs` or `unknown`, in
//! text and as one JSON object with the same items; bad arguments exit 2; and it writes
//! nothing (its working directory stays empty).

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// Every item the check reports, in its order.
const ITEMS: &[&str] = &[
    "kernel.version",
    "kernel.io_uring_disabled",
    "limit.memlock",
    "limit.nofile",
    "cpu.governor",
    "boot.cpu_isolation",
    "irq.irqbalance",
    "thp.enabled",
    "thp.defrag",
    "vm.swappiness",
    "vm.dirty_ratio",
    "vm.dirty_background_ratio",
    "net.core.somaxconn",
    "data.scheduler",
    "data.filesystem",
    "data.atime",
];

const STATUSES: &[&str] = &["ok", "differs", "unknown"];

fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tuning/check")
}

/// Runs `tuning/check ARGS` with `cwd` as its working directory.
fn check(cwd: &Path, args: &[&str]) -> Output {
    Command::new(script())
        .args(args)
        .current_dir(cwd)
        .output()
        .expect("tuning/check runs")
}

fn stdout(output: &Output) -> String {
    String::from_utf8(output.stdout.clone()).expect("UTF-8 stdout")
}

/// A working directory that must stay empty.
fn empty_dir() -> tempfile::TempDir {
    tempfile::tempdir().unwrap()
}

fn assert_still_empty(dir: &Path) {
    let left: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|entry| entry.unwrap().file_name())
        .collect();
    assert!(left.is_empty(), "tuning/check wrote {left:?}");
}

#[test]
fn every_item_is_reported_with_a_status_and_the_exit_status_is_zero() {
    let dir = empty_dir();
    let output = check(dir.path(), &[]);
    let text = stdout(&output);
    assert_eq!(output.status.code(), Some(0), "{text}{output:?}");
    let reported: Vec<(&str, &str)> = text
        .lines()
        .filter_map(|line| {
            let mut words = line.split_whitespace();
            Some((words.next()?, words.next()?))
        })
        .filter(|(status, _)| STATUSES.contains(status))
        .map(|(status, name)| (name, status))
        .collect();
    let names: Vec<&str> = reported.iter().map(|(name, _)| *name).collect();
    assert_eq!(names, ITEMS, "{text}");
    for line in text
        .lines()
        .filter(|line| STATUSES.iter().any(|s| line.starts_with(s)))
    {
        assert!(
            line.contains("current: ") && line.contains("recommended: "),
            "{line}"
        );
    }
    assert_still_empty(dir.path());
}

#[test]
fn json_output_parses_and_has_the_same_items() {
    let dir = empty_dir();
    let output = check(dir.path(), &["--format", "json"]);
    let text = stdout(&output);
    assert_eq!(output.status.code(), Some(0), "{text}{output:?}");
    let report: Value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text}"));
    assert!(report["data_dir"].is_string(), "{report}");
    let items = report["items"].as_array().expect("an items array");
    let names: Vec<&str> = items
        .iter()
        .map(|item| item["name"].as_str().expect("a name"))
        .collect();
    assert_eq!(names, ITEMS, "{text}");
    for item in items {
        let status = item["status"].as_str().expect("a status");
        assert!(STATUSES.contains(&status), "{item}");
        for field in ["current", "recommended", "hint"] {
            assert!(item[field].is_string(), "{field} of {item}");
        }
    }
    assert_still_empty(dir.path());
}

#[test]
fn a_data_dir_that_does_not_exist_yet_is_checked_through_its_parent() {
    let dir = empty_dir();
    let missing = dir.path().join("not/yet");
    let output = check(
        dir.path(),
        &["--data-dir", missing.to_str().unwrap(), "--format=json"],
    );
    let text = stdout(&output);
    assert_eq!(output.status.code(), Some(0), "{text}{output:?}");
    let report: Value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text}"));
    assert!(
        report["data_dir"]
            .as_str()
            .unwrap()
            .contains("nearest existing parent"),
        "{report}"
    );
    assert_still_empty(dir.path());
}

#[test]
fn bad_arguments_exit_2_and_help_exits_0() {
    let dir = empty_dir();
    for args in [
        &["--bogus"][..],
        &["--format", "xml"],
        &["--format"],
        &["--data-dir"],
    ] {
        let output = check(dir.path(), args);
        assert_eq!(output.status.code(), Some(2), "{args:?}: {output:?}");
        assert!(output.stdout.is_empty(), "{args:?}: {output:?}");
        assert!(!output.stderr.is_empty(), "{args:?}: {output:?}");
    }
    let help = check(dir.path(), &["--help"]);
    assert_eq!(help.status.code(), Some(0), "{help:?}");
    assert!(stdout(&help).contains("--data-dir"), "{help:?}");
    assert_still_empty(dir.path());
}
