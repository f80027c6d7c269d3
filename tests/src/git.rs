//! A spec repository for tests: a bare repository in a temporary folder and a working clone,
//! with commits made by the `git` command line under chosen authors.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::{copy_dir, workspace};

pub struct SpecRepo {
    pub bare: PathBuf,
    pub work: PathBuf,
    _dir: tempfile::TempDir,
}

/// (name, e-mail) of a commit's author.
pub type Author<'a> = (&'a str, &'a str);

pub const SEJIN: Author = ("Park Sejin", "sejin.park@petclinic.example");
pub const SEUNG: Author = ("Seung Lo", "seung.lo@petclinic.example");

impl SpecRepo {
    /// A repository holding `examples/petclinic`, committed by Sejin and pushed to `main`.
    pub fn petclinic() -> SpecRepo {
        Self::petclinic_with(|_| {})
    }

    /// `examples/petclinic` with prod open at any time (no change windows).
    pub fn petclinic_any_time() -> SpecRepo {
        Self::petclinic_with(|work| edit_prod_environment(work, false))
    }

    /// `examples/petclinic` with prod needing no approvals and open at any time: for tests of
    /// applying itself, not of its gates (with a panel whose floor is
    /// [`crate::NO_APPROVAL_FLOOR`]).
    pub fn petclinic_ungated() -> SpecRepo {
        Self::petclinic_with(|work| edit_prod_environment(work, true))
    }

    /// `examples/petclinic`, edited by `edit` in the working tree before the first commit.
    pub fn petclinic_with(edit: impl FnOnce(&Path)) -> SpecRepo {
        let dir = tempfile::tempdir().unwrap();
        let bare = dir.path().join("specs.git");
        let work = dir.path().join("work");
        let repo = SpecRepo {
            bare,
            work,
            _dir: dir,
        };
        run(
            dir_of(&repo),
            &[
                "init",
                "--bare",
                "--initial-branch=main",
                repo.bare.to_str().unwrap(),
            ],
        );
        run(
            dir_of(&repo),
            &[
                "clone",
                "-q",
                repo.bare.to_str().unwrap(),
                repo.work.to_str().unwrap(),
            ],
        );
        run(&repo.work, &["checkout", "-q", "-B", "main"]);
        copy_dir(&workspace().join("examples/petclinic"), &repo.work);
        repo.commit(SEJIN, "Add the PetClinic environments", edit);
        repo
    }

    pub fn url(&self) -> String {
        self.bare.to_string_lossy().into_owned()
    }

    /// Edits the working tree, commits everything as `author`, pushes; returns the commit id.
    pub fn commit(&self, author: Author, message: &str, edit: impl FnOnce(&Path)) -> String {
        self.commit_as(author, author, message, edit)
    }

    /// [`SpecRepo::commit`] by `committer` with `--author` naming someone else.
    pub fn commit_as(
        &self,
        committer: Author,
        author: Author,
        message: &str,
        edit: impl FnOnce(&Path),
    ) -> String {
        edit(&self.work);
        run(&self.work, &["add", "-A"]);
        let mut identity = identity(committer);
        identity.extend([
            ("GIT_AUTHOR_NAME", author.0.to_owned()),
            ("GIT_AUTHOR_EMAIL", author.1.to_owned()),
        ]);
        let out = Command::new("git")
            .current_dir(&self.work)
            .args([
                "-c",
                "commit.gpgsign=false",
                "commit",
                "-q",
                "--allow-empty",
                "-m",
                message,
            ])
            .envs(identity)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "git commit: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        run(&self.work, &["push", "-q", "origin", "main"]);
        self.head()
    }

    /// Commits and pushes the story's change as `author`: the was tier's evening peak
    /// (`was-peak` in prod) may reach 8 instead of 7. Returns the commit.
    pub fn raise_was_peak(&self, author: Author) -> String {
        self.commit(
            author,
            "Let the was evening peak reach 8",
            self.replace_in(
                "environments/prod/autoscaling.yaml",
                "timezone: Asia/Seoul, min: 5, max: 7 }",
                "timezone: Asia/Seoul, min: 5, max: 8 }",
            ),
        )
    }

    /// Rewrites a file of the working tree by a text replacement.
    pub fn replace_in(&self, path: &str, from: &str, to: &str) -> impl FnOnce(&Path) + '_ {
        let (path, from, to) = (path.to_owned(), from.to_owned(), to.to_owned());
        move |work: &Path| {
            let p = work.join(&path);
            let text = std::fs::read_to_string(&p).unwrap();
            assert!(text.contains(&from), "{path} has no `{from}`");
            std::fs::write(&p, text.replacen(&from, &to, 1)).unwrap();
        }
    }

    pub fn head(&self) -> String {
        let out = Command::new("git")
            .current_dir(&self.work)
            .args(["rev-parse", "HEAD"])
            .output()
            .unwrap();
        String::from_utf8(out.stdout).unwrap().trim().to_owned()
    }

    /// Drops the last commit and force-pushes.
    pub fn force_push_back_one(&self) -> String {
        run(&self.work, &["reset", "-q", "--hard", "HEAD~1"]);
        run(&self.work, &["push", "-q", "--force", "origin", "main"]);
        self.head()
    }
}

/// Drops prod's change windows and, when `no_approvals`, its required approvals.
fn edit_prod_environment(work: &Path, no_approvals: bool) {
    let p = work.join("environments/prod/environment.yaml");
    let text = std::fs::read_to_string(&p).unwrap();
    let text: String = text
        .lines()
        .filter(|l| !l.contains("change_windows") && !l.contains("days: ["))
        .map(|l| match no_approvals {
            true => format!("{}\n", l.replace("required: 2", "required: 0")),
            false => format!("{l}\n"),
        })
        .collect();
    std::fs::write(&p, text).unwrap();
}

fn dir_of(repo: &SpecRepo) -> &Path {
    repo.bare.parent().unwrap()
}

fn identity(author: Author) -> Vec<(&'static str, String)> {
    vec![
        ("GIT_AUTHOR_NAME", author.0.to_owned()),
        ("GIT_AUTHOR_EMAIL", author.1.to_owned()),
        ("GIT_COMMITTER_NAME", author.0.to_owned()),
        ("GIT_COMMITTER_EMAIL", author.1.to_owned()),
    ]
}

fn run(dir: &Path, args: &[&str]) {
    git_as(dir, SEJIN, args);
}

/// Runs `git ARGS` in `dir` as `author`; its standard output. Panics when git fails.
pub fn git_as(dir: &Path, author: Author, args: &[&str]) -> String {
    let out = Command::new("git")
        .current_dir(dir)
        .args(args)
        .envs(identity(author))
        .output()
        .expect("git runs");
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("UTF-8 output")
}
