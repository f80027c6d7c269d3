//! Prints 30 days of generated PetClinic traffic as OpenMetrics, for the demo's Prometheus
//! (`promtool tsdb create-blocks-from openmetrics`): 100 requests/s for prod with one incident
//! (20 % failing for two hours, five days ago), 100/s for staging with a larger one, and
//! node_exporter series for the web and was tiers. The same data the SLO tests load.
//!
//!     demo-traffic [FILE]     (standard output without FILE)

use std::io::Write;

fn main() {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("a clock after 1970")
        .as_secs() as i64;
    let end = now - now % 60;
    let text = tierdeck_tests::prom::openmetrics(
        &tierdeck_tests::prom::petclinic_traffic(end),
        end - 31 * tierdeck_tests::prom::DAY,
        end,
        300,
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
