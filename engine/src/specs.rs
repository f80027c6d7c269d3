//! Reading a spec repository's environments from a folder (a working tree), for
//! `tierdeck validate` and for the watcher's checkouts.

use std::path::Path;

use domain::spec::folder::{folder_name_error, load_folder, read_folder, whole_file, FolderEntry};
use domain::spec::{EnvironmentSpec, SourceFile, SpecError};

/// One environment's files, paths relative to the repository's root.
#[derive(Debug, Clone)]
pub struct EnvironmentFiles {
    pub name: String,
    pub files: Vec<SourceFile>,
}

/// Reads `environments/<name>/*.yaml` below `root`. Problems with the layout itself (no
/// `environments/`, a bad folder name, a file that is not UTF-8) come back as errors beside
/// whatever could be read.
pub fn read_tree(root: &Path) -> (Vec<EnvironmentFiles>, Vec<SpecError>) {
    let mut envs = Vec::new();
    let mut errors = Vec::new();
    let dir = root.join("environments");
    let entries = match std::fs::read_dir(&dir) {
        Ok(e) => e,
        Err(e) => {
            errors.push(whole_file(
                "environments/".into(),
                format!(
                    "cannot read the environments folder of {}: {e}",
                    root.display()
                ),
            ));
            return (envs, errors);
        }
    };
    let mut folders: Vec<_> = entries
        .filter_map(Result::ok)
        .filter(|e| e.path().is_dir())
        .collect();
    folders.sort_by_key(|e| e.file_name());
    for folder in folders {
        let name = folder.file_name().to_string_lossy().into_owned();
        if name.starts_with('.') {
            continue;
        }
        if let Some(e) = folder_name_error(&name) {
            errors.push(e);
            continue;
        }
        let listing = match std::fs::read_dir(folder.path()) {
            Ok(l) => l.filter_map(Result::ok),
            Err(e) => {
                errors.push(whole_file(
                    format!("environments/{name}/"),
                    format!("cannot read the folder: {e}"),
                ));
                continue;
            }
        };
        let entries = listing
            .map(|e| FolderEntry {
                name: e.file_name().to_string_lossy().into_owned(),
                is_file: e.path().is_file(),
                size: e.metadata().map_or(0, |m| m.len()) as usize,
            })
            .collect();
        let dir = folder.path();
        let Ok((files, found)) = read_folder(&name, entries, |e| {
            Ok::<_, std::convert::Infallible>(
                std::fs::read(dir.join(&e.name)).map_err(|e| e.to_string()),
            )
        });
        errors.extend(found);
        envs.push(EnvironmentFiles { name, files });
    }
    if envs.is_empty() && errors.is_empty() {
        errors.push(whole_file(
            "environments/".into(),
            "there are no environments: add a folder environments/<name>/".into(),
        ));
    }
    (envs, errors)
}

/// The result of validating a whole tree.
#[derive(Debug, Clone, Default)]
pub struct Validation {
    pub environments: Vec<(String, EnvironmentSpec)>,
    pub errors: Vec<SpecError>,
}

/// Reads and validates every environment below `root`; no network, no database.
pub fn validate_tree(root: &Path) -> Validation {
    let (envs, mut errors) = read_tree(root);
    let mut environments = Vec::new();
    for env in envs {
        match load_folder(&env.name, &env.files, Vec::new()) {
            Ok(spec) => environments.push((env.name, spec)),
            Err(es) => errors.extend(es),
        }
    }
    domain::spec::sort_errors(&mut errors);
    Validation {
        environments,
        errors,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_example_repository_validates_clean() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/petclinic");
        let v = validate_tree(&root);
        assert!(v.errors.is_empty(), "{:#?}", v.errors);
        let names: Vec<&str> = v.environments.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["prod", "staging"]);
        let prod = &v.environments[0].1;
        assert_eq!(prod.autoscaling_groups.len(), 2);
        assert_eq!(
            prod.autoscaling_groups[1].schedule[3].capacity.min(),
            Some(5)
        );
        assert_eq!(prod.security_groups.len(), 5);
        assert_eq!(prod.slos.len(), 3);
    }

    #[test]
    fn layout_problems_are_errors() {
        let dir = tempfile::tempdir().unwrap();
        let v = validate_tree(dir.path());
        assert!(v.errors[0]
            .message
            .starts_with("cannot read the environments folder"));

        std::fs::create_dir_all(dir.path().join("environments/Prod")).unwrap();
        std::fs::create_dir_all(dir.path().join("environments/dev")).unwrap();
        std::fs::write(dir.path().join("environments/dev/a.yml"), "x: 1").unwrap();
        std::fs::write(dir.path().join("environments/dev/b.yaml"), [0xff, 0xfe]).unwrap();
        let v = validate_tree(dir.path());
        let shown: Vec<String> = v.errors.iter().map(ToString::to_string).collect();
        assert_eq!(
            shown,
            [
                "environments/Prod/:1:1: an environment's folder name is lower-case letters, digits, `-` and `_`",
                "environments/dev/:1:1: no file of this environment sets the top-level key `environment`",
                "environments/dev/a.yml:1:1: this file is not read: spec files end in .yaml",
                "environments/dev/b.yaml:1:1: the file is not UTF-8 text",
            ]
        );
    }
}
