//! The demo's AWS: a proxy in front of the emulator (moto) that passes every call on, except
//! the instance refresh API, which the emulator lacks and the proxy answers itself (replacing
//! instances in the emulator for real), and
//! `DescribeScalingActivities`, which it answers as Auto Scaling would have for prod over the
//! last 30 days of the demo's traffic (`tierdeck_tests::demo`): the scheduled pre-scale and
//! wind-down each evening, CPU scale-outs through the peak and the scale-in after it. The
//! emulator records no activities; the panel's Scaling page reads these. Refreshed every
//! minute, so the evening's activities appear as the demo runs through it.
//!
//! It also puts 30 days of prod's load balancer and database figures into CloudWatch
//! (`tierdeck_tests::cloudwatch::shop_month`: the same traffic as the demo's Prometheus, the
//! incident included; hourly, and every 12 minutes over the last 26 hours), through itself so
//! the response times keep their distribution for the percentiles the emulator lacks.
//!
//!     demo-aws UPSTREAM LISTEN      (e.g. http://127.0.0.1:5055 127.0.0.1:5056)

use std::time::Duration;

use tierdeck_tests::aws::FaultProxy;
use tierdeck_tests::cloudwatch::{lb_dimension, put, shop_month, tg_dimension, ShopMetrics};
use tierdeck_tests::demo::prod_activities;
use tierdeck_tests::prom::{data_end_now, prod_incident};

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("a clock after 1970")
        .as_secs() as i64
}

#[tokio::main]
async fn main() {
    let mut args = std::env::args().skip(1);
    let (Some(upstream), Some(listen)) = (args.next(), args.next()) else {
        eprintln!("usage: demo-aws UPSTREAM LISTEN (e.g. http://127.0.0.1:5055 127.0.0.1:5056)");
        std::process::exit(2);
    };
    if !listen.starts_with("127.") && !listen.starts_with("localhost:") {
        eprintln!("demo-aws: LISTEN must be a loopback address, not {listen}");
        std::process::exit(2);
    }
    let proxy = match FaultProxy::start_on(&upstream, &listen).await {
        Ok(p) => p,
        Err(e) => {
            eprintln!("demo-aws: cannot listen on {listen}: {e}");
            std::process::exit(1);
        }
    };
    println!("demo-aws: {} in front of {upstream}", proxy.url);
    let lb = lb_dimension(&proxy.url, "petclinic-prod-ext-alb").await;
    let tg = tg_dimension(&proxy.url, "petclinic-prod-web-tg").await;
    let shop = ShopMetrics {
        load_balancer: &lb,
        target_group: &tg,
        database: "petclinic-prod-db",
    };
    let end = data_end_now();
    let (alb, rds) = shop_month(&shop, end, 30, (26, 720), prod_incident(end));
    put(&proxy.url, "AWS/ApplicationELB", &alb).await;
    put(&proxy.url, "AWS/RDS", &rds).await;
    println!(
        "demo-aws: 30 days of prod's load balancer and database figures put ({} datapoints)",
        alb.len() + rds.len()
    );
    loop {
        proxy.scaling_activities(prod_activities(now(), 30));
        tokio::time::sleep(Duration::from_secs(60)).await;
    }
}
