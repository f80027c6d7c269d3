//! `tierdeck import`: an environment's spec written from what runs in the account, validated,
//! and proven by planning it against the same account ("No changes").

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use domain::import::{Context, Selector};
use domain::spec::EnvName;
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
    let command = format!(
        "tierdeck import {env} --region {} {}",
        args.region,
        args.selector.text()
    );
    let reading = match engine
        .imports()
        .read(&Caller::System, &env, &args.region, &args.selector)
        .await
    {
        Ok(r) => r,
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
    let found = &reading.found;
    let print_unread = || {
        if !found.unread.is_empty() {
            println!("\nCould not read (access denied; the rest was read):");
            for u in &found.unread {
                println!("  - {}: the credentials may not call {}", u.what, u.action);
            }
        }
    };
    if found.is_empty() {
        println!(
            "Nothing in {} matches {}: no Auto Scaling group and no database. Nothing was written.",
            args.region,
            args.selector.text()
        );
        print_unread();
        return Ok(ExitCode::FAILURE);
    }
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
        reading.elapsed.as_millis(),
        plural(reading.calls as usize, "AWS call", "AWS calls"),
    );

    let floor = engine.settings.policy.clone();
    let imported = domain::import::write(
        found,
        &Context {
            env: env.as_str(),
            region: &args.region,
            command: &command,
            floor: &floor,
        },
    );
    // Replacing (--force): the folder's old spec files go, so no key is left in two files.
    for old in &existing {
        let path = folder.join(old);
        std::fs::remove_file(&path).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
    }
    std::fs::create_dir_all(&folder).map_err(|e| anyhow::anyhow!("{}: {e}", folder.display()))?;
    for (name, text) in &imported.files {
        let path = folder.join(name);
        std::fs::write(&path, text).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
    }
    let names: Vec<&str> = imported.files.iter().map(|(n, _)| n.as_str()).collect();
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
    print_unread();

    if !imported.unexpressed.is_empty() {
        println!(
            "\nNot expressed in the spec ({}; each is a comment in the files too):",
            imported.unexpressed.len()
        );
        for u in &imported.unexpressed {
            println!("  - {u}");
        }
    }

    // What tierdeck validate says of the written files.
    let validation = engine::specs::validate_tree(&args.out);
    let own = format!("environments/{env}/");
    let errors: Vec<_> = validation
        .errors
        .iter()
        .filter(|e| e.file.starts_with(&own))
        .collect();
    let spec = validation
        .environments
        .iter()
        .find(|(n, _)| n == env.as_str())
        .map(|(_, s)| s.clone());
    let spec = match spec {
        Some(s) if errors.is_empty() => s,
        _ => {
            println!("\nThe written files do not validate (a fault of tierdeck import; please report it):");
            for e in errors {
                println!("  {}/{e}", args.out.display());
            }
            return Ok(ExitCode::FAILURE);
        }
    };
    println!("\ntierdeck validate: the written spec is valid.");

    // The round trip.
    let clean = match engine.imports().plan_written(&spec).await {
        Ok(planned) => {
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
            plan.is_empty()
        }
        Err(e) => {
            println!("\nRound trip: the written spec could not be planned: {e}");
            false
        }
    };

    let policy = domain::policy::judge(domain::policy::Applied::Never, &spec, &floor);
    let violations = domain::guardrails::check(&spec, &policy);
    if !violations.is_empty() {
        println!(
            "\nGuardrail violations of what runs ({}): each blocks changes until the spec keeps it:",
            violations.len()
        );
        for v in &violations {
            println!("  - {}/{v}", args.out.display());
        }
    }
    println!(
        "\nImported {env} in {} ms{}.",
        started.elapsed().as_millis(),
        if clean && found.unread.is_empty() {
            ""
        } else if clean {
            ", with resources it could not read"
        } else {
            ", with differences listed above"
        }
    );
    Ok(if clean && found.unread.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
