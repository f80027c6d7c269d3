//! Network ACLs against the AWS emulator: a change to entries planned, applied and read back,
//! planned again to nothing, its drift found and reconciled; the paths it opens on its page, in
//! the API and in its notification; a lost answer to a delete not taken for a failure; the
//! database opened to a block blocked with the sentence that says so.

use serde_json::Value;
use tierdeck_tests::aws::{query, tag_value, tag_values, Fault, FaultProxy};
use tierdeck_tests::git::{SpecRepo, SEJIN};
use tierdeck_tests::{
    approve_and_apply, free_port, wait_for, without_markers, Api, Moto, TestApp, NO_APPROVAL_FLOOR,
};

const WEB_ACL: &str = "petclinic-prod-web-nacl";
const NETWORK: &str = "environments/prod/network.yaml";

/// The id and the `<entrySet>` items of the network ACL named `name`, as EC2 describes them
/// (read without tierdeck), each as `rule egress protocol ports cidr action`.
async fn acl(moto: &str, name: &str) -> (String, Vec<String>) {
    let xml = query(
        moto,
        "ec2",
        "DescribeNetworkAcls",
        &[("Filter.1.Name", "tag:Name"), ("Filter.1.Value.1", name)],
    )
    .await;
    let id = tag_value(&xml, "networkAclId");
    let set = xml
        .split_once("<entrySet>")
        .and_then(|(_, r)| r.split_once("</entrySet>"))
        .map(|(inner, _)| inner.to_owned())
        .unwrap_or_default();
    let mut entries: Vec<String> = set
        .split("</item>")
        .filter(|item| item.contains("<ruleNumber>"))
        .map(|item| {
            let one = |t: &str| tag_values(item, t).first().cloned().unwrap_or("-".into());
            let ports = match (
                tag_values(item, "from").first(),
                tag_values(item, "to").first(),
            ) {
                (Some(a), Some(b)) => format!("{a}-{b}"),
                _ => "-".into(),
            };
            let cidr = tag_values(item, "cidrBlock")
                .first()
                .or(tag_values(item, "ipv6CidrBlock").first())
                .cloned()
                .unwrap_or_default();
            format!(
                "{} {} {} {ports} {cidr} {}",
                one("ruleNumber"),
                if one("egress") == "true" {
                    "egress"
                } else {
                    "ingress"
                },
                one("protocol"),
                one("ruleAction")
            )
        })
        .collect();
    entries.sort();
    (id, entries)
}

/// The change tightening the web tier's ACL and letting Prometheus in the public subnets
/// scrape its node_exporter: answers only from inside the VPC (110, replaced in place), ping
/// from inside it (120, new), 9100 from the public subnets (130, new, and in the web group),
/// no more HTTPS out (egress 120, deleted).
fn tighten_web(repo: &SpecRepo) -> String {
    repo.commit(SEJIN, "Tighten the web ACL; scrape node_exporter", |work| {
        let path = work.join(NETWORK);
        let text = std::fs::read_to_string(&path).unwrap();
        let text = text
            .replacen(
                "      - { rule: 110, protocol: tcp, port: 1024-65535, cidr: 0.0.0.0/0,    action: allow }  # answers: the internal ALB, NAT",
                "      - { rule: 110, protocol: tcp, port: 1024-65535, cidr: 10.0.0.0/16,  action: allow }  # answers from inside the VPC\n      - { rule: 120, protocol: icmp,                   cidr: 10.0.0.0/16,  action: allow }  # ping from inside the VPC\n      - { rule: 130, protocol: tcp, port: 9100,       cidr: 10.0.10.0/23, action: allow }  # Prometheus scrapes node_exporter",
                1,
            )
            .replacen(
                "      - { rule: 120, protocol: tcp, port: 443,        cidr: 0.0.0.0/0,    action: allow }  # HTTPS out through NAT\n\n  - name: petclinic-prod-was-nacl",
                "\n  - name: petclinic-prod-was-nacl",
                1,
            );
        std::fs::write(&path, text).unwrap();
        let path = work.join("environments/prod/security.yaml");
        let text = std::fs::read_to_string(&path).unwrap().replacen(
            "description: from the external ALB }",
            "description: from the external ALB }\n      - { protocol: tcp, port: 9100, cidr: 10.0.10.0/23, description: Prometheus scrapes node_exporter }",
            1,
        );
        std::fs::write(&path, text).unwrap();
    })
}

fn ops(detail: &Value) -> Vec<String> {
    detail["plan"]["operations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| {
            format!(
                "{}: {}",
                o["aws_call"].as_str().unwrap(),
                o["change"].as_str().unwrap()
            )
        })
        .collect()
}

async fn environment(api: &Api) -> Value {
    api.get_json("/api/v1/environments/prod").await
}

#[tokio::test]
async fn acl_entries_are_applied_read_back_planned_to_nothing_and_reconciled_after_drift() {
    let moto = Moto::sandboxed().await;
    let repo = SpecRepo::petclinic_any_time();
    // Notifications go to a closed loopback port: their texts stay in the admins' log.
    let closed = format!("http://127.0.0.1:{}/hook", free_port().unwrap());
    let app = TestApp::watching_with(
        &repo.url(),
        3600,
        Some(&moto.url),
        &[
            ("TIERDECK_POLLERS__DRIFT_INTERVAL_SECS", "1"),
            ("TIERDECK_NOTIFICATIONS__WEBHOOK_URL", &closed),
        ],
    )
    .await;
    let (ann, bo) = (
        app.api_as("ann", "approver").await,
        app.api_as("bo", "approver").await,
    );
    let olga = app.api_as("olga", "operator").await;
    let admin = app.api_as("adam", "admin").await;
    let first = olga.change_for("prod", &repo.head()).await["id"]
        .as_i64()
        .unwrap();
    let d = approve_and_apply(&[&ann, &bo], &olga, first).await;
    assert_eq!(d["status"], "applied", "{}", d["apply"]);
    // The sandbox made the ACLs as the spec says: the first apply had nothing to do there.
    assert!(!ops(&d).iter().any(|o| o.contains("NetworkAclEntry")));
    let (acl_id, before) = acl(&moto.url, WEB_ACL).await;

    let commit = tighten_web(&repo);
    assert_eq!(olga.post("/api/v1/sync").await.status(), 200);
    let id = olga.change_for("prod", &commit).await["id"]
        .as_i64()
        .unwrap();
    let d = olga.planned(id).await;
    assert_eq!(d["status"], "pending", "{}", d["guardrails"]);
    assert_eq!(
        ops(&d),
        [
            "ec2:AuthorizeSecurityGroupIngress: allow tcp/9100 from 10.0.10.0/23",
            "ec2:ReplaceNetworkAclEntry: ingress rule 110: allow tcp/1024-65535 from 0.0.0.0/0 → allow tcp/1024-65535 from 10.0.0.0/16",
            "ec2:CreateNetworkAclEntry: add ingress rule 120 allow icmp from 10.0.0.0/16",
            "ec2:CreateNetworkAclEntry: add ingress rule 130 allow tcp/9100 from 10.0.10.0/23",
            "ec2:DeleteNetworkAclEntry: delete egress rule 120 allow tcp/443 to 0.0.0.0/0",
        ]
    );
    let narrowed = &d["plan"]["operations"][1];
    assert_eq!(narrowed["resource"], format!("network ACL {WEB_ACL}"));
    assert!(
        narrowed["risk"]
            .as_str()
            .unwrap()
            .starts_with("drops return traffic on ephemeral ports"),
        "{narrowed}"
    );
    // What it opens, in the API, on its page and in the notification that asks for approval.
    let sentence = "The web tier is now reachable from the external ALB on tcp/9100.";
    assert_eq!(
        d["reachability"][0]["sentence"], sentence,
        "{}",
        d["reachability"]
    );
    assert_eq!(d["reachability"][0]["kind"], "opened");
    assert_eq!(d["reachability"].as_array().unwrap().len(), 1);
    let page = without_markers(
        &app.login_new("vic", "viewer")
            .await
            .get(&format!("/changes/{id}"))
            .await
            .text()
            .await
            .unwrap(),
    );
    assert!(page.contains("what this change opens and closes") && page.contains(sentence));
    let log = admin.get_json("/api/v1/notifications").await;
    let asked = log
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["event"] == "approval_needed" && n["change_id"] == id)
        .unwrap_or_else(|| panic!("no approval_needed for change {id}: {log:#}"));
    assert!(
        asked["text"]
            .as_str()
            .unwrap()
            .contains(&format!("Reachability: {sentence}")),
        "{asked}"
    );

    let d = approve_and_apply(&[&ann, &bo], &olga, id).await;
    assert_eq!(d["status"], "applied", "{}", d["apply"]);
    // Read back from the emulator without tierdeck: the same ACL, its entries the spec's.
    let (same_id, after) = acl(&moto.url, WEB_ACL).await;
    assert_eq!(same_id, acl_id);
    assert_ne!(after, before);
    assert_eq!(
        after,
        [
            "100 egress 6 1024-65535 10.0.10.0/23 allow",
            "100 ingress 6 80-80 10.0.10.0/23 allow",
            "110 egress 6 80-80 10.0.30.0/23 allow",
            "110 ingress 6 1024-65535 10.0.0.0/16 allow",
            "120 ingress 1 - 10.0.0.0/16 allow",
            "130 ingress 6 9100-9100 10.0.10.0/23 allow",
        ]
    );
    // Planned again through the SDK: nothing to do.
    let out = app.cli_plan("prod", &repo.url(), &moto.url).await;
    assert!(out.contains("No changes: prod matches its spec."), "{out}");

    // Someone opens HTTP to the whole internet on the web subnets' ACL, behind tierdeck's back.
    query(
        &moto.url,
        "ec2",
        "ReplaceNetworkAclEntry",
        &[
            ("NetworkAclId", &acl_id),
            ("RuleNumber", "100"),
            ("Protocol", "6"),
            ("RuleAction", "allow"),
            ("Egress", "false"),
            ("CidrBlock", "0.0.0.0/0"),
            ("PortRange.From", "80"),
            ("PortRange.To", "80"),
        ],
    )
    .await;
    let drift = wait_for("prod to show drift", 30, || async {
        let e = environment(&olga).await;
        (e["drift"]["state"] == "drifted").then(|| e["drift"].clone())
    })
    .await;
    let drifted = drift["plan"]["operations"].as_array().unwrap();
    assert_eq!(drifted.len(), 1, "{drift:#}");
    assert_eq!(
        drifted[0]["change"],
        "ingress rule 100: allow tcp/80 from 0.0.0.0/0 → allow tcp/80 from 10.0.10.0/23"
    );
    assert_eq!(drifted[0]["aws_call"], "ec2:ReplaceNetworkAclEntry");
    let res = olga.post("/api/v1/environments/prod/reconcile").await;
    assert_eq!(res.status(), 201);
    let rc: Value = res.json().await.unwrap();
    assert_eq!(rc["kind"], "reconcile");
    let d = approve_and_apply(&[&ann, &bo], &olga, rc["id"].as_i64().unwrap()).await;
    assert_eq!(d["status"], "applied", "{}", d["apply"]);
    assert_eq!(acl(&moto.url, WEB_ACL).await.1, after);
    wait_for("prod to be in sync again", 30, || async {
        (environment(&olga).await["drift"]["state"] == "in_sync").then_some(())
    })
    .await;

    // The environment page draws the chain on the server: no script needed to read it.
    let page = without_markers(
        &app.login("vic")
            .await
            .get("/environments/prod")
            .await
            .text()
            .await
            .unwrap(),
    );
    for text in [
        "Who reaches which tier",
        "role=\"img\" aria-labelledby=\"chain-title chain-desc\"",
        "the internet reaches the external ALB on tcp/80, 443",
        "the was tier reaches the db tier on tcp/3306",
        "petclinic-prod-web-nacl",
    ] {
        assert!(page.contains(text), "the environment page lacks {text:?}");
    }
    let reach = environment(&olga).await["reachability"].clone();
    assert_eq!(reach["tiers"].as_array().unwrap().len(), 5, "{reach:#}");

    // Opening the database to the office's block: blocked, and the sentence says what it opens.
    let commit = repo.commit(SEJIN, "Let the office VPN reach MySQL", |work| {
        let path = work.join("environments/prod/security.yaml");
        let text = std::fs::read_to_string(&path).unwrap().replacen(
            "description: MySQL from the was tier }",
            "description: MySQL from the was tier }\n      - { protocol: tcp, port: 3306, cidr: 172.16.0.0/12, description: the office VPN }",
            1,
        );
        std::fs::write(&path, text).unwrap();
        let path = work.join(NETWORK);
        let text = std::fs::read_to_string(&path)
            .unwrap()
            .replacen(
                "# MySQL from the was tier",
                "# MySQL from the was tier\n      - { rule: 110, protocol: tcp, port: 3306, cidr: 172.16.0.0/12, action: allow }",
                1,
            )
            .replacen(
                "# answers to the was tier",
                "# answers to the was tier\n      - { rule: 110, protocol: tcp, port: 1024-65535, cidr: 172.16.0.0/12, action: allow }",
                1,
            );
        std::fs::write(&path, text).unwrap();
    });
    assert_eq!(olga.post("/api/v1/sync").await.status(), 200);
    let c = olga.change_for("prod", &commit).await;
    assert_eq!(c["status"], "blocked");
    let d = olga.get_json(&format!("/api/v1/changes/{}", c["id"])).await;
    let rules: Vec<&str> = d["guardrails"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["rule"].as_str().unwrap())
        .collect();
    assert_eq!(
        rules,
        ["database-port-from-cidr", "database-reachable"],
        "{d:#}"
    );
    assert_eq!(
        d["reachability"][0]["sentence"],
        "The db tier is now reachable from 172.16.0.0/12 on tcp/3306."
    );
    assert_eq!(d["reachability"][0]["off_chain"], true);
}

#[tokio::test]
async fn a_delete_whose_answer_was_lost_is_found_done_on_its_retry() {
    let moto = Moto::sandboxed().await;
    let proxy = FaultProxy::start(&moto.url).await;
    let repo = SpecRepo::petclinic_ungated();
    let app = TestApp::watching_with(
        &repo.url(),
        3600,
        Some(&proxy.url),
        &[NO_APPROVAL_FLOOR, ("TIERDECK_AWS__MAX_ATTEMPTS", "3")],
    )
    .await;
    let olga = app.api_as("olga", "operator").await;
    let first = olga.change_for("prod", &repo.head()).await["id"]
        .as_i64()
        .unwrap();
    let d = approve_and_apply(&[], &olga, first).await;
    assert_eq!(d["status"], "applied", "{}", d["apply"]);

    let commit = tighten_web(&repo);
    assert_eq!(olga.post("/api/v1/sync").await.status(), 200);
    let id = olga.change_for("prod", &commit).await["id"]
        .as_i64()
        .unwrap();
    // EC2 deletes the entry, and its answer is lost on the way back.
    proxy.fail("DeleteNetworkAclEntry", Fault::AnswerLost, Some(1));
    let d = approve_and_apply(&[], &olga, id).await;
    assert_eq!(d["status"], "applied", "{}", d["apply"]);
    let step = d["apply"]["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["operation"]["aws_call"] == "ec2:DeleteNetworkAclEntry")
        .unwrap()
        .clone();
    assert_eq!(
        (step["status"].as_str(), step["attempts"].as_u64()),
        (Some("done"), Some(2)),
        "{step}"
    );
    assert_eq!(proxy.calls("DeleteNetworkAclEntry"), 2);
    assert!(!acl(&moto.url, WEB_ACL)
        .await
        .1
        .iter()
        .any(|e| e.starts_with("120 egress")));
    // The lost answer is audited as the first attempt's error; the retry met EC2's answer for
    // an entry that is not there, and is the step's success.
    let calls = olga
        .get_json("/api/v1/audit?action=aws.call&limit=100")
        .await;
    let mut delete = calls["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["detail"]["call"] == "ec2:DeleteNetworkAclEntry")
        .map(|e| e["detail"]["outcome"].as_str().unwrap().to_owned())
        .collect::<Vec<_>>();
    delete.sort();
    assert_eq!(delete, ["error", "ok"]);
}

#[tokio::test]
async fn a_network_acl_named_by_id_is_read_by_its_id_and_one_no_acl_has_is_a_plan_error() {
    let moto = Moto::sandboxed().await;
    // AWS's answer to an id no ACL has (the emulator names another code).
    let proxy = FaultProxy::start(&moto.url).await;
    let (web_id, _) = acl(&moto.url, WEB_ACL).await;
    let missing = "acl-0000000000000000f";
    let repo = SpecRepo::petclinic_with(|work| {
        let path = work.join(NETWORK);
        let text = std::fs::read_to_string(&path)
            .unwrap()
            .replace(&format!("- name: {WEB_ACL}"), &format!("- id: {web_id}"))
            .replace(
                "- name: petclinic-prod-db-nacl",
                &format!("- id: {missing}"),
            );
        std::fs::write(&path, text).unwrap();
    });
    let dir = tempfile::tempdir().unwrap();
    let out = tierdeck_tests::cli_with(
        dir.path(),
        &["plan", "prod"],
        None,
        &[
            ("TIERDECK_REPO__URL", &repo.url()),
            ("TIERDECK_AWS__ENDPOINT_URL", &proxy.url),
        ],
    )
    .await;
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert_eq!(
        out.status.code(),
        Some(1),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains(&format!(
            "error: network ACL {missing}: does not exist in AWS"
        )),
        "{stdout}"
    );
    // The one that exists is read by its id: no error names it.
    assert!(
        !stdout.contains(&format!("network ACL {web_id}:")),
        "{stdout}"
    );
    assert!(proxy.calls("DescribeNetworkAcls") >= 2);
}
