//! Reviewed snapshots: a test's output compared with a file kept in `tests/snapshots`.
//! `UPDATE_SNAPSHOTS=1` rewrites a snapshot that differs, and the test still fails, so a
//! rewritten snapshot is always looked at (`git diff`) before a run passes with it.

use std::path::{Path, PathBuf};

/// The snapshot file `name` under `tests/snapshots`.
pub fn path(name: &str) -> PathBuf {
    crate::workspace().join("tests/snapshots").join(name)
}

/// Panics unless `actual` equals the reviewed snapshot `name` (see [`check`]); with
/// `UPDATE_SNAPSHOTS` set, a snapshot that differs is rewritten first.
pub fn assert_matches(name: &str, actual: &str) {
    let update = std::env::var_os("UPDATE_SNAPSHOTS").is_some();
    if let Err(e) = check(&path(name), actual, update) {
        panic!("{e}");
    }
}

/// `Ok` when the file at `path` holds exactly `actual`. Otherwise an error that shows the first
/// line that differs; with `update`, the file is rewritten to `actual` and the error says so.
pub fn check(path: &Path, actual: &str, update: bool) -> Result<(), String> {
    let expected = std::fs::read_to_string(path);
    if expected.as_deref().is_ok_and(|e| e == actual) {
        return Ok(());
    }
    if update {
        std::fs::write(path, actual).map_err(|e| format!("{}: {e}", path.display()))?;
        return Err(format!(
            "{} was rewritten (UPDATE_SNAPSHOTS): review the change with `git diff`, then run the test again without UPDATE_SNAPSHOTS",
            path.display()
        ));
    }
    let expected = expected.map_err(|e| format!("{}: {e}", path.display()))?;
    let (line, was, now) = expected
        .lines()
        .map(Some)
        .chain(std::iter::repeat(None))
        .zip(actual.lines().map(Some).chain(std::iter::repeat(None)))
        .take(expected.lines().count().max(actual.lines().count()) + 1)
        .enumerate()
        .find(|(_, (a, b))| a != b)
        .map(|(i, (a, b))| (i + 1, a.unwrap_or("(the end)"), b.unwrap_or("(the end)")))
        .unwrap_or((0, "(a line end)", "(a line end)"));
    Err(format!(
        "differs from the reviewed snapshot {} at line {line}:\n  snapshot: {was}\n  now:      {now}\nthe whole output:\n{actual}",
        path.display()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_equal_output_passes_with_or_without_update() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("s.txt");
        std::fs::write(&file, "a\nb\n").unwrap();
        assert_eq!(check(&file, "a\nb\n", false), Ok(()));
        assert_eq!(check(&file, "a\nb\n", true), Ok(()));
    }

    #[test]
    fn a_different_output_fails_and_names_the_first_line_that_differs() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("s.txt");
        std::fs::write(&file, "a\nb\nc\n").unwrap();
        let e = check(&file, "a\nB\nc\n", false).unwrap_err();
        assert!(
            e.contains("at line 2:\n  snapshot: b\n  now:      B\n"),
            "{e}"
        );
        let e = check(&file, "a\nb\n", false).unwrap_err();
        assert!(
            e.contains("at line 3:\n  snapshot: c\n  now:      (the end)"),
            "{e}"
        );
        assert_eq!(std::fs::read_to_string(&file).unwrap(), "a\nb\nc\n");
        assert!(check(&dir.path().join("none.txt"), "a", false).is_err());
    }

    #[test]
    fn updating_rewrites_a_different_snapshot_and_still_fails() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("s.txt");
        std::fs::write(&file, "old\n").unwrap();
        let e = check(&file, "new\n", true).unwrap_err();
        assert!(e.contains("was rewritten (UPDATE_SNAPSHOTS)"), "{e}");
        assert_eq!(std::fs::read_to_string(&file).unwrap(), "new\n");
        // The next run, reviewed, passes.
        assert_eq!(check(&file, "new\n", false), Ok(()));
        // A snapshot that did not exist is written, and the run fails too.
        let fresh = dir.path().join("fresh.txt");
        assert!(check(&fresh, "x\n", true).is_err());
        assert_eq!(std::fs::read_to_string(&fresh).unwrap(), "x\n");
    }
}
