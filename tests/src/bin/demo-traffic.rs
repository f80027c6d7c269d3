//! Prints 30 days of generated PetClinic traffic as OpenMetrics, for the demo's Prometheus
//! (`promtool tsdb create-blocks-from openmetrics`): prod's requests follow the shop's Seoul
//! day (a night floor, business hours, the 19–22 h peak; 100 requests/s on average) with one
//! incident (20 of 100 requests/s failing from 14:00 to 16:00 five days ago), latency and the
//! web and was tiers' CPU rising with the load; staging's checks run at 100/s with a larger
//! incident. The same data the SLO tests load (`tierdeck_tests::prom`).
//!
//!     demo-traffic [FILE]     (standard output without FILE)

use std::io::Write;

fn main() {
    let end = tierdeck_tests::prom::data_end_now();
    let text = tierdeck_tests::prom::openmetrics(
        &tierdeck_tests::prom::petclinic_traffic(end),
        end - 31 * tierdeck_tests::prom::DAY,
        end,
        tierdeck_tests::prom::SAMPLE_STEP,
    );
    match std::env::args_os().nth(1) {
        Some(path) => {
            if let Err(e) = std::fs::write(&path, text) {
                eprintln!("demo-traffic: cannot write {}: {e}", path.to_string_lossy());
                std::process::exit(1);
            }
        }
        None => {
            if let Err(e) = std::io::stdout().write_all(text.as_bytes()) {
                eprintln!("demo-traffic: cannot write to standard output: {e}");
                std::process::exit(1);
            }
        }
    }
}
