//! Each environment in its own AWS account: the roles the panel's configuration names, read
//! apart from write, assumed through the SDK's provider (moto's STS answers `AssumeRole`); the
//! tests' AWS proxy records which key signed each call, so the tests can tell whose powers each
//! call carried.

use std::time::Duration;

use serde_json::json;
use tierdeck_tests::aws::{Assumed, Fault, FaultProxy, SignedCall};
use tierdeck_tests::git::SpecRepo;
use tierdeck_tests::{wait_for, Moto, TestApp, NO_APPROVAL_FLOOR};

// The roles live in the emulator's own account, where `tierdeck sandbox up` made the shop:
// moto, like AWS, keeps each account's resources apart, and a role's credentials see its own.
const PROD_READ: &str = "arn:aws:iam::123456789012:role/tierdeck-prod-read";
const PROD_WRITE: &str = "arn:aws:iam::123456789012:role/tierdeck-prod-write";
const STAGING_READ: &str = "arn:aws:iam::123456789012:role/tierdeck-staging-read";
const STAGING_WRITE: &str = "arn:aws:iam::123456789012:role/tierdeck-staging-write";
/// A role of another account: its credentials see none of the shop.
const ELSEWHERE: &str = "arn:aws:iam::111111111111:role/tierdeck-staging-read";

/// The settings that give prod and staging their own roles.
fn roles(external_id: &str) -> Vec<(&'static str, String)> {
    vec![
        (
            "TIERDECK_AWS__ENVIRONMENTS__PROD__PLAN_ROLE_ARN",
            PROD_READ.into(),
        ),
        (
            "TIERDECK_AWS__ENVIRONMENTS__PROD__APPLY_ROLE_ARN",
            PROD_WRITE.into(),
        ),
        (
            "TIERDECK_AWS__ENVIRONMENTS__PROD__EXTERNAL_ID",
            external_id.into(),
        ),
        (
            "TIERDECK_AWS__ENVIRONMENTS__STAGING__PLAN_ROLE_ARN",
            STAGING_READ.into(),
        ),
        (
            "TIERDECK_AWS__ENVIRONMENTS__STAGING__APPLY_ROLE_ARN",
            STAGING_WRITE.into(),
        ),
    ]
}

/// The keys STS gave for `role`.
fn keys_of(assumed: &[Assumed], role: &str) -> Vec<String> {
    assumed
        .iter()
        .filter(|a| a.role == role)
        .map(|a| a.key.clone())
        .collect()
}

/// The calls (other than STS's) that name `resource`.
fn calls_naming<'a>(signed: &'a [SignedCall], resource: &str) -> Vec<&'a SignedCall> {
    signed
        .iter()
        .filter(|c| c.service != "sts" && c.names(resource))
        .collect()
}

#[tokio::test]
async fn each_environment_reads_with_its_plan_role_and_applies_with_its_apply_role() {
    let moto = Moto::sandboxed().await;
    let proxy = FaultProxy::start(&moto.url).await;
    let repo = SpecRepo::petclinic_ungated();
    let settings: Vec<(&str, String)> = roles("ext-prod-1");
    let env: Vec<(&str, &str)> = settings
        .iter()
        .map(|(k, v)| (*k, v.as_str()))
        .chain([NO_APPROVAL_FLOOR])
        .collect();
    let app = TestApp::watching_with(&repo.url(), 3600, Some(&proxy.url), &env).await;
    let op = app.api_as("olga", "operator").await;
    let prod = op.change_for("prod", &repo.head()).await["id"]
        .as_i64()
        .unwrap();
    let staging = op.change_for("staging", &repo.head()).await["id"]
        .as_i64()
        .unwrap();
    op.planned(prod).await;
    op.planned(staging).await;
    let res = op
        .post_json(
            &format!("/api/v1/changes/{prod}/apply"),
            json!({ "emergency": true, "reason": "the first apply of the accounts test" }),
        )
        .await;
    assert_eq!(res.status(), 202, "{}", res.text().await.unwrap());
    wait_for("prod applied", 60, || async {
        (op.status_of(prod).await == "applied").then_some(())
    })
    .await;

    let assumed = proxy.assumed();
    let signed = proxy.signed();
    let (prod_read, prod_write, staging_read) = (
        keys_of(&assumed, PROD_READ),
        keys_of(&assumed, PROD_WRITE),
        keys_of(&assumed, STAGING_READ),
    );
    assert!(
        !prod_read.is_empty() && !prod_write.is_empty() && !staging_read.is_empty(),
        "{assumed:#?}"
    );
    assert!(
        keys_of(&assumed, STAGING_WRITE).is_empty(),
        "staging was not applied"
    );
    // Sessions name the environment and who asked.
    assert!(assumed
        .iter()
        .any(|a| a.role == PROD_READ && a.session == "tierdeck-prod-system"));
    assert!(
        assumed
            .iter()
            .any(|a| a.role == PROD_WRITE && a.session == "tierdeck-prod-olga"),
        "{assumed:#?}"
    );
    let external = signed
        .iter()
        .filter(|c| c.action == "AssumeRole" && c.names(PROD_READ))
        .all(|c| {
            c.params
                .iter()
                .any(|(k, v)| k == "ExternalId" && v == "ext-prod-1")
        });
    assert!(external, "prod's roles are assumed with its external id");

    // Every call of prod's was signed with one of prod's keys: reads with the plan role's,
    // writes with the apply role's; staging's with staging's.
    const WRITES: [&str; 6] = [
        "UpdateAutoScalingGroup",
        "PutScalingPolicy",
        "PutMetricAlarm",
        "PutScheduledUpdateGroupAction",
        "AuthorizeSecurityGroupIngress",
        "ModifyDBInstance",
    ];
    let prod_calls = calls_naming(&signed, "petclinic-prod-");
    assert!(!prod_calls.is_empty());
    for c in &prod_calls {
        let expected = if WRITES.contains(&c.action.as_str()) {
            &prod_write
        } else if prod_read.contains(&c.key) || prod_write.contains(&c.key) {
            // A settle's poll during the apply reads with the run's role.
            continue;
        } else {
            &prod_read
        };
        assert!(
            expected.contains(&c.key),
            "{} signed by {}",
            c.action,
            c.key
        );
    }
    assert!(prod_calls
        .iter()
        .any(|c| WRITES.contains(&c.action.as_str()) && prod_write.contains(&c.key)));
    for c in calls_naming(&signed, "petclinic-staging-") {
        assert!(
            staging_read.contains(&c.key),
            "{} signed by {}",
            c.action,
            c.key
        );
    }
    // The run's audit names the role it carried.
    let started = op
        .get_json("/api/v1/audit?action=change.apply_started&env=prod")
        .await;
    assert_eq!(started["events"][0]["detail"]["role"], PROD_WRITE);
    let call = op.get_json("/api/v1/audit?action=aws.call&env=prod").await;
    assert_eq!(call["events"][0]["detail"]["role"], PROD_WRITE);
}

#[tokio::test]
async fn a_role_that_cannot_be_assumed_says_so_and_no_call_is_made_with_other_credentials() {
    let moto = Moto::sandboxed().await;
    let proxy = FaultProxy::start(&moto.url).await;
    proxy.fail("AssumeRole", Fault::AccessDenied, None);
    let repo = SpecRepo::petclinic();
    let app = TestApp::watching_with(
        &repo.url(),
        3600,
        Some(&proxy.url),
        &[("TIERDECK_AWS__ENVIRONMENTS__PROD__PLAN_ROLE_ARN", PROD_READ)],
    )
    .await;
    let vic = app.api_as("vic", "viewer").await;
    let prod = vic.change_for("prod", &repo.head()).await["id"]
        .as_i64()
        .unwrap();
    let staging = vic.change_for("staging", &repo.head()).await["id"]
        .as_i64()
        .unwrap();
    let reason = wait_for("prod's plan to say why there is none", 60, || async {
        let d = vic.get_json(&format!("/api/v1/changes/{prod}")).await;
        d["plan"]["reason"].as_str().map(str::to_owned)
    })
    .await;
    assert!(reason.contains(PROD_READ), "{reason}");
    assert!(reason.contains("sts:AssumeRole"), "{reason}");
    assert!(reason.contains("AccessDenied"), "{reason}");
    // Staging, without a role, plans with the panel's own credentials.
    let d = vic.planned(staging).await;
    assert_eq!(d["plan"]["state"], "planned");
    // Nothing of prod's was read with any other key than a role's: none was signed at all.
    let signed = proxy.signed();
    assert!(
        calls_naming(&signed, "petclinic-prod-").is_empty(),
        "{:#?}",
        calls_naming(&signed, "petclinic-prod-")
    );
    assert!(!calls_naming(&signed, "petclinic-staging-").is_empty());
}

#[tokio::test]
async fn credentials_that_expire_during_an_apply_are_renewed_before_the_next_step() {
    let moto = Moto::sandboxed().await;
    let proxy = FaultProxy::start(&moto.url).await;
    // Sessions of 15 s, and a database modification that takes 25 s: the step waiting for it
    // outlives the session it started with.
    proxy.sts_sessions_last(Duration::from_secs(15));
    let repo = SpecRepo::petclinic_ungated();
    let app = TestApp::watching_with(
        &repo.url(),
        3600,
        Some(&proxy.url),
        &[
            NO_APPROVAL_FLOOR,
            (
                "TIERDECK_AWS__ENVIRONMENTS__PROD__APPLY_ROLE_ARN",
                PROD_WRITE,
            ),
        ],
    )
    .await;
    let op = app.api_as("olga", "operator").await;
    let id = op.change_for("prod", &repo.head()).await["id"]
        .as_i64()
        .unwrap();
    op.planned(id).await;
    proxy.rds_modifies_for(Duration::from_secs(25));
    let res = op
        .post_json(
            &format!("/api/v1/changes/{id}/apply"),
            json!({ "emergency": true, "reason": "the renewal test" }),
        )
        .await;
    assert_eq!(res.status(), 202, "{}", res.text().await.unwrap());
    wait_for("prod applied", 120, || async {
        (op.status_of(id).await == "applied").then_some(())
    })
    .await;
    let keys = keys_of(&proxy.assumed(), PROD_WRITE);
    assert!(keys.len() >= 2, "the session was renewed: {keys:?}");
    // The run's calls after the renewal carry the new key, never an expired one after it.
    let signed = proxy.signed();
    let used: Vec<&String> = calls_naming(&signed, "petclinic-prod-")
        .into_iter()
        .filter(|c| keys.contains(&c.key))
        .map(|c| &c.key)
        .collect();
    assert_eq!(used.first(), Some(&&keys[0]));
    assert!(used.contains(&&keys[keys.len() - 1]), "{used:?} {keys:?}");
    let first_of_last = used
        .iter()
        .position(|k| **k == keys[keys.len() - 1])
        .unwrap();
    assert!(used[first_of_last..]
        .iter()
        .all(|k| **k == keys[keys.len() - 1]));
}

#[tokio::test]
async fn a_role_of_another_account_sees_that_accounts_resources_not_the_panels() {
    let moto = Moto::sandboxed().await;
    let proxy = FaultProxy::start(&moto.url).await;
    let repo = SpecRepo::petclinic();
    let app = TestApp::watching_with(
        &repo.url(),
        3600,
        Some(&proxy.url),
        &[(
            "TIERDECK_AWS__ENVIRONMENTS__STAGING__PLAN_ROLE_ARN",
            ELSEWHERE,
        )],
    )
    .await;
    let vic = app.api_as("vic", "viewer").await;
    let staging = vic.change_for("staging", &repo.head()).await["id"]
        .as_i64()
        .unwrap();
    let prod = vic.change_for("prod", &repo.head()).await["id"]
        .as_i64()
        .unwrap();
    // The emulator's other account has no shop: every resource staging names is missing
    // there, while prod (the panel's own credentials) finds its own.
    let d = vic.planned(staging).await;
    let errors = d["plan"]["errors"].as_array().unwrap();
    assert!(
        errors
            .iter()
            .any(|e| e.to_string().contains("petclinic-staging-db")
                && e.to_string().contains("does not exist")),
        "{errors:#?}"
    );
    let d = vic.planned(prod).await;
    assert!(
        d["plan"]["errors"].as_array().unwrap().is_empty(),
        "{:#}",
        d["plan"]
    );
    assert!(proxy.assumed().iter().any(|a| a.role == ELSEWHERE));
}
