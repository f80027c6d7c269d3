//! Prints 30 days of generated PetClinic traffic as OpenMetrics, for the demo's Prometheus
//! (`promtool tsdb create-blocks-from openmetrics`): 100 requests/s for prod with one incident
//! (20 % failing for two hours, five days ago), 100/s for staging with a larger one, and
//! node_exporter series for the web and was tiers. The same data the SLO tests load.

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
    std::io::stdout()
        .write_all(text.as_bytes())
        .expect("writing to standard output");
}
