//! Reachability timings (not run by the test suite):
//! `cargo bench -p tierdeck-domain --bench reachability`.
//!
//! 1. the example's prod (5 security groups, 4 network ACLs, 8 subnets);
//! 2. a synthetic environment of 50 security groups and 10 network ACLs: 10 tiers of 5 groups,
//!    each tier in two subnets under its own ACL (8 ingress and 8 egress entries), each group
//!    taking 3 rules: one from a group of the tier before it, one from a block, one from its
//!    own tier;
//! 3. the reachability diff of one rule added to the synthetic environment (both sides
//!    computed, then compared).

use std::time::Instant;

use tierdeck_domain::reachability::{change_diff, reachability};
use tierdeck_domain::spec::{load_environment, EnvironmentSpec, SourceFile};

fn example() -> EnvironmentSpec {
    let dir = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../examples/petclinic/environments/prod"
    );
    let files: Vec<SourceFile> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .map(|p| SourceFile {
            path: format!(
                "environments/prod/{}",
                p.file_name().unwrap().to_string_lossy()
            ),
            text: std::fs::read_to_string(&p).unwrap(),
        })
        .collect();
    load_environment("prod", &files).expect("the example loads")
}

/// 10 tiers (`t0` … `t9`) of 5 groups each, every tier in two subnets guarded by its own ACL.
fn synthetic(extra: &str) -> EnvironmentSpec {
    let mut sg = String::from("security_groups:\n");
    let mut net = String::from("subnets:\n");
    let mut acls = String::from("network_acls:\n");
    for t in 0..10 {
        for z in 0..2 {
            net.push_str(&format!(
                "  - {{ name: s-{t}-{z}, tier: t{t}, cidr: 10.{t}.{z}.0/24 }}\n"
            ));
        }
        let prev = if t == 0 { 9 } else { t - 1 };
        for g in 0..5 {
            sg.push_str(&format!(
                "  - name: g-{t}-{g}\n    tier: t{t}\n    ingress:\n      - {{ protocol: tcp, port: {port}, from_group: g-{prev}-{g} }}\n      - {{ protocol: tcp, port: 22, cidr: 172.16.{t}.0/24 }}\n      - {{ protocol: tcp, port: 9100, from_group: g-{t}-{other} }}\n",
                port = 8000 + g,
                other = (g + 1) % 5,
            ));
        }
        acls.push_str(&format!(
            "  - name: acl-{t}\n    subnets: [t{t}]\n    ingress:\n      - {{ rule: 100, protocol: tcp, port: 8000-8004, cidr: 10.{prev}.0.0/23, action: allow }}\n      - {{ rule: 110, protocol: tcp, port: 22, cidr: 172.16.0.0/12, action: allow }}\n      - {{ rule: 120, protocol: tcp, port: 9100, cidr: 10.{t}.0.0/23, action: allow }}\n      - {{ rule: 130, protocol: tcp, port: 1024-65535, cidr: 10.0.0.0/8, action: allow }}\n      - {{ rule: 140, protocol: udp, port: 53, cidr: 10.0.0.0/8, action: allow }}\n      - {{ rule: 150, protocol: icmp, cidr: 10.0.0.0/8, action: allow }}\n      - {{ rule: 160, protocol: tcp, port: 3306, cidr: 10.9.0.0/16, action: deny }}\n      - {{ rule: 170, protocol: tcp, port: 1024-65535, cidr: 172.16.0.0/12, action: allow }}\n    egress:\n      - {{ rule: 100, protocol: tcp, port: 8000-8004, cidr: 10.0.0.0/8, action: allow }}\n      - {{ rule: 110, protocol: tcp, port: 1024-65535, cidr: 10.0.0.0/8, action: allow }}\n      - {{ rule: 120, protocol: tcp, port: 1024-65535, cidr: 172.16.0.0/12, action: allow }}\n      - {{ rule: 130, protocol: tcp, port: 9100, cidr: 10.{t}.0.0/23, action: allow }}\n      - {{ rule: 140, protocol: udp, port: 53, cidr: 10.0.0.0/8, action: allow }}\n      - {{ rule: 150, protocol: icmp, cidr: 10.0.0.0/8, action: allow }}\n      - {{ rule: 160, protocol: tcp, port: 443, cidr: 0.0.0.0/0, action: allow }}\n      - {{ rule: 170, protocol: tcp, port: 25, cidr: 0.0.0.0/0, action: deny }}\n"
        ));
    }
    sg.push_str(extra);
    let files = vec![
        SourceFile {
            path: "environments/big/environment.yaml".into(),
            text: "environment:\n  name: big\n".into(),
        },
        SourceFile {
            path: "environments/big/security.yaml".into(),
            text: sg,
        },
        SourceFile {
            path: "environments/big/network.yaml".into(),
            text: format!("{net}{acls}"),
        },
    ];
    load_environment("big", &files).expect("the synthetic environment loads")
}

fn timed<T>(what: &str, n: usize, mut f: impl FnMut() -> T) -> T {
    let mut ms = Vec::with_capacity(n);
    let mut last = None;
    for _ in 0..n {
        let start = Instant::now();
        last = Some(std::hint::black_box(f()));
        ms.push(start.elapsed().as_secs_f64() * 1000.0);
    }
    ms.sort_by(|a, b| a.partial_cmp(b).unwrap());
    println!(
        "{what}: n={n} p50={:.3} ms p95={:.3} ms",
        ms[n / 2],
        ms[((n as f64 - 1.0) * 0.95).round() as usize]
    );
    last.unwrap()
}

fn main() {
    let prod = example();
    let r = timed("prod reachability (5 groups, 4 ACLs)", 200, || {
        reachability(&prod)
    });
    println!("  {} paths", r.paths.len());
    let big = synthetic("");
    assert_eq!(big.security_groups.len(), 50);
    assert_eq!(big.network_acls.len(), 10);
    let r = timed("reachability of 50 groups and 10 ACLs", 50, || {
        reachability(&big)
    });
    println!(
        "  {} paths, {} open",
        r.paths.len(),
        r.paths.iter().filter(|p| p.is_open()).count()
    );
    let more = synthetic("      - { protocol: tcp, port: 8000, cidr: 10.0.0.0/8 }\n");
    let d = timed(
        "reachability diff of one rule, 50 groups and 10 ACLs",
        20,
        || change_diff(Some(&big), &more),
    );
    println!("  {} sentences", d.map_or(0, |d| d.len()));
}
