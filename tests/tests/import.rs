//! `tierdeck import` against the AWS emulator: a shop made by hand with raw API calls (not
//! `tierdeck sandbox up`) imported into a spec that validates, plans to "No changes" and lists
//! the policy it cannot express; an action the plan role may not call listed with the rest
//! written, every call signed by that role; nothing matching writes nothing; a spec in the
//! folder is not overwritten.

use std::path::Path;

use tierdeck_tests::aws::{Fault, FaultProxy};
use tierdeck_tests::shop::build_shop;
use tierdeck_tests::{cli_with, snapshot, Moto};

const REGION: &str = "ap-northeast-2";
const PROD_READ: &str = "arn:aws:iam::123456789012:role/tierdeck-prod-read";

/// The files written under `environments/ENV`, each after a `== name ==` line, with the
/// emulator's random ids (`sg-…`, `subnet-…`, `acl-…`, `vpc-…`) made stable.
fn written(root: &Path, env: &str) -> String {
    let folder = root.join("environments").join(env);
    let mut names: Vec<String> = std::fs::read_dir(&folder)
        .unwrap_or_else(|e| panic!("{}: {e}", folder.display()))
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    let mut out = String::new();
    for n in names {
        let text = std::fs::read_to_string(folder.join(&n)).unwrap();
        out.push_str(&format!("== {n} ==\n{}", stable_ids(&text)));
    }
    out
}

/// `sg-0a1b…` → `sg-1`, numbered in order of first appearance per kind.
fn stable_ids(text: &str) -> String {
    let mut seen: Vec<String> = Vec::new();
    let mut out = String::new();
    let mut rest = text;
    'scan: while !rest.is_empty() {
        for kind in ["sg-", "subnet-", "acl-", "vpc-"] {
            if let Some(tail) = rest.strip_prefix(kind) {
                let len = tail
                    .find(|c: char| !c.is_ascii_hexdigit())
                    .unwrap_or(tail.len());
                let boundary = !out.ends_with(|c: char| c.is_ascii_alphanumeric() || c == '-');
                if len >= 8 && boundary {
                    let id = format!("{kind}{}", &tail[..len]);
                    let n = match seen.iter().position(|s| s == &id) {
                        Some(i) => i,
                        None => {
                            seen.push(id.clone());
                            seen.len() - 1
                        }
                    };
                    let same_kind = seen[..=n].iter().filter(|s| s.starts_with(kind)).count();
                    out.push_str(&format!("{kind}{same_kind}"));
                    rest = &tail[len..];
                    continue 'scan;
                }
            }
        }
        let c = rest.chars().next().unwrap();
        out.push(c);
        rest = &rest[c.len_utf8()..];
    }
    out
}

async fn import(dir: &Path, aws: &str, args: &[&str]) -> (i32, String, String) {
    import_with(dir, aws, args, &[]).await
}

/// `tierdeck import ARGS` with AWS at `aws` and more environment variables.
async fn import_with(
    dir: &Path,
    aws: &str,
    args: &[&str],
    vars: &[(&str, &str)],
) -> (i32, String, String) {
    let mut all = vec!["import"];
    all.extend_from_slice(args);
    let mut env = vec![("TIERDECK_AWS__ENDPOINT_URL", aws)];
    env.extend_from_slice(vars);
    let out = cli_with(dir, &all, None, &env).await;
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

#[tokio::test]
async fn a_shop_made_by_hand_is_imported_into_a_spec_that_validates_and_plans_to_no_changes() {
    let moto = Moto::start().await;
    build_shop(&moto.url).await;
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("repo");
    let out_arg = out.to_str().unwrap();
    let (code, stdout, stderr) = import(
        dir.path(),
        &moto.url,
        &[
            "prod",
            "--region",
            REGION,
            "--prefix",
            "shop-prod-",
            "--out",
            out_arg,
        ],
    )
    .await;
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert!(
        stdout.contains(
            "2 Auto Scaling groups, 1 database, 5 security groups, 6 subnets, 3 network ACLs"
        ),
        "{stdout}"
    );
    assert!(
        stdout.contains("  No changes: the spec says what runs."),
        "{stdout}"
    );
    // The policy tierdeck cannot express is listed, with why.
    assert!(
        stdout.contains("  - policy shop-prod-was-network-in of shop-prod-was: target tracking of ASGAverageNetworkIn at 5000000: the spec has one CPU scaling per group"),
        "{stdout}"
    );
    // What already runs against the guardrails is listed at the end.
    assert!(
        stdout.contains(
            "[min-instances] group shop-prod-was: min 1 is below the guardrail min_instances 2"
        ),
        "{stdout}"
    );
    // The database's subnets kept the VPC's default ACL (read by its id): open to the world.
    assert!(
        stdout.contains("[nacl-open-ingress] network ACL acl-"),
        "{stdout}"
    );

    // tierdeck validate agrees.
    let v = cli_with(dir.path(), &["validate", out_arg], None, &[]).await;
    assert!(
        v.status.success(),
        "{}{}",
        String::from_utf8_lossy(&v.stdout),
        String::from_utf8_lossy(&v.stderr)
    );
    snapshot::assert_matches("import-shop.txt", &written(&out, "prod"));

    // A second import does not overwrite the spec without --force, and with it writes the same.
    let (code, _, stderr) = import(
        dir.path(),
        &moto.url,
        &[
            "prod",
            "--region",
            REGION,
            "--prefix",
            "shop-prod-",
            "--out",
            out_arg,
        ],
    )
    .await;
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("holds a spec already (autoscaling.yaml, database.yaml, environment.yaml, network.yaml, security.yaml): nothing was read or written; pass --force"), "{stderr}");
    let (code, stdout, stderr) = import(
        dir.path(),
        &moto.url,
        &[
            "prod", "--region", REGION, "--tag", "tier=web", "--out", out_arg, "--force",
        ],
    )
    .await;
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert!(
        stdout.contains("1 Auto Scaling group, 0 databases"),
        "{stdout}"
    );
    let files = written(&out, "prod");
    assert!(files.contains("  - name: shop-prod-web\n"), "{files}");
    assert!(!files.contains("shop-prod-was\n"), "{files}");
    assert!(!files.contains("== database.yaml =="), "{files}");
}

#[tokio::test]
async fn an_action_the_plan_role_may_not_call_is_listed_and_the_rest_is_written_with_that_role() {
    let moto = Moto::start().await;
    build_shop(&moto.url).await;
    let proxy = FaultProxy::start(&moto.url).await;
    proxy.fail("DescribeDBInstances", Fault::AccessDenied, None);
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("repo");
    // prod reads through its plan role, as its plans do.
    let (code, stdout, stderr) = import_with(
        dir.path(),
        &proxy.url,
        &[
            "prod",
            "--region",
            REGION,
            "--prefix",
            "shop-prod-",
            "--out",
            out.to_str().unwrap(),
        ],
        &[("TIERDECK_AWS__ENVIRONMENTS__PROD__PLAN_ROLE_ARN", PROD_READ)],
    )
    .await;
    assert_eq!(code, 1, "{stdout}{stderr}");
    let assumed = proxy.assumed();
    assert!(
        !assumed.is_empty()
            && assumed
                .iter()
                .all(|a| a.role == PROD_READ && a.session == "tierdeck-prod-system"),
        "{assumed:#?}"
    );
    let keys: Vec<&str> = assumed.iter().map(|a| a.key.as_str()).collect();
    let signed = proxy.signed();
    let reads: Vec<_> = signed.iter().filter(|c| c.service != "sts").collect();
    assert!(!reads.is_empty());
    assert!(
        reads.iter().all(|c| keys.contains(&c.key.as_str())),
        "a call not signed with the plan role's key: {reads:#?}"
    );
    assert!(
        stdout.contains("Could not read (access denied; the rest was read):\n  - databases: the credentials may not call rds:DescribeDBInstances\n"),
        "{stdout}"
    );
    assert!(
        stdout.contains("  No changes: the spec says what runs."),
        "{stdout}"
    );
    assert!(
        stdout.contains("with resources it could not read"),
        "{stdout}"
    );
    let files = written(&out, "prod");
    assert!(!files.contains("== database.yaml =="), "{files}");
    assert!(files.contains("  - name: shop-prod-was\n"), "{files}");
    // The database's own group is not read either: nothing selected uses it that could be.
    assert!(!files.contains("shop-prod-db-sg"), "{files}");
    assert!(files.contains("  - name: shop-prod-was-sg\n"), "{files}");
}

#[tokio::test]
async fn nothing_matching_writes_nothing_and_a_name_matching_nothing_or_another_region_is_said() {
    let moto = Moto::start().await;
    build_shop(&moto.url).await;
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("repo");
    let (code, stdout, stderr) = import(
        dir.path(),
        &moto.url,
        &[
            "prod",
            "--region",
            REGION,
            "--names",
            "shop-staging-web",
            "shop-staging-db",
            "--out",
            out.to_str().unwrap(),
        ],
    )
    .await;
    assert_eq!(code, 1, "{stdout}{stderr}");
    assert!(
        stdout.contains("Nothing in ap-northeast-2 matches --names shop-staging-web shop-staging-db: no Auto Scaling group and no database. Nothing was written."),
        "{stdout}"
    );
    assert!(!out.exists());
    let (code, _, stderr) = import(
        dir.path(),
        &moto.url,
        &[
            "prod",
            "--region",
            REGION,
            "--tag",
            "no-equals-sign",
            "--out",
            out.to_str().unwrap(),
        ],
    )
    .await;
    assert_eq!(code, 2);
    assert!(stderr.contains("--tag takes KEY=VALUE"), "{stderr}");

    // A name that matches nothing is said, beside what the others matched.
    let (code, stdout, stderr) = import(
        dir.path(),
        &moto.url,
        &[
            "prod",
            "--region",
            REGION,
            "--names",
            "shop-prod-web",
            "shop-prod-wbe",
            "--out",
            out.to_str().unwrap(),
        ],
    )
    .await;
    assert_eq!(code, 1, "{stdout}{stderr}");
    assert!(
        stdout.contains("\nNo group or database of these names: shop-prod-wbe\n"),
        "{stdout}"
    );
    assert!(
        stdout.contains("  No changes: the spec says what runs."),
        "{stdout}"
    );

    // The round trip plans where the panel reads prod: another region is refused up front.
    let (code, stdout, stderr) = import_with(
        dir.path(),
        &moto.url,
        &[
            "prod",
            "--region",
            REGION,
            "--prefix",
            "shop-prod-",
            "--out",
            out.to_str().unwrap(),
            "--force",
        ],
        &[("TIERDECK_AWS__ENVIRONMENTS__PROD__REGION", "us-east-1")],
    )
    .await;
    assert_eq!(code, 1, "{stdout}{stderr}");
    assert!(
        stderr.contains("the panel reads prod in us-east-1 ([aws.environments.prod] region), not ap-northeast-2"),
        "{stderr}"
    );
}
