//! Reachability of the example's prod, and what edits of it open and close.

use super::*;
use crate::spec::fixtures::{prod, prod_with};

/// Prod with `line` added after the line holding `after` in `file`.
fn prod_adding(edits: &[(&str, &str, &str)]) -> EnvironmentSpec {
    prod_with(|name, text| {
        let mut text = text.to_owned();
        for (file, after, line) in edits {
            if name == *file {
                let at = text
                    .find(after)
                    .unwrap_or_else(|| panic!("{file} has no `{after}`"));
                let end = at + text[at..].find('\n').unwrap() + 1;
                text.insert_str(end, &format!("{line}\n"));
            }
        }
        text
    })
}

fn open_paths(r: &Reachability) -> Vec<String> {
    r.paths
        .iter()
        .filter(|p| p.is_open())
        .map(|p| format!("{} <- {}: {}", p.to, p.from.text(), flows_text(&p.open)))
        .collect()
}

fn sentences(applied: &EnvironmentSpec, proposed: &EnvironmentSpec) -> Vec<String> {
    change_diff(Some(applied), proposed)
        .expect("the change touches the network")
        .into_iter()
        .map(|c| c.sentence)
        .collect()
}

#[test]
fn the_examples_chain_is_open_link_by_link_and_nothing_else() {
    let r = reachability(&prod());
    assert!(r.with_acls);
    assert_eq!(r.tiers, CHAIN);
    assert_eq!(
        open_paths(&r),
        [
            "external-alb <- the internet: tcp/80, 443",
            "web <- the external ALB: tcp/80",
            "internal-alb <- the web tier: tcp/80",
            "was <- the internal ALB: tcp/8080",
            "db <- the was tier: tcp/3306",
        ]
    );
    for p in &r.paths {
        assert_eq!(p.kind, PathKind::Chain, "{p:?}");
        assert!(p.answers_dropped.is_empty(), "{p:?}");
        assert!(p.blocked.is_empty(), "{p:?}");
    }
    assert_eq!(
        r.paths[4].loc.to_string(),
        "environments/prod/security.yaml:29:9"
    );
}

#[test]
fn a_rule_that_opens_the_database_to_a_block_says_so_in_one_sentence() {
    let before = prod();
    let after = prod_adding(&[
        (
            "security.yaml",
            "MySQL from the was tier",
            "      - { protocol: tcp, port: 3306, cidr: 172.16.0.0/12, description: the office VPN }",
        ),
        (
            "network.yaml",
            "MySQL from the was tier",
            "      - { rule: 110, protocol: tcp, port: 3306, cidr: 172.16.0.0/12, action: allow }",
        ),
        (
            "network.yaml",
            "answers to the was tier",
            "      - { rule: 110, protocol: tcp, port: 1024-65535, cidr: 172.16.0.0/12, action: allow }",
        ),
    ]);
    assert_eq!(
        sentences(&before, &after),
        ["The db tier is now reachable from 172.16.0.0/12 on tcp/3306."]
    );
    let change = &change_diff(Some(&before), &after).unwrap()[0];
    assert_eq!(change.kind, ReachChangeKind::Opened);
    assert!(
        change.off_chain,
        "the database from anywhere but the was tier"
    );
    // And back.
    assert_eq!(
        sentences(&after, &before),
        ["The db tier is no longer reachable from 172.16.0.0/12 on tcp/3306."]
    );
}

#[test]
fn a_security_group_opened_behind_a_closed_acl_opens_no_path() {
    let after = prod_adding(&[(
        "security.yaml",
        "MySQL from the was tier",
        "      - { protocol: tcp, port: 3306, cidr: 10.0.0.0/8 }",
    )]);
    // The db ACL admits 3306 from the was subnets only: nothing new passes both layers but
    // what stays inside one db subnet, where no ACL looks.
    assert_eq!(
        sentences(&prod(), &after),
        ["The db tier is now reachable from the db tier on tcp/3306."]
    );
    let r = reachability(&after);
    let blocked: Vec<String> = r
        .paths
        .iter()
        .filter(|p| p.to == "db" && !p.blocked.is_empty())
        .map(|p| format!("{}: {}", p.from.text(), p.blocked_by.join(", ")))
        .collect();
    assert!(
        blocked.contains(&"10.0.0.0/8: petclinic-prod-db-nacl".to_owned()),
        "{blocked:?}"
    );
    // Without network ACLs the same rule opens the database to the whole block, each tier in
    // it named.
    let bare = |s: &EnvironmentSpec| EnvironmentSpec {
        network_acls: Vec::new(),
        ..s.clone()
    };
    assert_eq!(
        sentences(&bare(&prod()), &bare(&after)),
        [
            "The db tier is now reachable from the external ALB on tcp/3306.",
            "The db tier is now reachable from the web tier on tcp/3306.",
            "The db tier is now reachable from the db tier on tcp/3306.",
            "The db tier is now reachable from 10.0.0.0/8 on tcp/3306.",
        ]
    );
}

#[test]
fn an_acl_that_drops_ephemeral_return_ports_is_named_with_the_calls_it_breaks() {
    assert_eq!(change_diff(Some(&prod()), &prod()), None, "no network edit");
    // The was tier's ACL denies answers from the database before rule 120 allows them.
    let after = prod_adding(&[(
        "network.yaml",
        "the internal ALB to Tomcat, across zones",
        "      - { rule: 115, protocol: tcp, port: 32768-65535, cidr: 10.0.40.0/23, action: deny }",
    )]);
    assert_eq!(
        sentences(&prod(), &after),
        ["Network ACL petclinic-prod-was-nacl now drops the return traffic of calls from the was tier to the db tier on tcp/3306 (return ports 32768-65535)."]
    );
    let db = reachability(&after)
        .paths
        .into_iter()
        .find(|p| p.to == "db")
        .unwrap();
    assert!(db.is_open(), "the calls still reach the database");
    assert_eq!(db.answers_dropped.text(), "32768-65535");
}

#[test]
fn paths_that_skip_a_tier_are_told_apart_from_the_chain() {
    let after = prod_adding(&[
        (
            "security.yaml",
            "from the internal ALB",
            "      - { protocol: tcp, port: 8080, cidr: 0.0.0.0/0 }",
        ),
        (
            "network.yaml",
            "the internal ALB to Tomcat, across zones",
            "      - { rule: 115, protocol: tcp, port: 8080, cidr: 0.0.0.0/0, action: allow }",
        ),
        (
            "network.yaml",
            "answers to the web tier",
            "      - { rule: 105, protocol: tcp, port: 1024-65535, cidr: 0.0.0.0/0, action: allow }",
        ),
    ]);
    let r = reachability(&after);
    let skip = r
        .paths
        .iter()
        .find(|p| p.to == "was" && p.from == Origin::Internet)
        .unwrap();
    assert_eq!(skip.kind, PathKind::Skip);
    assert_eq!(flows_text(&skip.open), "tcp/8080");
    let changes = change_diff(Some(&prod()), &after).unwrap();
    assert_eq!(
        changes
            .iter()
            .map(|c| (c.sentence.as_str(), c.off_chain))
            .collect::<Vec<_>>(),
        [(
            "The was tier is now reachable from the internet on tcp/8080.",
            true
        )]
    );
}

#[test]
fn all_traffic_between_tiers_without_acls_reads_as_all_traffic() {
    let mut spec = prod();
    spec.network_acls.clear();
    let db = spec
        .security_groups
        .iter_mut()
        .find(|g| g.tier.as_deref() == Some("db"))
        .unwrap();
    db.ingress[0].protocol = Protocol::All;
    db.ingress[0].ports = None;
    let r = reachability(&spec);
    assert!(!r.with_acls);
    let p = r.to("db").next().unwrap();
    assert_eq!(flows_text(&p.open), "all traffic");
    // A spec without tiers has no reachability to speak of.
    let mut bare = prod();
    for g in &mut bare.security_groups {
        g.tier = None;
        g.subnets = None;
    }
    assert!(reachability(&bare).paths.is_empty());
}
