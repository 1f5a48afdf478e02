//! `tousu sla deadline`: the calculator on the shipped calendars, with the
//! days it skipped and why; bad input answered with the reason.

use std::process::Command;

fn run(args: &[&str]) -> std::process::Output {
    let calendars = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../policies/calendars");
    Command::new(env!("CARGO_BIN_EXE_tousu"))
        .args(["sla", "deadline"])
        .args(args)
        .arg("--calendars")
        .arg(calendars)
        .output()
        .expect("running tousu")
}

#[test]
fn five_working_days_across_spring_festival_2026() {
    // Friday 13 Feb 2026: Saturday 14 Feb is a make-up working day, 15–23 Feb
    // 春节; days 1–5 are 14, 24, 25, 26, 27 Feb.
    let out = run(&["--from", "2026-02-13T10:00:00+08:00", "--duration", "5wd"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        text.starts_with(
            "deadline: 2026-02-27T09:30:00Z (2026-02-27T17:30:00+08:00 in Asia/Shanghai)"
        ),
        "{text}"
    );
    assert!(text.contains("skipped 2026-02-16  holiday: 春节"), "{text}");
    assert!(
        text.contains("counted 2026-02-14  make-up working day"),
        "{text}"
    );
}

#[test]
fn bad_input_names_what_is_wrong() {
    for (args, expected) in [
        (
            vec!["--from", "13 Feb", "--duration", "5wd"],
            "not an RFC 3339 time",
        ),
        (
            vec![
                "--from",
                "2026-02-13T10:00:00+08:00",
                "--duration",
                "5 weeks",
            ],
            "--duration",
        ),
        (
            vec![
                "--from",
                "2026-02-13T10:00:00+08:00",
                "--duration",
                "5wd",
                "--calendar",
                "atlantis",
            ],
            "calendar atlantis",
        ),
        (
            vec!["--from", "2031-02-13T10:00:00+08:00", "--duration", "5wd"],
            "2031",
        ),
    ] {
        let out = run(&args);
        assert!(!out.status.success(), "{args:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(expected), "{args:?}: {err}");
    }
}
