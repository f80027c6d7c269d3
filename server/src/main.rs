//! `tierdeck`: the panel's server and its command line.

mod boot;
mod cli;
mod config;
mod cost;
mod http;
mod import;
mod spec_tree;

use std::process::ExitCode;

use clap::Parser;

/// mimalloc, not glibc's malloc: a page render allocates and frees many small strings and
/// nodes across the runtime's threads, where glibc's arenas spent a quarter of the server's
/// time (`malloc_consolidate`, `_int_free`) under 32 concurrent page views.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let args = cli::Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("tierdeck: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(cli::run(args))
}
