//! The demo's AWS: a proxy in front of the emulator (moto) that passes every call on, except
//! `DescribeScalingActivities`, which it answers as Auto Scaling would have for prod over the
//! last 30 days of the demo's traffic (`tierdeck_tests::demo`): the scheduled pre-scale and
//! wind-down each evening, CPU scale-outs through the peak and the scale-in after it. The
//! emulator records no activities; the panel's Scaling page reads these. Refreshed every
//! minute, so the evening's activities appear as the demo runs through it.
//!
//!     demo-aws UPSTREAM LISTEN      (e.g. http://127.0.0.1:5055 127.0.0.1:5056)

use std::time::Duration;

use tierdeck_tests::aws::FaultProxy;
use tierdeck_tests::demo::prod_activities;

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
    loop {
        proxy.scaling_activities(prod_activities(now(), 30));
        tokio::time::sleep(Duration::from_secs(60)).await;
    }
}
