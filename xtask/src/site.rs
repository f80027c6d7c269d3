//! `cargo xtask build`: the server, the wasm frontend through wasm-bindgen, and the site
//! folder the server serves, written beside the binary.

use std::{
    ffi::OsString,
    fs,
    path::{Path, PathBuf},
    process::Command,
    time::Instant,
};

use anyhow::{bail, Context, Result};

/// The name the server asks for (`LEPTOS_OUTPUT_NAME` in `.cargo/config.toml`, `output-name`
/// in `[workspace.metadata.leptos]`).
const OUTPUT_NAME: &str = "tierdeck";
const WASM_TARGET: &str = "wasm32-unknown-unknown";

/// Builds the server and the site beside it.
pub fn build(release: bool) -> Result<()> {
    let started = Instant::now();
    let workspace = workspace_root();
    let target = target_dir(&workspace)?;
    let profile = Profile::new(release);

    // One after the other: building the wasm beside the server (in a build folder of its
    // own, as cargo locks one per invocation) was slower on two cores, 624 s against 534 s
    // from empty, the two builds contending and the host crates built twice.
    step("server (tierdeck, ssr)", || {
        cargo(
            &workspace,
            &["build", "-p", "tierdeck", "--bin", "tierdeck"],
            profile.server,
        )
    })?;
    step("frontend (tierdeck-frontend, hydrate) to wasm", || {
        cargo(
            &workspace,
            &[
                "build",
                "-p",
                "tierdeck-frontend",
                "--lib",
                "--target",
                WASM_TARGET,
            ],
            profile.wasm,
        )
    })?;

    let wasm = target
        .join(WASM_TARGET)
        .join(out_dir(profile.wasm))
        .join("tierdeck_frontend.wasm");
    let out = target.join(out_dir(profile.server));
    let site = out.join("site");
    let staging = out.join("site.new");
    if staging.exists() {
        fs::remove_dir_all(&staging).with_context(|| format!("removing {}", staging.display()))?;
    }
    let pkg = staging.join("pkg");
    let stamp_path = out.join("site.stamp");
    let stamp = Stamp::of(&wasm, release)?;
    let kept = site.join("pkg").is_dir() && Stamp::read(&stamp_path).as_ref() == Some(&stamp);
    if kept {
        // The wasm is the one the site was made from: keep its bindings.
        copy_tree(&site.join("pkg"), &pkg)?;
        eprintln!("xtask: wasm-bindgen: the wasm is unchanged, its output is kept");
    } else {
        step("wasm-bindgen", || bindgen(&wasm, &pkg, release))?;
        if release {
            step("wasm-opt", || {
                optimise(&pkg.join(format!("{OUTPUT_NAME}.wasm")))
            })?;
        }
    }
    step("style and public assets", || {
        copy_file(
            &workspace.join("style/main.css"),
            &pkg.join(format!("{OUTPUT_NAME}.css")),
        )?;
        copy_tree(&workspace.join("public"), &staging)
    })?;
    step("gzip", || precompress(&pkg, kept))?;
    replace_dir(&staging, &site)?;
    stamp.write(&stamp_path)?;

    let wasm_out = site.join("pkg").join(format!("{OUTPUT_NAME}.wasm"));
    let size = fs::metadata(&wasm_out).map(|m| m.len()).unwrap_or(0);
    println!(
        "xtask: built in {:.1} s: {} and the site {} (wasm {} KB)",
        started.elapsed().as_secs_f64(),
        out.join("tierdeck").display(),
        site.display(),
        size / 1024
    );
    Ok(())
}

/// What the site's bindings were made from: the wasm's size and modification time, and
/// whether it was optimised. The same stamp means wasm-bindgen (and wasm-opt) would write the
/// same files again.
#[derive(Debug, PartialEq)]
struct Stamp(String);

impl Stamp {
    fn of(wasm: &Path, release: bool) -> Result<Self> {
        let meta = fs::metadata(wasm)
            .with_context(|| format!("{} is missing after the wasm build", wasm.display()))?;
        let modified = meta
            .modified()
            .ok()
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        let optimised = release && cfg!(feature = "wasm-opt");
        Ok(Stamp(format!(
            "{} {} {modified} optimised={optimised}",
            wasm.display(),
            meta.len()
        )))
    }

    fn read(path: &Path) -> Option<Self> {
        fs::read_to_string(path)
            .ok()
            .map(|s| Stamp(s.trim().to_string()))
    }

    fn write(&self, path: &Path) -> Result<()> {
        fs::write(path, &self.0).with_context(|| format!("writing {}", path.display()))
    }
}

/// The cargo profiles of a build: the server's and the wasm's.
struct Profile {
    server: &'static str,
    wasm: &'static str,
}

impl Profile {
    fn new(release: bool) -> Self {
        if release {
            Profile {
                server: "release",
                wasm: "wasm-release",
            }
        } else {
            Profile {
                server: "dev",
                wasm: "dev",
            }
        }
    }
}

/// The folder a profile's output lands in below the target folder (`dev` writes `debug`).
fn out_dir(profile: &str) -> &str {
    if profile == "dev" {
        "debug"
    } else {
        profile
    }
}

fn step(what: &str, f: impl FnOnce() -> Result<()>) -> Result<()> {
    let started = Instant::now();
    eprintln!("xtask: {what}");
    f().with_context(|| format!("{what} failed"))?;
    eprintln!(
        "xtask: {what}: done in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

/// The workspace root: this crate's parent folder.
pub fn workspace_root() -> PathBuf {
    let manifest = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    manifest.parent().map(Path::to_path_buf).unwrap_or(manifest)
}

pub fn cargo_bin() -> OsString {
    std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into())
}

/// Cargo's target folder as cargo itself sees it (`CARGO_TARGET_DIR`, `build.target-dir`).
fn target_dir(workspace: &Path) -> Result<PathBuf> {
    let out = Command::new(cargo_bin())
        .current_dir(workspace)
        .args([
            "metadata",
            "--format-version",
            "1",
            "--no-deps",
            "--offline",
        ])
        .output()
        .context("running `cargo metadata`")?;
    if !out.status.success() {
        bail!(
            "`cargo metadata` failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    let meta: serde_json::Value =
        serde_json::from_slice(&out.stdout).context("reading `cargo metadata`'s output")?;
    meta["target_directory"]
        .as_str()
        .map(PathBuf::from)
        .context("`cargo metadata` named no target_directory")
}

fn cargo(workspace: &Path, args: &[&str], profile: &str) -> Result<()> {
    let status = Command::new(cargo_bin())
        .current_dir(workspace)
        .args(args)
        .args(["--profile", profile])
        .status()
        .with_context(|| format!("running `cargo {}`", args.join(" ")))?;
    if !status.success() {
        bail!(
            "`cargo {} --profile {profile}` exited with {status}",
            args.join(" ")
        );
    }
    Ok(())
}

/// wasm-bindgen for the browser (ES module, `--target web`), written as `pkg/tierdeck.js`,
/// `pkg/tierdeck.wasm` (not `_bg.wasm`: Leptos asks for `<output-name>.wasm` when
/// `LEPTOS_OUTPUT_NAME` is set) and `pkg/snippets/`.
fn bindgen(wasm: &Path, pkg: &Path, release: bool) -> Result<()> {
    let mut bindgen = wasm_bindgen_cli_support::Bindgen::new();
    bindgen
        .input_path(wasm)
        .out_name(OUTPUT_NAME)
        .typescript(false)
        .debug(!release)
        .keep_debug(!release)
        // The function names (2 of the 4 MB) are for debugging; wasm-opt drops them too, but a
        // release built without it would ship them.
        .remove_name_section(release)
        .remove_producers_section(release)
        .web(true)?;
    let mut output = bindgen
        .generate_output()
        .with_context(|| format!("wasm-bindgen on {}", wasm.display()))?;
    output
        .emit(pkg)
        .with_context(|| format!("writing {}", pkg.display()))?;
    let emitted = pkg.join(format!("{OUTPUT_NAME}_bg.wasm"));
    let wanted = pkg.join(format!("{OUTPUT_NAME}.wasm"));
    fs::rename(&emitted, &wanted)
        .with_context(|| format!("renaming {} to {}", emitted.display(), wanted.display()))?;
    Ok(())
}

#[cfg(feature = "wasm-opt")]
fn optimise(wasm: &Path) -> Result<()> {
    use wasm_opt::{Feature, OptimizationOptions};
    let before = fs::metadata(wasm)?.len();
    // `-Oz`, but no function with one caller inlined into it: that inlining saves 3 % of the
    // bytes and costs 12 % more once gzipped (measured on this app: 2.03 MB / 602 KB gzipped
    // against 1.98 MB / 686 KB), and a proxy or CDN in front of the panel sends it gzipped.
    OptimizationOptions::new_optimize_for_size_aggressively()
        .one_caller_inline_max_size(0)
        // The features rustc's wasm32 target emits by default; binaryen must accept them.
        .enable_feature(Feature::BulkMemory)
        .enable_feature(Feature::TruncSat)
        .enable_feature(Feature::ReferenceTypes)
        .enable_feature(Feature::Multivalue)
        .run(wasm, wasm)
        .map_err(|e| anyhow::anyhow!("wasm-opt on {}: {e}", wasm.display()))?;
    let after = fs::metadata(wasm)?.len();
    eprintln!(
        "xtask: wasm-opt: {} KB → {} KB",
        before / 1024,
        after / 1024
    );
    Ok(())
}

#[cfg(not(feature = "wasm-opt"))]
fn optimise(_wasm: &Path) -> Result<()> {
    eprintln!(
        "xtask: wasm-opt skipped: this build of xtask has no binaryen \
         (`cargo run -p xtask --features wasm-opt -- build --release` adds it)"
    );
    Ok(())
}

/// `NAME.gz` beside each file of `pkg`, for the server to send a browser that accepts gzip
/// (its `/pkg` service prefers a `.gz` beside the file asked for). With `kept`, the bindings'
/// files and their `.gz` were copied from the last build unchanged, so only the rest (the
/// style sheet) is compressed again.
fn precompress(pkg: &Path, kept: bool) -> Result<()> {
    use std::io::Write;
    for entry in fs::read_dir(pkg).with_context(|| format!("reading {}", pkg.display()))? {
        let path = entry?.path();
        if !path.is_file() || path.extension().is_some_and(|e| e == "gz") {
            continue;
        }
        let mut gz = path.clone().into_os_string();
        gz.push(".gz");
        let gz = PathBuf::from(gz);
        let bindings = path.extension().is_some_and(|e| e == "wasm" || e == "js");
        if kept && bindings && gz.is_file() {
            continue;
        }
        let data = fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        encoder.write_all(&data)?;
        let packed = encoder.finish()?;
        fs::write(&gz, packed).with_context(|| format!("writing {}", gz.display()))?;
    }
    Ok(())
}

fn copy_file(from: &Path, to: &Path) -> Result<()> {
    if let Some(parent) = to.parent() {
        fs::create_dir_all(parent).with_context(|| format!("creating {}", parent.display()))?;
    }
    fs::copy(from, to)
        .with_context(|| format!("copying {} to {}", from.display(), to.display()))?;
    Ok(())
}

fn copy_tree(from: &Path, to: &Path) -> Result<()> {
    fs::create_dir_all(to).with_context(|| format!("creating {}", to.display()))?;
    for entry in fs::read_dir(from).with_context(|| format!("reading {}", from.display()))? {
        let entry = entry?;
        let path = entry.path();
        let dest = to.join(entry.file_name());
        if entry.file_type()?.is_dir() {
            copy_tree(&path, &dest)?;
        } else {
            copy_file(&path, &dest)?;
        }
    }
    Ok(())
}

/// Puts the new site in place in one rename after the old one is moved aside, so a server
/// started meanwhile finds either the old site or the new one.
fn replace_dir(new: &Path, dest: &Path) -> Result<()> {
    let old = dest.with_extension("old");
    if old.exists() {
        fs::remove_dir_all(&old).with_context(|| format!("removing {}", old.display()))?;
    }
    if dest.exists() {
        fs::rename(dest, &old).with_context(|| format!("moving {} aside", dest.display()))?;
    }
    fs::rename(new, dest)
        .with_context(|| format!("moving {} to {}", new.display(), dest.display()))?;
    if old.exists() {
        fs::remove_dir_all(&old).with_context(|| format!("removing {}", old.display()))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dev_writes_to_debug_and_other_profiles_to_their_name() {
        assert_eq!(out_dir("dev"), "debug");
        assert_eq!(out_dir("release"), "release");
        assert_eq!(out_dir("wasm-release"), "wasm-release");
    }

    #[test]
    fn copies_a_tree_and_replaces_a_folder_whole() {
        let dir = tempfile::tempdir().unwrap();
        let src = dir.path().join("public");
        fs::create_dir_all(src.join("img")).unwrap();
        fs::write(src.join("favicon.svg"), "<svg/>").unwrap();
        fs::write(src.join("img/logo.svg"), "<svg/>").unwrap();
        let dest = dir.path().join("site");
        fs::create_dir_all(&dest).unwrap();
        fs::write(dest.join("stale.js"), "old").unwrap();

        let staging = dir.path().join("site.new");
        copy_tree(&src, &staging).unwrap();
        replace_dir(&staging, &dest).unwrap();

        assert!(dest.join("favicon.svg").is_file());
        assert!(dest.join("img/logo.svg").is_file());
        assert!(
            !dest.join("stale.js").exists(),
            "the old site is gone whole"
        );
        assert!(!staging.exists() && !dest.with_extension("old").exists());
    }
}
