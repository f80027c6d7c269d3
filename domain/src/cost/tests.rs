use super::*;
use crate::schedule::utc;
use crate::spec::{load_environment, Capacity, CapacityChange, SourceFile};

const PRICES: &str = r#"
source: test prices
as_of: "2026-12-01"
currency: USD
region: ap-northeast-2
instances:
  t3.medium: 0.144
  t3.large: 0.10
databases:
  engine: mysql
  classes:
    db.t3.medium: { single_az: 0.073, multi_az: 0.146 }
  storage:
    type: gp2
    single_az: 0.131
    multi_az: 0.262
"#;

/// The team's five-slot schedule (Asia/Seoul) on one group, and a Multi-AZ database.
fn spec(peak_max: u32, extra_group: &str) -> EnvironmentSpec {
    let asg = format!(
        r#"
autoscaling_groups:
  - name: web
    tier: web
    min: 2
    max: 8
    desired: 2
    instance_type: t3.medium
    schedule:
      - {{ name: night,     cron: "0 0 * * *",   timezone: Asia/Seoul, min: 2, max: 8, desired: 2 }}
      - {{ name: business,  cron: "0 9 * * *",   timezone: Asia/Seoul, min: 2, max: 8, desired: 2 }}
      - {{ name: prescale,  cron: "50 18 * * *", timezone: Asia/Seoul, min: 3, max: 4, desired: 4 }}
      - {{ name: peak,      cron: "0 19 * * *",  timezone: Asia/Seoul, min: 4, max: {peak_max} }}
      - {{ name: wind-down, cron: "0 22 * * *",  timezone: Asia/Seoul, min: 2, max: 3 }}
{extra_group}
"#
    );
    let files = vec![
        SourceFile {
            path: "environments/shop/environment.yaml".into(),
            text: "environment:\n  name: shop\n  region: ap-northeast-2\n  guardrails: { max_instances: 10 }\n".into(),
        },
        SourceFile {
            path: "environments/shop/autoscaling.yaml".into(),
            text: asg,
        },
        SourceFile {
            path: "environments/shop/database.yaml".into(),
            text: "databases:\n  - identifier: db\n    instance_class: db.t3.medium\n    multi_az: true\n    allocated_storage_gb: 20\n".into(),
        },
    ];
    load_environment("shop", &files).expect("the test spec loads")
}

fn facts() -> Facts {
    Facts {
        region: "ap-northeast-2".into(),
        instance_types: BTreeMap::new(),
        databases: BTreeMap::from([(
            "db".to_owned(),
            DatabaseFacts {
                engine: Some("mysql".into()),
                storage_type: Some("gp2".into()),
                from: "AWS".into(),
                ..DatabaseFacts::default()
            },
        )]),
    }
}

fn cost_of(spec: &EnvironmentSpec, period: Period) -> EnvironmentCost {
    let file = parse_price_file("prices.yaml", PRICES).expect("the test prices parse");
    let f = facts();
    let book = file.book(&price_keys(spec, &f));
    environment_cost(spec, &f, &book, &file.currency, period)
}

fn cents(b: Band) -> [String; 3] {
    [
        money(b.floor, "USD"),
        money(b.expected, "USD"),
        money(b.ceiling, "USD"),
    ]
}

#[test]
fn the_five_slot_schedule_is_priced_by_the_hour_to_the_cent() {
    // December 2026 in UTC: 31 whole days, each [09:00, 09:00) Seoul, one full daily cycle.
    // Minutes per day at each slot (Seoul time), floor / expected / ceiling instances:
    //   00:00–09:00  540 min  night      2 / 2 / 8
    //   09:00–18:50  590 min  business   2 / 2 / 8
    //   18:50–19:00   10 min  prescale   3 / 4 / 4   (desired 4)
    //   19:00–22:00  180 min  peak       4 / 4 / 6   (desired 4 carried, inside 4–6)
    //   22:00–24:00  120 min  wind-down  2 / 3 / 3   (desired 4 kept inside 2–3)
    // Instance-minutes per day: floor 3,250; expected 3,380; ceiling 10,520.
    // Per 730-hour month at $0.144/h: minutes × 730/1440 × 0.144 = minutes × $0.073:
    //   floor $237.25, expected $246.74, ceiling $767.96.
    let c = cost_of(&spec(6, ""), Period::month_of(utc(2026, 12, 15, 0, 0)));
    assert_eq!(c.period_hours, 744.0);
    let web = &c.groups[0];
    assert_eq!(web.instance_type.as_deref(), Some("t3.medium"));
    assert_eq!(web.instance_type_from.as_deref(), Some("spec"));
    assert_eq!(
        cents(web.monthly.unwrap()),
        ["$237.25", "$246.74", "$767.96"]
    );
    // Without its schedule the group is 2–8 (desired 2) all month: 2 × 730 × 0.144 = $210.24,
    // 8 × 730 × 0.144 = $840.96. The schedule saves $73.00 at the ceiling and costs
    // $27.01 at the floor and $36.50 expected.
    assert_eq!(
        cents(web.flat_monthly.unwrap()),
        ["$210.24", "$210.24", "$840.96"]
    );
    assert_eq!(cents(c.saving), ["-$27.01", "-$36.50", "$73.00"]);
    // The database: Multi-AZ db.t3.medium 0.146 × 730 = $106.58; 20 GB × $0.262 = $5.24.
    let db = &c.databases[0];
    assert_eq!(money(db.instance_monthly.unwrap(), "USD"), "$106.58");
    assert_eq!(money(db.storage_monthly.unwrap(), "USD"), "$5.24");
    // The whole environment: $237.25 + $111.82 and so on.
    assert_eq!(cents(c.monthly), ["$349.07", "$358.56", "$879.78"]);
    assert!(c.is_complete(), "{:?}", c.unpriced);
    assert_eq!(
        c.sources,
        vec!["price file prices.yaml (test prices) (as of 2026-12-01)"]
    );
    // The weekly chart: 168 hours; 19:00–20:00 Seoul (10:00 UTC) is the peak: 4 instances
    // expected, 6 at most, plus the database's $111.82 / 730 an hour.
    assert_eq!(c.week.len(), 168);
    let ten_utc = c.week[10].band;
    let db_hour = 111.82 / 730.0;
    assert!((ten_utc.expected - (4.0 * 0.144 + db_hour)).abs() < 1e-3);
    assert!((ten_utc.ceiling - (6.0 * 0.144 + db_hour)).abs() < 1e-3);
    // 09:00–10:00 UTC is 18:00–19:00 Seoul: 50 minutes at 2, 10 at 4 expected.
    let nine_utc = c.week[9].band;
    assert!(
        (nine_utc.expected - ((2.0 * 50.0 + 4.0 * 10.0) / 60.0 * 0.144 + db_hour)).abs() < 1e-3
    );
}

#[test]
fn raising_one_slots_max_adds_its_hours_to_the_ceiling() {
    // peak's max 6 → 8: 2 more instances for 180 minutes a day = 360 minutes × $0.073 = $26.28
    // on the ceiling; floor and expected do not move.
    let period = Period::month_of(utc(2026, 12, 1, 0, 0));
    let before = cost_of(&spec(6, ""), period);
    let after = cost_of(&spec(8, ""), period);
    let change = ChangeCost::of(Some(&before), &after);
    assert_eq!(cents(change.delta), ["$0.00", "$0.00", "$26.28"]);
    assert!(change.moves());
    assert_eq!(
        change.text(),
        "monthly $349.07 – $879.78 (expected $358.56) → $349.07 – $906.06 (expected $358.56); expected ±$0.00, ceiling +$26.28"
    );
    let same = ChangeCost::of(Some(&before), &before);
    assert!(!same.moves());
}

#[test]
fn a_daylight_saving_switch_counts_the_hour_that_does_not_happen() {
    // New York, March 2026 (744 hours in UTC): clocks jump 02:00 → 03:00 on the 8th. The group
    // is at 4 from 01:00 to 03:00 local, else at 2: 2 hours a day on 30 days, 1 hour on the
    // 8th, so 61 hours at 4 and 683 at 2 = 1,610 instance-hours; × 730 / 744 = 1,579.70 per
    // month, $157.97 at $0.10 (the naive daily pattern × 730/24 would say $158.17).
    let mut s = spec(6, "");
    let mut g = s.autoscaling_groups[0].clone();
    g.name = "ny".parse().unwrap();
    g.instance_type = Some("t3.large".into());
    g.capacity = Capacity::new(g.capacity.min(), g.capacity.max(), None).unwrap();
    g.schedule.truncate(2);
    for (a, (cron, min)) in g
        .schedule
        .iter_mut()
        .zip([("0 1 * * *", 4), ("0 3 * * *", 2)])
    {
        a.cron = cron.parse().unwrap();
        a.timezone = "America/New_York".parse().unwrap();
        a.capacity = CapacityChange::new(Some(min), Some(min), None).unwrap();
    }
    s.autoscaling_groups = vec![g];
    s.databases.clear();
    let c = cost_of(&s, Period::month_of(utc(2026, 3, 10, 0, 0)));
    assert_eq!(c.period_hours, 744.0);
    let hours = c.groups[0].hours;
    assert!(
        (hours.floor - 1610.0 * 730.0 / 744.0).abs() < 1e-6,
        "{hours:?}"
    );
    assert_eq!(money(c.monthly.floor, "USD"), "$157.97");
}

#[test]
fn an_unpriced_type_is_listed_and_never_guessed() {
    let extra = r#"
  - name: batch
    tier: batch
    min: 1
    max: 2
    instance_type: m7g.metal
"#;
    let c = cost_of(&spec(6, extra), Period::month_of(utc(2026, 12, 1, 0, 0)));
    let batch = &c.groups[1];
    assert_eq!(batch.monthly, None);
    assert_eq!(
        batch.unpriced.as_deref(),
        Some("batch: m7g.metal in ap-northeast-2: unpriced: the price file prices.yaml has no price for it")
    );
    assert_eq!(c.unpriced.len(), 1);
    // The total holds what is priced; the page says it is incomplete.
    assert_eq!(cents(c.monthly), ["$349.07", "$358.56", "$879.78"]);
    assert!(!c.is_complete());

    // A type AWS reports wins over the spec's.
    let mut f = facts();
    f.instance_types.insert("web".into(), "t3.large".into());
    let s = spec(6, "");
    let file = parse_price_file("prices.yaml", PRICES).unwrap();
    let c = environment_cost(
        &s,
        &f,
        &file.book(&price_keys(&s, &f)),
        "USD",
        Period::month_of(utc(2026, 12, 1, 0, 0)),
    );
    assert_eq!(
        c.groups[0].instance_type_from.as_deref(),
        Some("launch template")
    );
    assert_eq!(c.groups[0].price.as_ref().map(|p| p.per_unit), Some(0.10));
}

fn change(before: Option<f64>, after: Band) -> ChangeCost {
    let before = before.map(|c| Band {
        floor: 100.0,
        expected: 200.0,
        ceiling: c,
    });
    ChangeCost {
        currency: "USD".into(),
        before,
        after,
        delta: after.minus(before.unwrap_or_default()),
        unpriced: Vec::new(),
        ceiling_may_rise: Vec::new(),
        expected_may_rise: Vec::new(),
    }
}

#[test]
fn the_cost_policy_blocks_a_rising_ceiling_and_asks_for_an_approval_on_a_rise() {
    let policy = CostPolicy {
        max_monthly: Some(900.0),
        extra_approval_above: Some(50.0),
    };
    let after = Band {
        floor: 100.0,
        expected: 260.0,
        ceiling: 906.06,
    };
    let v = verdict(&policy, &change(Some(879.78), after));
    assert_eq!(
        v.blocked.as_deref(),
        Some("Its monthly ceiling $906.06 is above environment.cost.max_monthly ($900.00).")
    );
    assert_eq!(
        v.extra_approval.as_deref(),
        Some("Its expected monthly cost rises by $60.00 (more than environment.cost.extra_approval_above, $50.00): it needs one more approval.")
    );
    // Lowering a ceiling that is already above the limit is not blocked.
    let v = verdict(&policy, &change(Some(950.0), after));
    assert_eq!(v.blocked, None);
    // Within both limits: nothing.
    let small = Band {
        floor: 100.0,
        expected: 240.0,
        ceiling: 880.0,
    };
    assert_eq!(
        verdict(&policy, &change(Some(879.78), small)),
        CostVerdict::default()
    );
    // A first apply counts its whole cost.
    assert!(verdict(&policy, &change(None, small))
        .extra_approval
        .is_some());
    // No policy: no verdict.
    assert_eq!(
        verdict(&CostPolicy::default(), &change(Some(1.0), after)),
        CostVerdict::default()
    );
    // Unpriced resources never let a rise through a limit unseen: what may rise goes only as
    // an emergency, with one more approval.
    let mut c = change(Some(879.78), small);
    c.unpriced = vec!["batch: m7g.metal in ap-northeast-2: unpriced".into()];
    c.ceiling_may_rise = vec!["autoscaling group batch is new".into()];
    c.expected_may_rise = c.ceiling_may_rise.clone();
    let v = verdict(&policy, &c);
    assert_eq!(v.blocked, None);
    assert!(v.incomplete);
    let unchecked = v.unchecked.unwrap();
    assert!(
        unchecked.contains("cannot be checked (batch: m7g.metal in ap-northeast-2: unpriced) and the change may raise the monthly ceiling (autoscaling group batch is new): it may be applied only as an emergency"),
        "{unchecked}"
    );
    assert!(v.extra_approval.unwrap().contains("cannot be checked"));
    // What cannot raise a figure is not held back for it.
    c.ceiling_may_rise.clear();
    c.expected_may_rise.clear();
    let v = verdict(&policy, &c);
    assert_eq!(
        (v.blocked, v.unchecked, v.extra_approval),
        (None, None, None)
    );
}

/// A Price List outage, or one unpriced resource, holds back only the changes that may raise
/// the ceiling, and those only as far as an emergency: never one that cannot cost more, never
/// a revert.
#[test]
fn a_cost_that_cannot_be_computed_holds_back_only_what_may_raise_the_ceiling() {
    let period = Period::month_of(utc(2026, 12, 1, 0, 0));
    let f = facts();
    // The Price List is down: nothing is priced.
    let outage = |spec: &EnvironmentSpec| {
        let mut book = PriceBook::default();
        for k in price_keys(spec, &f) {
            book.insert(k, Err("unpriced: the AWS Price List did not answer".into()));
        }
        environment_cost(spec, &f, &book, "USD", period)
    };
    let policy = CostPolicy {
        max_monthly: Some(900.0),
        extra_approval_above: Some(50.0),
    };
    let applied = outage(&spec(6, ""));
    // Lowering the peak's max, or a change that moves no figure: nothing to hold back.
    for proposed in [spec(5, ""), spec(6, "")] {
        let c = ChangeCost::of(Some(&applied), &outage(&proposed));
        assert!(!c.unpriced.is_empty());
        assert_eq!(c.ceiling_may_rise, Vec::<String>::new());
        let v = verdict(&policy, &c);
        assert_eq!(
            (&v.blocked, &v.unchecked, &v.extra_approval),
            (&None, &None, &None)
        );
    }
    // Raising it may raise the ceiling: an emergency only, and so the page says.
    let c = ChangeCost::of(Some(&applied), &outage(&spec(8, "")));
    assert_eq!(
        c.ceiling_may_rise,
        ["autoscaling group web runs more instance-hours (5516 instead of 5333)"]
    );
    assert_eq!(
        c.expected_may_rise,
        Vec::<String>::new(),
        "expected is unmoved"
    );
    let v = verdict(&policy, &c);
    assert_eq!((&v.blocked, &v.extra_approval), (&None, &None));
    let mut p = crate::policy::judge(
        crate::policy::Applied::Never,
        &spec(8, ""),
        &crate::policy::Floor::default(),
    );
    let required = p.required_approvals;
    crate::cost::apply_verdict(&mut p, &v, false);
    assert_eq!(p.cost_blocked, None, "approvals and emergencies go on");
    assert_eq!(p.cost_unchecked, v.unchecked);
    assert_eq!(p.required_approvals, required);
    // A revert is never held back by figures that cannot be computed.
    let mut p = crate::policy::judge(
        crate::policy::Applied::Never,
        &spec(8, ""),
        &crate::policy::Floor::default(),
    );
    crate::cost::apply_verdict(&mut p, &v, true);
    assert_eq!((p.cost_blocked, p.cost_unchecked), (None, None));
    assert!(p
        .notes
        .iter()
        .any(|n| n.contains("never holds back a revert")));
    // Another instance type or a new database may raise it too; a removed group cannot.
    let mut bigger = spec(6, "");
    bigger.autoscaling_groups[0].instance_type = Some("t3.large".into());
    let c = ChangeCost::of(Some(&applied), &outage(&bigger));
    assert_eq!(
        c.ceiling_may_rise,
        ["autoscaling group web launches t3.large instead of t3.medium"]
    );
    let mut fewer = spec(6, "");
    fewer.autoscaling_groups.clear();
    let c = ChangeCost::of(Some(&applied), &outage(&fewer));
    assert_eq!(c.ceiling_may_rise, Vec::<String>::new());
    // Never applied: everything is new.
    let c = ChangeCost::of(None, &outage(&spec(6, "")));
    assert_eq!(
        c.ceiling_may_rise,
        ["autoscaling group web is new", "database db is new"]
    );
}

/// A price in another currency than the figures' is unpriced, with the reason: a price file
/// in EUR is never summed with Price List answers in USD.
#[test]
fn prices_in_another_currency_are_unpriced_and_never_summed() {
    let s = spec(6, "");
    let f = facts();
    let eur = PRICES.replace("currency: USD", "currency: EUR");
    let file = parse_price_file("prices.yaml", &eur).unwrap();
    let mut book = file.book(&price_keys(&s, &f));
    // The instance's price came from the Price List, in USD.
    book.insert(
        PriceKey::Instance {
            region: "ap-northeast-2".into(),
            instance_type: "t3.medium".into(),
        },
        Ok(Price {
            per_unit: 0.052,
            currency: "USD".into(),
            source: "AWS Price List, SKU X".into(),
            as_of: "2026-12-01".into(),
        }),
    );
    let c = environment_cost(
        &s,
        &f,
        &book,
        "EUR",
        Period::month_of(utc(2026, 12, 1, 0, 0)),
    );
    assert_eq!(c.groups[0].monthly, None);
    assert_eq!(
        c.unpriced,
        ["web: t3.medium in ap-northeast-2: unpriced: AWS Price List, SKU X gives a price in USD, not in EUR (the figures' currency), and tierdeck never adds one currency to another"]
    );
    // The database, priced in EUR by the file, is summed alone.
    assert_eq!(money(c.monthly.ceiling, "EUR"), "111.82 EUR");
}

#[test]
fn what_ran_is_integrated_from_the_in_service_counts() {
    // 2 instances for 10 hours, 5 for 2 hours, then 3 until now (4 hours later).
    let h = 3600;
    let (covered, hours) = ran_hours(&[(0, 2), (10 * h, 5), (12 * h, 3)], 16 * h);
    assert_eq!(covered, 16.0);
    assert_eq!(hours, 2.0 * 10.0 + 5.0 * 2.0 + 3.0 * 4.0);
    assert_eq!(ran_hours(&[], 16 * h), (0.0, 0.0));
}

#[test]
fn a_price_file_error_names_the_file_line_and_field() {
    let bad = PRICES.replace("t3.large: 0.10", "t3.large: cheap");
    let e = parse_price_file("prices.yaml", &bad).unwrap_err();
    assert_eq!(
        e.to_string(),
        "prices.yaml:8:13: `instances.t3.large`: expected a price of 0 or more, found `cheap`"
    );
    let e = parse_price_file(
        "p.yaml",
        "source: x\nas_of: y\ncurrency: USD\nregion: r\nbogus: 1\n",
    )
    .unwrap_err();
    assert_eq!(e.line, 5);
    assert!(e.message.contains("unknown key `bogus`"), "{e}");
    let e = parse_price_file("p.yaml", "source: x\n").unwrap_err();
    assert!(e.message.contains("`as_of` is missing"), "{e}");
    // Another region and another engine are unpriced, with the reason.
    let file = parse_price_file("prices.yaml", PRICES).unwrap();
    let other = file.lookup(&PriceKey::Instance {
        region: "us-east-1".into(),
        instance_type: "t3.medium".into(),
    });
    assert_eq!(
        other.unwrap_err(),
        "unpriced: the price file prices.yaml has prices for ap-northeast-2 only"
    );
    let pg = file.lookup(&PriceKey::Database {
        region: "ap-northeast-2".into(),
        engine: "postgres".into(),
        class: "db.t3.medium".into(),
        multi_az: true,
    });
    assert!(pg
        .unwrap_err()
        .contains("prices mysql databases, not postgres"));
}

#[test]
fn money_is_shown_to_the_cent_with_thousands() {
    assert_eq!(money(1234.5, "USD"), "$1,234.50");
    assert_eq!(money(-3.204, "USD"), "-$3.20");
    assert_eq!(money(12.0, "EUR"), "12.00 EUR");
    assert_eq!(money(1_000_000.0, "USD"), "$1,000,000.00");
    assert_eq!(money_delta(26.28, "USD"), "+$26.28");
    assert_eq!(money_delta(0.001, "USD"), "±$0.00");
}
