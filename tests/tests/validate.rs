//! `tierdeck validate`: offline, every error as `file:line:col: message`, exit 1 when any.

use tierdeck_tests::{cli_in, copy_dir, workspace};

#[tokio::test]
async fn the_example_repository_is_valid() {
    let dir = tempfile::tempdir().unwrap();
    let example = workspace().join("examples/petclinic");
    let out = cli_in(dir.path(), &["validate", example.to_str().unwrap()], None).await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert!(String::from_utf8_lossy(&out.stderr)
        .starts_with("ok: 2 environments valid (prod, staging)"));
}

#[tokio::test]
async fn every_error_is_printed_with_its_position_and_the_exit_code_is_1() {
    let dir = tempfile::tempdir().unwrap();
    let repo = dir.path().join("specs");
    copy_dir(&workspace().join("examples/petclinic"), &repo);
    let autoscaling = repo.join("environments/prod/autoscaling.yaml");
    let text = std::fs::read_to_string(&autoscaling).unwrap();
    std::fs::write(
        &autoscaling,
        text.replacen("    max: 8\n", "    max: 1\n", 1)
            .replace("\"50 18 * * *\"", "\"50 18 * *\""),
    )
    .unwrap();
    std::fs::write(repo.join("environments/staging/extra.yaml"), "slos: []\n").unwrap();

    // Run from inside the repository: paths come out as they would in a pre-commit hook.
    let out = cli_in(&repo, &["validate"], None).await;
    assert_eq!(out.status.code(), Some(1));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(
        lines,
        [
            "environments/prod/autoscaling.yaml:13:5: `autoscaling_groups[petclinic-prod-web]`: min 2 is above max 1",
            "environments/prod/autoscaling.yaml:13:5: `autoscaling_groups[petclinic-prod-web]`: desired 2 is above max 1",
            "environments/prod/autoscaling.yaml:27:39: `autoscaling_groups[petclinic-prod-web].schedule[web-prescale].cron`: a cron expression has 5 fields (minute hour day-of-month month day-of-week); `50 18 * *` has 4",
            "environments/prod/autoscaling.yaml:45:39: `autoscaling_groups[petclinic-prod-was].schedule[was-prescale].cron`: a cron expression has 5 fields (minute hour day-of-month month day-of-week); `50 18 * *` has 4",
            "environments/staging/slo.yaml:1:1: `slos` is already set in environments/staging/extra.yaml:1; each top-level key belongs in one file",
        ],
        "{stdout}"
    );
    assert_eq!(String::from_utf8_lossy(&out.stderr), "5 errors in .\n");
}
