//! The command line: `serve`, `user`, `token`, `audit`, `plan`, `import` and the offline ones.

use std::io::BufRead;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};
use engine::service::users::NewUser;
use engine::{Caller, Engine, RequestMeta};

use crate::boot::open_engine;
use crate::config::Config;
use crate::spec_tree::valid_tree;

#[derive(Debug, Parser)]
#[command(
    name = "tierdeck",
    version,
    about = "A GitOps control panel for a 3-tier AWS service"
)]
pub struct Cli {
    /// The configuration file (default: tierdeck.toml in the working folder, if present).
    #[arg(long, global = true, value_name = "FILE")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the panel (migrates the database first).
    Serve,
    /// Manage users.
    #[command(subcommand)]
    User(UserCommand),
    /// Manage API tokens.
    #[command(subcommand)]
    Token(TokenCommand),
    /// Work with the audit log.
    #[command(subcommand)]
    Audit(AuditCommand),
    /// Work with the panel's database.
    #[command(subcommand)]
    Db(DbCommand),
    /// Print the plan of the tracked branch's head against live AWS for one environment.
    Plan {
        /// The environment (its folder name).
        env: String,
    },
    /// Work with an AWS emulator for trials and tests.
    #[command(subcommand)]
    Sandbox(SandboxCommand),
    /// Service level objectives.
    #[command(subcommand)]
    Slo(SloCommand),
    /// Print an environment's monthly cost from a spec repository's working tree and a price
    /// file, offline, and with --against what it adds to the spec at another revision.
    Cost {
        /// The environment (its folder name).
        env: String,
        /// The spec repository's root folder.
        #[arg(long, default_value = ".")]
        spec: PathBuf,
        /// A git revision of the same repository to compare with (`main`, `HEAD~1`, a SHA).
        #[arg(long)]
        against: Option<String>,
        /// The price file (see docs/cost.md).
        #[arg(long)]
        prices: PathBuf,
        /// The month to price (`2026-12`; default: this month, UTC).
        #[arg(long)]
        month: Option<String>,
    },
    /// Write an environment's spec from what runs in the account (its Auto Scaling groups with
    /// their CPU scaling and schedules, databases, security groups, subnets and network ACLs),
    /// validate it, and plan it against the same account: "No changes" proves it.
    #[command(group(clap::ArgGroup::new("select").required(true).args(["tag", "prefix", "names"])))]
    Import {
        /// The environment (the folder name it gets).
        env: String,
        /// The AWS region to read.
        #[arg(long)]
        region: String,
        /// Take the groups and databases carrying this tag.
        #[arg(long, value_name = "KEY=VALUE")]
        tag: Option<String>,
        /// Take the groups and databases whose names begin so.
        #[arg(long, value_name = "NAME-PREFIX")]
        prefix: Option<String>,
        /// Take the groups and databases of these names.
        #[arg(long, value_name = "NAME", num_args = 1..)]
        names: Vec<String>,
        /// The spec repository's root folder: the files go to OUT/environments/ENV/.
        #[arg(long, default_value = ".")]
        out: PathBuf,
        /// Replace the spec files already in that folder.
        #[arg(long)]
        force: bool,
    },
    /// Validate a spec repository's working tree offline; every error as `file:line:col:
    /// message`, exit 1 when any.
    Validate {
        /// The repository's root folder (the one holding environments/).
        #[arg(default_value = ".")]
        path: PathBuf,
    },
}

#[derive(Debug, Subcommand)]
enum UserCommand {
    /// Create a user; the password is read from the first line of standard input.
    Add {
        name: String,
        #[arg(long)]
        role: String,
        #[arg(long)]
        email: Option<String>,
        /// Read the password from standard input (required: passwords never go on the command line).
        #[arg(long, required = true)]
        password_stdin: bool,
    },
    /// Change a user's role.
    SetRole { name: String, role: String },
    /// Set or change a user's e-mail address (the one their commits carry: approvers need
    /// one).
    SetEmail { name: String, email: String },
    /// Disable a user: their sessions end and their API tokens are revoked.
    Disable { name: String },
    /// Enable a disabled user again.
    Enable { name: String },
    /// List users.
    List,
}

#[derive(Debug, Subcommand)]
enum TokenCommand {
    /// Create an API token for a user and print it once.
    Create {
        #[arg(long)]
        user: String,
        #[arg(long)]
        label: String,
    },
    /// Revoke an API token by its id.
    Revoke { id: i64 },
    /// List a user's API tokens.
    List {
        #[arg(long)]
        user: String,
    },
}

#[derive(Debug, Subcommand)]
enum SandboxCommand {
    /// Create in an emulator the resources a spec repository names, with settings unlike the
    /// specs. Refuses any endpoint that is not a loopback address.
    Up {
        /// The emulator, e.g. http://127.0.0.1:5000.
        #[arg(long)]
        endpoint: String,
        /// The spec repository's root folder.
        #[arg(long, default_value = ".")]
        spec: PathBuf,
    },
}

#[derive(Debug, Subcommand)]
enum SloCommand {
    /// Print Prometheus recording and alerting rules for an environment's SLOs (offline, from
    /// a spec repository's working tree).
    Rules {
        /// The environment (its folder name).
        env: String,
        /// The spec repository's root folder.
        #[arg(long, default_value = ".")]
        spec: PathBuf,
    },
}

#[derive(Debug, Subcommand)]
enum DbCommand {
    /// Copy every table of one store into another (`sqlite://PATH` to `postgres://…`, or back),
    /// one transaction per table, and verify the audit chain on the target.
    Copy {
        /// The store to copy: `sqlite://PATH` or `postgres://…` (migrated first).
        #[arg(long)]
        from: String,
        /// The store to copy into (migrated first); refused when it holds data.
        #[arg(long)]
        to: String,
        /// Replace what the target holds.
        #[arg(long)]
        force: bool,
    },
}

#[derive(Debug, Subcommand)]
enum AuditCommand {
    /// Check the audit log's hash chain; exit 1 naming the first broken row.
    Verify,
}

/// The hint when an emulator (`aws.endpoint_url`, `sandbox up --endpoint`) lacks credentials.
pub(crate) const EMULATOR_KEYS: &str = "An emulator takes any key, but the AWS SDK still needs one: the demo uses AWS_ACCESS_KEY_ID=demo AWS_SECRET_ACCESS_KEY=demo.";

/// The log filter of a command other than `serve` (which sets its own): `TIERDECK_LOG`, else
/// errors only. Logs go to standard error, so that what a command prints stays its answer.
fn init_command_log() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("TIERDECK_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("error"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
}

pub async fn run(cli: Cli) -> ExitCode {
    if !matches!(cli.command, Command::Serve) {
        init_command_log();
    }
    // Needs no configuration, database or network: it works in a spec repository's CI.
    if let Command::Validate { path } = &cli.command {
        return validate(path);
    }
    if let Command::Sandbox(SandboxCommand::Up { endpoint, spec }) = &cli.command {
        return sandbox_up(endpoint, spec).await;
    }
    if let Command::Slo(SloCommand::Rules { env, spec }) = &cli.command {
        return slo_rules(env, spec);
    }
    if let Command::Cost {
        env,
        spec,
        against,
        prices,
        month,
    } = &cli.command
    {
        return crate::cost::run(env, spec, against.as_deref(), prices, month.as_deref());
    }
    if let Command::Db(DbCommand::Copy { from, to, force }) = &cli.command {
        return match db_copy(from, to, *force).await {
            Ok(code) => code,
            Err(e) => {
                eprintln!("tierdeck: {e:#}");
                ExitCode::FAILURE
            }
        };
    }
    let config = match Config::load(cli.config.as_deref()) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("tierdeck: {e}");
            return ExitCode::from(2);
        }
    };
    // Verifying must never make the database it checks: a wrong or missing path would
    // otherwise report an empty, "intact" chain.
    if matches!(cli.command, Command::Audit(AuditCommand::Verify))
        && config.database.url.is_none()
        && !config.database.path.exists()
    {
        eprintln!(
            "tierdeck: there is no database at {} (`database.path`); pass the panel's configuration with --config",
            config.database.path.display()
        );
        return ExitCode::FAILURE;
    }
    let result = match cli.command {
        Command::Serve => crate::http::serve(config).await.map(|()| ExitCode::SUCCESS),
        other => match open_engine(&config).await {
            Ok(engine) => run_offline(&engine, other).await,
            Err(e) => Err(e),
        },
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("tierdeck: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Commands that work on the database directly, as tierdeck itself (`system` in the audit log).
async fn run_offline(engine: &Engine, command: Command) -> anyhow::Result<ExitCode> {
    let caller = Caller::System;
    let meta = RequestMeta {
        client_addr: Some("cli".into()),
    };
    let done = |r: Result<(), engine::ServiceError>| -> anyhow::Result<ExitCode> {
        match r {
            Ok(()) => Ok(ExitCode::SUCCESS),
            Err(e) => {
                eprintln!("tierdeck: {e}");
                if let engine::ServiceError::Internal(cause) = &e {
                    eprintln!("  cause: {cause:#}");
                }
                Ok(ExitCode::FAILURE)
            }
        }
    };
    match command {
        Command::Serve
        | Command::Validate { .. }
        | Command::Sandbox(_)
        | Command::Slo(_)
        | Command::Db(_)
        | Command::Cost { .. } => {
            unreachable!("handled by run")
        }
        Command::Import {
            env,
            region,
            tag,
            prefix,
            names,
            out,
            force,
        } => {
            let selector = match (tag, prefix) {
                (Some(t), _) => match domain::import::Selector::tag(&t) {
                    Ok(s) => s,
                    Err(why) => {
                        eprintln!("tierdeck: {why}");
                        return Ok(ExitCode::from(2));
                    }
                },
                (None, Some(p)) if !p.is_empty() => domain::import::Selector::Prefix { prefix: p },
                (None, Some(_)) => {
                    eprintln!("tierdeck: --prefix takes the names' beginning, not nothing: it would take every group and database");
                    return Ok(ExitCode::from(2));
                }
                (None, None) => domain::import::Selector::Names { names },
            };
            crate::import::run(
                engine,
                crate::import::ImportArgs {
                    env,
                    region,
                    selector,
                    out,
                    force,
                },
            )
            .await
        }
        Command::Plan { env } => {
            let env: domain::spec::EnvName = match env.parse() {
                Ok(e) => e,
                Err(why) => {
                    eprintln!("tierdeck: {why}");
                    return Ok(ExitCode::FAILURE);
                }
            };
            let Some(settings) = engine.settings.repo.clone() else {
                eprintln!(
                    "tierdeck: no spec repository is configured: set repo.url (TIERDECK_REPO__URL)"
                );
                return Ok(ExitCode::FAILURE);
            };
            // Fetch first: the plan is of the branch's head as it is now.
            // The changes it records are planned by the server's worker (their plan jobs wait in
            // the database): this command's plan is the one observation it makes.
            let watcher =
                engine::service::repo_sync::Watcher::new(engine.clone(), settings.clone());
            if let Err(e) = watcher.sync(&meta).await {
                eprintln!("tierdeck: {e}");
                return Ok(ExitCode::FAILURE);
            }
            match engine.plans().plan_head(&caller, &env).await {
                Ok((head, planned)) => {
                    print_plan(&env, &head, &settings.remote.branch, &planned);
                    Ok(if planned.plan.errors.is_empty() {
                        ExitCode::SUCCESS
                    } else {
                        ExitCode::FAILURE
                    })
                }
                Err(e) => {
                    eprintln!("tierdeck: {e}");
                    let emulated = engine.settings.aws.endpoint_url.is_some();
                    if emulated && matches!(e, engine::ServiceError::AwsCredentials(_)) {
                        eprintln!("  {EMULATOR_KEYS}");
                    }
                    Ok(ExitCode::FAILURE)
                }
            }
        }
        Command::User(UserCommand::Add {
            name, role, email, ..
        }) => {
            let mut password = String::new();
            std::io::stdin()
                .lock()
                .read_line(&mut password)
                .context("reading the password from standard input")?;
            let password = password.trim_end_matches(['\r', '\n']).to_owned();
            let r = engine
                .users()
                .create_user(
                    &caller,
                    NewUser {
                        name,
                        role,
                        email,
                        password,
                    },
                    &meta,
                )
                .await
                .map(|u| println!("created user {} ({})", u.name, u.role));
            done(r)
        }
        Command::User(UserCommand::SetRole { name, role }) => done(
            engine
                .users()
                .set_role(&caller, &name, &role, &meta)
                .await
                .map(|u| println!("{} is now {}", u.name, u.role)),
        ),
        Command::User(UserCommand::SetEmail { name, email }) => done(
            engine
                .users()
                .set_email(&caller, &name, &email, &meta)
                .await
                .map(|u| println!("{}'s e-mail is now {}", u.name, u.email.unwrap_or_default())),
        ),
        Command::User(UserCommand::Disable { name }) => done(
            engine
                .users()
                .set_disabled(&caller, &name, true, &meta)
                .await
                .map(|u| println!("{} is disabled", u.name)),
        ),
        Command::User(UserCommand::Enable { name }) => done(
            engine
                .users()
                .set_disabled(&caller, &name, false, &meta)
                .await
                .map(|u| println!("{} is enabled", u.name)),
        ),
        Command::User(UserCommand::List) => {
            done(engine.users().list_users(&caller).await.map(|users| {
                println!("{:<24} {:<9} {:<9} EMAIL", "NAME", "ROLE", "STATUS");
                for u in users {
                    println!(
                        "{:<24} {:<9} {:<9} {}",
                        u.name,
                        u.role,
                        if u.disabled { "disabled" } else { "active" },
                        u.email.unwrap_or_default()
                    );
                }
            }))
        }
        Command::Token(TokenCommand::Create { user, label }) => done(
            engine
                .tokens()
                .create_token(&caller, &user, &label, &meta)
                .await
                .map(|t| println!("{}", t.secret)),
        ),
        Command::Token(TokenCommand::Revoke { id }) => done(
            engine
                .tokens()
                .revoke_token(&caller, id, &meta)
                .await
                .map(|()| println!("token {id} revoked")),
        ),
        Command::Token(TokenCommand::List { user }) => done(
            engine
                .tokens()
                .list_tokens(&caller, &user)
                .await
                .map(|tokens| {
                    println!(
                        "{:<6} {:<14} {:<24} {:<26} STATUS",
                        "ID", "PREFIX", "LABEL", "LAST USED"
                    );
                    for t in tokens {
                        println!(
                            "{:<6} {:<14} {:<24} {:<26} {}",
                            t.id,
                            t.prefix,
                            t.label,
                            t.last_used_at
                                .map(|at| domain::time::stored::text(&at))
                                .unwrap_or_else(|| "never".into()),
                            if t.revoked_at.is_some() {
                                "revoked"
                            } else {
                                "active"
                            }
                        );
                    }
                }),
        ),
        Command::Audit(AuditCommand::Verify) => {
            let report = engine.audit().audit_verify(&caller).await?;
            match report.broken {
                None => {
                    println!("audit chain intact: {} rows verified", report.rows_checked);
                    Ok(ExitCode::SUCCESS)
                }
                Some(b) => {
                    println!("audit chain BROKEN: {b}");
                    Ok(ExitCode::FAILURE)
                }
            }
        }
    }
}

/// `tierdeck db copy`: the tables with their row counts as they are copied, then the audit
/// chain verified on the target and its head compared with the source's.
async fn db_copy(from: &str, to: &str, force: bool) -> anyhow::Result<ExitCode> {
    use engine::store::{copy, Location};
    use engine::Store;
    let from_at = Location::parse(from).map_err(|e| anyhow::anyhow!("--from: {e}"))?;
    let to_at = Location::parse(to).map_err(|e| anyhow::anyhow!("--to: {e}"))?;
    if from_at == to_at {
        anyhow::bail!("--from and --to are the same store ({from_at})");
    }
    if let Location::Sqlite(path) = &from_at {
        if !path.exists() {
            anyhow::bail!("--from: there is no database at {}", path.display());
        }
    }
    let source = Store::connect(&from_at, 4).await?;
    source.migrate().await?;
    let target = Store::connect(&to_at, 4).await?;
    target.migrate().await?;
    let started = std::time::Instant::now();
    let copied = copy::copy(&source, &target, force, |c| {
        println!("{:<20} {:>8} rows", c.table, c.rows);
    })
    .await?;
    let total: u64 = copied.iter().map(|c| c.rows).sum();
    println!(
        "copied {total} rows of {} tables from {from_at} to {to_at} in {} ms",
        copied.len(),
        started.elapsed().as_millis()
    );
    let (_, report) =
        engine::service::audit::walk_chain(&target, domain::audit::ChainVerifier::new()).await?;
    if let Some(b) = &report.broken {
        println!("audit chain on the target BROKEN: {b}");
        return Ok(ExitCode::FAILURE);
    }
    let theirs = engine::store::audit::head(&mut *source.pool().acquire().await?).await?;
    let ours = engine::store::audit::head(&mut *target.pool().acquire().await?).await?;
    let shown = |h: &Option<(i64, String)>| match h {
        Some((seq, hash)) => format!("row {seq}, hash {hash}"),
        None => "none (an empty log)".to_owned(),
    };
    if ours != theirs {
        println!(
            "audit chain head on the target ({}) differs from the source's ({})",
            shown(&ours),
            shown(&theirs)
        );
        return Ok(ExitCode::FAILURE);
    }
    println!(
        "audit chain verified on the target: {} rows, head {}, as the source's",
        report.rows_checked,
        shown(&ours)
    );
    Ok(ExitCode::SUCCESS)
}

fn validate(root: &std::path::Path) -> ExitCode {
    let started = std::time::Instant::now();
    let v = engine::specs::validate_tree(root);
    let shown_root = if root == std::path::Path::new(".") {
        String::new()
    } else {
        format!("{}/", root.display().to_string().trim_end_matches('/'))
    };
    for e in &v.errors {
        println!("{shown_root}{e}");
    }
    let names: Vec<&str> = v.environments.iter().map(|(n, _)| n.as_str()).collect();
    if v.errors.is_empty() {
        eprintln!(
            "ok: {} environment{} valid ({}) in {} ms",
            names.len(),
            if names.len() == 1 { "" } else { "s" },
            names.join(", "),
            started.elapsed().as_millis()
        );
        ExitCode::SUCCESS
    } else {
        eprintln!(
            "{} error{} in {}",
            v.errors.len(),
            if v.errors.len() == 1 { "" } else { "s" },
            root.display()
        );
        ExitCode::FAILURE
    }
}

fn print_plan(env: &str, head: &str, branch: &str, planned: &engine::service::plans::Planned) {
    let short = domain::commit::short_sha(head);
    println!(
        "Plan for {env} at {short} (branch {branch}) against {}:",
        planned.region
    );
    let plan = &planned.plan;
    if plan.is_empty() {
        println!("  No changes: {env} matches its spec.");
    }
    for (i, op) in plan.operations.iter().enumerate() {
        println!("  {:>2}. {op}", i + 1);
    }
    for e in &plan.errors {
        println!("  error: {e}");
    }
    println!(
        "{} operation{}, {} error{}; plan hash {}; live state read in {} ms with {} AWS call{}",
        plan.operations.len(),
        if plan.operations.len() == 1 { "" } else { "s" },
        plan.errors.len(),
        if plan.errors.len() == 1 { "" } else { "s" },
        plan.hash,
        planned.read_ms,
        planned.aws_calls,
        if planned.aws_calls == 1 { "" } else { "s" },
    );
}

fn slo_rules(env: &str, spec_root: &std::path::Path) -> ExitCode {
    let Some(v) = valid_tree(spec_root) else {
        return ExitCode::FAILURE;
    };
    let Some((_, spec)) = v.environments.iter().find(|(name, _)| name == env) else {
        let names: Vec<&str> = v.environments.iter().map(|(n, _)| n.as_str()).collect();
        eprintln!(
            "tierdeck: there is no environment `{env}` in {}; there are: {}",
            spec_root.display(),
            names.join(", ")
        );
        return ExitCode::from(2);
    };
    if spec.slos.is_empty() {
        eprintln!("tierdeck: {env} defines no SLOs (slos: in its spec)");
        return ExitCode::FAILURE;
    }
    print!("{}", domain::slo::prometheus_rules(env, &spec.slos));
    ExitCode::SUCCESS
}

async fn sandbox_up(endpoint: &str, spec_root: &std::path::Path) -> ExitCode {
    if let Err(e) = engine::aws::sandbox::check_loopback(endpoint) {
        eprintln!("tierdeck: {e}");
        return ExitCode::from(2);
    }
    let Some(v) = valid_tree(spec_root) else {
        return ExitCode::FAILURE;
    };
    let settings = engine::aws::AwsSettings {
        endpoint_url: Some(endpoint.to_owned()),
        ..engine::aws::AwsSettings::default()
    };
    for (name, spec) in &v.environments {
        match engine::aws::sandbox::up(&settings, spec).await {
            Ok(lines) if lines.is_empty() => println!("{name}: everything already exists"),
            Ok(lines) => {
                for l in lines {
                    println!("{name}: {l}");
                }
            }
            Err(e) => {
                eprintln!("tierdeck: {name}: {e}");
                if e.kind == engine::aws::AwsErrorKind::Credentials {
                    eprintln!("  {EMULATOR_KEYS}");
                }
                return ExitCode::FAILURE;
            }
        }
    }
    ExitCode::SUCCESS
}
