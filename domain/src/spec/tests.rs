//! Every validation rule, with the position it reports.

use super::*;

const ENV: &str = "environment:\n  name: prod\n";

fn files(list: &[(&str, &str)]) -> Vec<SourceFile> {
    list.iter()
        .map(|(name, text)| SourceFile {
            path: format!("environments/prod/{name}"),
            text: (*text).to_owned(),
        })
        .collect()
}

/// The errors of `environment.yaml` (= ENV) plus one more file `x.yaml`.
fn errors_of(text: &str) -> Vec<String> {
    match load_environment(
        "prod",
        &files(&[("environment.yaml", ENV), ("x.yaml", text)]),
    ) {
        Ok(_) => Vec::new(),
        Err(es) => es.iter().map(ToString::to_string).collect(),
    }
}

/// Each case's spec has one error, which starts with the case's text; all mismatches told.
fn assert_each_error(cases: &[(&str, &str)]) {
    let mismatches: Vec<String> = cases
        .iter()
        .filter_map(|(text, expected)| {
            let got = one_error(text);
            (!got.starts_with(expected))
                .then(|| format!("spec: {text:?}\n  got:      {got}\n  expected: {expected}"))
        })
        .collect();
    assert!(mismatches.is_empty(), "{}", mismatches.join("\n"));
}

fn one_error(text: &str) -> String {
    let es = errors_of(text);
    assert_eq!(es.len(), 1, "expected one error, got {es:#?}");
    es[0].trim_start_matches("environments/prod/").to_owned()
}

const GROUP: &str = "autoscaling_groups:
  - name: web
    tier: web
    min: 2
    max: 8
";

#[test]
fn a_full_environment_loads_with_defaults_filled_in() {
    let spec = load_environment(
        "prod",
        &files(&[
            ("environment.yaml", "environment:\n  name: prod\n  region: ap-northeast-2\n"),
            (
                "autoscaling.yaml",
                "autoscaling_groups:
  - name: petclinic-prod-web
    tier: web
    min: 2
    max: 8
    desired: 2
    cpu_scaling: { scale_out_above: 50, scale_in_below: 30 }
    schedule:
      - { name: web-night, cron: \"0 0 * * *\", timezone: Asia/Seoul, min: 2, max: 8, desired: 2 }
",
            ),
            ("slo.yaml", "slos:\n  - name: availability\n    objective: 99.9\n    errors: 'sum(rate(e[{{window}}]))'\n    total: 'sum(rate(t[{{window}}]))'\n"),
        ]),
    )
    .unwrap();
    assert_eq!(
        spec.environment.approvals,
        Approvals {
            required: 1,
            allow_self_approval: false
        }
    );
    assert_eq!(
        spec.environment.guardrails,
        Guardrails {
            min_instances: 2,
            max_instances: 8,
            require_multi_az: true,
            min_healthy_percent: 90,
        }
    );
    let g = &spec.autoscaling_groups[0];
    assert_eq!(
        g.cpu_scaling,
        Some(CpuScaling::Step {
            scale_out_above: 50.0,
            scale_in_below: 30.0,
            adjustment: 1,
            cooldown_seconds: 300
        })
    );
    assert_eq!(
        g.schedule[0].loc.to_string(),
        "environments/prod/autoscaling.yaml:9:9"
    );
    assert_eq!(spec.slos[0].window_days, 30);
}

#[test]
fn each_rule_reports_its_file_line_and_column() {
    let cases: &[(&str, &str)] = &[
        // YAML syntax.
        ("autoscaling_groups: [\n", "x.yaml:2:1: YAML syntax: "),
        // Unknown keys, at every level.
        ("autoscalinggroups: []\n", "x.yaml:1:1: unknown top-level key `autoscalinggroups`; expected one of environment, autoscaling_groups, databases, security_groups, subnets, network_acls, slos, monitoring"),
        ("aws:\n  role_arn: arn:aws:iam::111111111111:role/x\n", "x.yaml:1:1: `aws`: the AWS account, roles and credentials an environment is reached with are the panel's to set (tierdeck.toml, [aws.environments.NAME]), never the spec's: a change never chooses the powers it is applied with"),
        ("autoscaling_groups:\n  - name: web\n    tier: web\n    min: 2\n    max: 8\n    maximum: 9\n", "x.yaml:6:5: `autoscaling_groups[web]`: unknown key `maximum`; expected one of name, tier, min, max, desired, instance_type, cpu_scaling, schedule, launch_template, image_id, rollout"),
        ("autoscaling_groups:\n  - name: web\n    tier: web\n    min: 2\n    max: 8\n    instance_type: T3 Medium\n", "x.yaml:6:20: `autoscaling_groups[web].instance_type`: `T3 Medium` is not an EC2 instance type (like `t3.medium`)"),
        // Wrong types.
        ("autoscaling_groups:\n  - name: web\n    tier: web\n    min: two\n    max: 8\n", "x.yaml:4:10: `autoscaling_groups[web].min`: expected a whole number, found `two`"),
        ("autoscaling_groups: { name: web }\n", "x.yaml:1:21: `autoscaling_groups`: expected a list, found a mapping"),
        ("databases:\n  - identifier: db\n    multi_az: maybe\n", "x.yaml:3:15: `databases[db].multi_az`: expected true or false, found `maybe`"),
        // Missing keys.
        ("autoscaling_groups:\n  - name: web\n    min: 2\n    max: 8\n", "x.yaml:2:5: `autoscaling_groups[web]`: missing `tier`"),
        // Capacity order.
        ("autoscaling_groups:\n  - name: web\n    tier: web\n    min: 5\n    max: 3\n", "x.yaml:2:5: `autoscaling_groups[web]`: min 5 is above max 3"),
        ("autoscaling_groups:\n  - name: web\n    tier: web\n    min: 2\n    max: 8\n    desired: 9\n", "x.yaml:2:5: `autoscaling_groups[web]`: desired 9 is above max 8"),
        // CPU scaling.
        ("autoscaling_groups:\n  - name: web\n    tier: web\n    min: 2\n    max: 8\n    cpu_scaling: { scale_out_above: 30, scale_in_below: 50 }\n", "x.yaml:6:57: `autoscaling_groups[web].cpu_scaling.scale_in_below`: 50 must be below scale_out_above (30), or the group would flap"),
        ("autoscaling_groups:\n  - name: web\n    tier: web\n    min: 2\n    max: 8\n    cpu_scaling: { target_percent: 120 }\n", "x.yaml:6:36: `autoscaling_groups[web].cpu_scaling.target_percent`: 120 is outside 1–100"),
        ("autoscaling_groups:\n  - name: web\n    tier: web\n    min: 2\n    max: 8\n    cpu_scaling: { target_percent: 50, scale_out_above: 70, scale_in_below: 30 }\n", "x.yaml:6:18: `autoscaling_groups[web].cpu_scaling`: give either target_percent or scale_out_above and scale_in_below, not both"),
        // Cron and time zones.
        ("autoscaling_groups:\n  - name: web\n    tier: web\n    min: 2\n    max: 8\n    schedule:\n      - { name: n, cron: \"0 0 * *\", min: 2 }\n", "x.yaml:7:26: `autoscaling_groups[web].schedule[n].cron`: a cron expression has 5 fields (minute hour day-of-month month day-of-week); `0 0 * *` has 4"),
        ("autoscaling_groups:\n  - name: web\n    tier: web\n    min: 2\n    max: 8\n    schedule:\n      - { name: n, cron: \"0 25 * * *\", min: 2 }\n", "x.yaml:7:26: `autoscaling_groups[web].schedule[n].cron`: the hour field has 25, outside 0–23"),
        ("autoscaling_groups:\n  - name: web\n    tier: web\n    min: 2\n    max: 8\n    schedule:\n      - { name: n, cron: \"0 0 * * *\", timezone: Asia/Busan, min: 2 }\n", "x.yaml:7:49: `autoscaling_groups[web].schedule[n].timezone`: `Asia/Busan` is not an IANA time zone (like Asia/Seoul or UTC)"),
        ("autoscaling_groups:\n  - name: web\n    tier: web\n    min: 2\n    max: 8\n    schedule:\n      - { name: n, cron: \"0 0 * * *\" }\n", "x.yaml:7:9: `autoscaling_groups[web].schedule[n]`: a scheduled action sets at least one of min, max, desired"),
        // Duplicates.
        ("autoscaling_groups:\n  - name: web\n    tier: web\n    min: 2\n    max: 8\n    schedule:\n      - { name: n, cron: \"0 0 * * *\", min: 2 }\n      - { name: n, cron: \"0 1 * * *\", min: 2 }\n", "x.yaml:8:9: duplicate scheduled action `n` (first at line 7)"),
        ("autoscaling_groups:\n  - { name: web, tier: web, min: 2, max: 8 }\n  - { name: web, tier: was, min: 2, max: 8 }\n", "x.yaml:3:5: duplicate autoscaling group `web` (first at line 2)"),
        ("databases:\n  - identifier: db\n  - identifier: db\n", "x.yaml:3:5: duplicate database `db` (first at line 2)"),
        ("security_groups:\n  - name: sg\n  - name: sg\n", "x.yaml:3:5: duplicate security group `sg` (first at line 2)"),
        // Rules: cidr and from_group, ports, CIDRs.
        ("security_groups:\n  - name: sg\n    ingress:\n      - { protocol: tcp, port: 80, cidr: 10.0.0.0/8, from_group: alb }\n", "x.yaml:4:9: `security_groups[sg].ingress[0]`: give either cidr or from_group, not both"),
        ("security_groups:\n  - name: sg\n    ingress:\n      - { protocol: tcp, port: 80 }\n", "x.yaml:4:9: `security_groups[sg].ingress[0]`: give cidr or from_group: where the traffic comes from"),
        ("security_groups:\n  - name: sg\n    ingress:\n      - { protocol: tcp, port: 70000, cidr: 10.0.0.0/8 }\n", "x.yaml:4:32: `security_groups[sg].ingress[0].port`: `70000` is not a port 1–65535 or a range like 8000-8080"),
        ("security_groups:\n  - name: sg\n    ingress:\n      - { protocol: tcp, port: 80, cidr: 10.0.0.0/33 }\n", "x.yaml:4:42: `security_groups[sg].ingress[0].cidr`: `10.0.0.0/33` is not a CIDR block: the prefix length must be 0–32"),
        ("security_groups:\n  - name: sg\n    ingress:\n      - { protocol: tcp, port: 80, cidr: 10.0.0.1/24 }\n", "x.yaml:4:42: `security_groups[sg].ingress[0].cidr`: `10.0.0.1/24` has host bits set; use the network address of the block"),
        // SLOs.
        ("slos:\n  - name: a\n    objective: 99\n    errors: 'e[{{window}}]'\n    good: 'g[{{window}}]'\n    total: 't[{{window}}]'\n", "x.yaml:2:5: `slos[a]`: give either errors or good, not both"),
        ("slos:\n  - name: a\n    objective: 99\n    total: 't[{{window}}]'\n", "x.yaml:2:5: `slos[a]`: give errors (bad events) or good (good events), with total"),
        ("slos:\n  - name: a\n    objective: 99\n    errors: 'e[5m]'\n    total: 't[{{window}}]'\n", "x.yaml:4:13: `slos[a].errors`: the query needs {{window}} where the range goes, e.g. rate(x[{{window}}])"),
        ("slos:\n  - name: a\n    objective: 100\n    errors: 'e[{{window}}]'\n    total: 't[{{window}}]'\n", "x.yaml:3:16: `slos[a].objective`: 100 must be a percentage strictly between 0 and 100"),
    ];
    assert_each_error(cases);
}

/// A group of `GROUP` with `extra` lines (indented as its keys).
fn group_with(extra: &str) -> String {
    format!("{GROUP}{extra}")
}

#[test]
fn a_rollout_loads_with_its_preferences_and_defaults() {
    let spec = load_environment(
        "prod",
        &files(&[
            ("environment.yaml", ENV),
            (
                "x.yaml",
                &group_with("    image_id: ami-0abcdef1234567890\n    rollout:\n      checkpoints: [25, 50, 100]\n      bake_minutes: 10\n      alarms: [web-5xx]\n"),
            ),
        ]),
    )
    .unwrap();
    let g = &spec.autoscaling_groups[0];
    assert_eq!(
        g.launch,
        Some(Launch::Image {
            image_id: "ami-0abcdef1234567890".into()
        })
    );
    let r = &g.rollout;
    assert_eq!(r.checkpoints, [25, 50, 100]);
    assert_eq!(r.bake_seconds, 600);
    assert_eq!((r.min_healthy_percent, r.max_healthy_percent), (90, 100));
    assert!(r.skip_matching && r.auto_rollback);
    assert_eq!(r.alarms, ["web-5xx"]);
    assert_eq!(
        r.loc.as_ref().unwrap().to_string(),
        "environments/prod/x.yaml:8:7"
    );
    // Without `rollout`: one checkpoint at 100, no bake.
    let spec = load_environment(
        "prod",
        &files(&[
            ("environment.yaml", ENV),
            (
                "x.yaml",
                &group_with("    launch_template: { name: web-lt, version: 7 }\n"),
            ),
        ]),
    )
    .unwrap();
    let g = &spec.autoscaling_groups[0];
    assert_eq!(
        g.launch,
        Some(Launch::Template {
            name: "web-lt".into(),
            version: TemplateVersion::Number(7)
        })
    );
    assert_eq!(g.rollout, Rollout::default());
}

#[test]
fn rollout_errors_report_their_file_line_and_column() {
    let cases: &[(&str, &str)] = &[
        ("    image_id: ami-1\n", "x.yaml:6:15: `autoscaling_groups[web].image_id`: `ami-1` is not an image id (like `ami-0abcdef1234567890`)"),
        ("    image_id: ami-12345678\n    launch_template: { name: a, version: 1 }\n", "x.yaml:6:15: `autoscaling_groups[web]`: give either launch_template or image_id, not both"),
        ("    launch_template: { name: a, version: two }\n", "x.yaml:6:42: `autoscaling_groups[web].launch_template.version`: expected a version number (1 or more), $Latest or $Default, found `two`"),
        ("    launch_template: { name: a, version: $Latest }\n    rollout: { checkpoints: [100] }\n", "x.yaml:7:14: `autoscaling_groups[web].launch_template.version`: $Latest cannot be rolled back by AWS; name a numbered version, or set rollout.auto_rollback: false"),
        ("    image_id: ami-12345678\n    rollout: { checkpoints: [50, 25, 100] }\n", "x.yaml:7:34: `autoscaling_groups[web].rollout.checkpoints[1]`: 25 does not follow 50: checkpoints go up"),
        ("    image_id: ami-12345678\n    rollout: { checkpoints: [25, 50] }\n", "x.yaml:7:34: `autoscaling_groups[web].rollout.checkpoints`: the last checkpoint must be 100 (every instance replaced)"),
        ("    image_id: ami-12345678\n    rollout: { checkpoints: [0, 100] }\n", "x.yaml:7:30: `autoscaling_groups[web].rollout.checkpoints[0]`: 0 is outside 1–100"),
        ("    image_id: ami-12345678\n    rollout: { min_healthy_percent: 101 }\n", "x.yaml:7:37: `autoscaling_groups[web].rollout.min_healthy_percent`: 101 is outside 0–100"),
        ("    image_id: ami-12345678\n    rollout: { min_healthy_percent: 50, max_healthy_percent: 160 }\n", "x.yaml:7:62: `autoscaling_groups[web].rollout.max_healthy_percent`: 160 is more than 100 above min_healthy_percent (50), which AWS refuses"),
        ("    image_id: ami-12345678\n    rollout: { bake_minutes: 1, bake_seconds: 30 }\n", "x.yaml:7:47: `autoscaling_groups[web].rollout`: give either bake_minutes or bake_seconds, not both"),
        ("    rollout: { checkpoints: [100] }\n", "x.yaml:2:5: `autoscaling_groups[web].rollout`: a rollout needs launch_template or image_id to roll out"),
    ];
    let mismatches: Vec<String> = cases
        .iter()
        .filter_map(|(text, expected)| {
            let got = one_error(&group_with(text));
            (!got.starts_with(expected))
                .then(|| format!("spec: {text:?}\n  got:      {got}\n  expected: {expected}"))
        })
        .collect();
    assert!(mismatches.is_empty(), "{}", mismatches.join("\n"));
}

/// A subnet of tier web and a network ACL guarding it, with `entry` as its one ingress entry.
fn acl_with(entry: &str) -> String {
    format!("subnets:\n  - {{ name: a, tier: web, cidr: 10.0.0.0/24 }}\nnetwork_acls:\n  - name: n\n    subnets: [web]\n    ingress:\n      - {entry}\n")
}

#[test]
fn subnets_and_network_acls_report_their_file_line_and_column() {
    let many: String = (1..=41)
        .map(|i| {
            format!("      - {{ rule: {i}, protocol: all, cidr: 10.0.0.0/8, action: allow }}\n")
        })
        .collect();
    let cases: Vec<(String, &str)> = vec![
        ("subnets:\n  - { name: a, tier: Web, cidr: 10.0.0.0/24 }\n".into(), "x.yaml:2:22: `subnets[a].tier`: `Web` is not a tier name (lower-case letters, digits, `-` and `_`, like `web`)"),
        ("subnets:\n  - { tier: web, cidr: 10.0.0.0/24 }\n".into(), "x.yaml:2:5: `subnets[0]`: give name (its Name tag) or id (subnet-…)"),
        ("subnets:\n  - { id: sub-12, tier: web, cidr: 10.0.0.0/24 }\n".into(), "x.yaml:2:11: `subnets[sub-12].id`: `sub-12` is not an id like subnet-0123abcd"),
        ("subnets:\n  - { name: a, tier: web, cidr: \"2001:db8::/64\" }\n".into(), "x.yaml:2:33: `subnets[a].cidr`: a subnet's block here is its IPv4 one"),
        ("subnets:\n  - { name: a, tier: web, cidr: 10.0.0.0/24 }\n  - { name: b, tier: was, cidr: 10.0.0.0/16 }\n".into(), "x.yaml:3:5: `subnets[b]`: 10.0.0.0/16 overlaps 10.0.0.0/24 of subnet a (line 2); a VPC's subnets never overlap"),
        ("subnets:\n  - { name: a, tier: web, cidr: 10.0.0.0/24 }\n  - { name: a, tier: was, cidr: 10.0.1.0/24 }\n".into(), "x.yaml:3:5: duplicate subnet `a` (first at line 2)"),
        (acl_with("{ rule: 40000, protocol: tcp, port: 80, cidr: 10.0.0.0/8, action: allow }"), "x.yaml:7:17: `network_acls[n].ingress[0].rule`: 40000 is outside 1–32766"),
        (acl_with("{ protocol: tcp, port: 80, cidr: 10.0.0.0/8, action: allow }"), "x.yaml:7:9: `network_acls[n].ingress[0]`: missing `rule` (its number, 1–32766: the lowest that matches decides)"),
        (acl_with("{ rule: 100, protocol: tcp, port: 80, cidr: 10.0.0.0/8, action: allow }\n      - { rule: 100, protocol: tcp, port: 443, cidr: 10.0.0.0/8, action: allow }"), "x.yaml:8:9: `network_acls[n].ingress[1]`: rule 100 is already used at line 7; each entry needs its own number"),
        (acl_with("{ rule: 100, protocol: tcp, cidr: 10.0.0.0/8, action: allow }"), "x.yaml:7:9: `network_acls[n].ingress[0]`: a tcp or udp entry needs a port (or a range like 1024-65535)"),
        (acl_with("{ rule: 100, protocol: icmp, port: 8, cidr: 10.0.0.0/8, action: allow }"), "x.yaml:7:44: `network_acls[n].ingress[0].port`: an icmp entry takes no port"),
        (acl_with("{ rule: 100, protocol: tcp, port: 443-80, cidr: 10.0.0.0/8, action: allow }"), "x.yaml:7:43: `network_acls[n].ingress[0].port`: `443-80` is not a port 0–65535 or a range like 1024-65535"),
        (acl_with("{ rule: 100, protocol: gre, cidr: 10.0.0.0/8, action: allow }"), "x.yaml:7:32: `network_acls[n].ingress[0].protocol`: `gre` is not tcp, udp, icmp, icmpv6 or all"),
        (acl_with("{ rule: 100, protocol: icmp, cidr: \"::/0\", action: allow }"), "x.yaml:7:44: `network_acls[n].ingress[0].cidr`: icmp is IPv4's; use icmpv6 for an IPv6 block"),
        (acl_with("{ rule: 100, protocol: all, cidr: 10.0.0.0/8, action: permit }"), "x.yaml:7:63: `network_acls[n].ingress[0].action`: `permit` is not allow or deny"),
        (acl_with("{ rule: 100, protocol: all, cidr: 10.0.0.1/8, action: allow }"), "x.yaml:7:43: `network_acls[n].ingress[0].cidr`: `10.0.0.1/8` has host bits set; use the network address of the block"),
        (format!("subnets:\n  - {{ name: a, tier: web, cidr: 10.0.0.0/24 }}\nnetwork_acls:\n  - name: n\n    subnets: [web]\n    ingress:\n{many}"), "x.yaml:7:7: `network_acls[n].ingress`: 41 entries; AWS lets one direction of a network ACL hold at most 40 (20 unless raised)"),
        ("subnets:\n  - { name: a, tier: web, cidr: 10.0.0.0/24 }\nnetwork_acls:\n  - name: n\n    subnets: [was]\n".into(), "x.yaml:4:5: `network_acls[n].subnets`: no subnet has tier `was`; list the subnets it guards under `subnets`"),
        ("subnets:\n  - { name: a, tier: web, cidr: 10.0.0.0/24 }\nnetwork_acls:\n  - { name: n, subnets: [web] }\n  - { id: acl-0abc, subnets: [web] }\n".into(), "x.yaml:5:5: `network_acls[acl-0abc].subnets`: the `web` subnets are already guarded by n (line 4); a subnet has one network ACL"),
        ("network_acls:\n  - { id: acl-xyz, subnets: [web] }\n".into(), "x.yaml:2:11: `network_acls[acl-xyz].id`: `acl-xyz` is not an id like acl-0123abcd"),
        ("network_acls:\n  - { name: n }\n".into(), "x.yaml:2:5: `network_acls[n]`: missing `subnets` (the tiers whose subnets it guards, like [web])"),
        ("security_groups:\n  - { name: sg, tier: internal-alb, subnets: was }\n".into(), "x.yaml:2:5: `security_groups[sg].subnets`: no subnet has tier `was`; list it under `subnets`"),
    ];
    let mismatches: Vec<String> = cases
        .iter()
        .filter_map(|(text, expected)| {
            let got = one_error(text);
            (got != *expected)
                .then(|| format!("spec: {text:?}\n  got:      {got}\n  expected: {expected}"))
        })
        .collect();
    assert!(mismatches.is_empty(), "{}", mismatches.join("\n"));
}

#[test]
fn the_examples_network_loads_with_its_tiers_and_entries_in_rule_order() {
    let spec = crate::spec::fixtures::prod();
    assert_eq!(spec.subnets.len(), 8);
    assert!(spec
        .subnets
        .iter()
        .filter(|s| s.public)
        .all(|s| s.tier == "public"));
    let was = spec
        .network_acls
        .iter()
        .find(|a| a.resource == AwsRef::Name("petclinic-prod-was-nacl".into()))
        .unwrap();
    assert_eq!(was.subnets, ["was"]);
    let rules: Vec<u16> = was.egress.iter().map(|e| e.rule).collect();
    assert_eq!(rules, [100, 110, 120, 130, 140]);
    assert_eq!(was.egress[3].ports, Some((3306, 3306)));
    assert_eq!(was.ingress[2].ports, Some((1024, 65535)));
    assert_eq!(
        was.egress[3].loc.to_string(),
        "environments/prod/network.yaml:53:9"
    );
    let alb = &spec.security_groups[2];
    assert_eq!(
        (alb.tier.as_deref(), alb.subnets.as_deref()),
        (Some("internal-alb"), Some("was"))
    );
}

#[test]
fn environment_settings_are_checked_too() {
    let check = |env: &str, expected: &str| {
        let es = load_environment("prod", &files(&[("environment.yaml", env)])).unwrap_err();
        let shown: Vec<String> = es.iter().map(ToString::to_string).collect();
        assert!(
            shown
                .iter()
                .any(|e| e == &format!("environments/prod/environment.yaml:{expected}")),
            "expected {expected} in {shown:#?}"
        );
    };
    check(
        "environment:\n  name: prod\n  approvals: { required: 7 }\n",
        "3:26: `environment.approvals.required`: 7 is outside 0–5",
    );
    check(
        "environment:\n  name: prod\n  auto_apply: sometimes\n",
        "3:15: `environment.auto_apply`: expected true or false, found `sometimes`",
    );
    check(
        "environment:\n  name: prod\n  cost: { max_monthly: -5 }\n",
        "3:24: `environment.cost.max_monthly`: -5 is below 0",
    );
    check(
        "environment:\n  name: prod\n  cost: { extra_approval_above: lots }\n",
        "3:33: `environment.cost.extra_approval_above`: expected a number, found `lots`",
    );
    check(
        "environment:\n  name: prod\n  watch: { minutes: 2000 }\n",
        "3:21: `environment.watch.minutes`: 2000 is outside 0–1440",
    );
    check(
        "environment:\n  name: prod\n  watch: { minutes: 5, revert: yes }\n",
        "3:24: `environment.watch`: unknown key `revert`; expected one of minutes, auto_revert",
    );
    check(
        "environment:\n  name: prod\n  role_arn: arn:aws:iam::111111111111:role/admin\n",
        "3:3: `environment.role_arn`: the AWS account, roles and credentials an environment is reached with are the panel's to set (tierdeck.toml, [aws.environments.NAME]), never the spec's: a change never chooses the powers it is applied with",
    );
    check(
        "environment:\n  name: prod\n  owner: ops\n",
        "3:3: `environment`: unknown key `owner`; expected one of name, region, approvals, auto_apply, change_windows, guardrails, cost, watch, wait_for_capacity",
    );
    check(
        "environment:\n  name: prod\n  change_windows:\n    - { days: [mon, funday], start: \"10:00\", end: \"25:00\", timezone: Mars/Olympus }\n",
        "4:21: `environment.change_windows[0].days`: `funday` is not a day; use mon, tue, wed, thu, fri, sat, sun",
    );
    check(
        "environment:\n  name: prod\n  change_windows:\n    - { days: [mon], start: \"10:00\", end: \"25:00\", timezone: UTC }\n",
        "4:43: `environment.change_windows[0].end`: expected a time as HH:MM (24-hour), found `25:00`",
    );
    check(
        "environment:\n  name: prod\n  guardrails: { min_instances: 5, max_instances: 3 }\n",
        "3:15: `environment.guardrails`: min_instances 5 is above max_instances 3",
    );
}

#[test]
fn duplicate_slos_and_bad_selectors_are_errors() {
    let es = errors_of(
        "slos:\n  - { name: a, objective: 99, errors: 'e[{{window}}]', total: 't[{{window}}]' }\n  - { name: a, objective: 98, errors: 'e[{{window}}]', total: 't[{{window}}]' }\nmonitoring:\n  tiers:\n    web: 'job=node'\n",
    );
    assert_eq!(
        es,
        [
            "environments/prod/x.yaml:3:5: duplicate SLO `a` (first at line 2)",
            "environments/prod/x.yaml:6:10: `monitoring.tiers.web`: expected a label selector like {job=\"node\",tier=\"web\"}",
        ]
    );
}

#[test]
fn a_key_in_two_files_names_both() {
    let es = load_environment(
        "prod",
        &files(&[("a.yaml", ENV), ("b.yaml", GROUP), ("c.yaml", GROUP)]),
    )
    .unwrap_err();
    assert_eq!(
        es[0].to_string(),
        "environments/prod/c.yaml:1:1: `autoscaling_groups` is already set in environments/prod/b.yaml:1; each top-level key belongs in one file"
    );
}

#[test]
fn the_folder_must_match_the_environment_name() {
    let es = load_environment("staging", &files(&[("environment.yaml", ENV)])).unwrap_err();
    assert_eq!(
        es[0].to_string(),
        "environments/prod/environment.yaml:2:9: `environment.name` is `prod` but the folder is environments/staging/; they must be equal"
    );
}

#[test]
fn an_environment_without_its_settings_is_an_error() {
    let es = load_environment("prod", &files(&[("x.yaml", GROUP)])).unwrap_err();
    assert_eq!(
        es[0].to_string(),
        "environments/prod/:1:1: no file of this environment sets the top-level key `environment`"
    );
}

#[test]
fn every_error_is_reported_not_just_the_first() {
    let es =
        errors_of("autoscaling_groups:\n  - name: web\n    tier: web\n    min: x\n    max: y\n");
    assert_eq!(es.len(), 2, "{es:#?}");
}

mod semantic {
    use super::super::*;

    use super::super::fixtures::{prod, prod_with};

    fn diff_lines(before: &EnvironmentSpec, after: &EnvironmentSpec) -> Vec<String> {
        semantic_diff(Some(before), after)
            .iter()
            .map(ToString::to_string)
            .collect()
    }

    #[test]
    fn an_unchanged_spec_has_no_edits() {
        let a = prod();
        assert!(diff_lines(&a, &a).is_empty());
    }

    #[test]
    fn capacity_and_schedule_edits_are_named_by_path() {
        let before = prod();
        let after = prod_with(|n, t| {
            if n != "autoscaling.yaml" {
                return t.to_owned();
            }
            t.replace("was-peak,       cron: \"0 19 * * *\",  timezone: Asia/Seoul, min: 5, max: 7", "was-peak,       cron: \"0 19 * * *\",  timezone: Asia/Seoul, min: 5, max: 8")
                .replace("      - { name: web-business,   cron: \"0 9 * * *\",   timezone: Asia/Seoul, min: 2, max: 8, desired: 2 }\n", "")
                .replace("  - name: petclinic-prod-was\n    tier: was\n    min: 2\n    max: 8\n    desired: 2\n", "  - name: petclinic-prod-was\n    tier: was\n    min: 3\n    max: 8\n    desired: 3\n")
                .replace("scale_in_below: 30\n      adjustment: 1\n      cooldown_seconds: 300\n    schedule:\n      - { name: was-night", "scale_in_below: 25\n      adjustment: 1\n      cooldown_seconds: 300\n    schedule:\n      - { name: was-early, cron: \"0 6 * * 1-5\", timezone: Asia/Seoul, min: 3 }\n      - { name: was-night")
                .replace("was-night,      cron: \"0 0 * * *\",   timezone: Asia/Seoul, min: 2, max: 8, desired: 2", "was-night,      cron: \"0 0 * * *\",   timezone: Asia/Seoul, min: 3, max: 8, desired: 3")
        });
        assert_eq!(
            diff_lines(&before, &after),
            [
                "autoscaling_groups[petclinic-prod-web].schedule[web-business] removed: cron \"0 9 * * *\" Asia/Seoul, min 2, max 8, desired 2",
                "autoscaling_groups[petclinic-prod-was].min: 2 → 3",
                "autoscaling_groups[petclinic-prod-was].desired: 2 → 3",
                "autoscaling_groups[petclinic-prod-was].cpu_scaling: step: out above 50 %, in below 30 %, ±1, cooldown 300 s → step: out above 50 %, in below 25 %, ±1, cooldown 300 s",
                "autoscaling_groups[petclinic-prod-was].schedule[was-early] added: cron \"0 6 * * 1-5\" Asia/Seoul, min 3",
                "autoscaling_groups[petclinic-prod-was].schedule[was-night].min: 2 → 3",
                "autoscaling_groups[petclinic-prod-was].schedule[was-night].desired: 2 → 3",
                "autoscaling_groups[petclinic-prod-was].schedule[was-peak].max: 7 → 8",
            ]
        );
    }

    #[test]
    fn rule_database_slo_and_settings_edits() {
        let before = prod();
        let after = prod_with(|n, t| {
            match n {
            "security.yaml" => t.replace(
                "      - { protocol: tcp, port: 80,  cidr: 0.0.0.0/0, description: \"HTTP, redirected to HTTPS\" }\n",
                "",
            )
            .replace("port: 3306, from_group: petclinic-prod-was-sg", "port: 3306, from_group: petclinic-prod-web-sg"),
            "database.yaml" => t.replace("db.t3.medium", "db.t3.large").replace("multi_az: true", "multi_az: false"),
            "slo.yaml" => t.replace("objective: 99.9", "objective: 99.95"),
            "environment.yaml" => t.replace("required: 2", "required: 1"),
            _ => t.to_owned(),
        }
        });
        assert_eq!(
            diff_lines(&before, &after),
            [
                "environment.approvals.required: 2 → 1",
                "databases[petclinic-prod-db].instance_class: db.t3.medium → db.t3.large",
                "databases[petclinic-prod-db].multi_az: true → false",
                "security_groups[petclinic-prod-ext-alb-sg].ingress[tcp/80 from 0.0.0.0/0] removed: HTTP, redirected to HTTPS",
                "security_groups[petclinic-prod-db-sg].ingress[tcp/3306 from group petclinic-prod-web-sg] added: MySQL from the was tier",
                "security_groups[petclinic-prod-db-sg].ingress[tcp/3306 from group petclinic-prod-was-sg] removed: MySQL from the was tier",
                "slos[availability].objective: 99.9 → 99.95",
            ]
        );
    }

    #[test]
    fn a_first_change_lists_everything_as_added() {
        let after = prod();
        let edits = semantic_diff(None, &after);
        assert!(edits.iter().all(|e| e.kind == EditKind::Added));
        let shown: Vec<String> = edits.iter().map(ToString::to_string).collect();
        assert!(shown.contains(
            &"autoscaling_groups[petclinic-prod-web] added: tier web, min 2, max 8, desired 2"
                .to_owned()
        ));
        assert!(shown.contains(&"autoscaling_groups[petclinic-prod-was].schedule[was-peak] added: cron \"0 19 * * *\" Asia/Seoul, min 5, max 7".to_owned()));
        assert!(shown.contains(
            &"databases[petclinic-prod-db] added: db.t3.medium, Multi-AZ, 20 GB".to_owned()
        ));
    }
}

#[test]
fn files_over_the_size_limits_are_errors_that_name_the_file_and_the_limit() {
    let big = format!("# {}\n", "x".repeat(MAX_FILE_BYTES));
    let es = errors_of(&big);
    assert_eq!(
        es,
        [format!(
            "environments/prod/x.yaml:1:1: not read: {} bytes, and a spec file holds at most {MAX_FILE_BYTES}",
            big.len()
        )]
    );
    let mut many: Vec<(String, String)> = (0..MAX_FILES)
        .map(|i| (format!("f{i:02}.yaml"), String::new()))
        .collect();
    many.push(("g.yaml".into(), String::new()));
    let list: Vec<(&str, &str)> = many.iter().map(|(n, t)| (n.as_str(), t.as_str())).collect();
    let es = load_environment("prod", &files(&list)).unwrap_err();
    assert!(
        es.iter()
            .any(|e| e.file == "environments/prod/g.yaml"
                && e.message.contains("at most 64 spec files")),
        "{es:#?}"
    );
    // Four files under the per-file limit, over the folder's limit together.
    let quarter = format!("# {}\n", "x".repeat(MAX_FILE_BYTES - 10));
    let list: Vec<(String, String)> = (0..5)
        .map(|i| (format!("q{i}.yaml"), quarter.clone()))
        .collect();
    let list: Vec<(&str, &str)> = list.iter().map(|(n, t)| (n.as_str(), t.as_str())).collect();
    let es = load_environment("prod", &files(&list)).unwrap_err();
    assert!(
        es.iter().any(|e| e.file == "environments/prod/q4.yaml"
            && e.message.contains("hold at most 1048576 bytes together")),
        "{es:#?}"
    );
}

#[test]
fn an_alias_bomb_is_an_error_at_its_place() {
    let mut text = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
    for i in 1..=9 {
        let refs = vec![format!("*a{}", i - 1); 10].join(", ");
        text.push_str(&format!("a{i}: &a{i} [{refs}]\n"));
    }
    let e = one_error(&text);
    assert!(e.starts_with("x.yaml:"), "{e}");
    assert!(e.contains("aliases expanded"), "{e}");
}

#[test]
fn load_balancers_and_the_slos_counted_from_them_report_their_positions() {
    let lbs = "monitoring:\n  scrape_port: 9100\n  load_balancers:\n    - name: shop-ext\n      tier: web\n      target_groups: [shop-web]\n";
    let cases: &[(&str, &str)] = &[
        (
            "monitoring:\n  load_balancers:\n    - name: shop_ext!\n",
            "x.yaml:3:13: `monitoring.load_balancers[shop_ext!].name`: `shop_ext!` is not a load balancer's name",
        ),
        (
            "monitoring:\n  load_balancers:\n    - name: a\n      target_groups: [b, b]\n",
            "x.yaml:4:26: duplicate target group `b` (first at line 4)",
        ),
        (
            "monitoring:\n  load_balancers:\n    - name: a\n      listener: 80\n",
            "x.yaml:4:7: `monitoring.load_balancers[a]`: unknown key `listener`",
        ),
        (
            "monitoring:\n  scrape_port: 70000\n",
            "x.yaml:2:16: `monitoring.scrape_port`",
        ),
        (
            "slos:\n  - name: availability\n    objective: 99.9\n    load_balancer: nope\n",
            "x.yaml:2:5: `slos[availability].load_balancer`: `nope` is not one of monitoring.load_balancers (none is listed)",
        ),
        (
            "slos:\n  - name: a\n    objective: 99\n    load_balancer: x\n    total: 't[{{window}}]'\n",
            "x.yaml:5:12: `slos[a].total`: an SLO counted from a load balancer takes no PromQL",
        ),
        (
            "slos:\n  - name: a\n    objective: 99\n    latency_under_ms: 400\n    errors: 'e[{{window}}]'\n    total: 't[{{window}}]'\n",
            "x.yaml:4:23: `slos[a].latency_under_ms`: only an SLO counted from a load balancer",
        ),
        (
            "autoscaling_groups:\n  - name: web\n    tier: web\n    min: 2\n    max: 8\nmonitoring:\n  load_balancers:\n    - name: a\n      tier: db\n",
            "x.yaml:8:7: `monitoring.load_balancers[a].tier`: no autoscaling group has the tier `db`",
        ),
    ];
    assert_each_error(cases);

    // A group that does not load leaves no second error about its load balancer's tier.
    let es = errors_of("autoscaling_groups:\n  - name: web\n    tier: web\n    min: 3\n    max: 2\nmonitoring:\n  load_balancers:\n    - name: a\n      tier: web\n");
    assert_eq!(es.len(), 1, "{es:#?}");

    // Written in two files, the SLO finds its load balancer.
    let slo = "slos:\n  - name: availability\n    objective: 99.9\n    load_balancer: shop-ext\n  - name: latency\n    objective: 95\n    load_balancer: shop-ext\n    latency_under_ms: 400\n";
    let spec = load_environment(
        "prod",
        &files(&[("environment.yaml", ENV), ("m.yaml", lbs), ("s.yaml", slo)]),
    )
    .unwrap();
    assert_eq!(spec.monitoring.scrape_port(), 9100);
    assert_eq!(
        spec.monitoring.load_balancers[0].target_groups,
        ["shop-web"]
    );
    assert_eq!(
        spec.slos[1].indicator,
        Indicator::LoadBalancer {
            load_balancer: "shop-ext".into(),
            latency_under_ms: Some(400)
        }
    );
}
