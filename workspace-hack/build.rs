//! Empty: cargo resolves `[build-dependencies]` only for a package with a build script, and
//! those are this crate's host-side feature set (see `Cargo.toml`).
fn main() {}
