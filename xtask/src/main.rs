//! `cargo xtask`: builds tierdeck from the workspace alone, with no tool installed by
//! `cargo install`. Every Rust tool it uses (wasm-bindgen's engine, and binaryen for
//! `--release` when built with the `wasm-opt` feature) is a dependency of this crate, so the
//! project's `Cargo.lock` decides its version and every build compiles it.
//!
//! `cargo xtask build [--release]` ([`site`]):
//! 1. the server (`tierdeck`, with `app/ssr`) for the host;
//! 2. the frontend (`tierdeck-frontend`, with `app/hydrate`) for `wasm32-unknown-unknown`;
//! 3. wasm-bindgen on its wasm (`--target web`), then wasm-opt for `--release`;
//! 4. the site beside the binary (`<target>/<profile>/site`), where `tierdeck serve` looks
//!    first: `pkg/tierdeck.{js,wasm,css}` and `pkg/snippets/`, and `public/`'s files at its
//!    root, the layout `cargo leptos build` writes to `target/site`.
//!
//! `cargo xtask features` ([`features`]): fails when the cargo invocations of the build and the
//! tests would compile a shared dependency with different features (so twice).

mod features;
mod site;

use std::{ffi::OsString, process::ExitCode};

use anyhow::{bail, Result};

const USAGE: &str = "usage: cargo xtask COMMAND

  build [--release]  the server, the wasm frontend and the site beside the binary;
                     --release: release server, size-optimised wasm (`wasm-release` profile,
                     then wasm-opt when this tool was built with `--features wasm-opt`)
  features           check that the build's and the tests' cargo invocations resolve every
                     shared dependency with the same features";

fn main() -> ExitCode {
    let args: Vec<OsString> = std::env::args_os().skip(1).collect();
    let result = parse(&args).and_then(|command| match command {
        Command::Help => {
            println!("{USAGE}");
            Ok(())
        }
        Command::Build { release } => site::build(release),
        Command::Features => features::check(),
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("xtask: {e:#}");
            ExitCode::FAILURE
        }
    }
}

#[derive(Debug, PartialEq)]
enum Command {
    Help,
    Build { release: bool },
    Features,
}

fn parse(args: &[OsString]) -> Result<Command> {
    let args: Vec<String> = args
        .iter()
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    let (command, rest) = match args.split_first() {
        Some((command, rest)) => (command.as_str(), rest),
        None => bail!("no command given\n{USAGE}"),
    };
    let command = match command {
        "-h" | "--help" | "help" => Command::Help,
        "build" => {
            let mut release = false;
            for arg in rest {
                match arg.as_str() {
                    "--release" => release = true,
                    other => bail!("`build`: unknown argument `{other}`\n{USAGE}"),
                }
            }
            return Ok(Command::Build { release });
        }
        "features" => Command::Features,
        other => bail!("unknown command `{other}`\n{USAGE}"),
    };
    if let Some(extra) = rest.first() {
        bail!("`{}`: unknown argument `{extra}`\n{USAGE}", args[0]);
    }
    Ok(command)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(list: &[&str]) -> Vec<OsString> {
        list.iter().map(OsString::from).collect()
    }

    #[test]
    fn commands_take_only_their_own_arguments() {
        assert_eq!(
            parse(&args(&["build"])).unwrap(),
            Command::Build { release: false }
        );
        assert_eq!(
            parse(&args(&["build", "--release"])).unwrap(),
            Command::Build { release: true }
        );
        assert_eq!(parse(&args(&["features"])).unwrap(), Command::Features);
        let err = parse(&args(&["build", "--relase"]))
            .unwrap_err()
            .to_string();
        assert!(err.contains("unknown argument `--relase`"), "{err}");
        let err = parse(&args(&["features", "-v"])).unwrap_err().to_string();
        assert!(err.contains("`features`: unknown argument `-v`"), "{err}");
        let err = parse(&args(&["serve"])).unwrap_err().to_string();
        assert!(err.contains("unknown command `serve`"), "{err}");
        assert!(parse(&args(&[])).is_err());
    }
}
