//! An environment's folder, whether it is read from git or from a working tree: which of its
//! files are read, within what limits, and how its errors and the spec's come back together.
//! The one place the folder's rules live; the readers only list entries and fetch content.

use super::{load_environment, size_refusal, sort_errors, valid_environment_name};
use super::{EnvironmentSpec, SourceFile, SpecError};

/// A file of an environment's folder, as a reader lists it before reading anything.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FolderEntry {
    /// The file's name inside the folder.
    pub name: String,
    /// A plain file (a git blob); folders and links are passed over.
    pub is_file: bool,
    /// Its size in bytes, as the listing knows it (a git object's header, file metadata).
    pub size: usize,
}

/// An error about a whole file or folder (line 1, column 1).
pub fn whole_file(file: String, message: String) -> SpecError {
    SpecError {
        file,
        line: 1,
        col: 1,
        message,
    }
}

/// Reads the spec files of folder `environments/<env>/`: every `*.yaml` plain file within the
/// size limits, in name order; a `*.yml` file, one over the limits or one that is not UTF-8 is
/// an error. `read` fetches one entry's content; it is asked only for files within the limits,
/// so a hostile file is never loaded. Its inner `Err` is a problem with that file (an error
/// naming it), its outer one stops the reading.
pub fn read_folder<E>(
    env: &str,
    mut entries: Vec<FolderEntry>,
    mut read: impl FnMut(&FolderEntry) -> Result<Result<Vec<u8>, String>, E>,
) -> Result<(Vec<SourceFile>, Vec<SpecError>), E> {
    entries.sort_by(|a, b| a.name.cmp(&b.name));
    let (mut files, mut errors) = (Vec::new(), Vec::new());
    let (mut index, mut bytes) = (0, 0);
    for entry in &entries {
        let path = format!("environments/{env}/{}", entry.name);
        if entry.name.ends_with(".yml") {
            errors.push(whole_file(
                path,
                "this file is not read: spec files end in .yaml".into(),
            ));
            continue;
        }
        if !entry.name.ends_with(".yaml") || !entry.is_file {
            continue;
        }
        if let Some(why) = size_refusal(index, entry.size, bytes) {
            errors.push(whole_file(path, why));
            index += 1;
            continue;
        }
        index += 1;
        bytes += entry.size;
        match read(entry)? {
            Ok(content) => match String::from_utf8(content) {
                Ok(text) => files.push(SourceFile { path, text }),
                Err(_) => errors.push(whole_file(path, "the file is not UTF-8 text".into())),
            },
            Err(why) => errors.push(whole_file(path, format!("cannot read the file: {why}"))),
        }
    }
    Ok((files, errors))
}

/// The error of a folder whose name is not an environment's name.
pub fn folder_name_error(env: &str) -> Option<SpecError> {
    (!valid_environment_name(env)).then(|| {
        whole_file(
            format!("environments/{env}/"),
            "an environment's folder name is lower-case letters, digits, `-` and `_`".into(),
        )
    })
}

/// The spec of environment `env` from its folder's files and the errors found reading them:
/// the folder's name is checked (by [`load_environment`], since the spec holds it as an
/// [`super::EnvName`]), the files loaded, and every error comes back in file order.
pub fn load_folder(
    env: &str,
    files: &[SourceFile],
    mut errors: Vec<SpecError>,
) -> Result<EnvironmentSpec, Vec<SpecError>> {
    match load_environment(env, files) {
        Ok(spec) if errors.is_empty() => Ok(spec),
        Ok(_) => Err(errors),
        Err(es) => {
            errors.extend(es);
            sort_errors(&mut errors);
            Err(errors)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(name: &str, size: usize) -> FolderEntry {
        FolderEntry {
            name: name.into(),
            is_file: true,
            size,
        }
    }

    #[test]
    fn a_folder_reads_its_yaml_files_in_name_order_and_names_each_file_it_does_not_read() {
        let entries = vec![
            entry("b.yaml", 3),
            entry("a.yml", 3),
            entry("README.md", 3),
            FolderEntry {
                name: "sub.yaml".into(),
                is_file: false,
                size: 0,
            },
            entry("c.yaml", 2),
            entry("a.yaml", 3),
            entry("big.yaml", super::super::MAX_FILE_BYTES + 1),
        ];
        let mut asked = Vec::new();
        let (files, errors) = read_folder("dev", entries, |e| {
            asked.push(e.name.clone());
            Ok::<_, ()>(match e.name.as_str() {
                "c.yaml" => Ok(vec![0xff, 0xfe]),
                "b.yaml" => Err("permission denied".to_owned()),
                _ => Ok(b"x: 1".to_vec()),
            })
        })
        .unwrap();
        assert_eq!(
            asked,
            ["a.yaml", "b.yaml", "c.yaml"],
            "the big file is never read"
        );
        assert_eq!(
            files.iter().map(|f| f.path.as_str()).collect::<Vec<_>>(),
            ["environments/dev/a.yaml"]
        );
        let shown: Vec<String> = errors.iter().map(ToString::to_string).collect();
        assert_eq!(shown.len(), 4, "{shown:?}");
        assert!(shown[0].starts_with("environments/dev/a.yml:1:1: this file is not read"));
        assert!(shown[1]
            .starts_with("environments/dev/b.yaml:1:1: cannot read the file: permission denied"));
        assert!(shown[2].starts_with("environments/dev/big.yaml:1:1: not read:"));
        assert_eq!(
            shown[3],
            "environments/dev/c.yaml:1:1: the file is not UTF-8 text"
        );
    }

    #[test]
    fn a_reader_that_fails_stops_the_reading() {
        let r = read_folder("dev", vec![entry("a.yaml", 1)], |_| {
            Err::<Result<Vec<u8>, String>, _>("io")
        });
        assert_eq!(r, Err("io"));
    }

    #[test]
    fn a_bad_folder_name_is_an_error_beside_the_specs_own() {
        let errors = load_folder("Prod", &[], Vec::new()).unwrap_err();
        assert_eq!(errors[0].file, "environments/Prod/");
        assert!(errors[0].message.contains("folder name"));
    }
}
