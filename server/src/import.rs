//! `tierdeck import`: an environment's spec written from what runs in the account, validated,
//! and proven by planning it against the same account ("No changes"); the work is the engine's
//! ([`engine::service::import`]), this prints it and writes the files.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use domain::import::{Selector, Unread};
use domain::spec::EnvName;
use engine::service::import::Outcome;
use engine::{Caller, Engine};

/// What `tierdeck import` was asked.
#[derive(Debug)]
pub struct ImportArgs {
    pub env: String,
    pub region: String,
    pub selector: Selector,
    pub out: PathBuf,
    pub force: bool,
}

/// The spec files in `folder` (`*.yaml`, and `*.yml`, which the spec refuses), by name.
fn spec_files(folder: &Path) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir(folder) else {
        return Vec::new();
    };
    let mut names: Vec<String> = entries
        .filter_map(Result::ok)
        .filter(|e| e.path().is_file())
        .filter_map(|e| e.file_name().into_string().ok())
        .filter(|n| n.ends_with(".yaml") || n.ends_with(".yml"))
        .collect();
    names.sort();
    names
}

fn plural(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

fn print_unread(unread: &[Unread]) {
    if !unread.is_empty() {
        println!("\nCould not read (access denied; the rest was read):");
        for u in unread {
            println!("  - {}: the credentials may not call {}", u.what, u.action);
        }
    }
}

pub async fn run(engine: &Engine, args: ImportArgs) -> anyhow::Result<ExitCode> {
    let started = Instant::now();
    let env: EnvName = match args.env.parse() {
        Ok(e) => e,
        Err(why) => {
            eprintln!("tierdeck: {why}");
            return Ok(ExitCode::from(2));
        }
    };
    let folder = args.out.join("environments").join(env.as_str());
    let existing = spec_files(&folder);
    if !existing.is_empty() && !args.force {
        eprintln!(
            "tierdeck: {} holds a spec already ({}): nothing was read or written; pass --force to replace those files",
            folder.display(),
            existing.join(", ")
        );
        return Ok(ExitCode::from(2));
    }
    let outcome = engine
        .imports()
        .import(&Caller::System, &env, &args.region, &args.selector)
        .await;
    let import = match outcome {
        Ok(Outcome::Imported(i)) => i,
        Ok(Outcome::NothingMatched(reading)) => {
            println!(
                "Nothing in {} matches {}: no Auto Scaling group and no database. Nothing was written.",
                args.region,
                args.selector.text()
            );
            print_unread(&reading.found.unread);
            return Ok(ExitCode::FAILURE);
        }
        Err(e) => {
            eprintln!("tierdeck: {e}");
            if engine.settings.aws.endpoint_url.is_some()
                && matches!(e, engine::ServiceError::AwsCredentials(_))
            {
                eprintln!("  {}", crate::cli::EMULATOR_KEYS);
            }
            return Ok(ExitCode::FAILURE);
        }
    };
    let found = &import.reading.found;
    println!(
        "Read {} for {env} ({}): {}, {}, {}, {}, {}; {} ms, {}.",
        args.region,
        args.selector.text(),
        plural(
            found.groups.len(),
            "Auto Scaling group",
            "Auto Scaling groups"
        ),
        plural(found.databases.len(), "database", "databases"),
        plural(
            found.security_groups.len(),
            "security group",
            "security groups"
        ),
        plural(found.subnets.len(), "subnet", "subnets"),
        plural(found.network_acls.len(), "network ACL", "network ACLs"),
        import.reading.elapsed.as_millis(),
        plural(import.reading.calls as usize, "AWS call", "AWS calls"),
    );

    // Replacing (--force): the folder's old spec files go, so no key is left in two files.
    for old in &existing {
        let path = folder.join(old);
        std::fs::remove_file(&path).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
    }
    std::fs::create_dir_all(&folder).map_err(|e| anyhow::anyhow!("{}: {e}", folder.display()))?;
    for (name, text) in &import.files {
        let path = folder.join(name);
        std::fs::write(&path, text).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
    }
    let names: Vec<&str> = import.files.iter().map(|(n, _)| n.as_str()).collect();
    println!(
        "Wrote {}/: {}{}",
        folder.display(),
        names.join(", "),
        if existing.is_empty() {
            String::new()
        } else {
            format!(" (replacing {})", existing.join(", "))
        }
    );
    print_unread(&found.unread);
    if !import.unmatched.is_empty() {
        println!(
            "\nNo group or database of these names: {}",
            import.unmatched.join(", ")
        );
    }

    if !import.unexpressed.is_empty() {
        println!(
            "\nNot expressed in the spec ({}; each is a comment in the files too):",
            import.unexpressed.len()
        );
        for u in &import.unexpressed {
            println!("  - {u}");
        }
    }

    if let Err(errors) = &import.spec {
        println!(
            "\nThe written files do not validate (a fault of tierdeck import; please report it):"
        );
        for e in errors {
            println!("  {}/{e}", args.out.display());
        }
        return Ok(ExitCode::FAILURE);
    }
    println!("\ntierdeck validate: the written spec is valid.");

    match &import.round_trip {
        Some(Ok(planned)) => {
            let plan = &planned.plan;
            println!(
                "\nRound trip: the written spec planned against {} ({} ms, {}):",
                planned.region,
                planned.read_ms,
                plural(planned.aws_calls as usize, "AWS call", "AWS calls")
            );
            if plan.is_empty() {
                println!("  No changes: the spec says what runs.");
            } else {
                println!("  The plan is not empty: what the spec could not express as it runs:");
                for (i, op) in plan.operations.iter().enumerate() {
                    println!("  {:>2}. {op}", i + 1);
                }
                for e in &plan.errors {
                    println!("  error: {e}");
                }
            }
            for n in &plan.notes {
                println!("  note: {n}");
            }
        }
        Some(Err(why)) => println!("\nRound trip: the written spec could not be planned: {why}"),
        None => {}
    }

    if !import.violations.is_empty() {
        println!(
            "\nGuardrail violations of what runs ({}): each blocks changes until the spec keeps it:",
            import.violations.len()
        );
        for v in &import.violations {
            println!("  - {}/{v}", args.out.display());
        }
    }
    println!(
        "\nImported {env} in {} ms{}.",
        started.elapsed().as_millis(),
        if import.is_clean() {
            ""
        } else if import.round_trip_clean() && import.unmatched.is_empty() {
            ", with resources it could not read"
        } else if import.round_trip_clean() {
            ", with names that matched nothing"
        } else {
            ", with differences listed above"
        }
    );
    Ok(if import.is_clean() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
