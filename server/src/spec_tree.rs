//! Reading a spec repository's working tree for the offline commands, which stop at its
//! errors.

/// The spec repository at `root`, or `None` after printing its errors.
pub(crate) fn valid_tree(root: &std::path::Path) -> Option<engine::specs::Validation> {
    let v = engine::specs::validate_tree(root);
    if v.errors.is_empty() {
        return Some(v);
    }
    for e in &v.errors {
        eprintln!("{e}");
    }
    eprintln!("tierdeck: the spec repository has errors; fix them first");
    None
}
