//! Histograms as HdrHistogram's percentile-distribution text (`.hgrm`), the format
//! HdrHistogram's plotter and most latency tooling read, and the percentiles reported.

use hdrhistogram::Histogram;
use std::fmt::Write as _;

/// The percentiles every report shows.
pub const PERCENTILES: [(&str, f64); 6] = [
    ("p50", 50.0),
    ("p90", 90.0),
    ("p99", 99.0),
    ("p99.9", 99.9),
    ("p99.99", 99.99),
    ("max", 100.0),
];

/// Microseconds at each of `PERCENTILES`.
pub fn percentiles(h: &Histogram<u64>) -> Vec<(&'static str, u64)> {
    PERCENTILES
        .iter()
        .map(|(name, p)| {
            let value = if *p >= 100.0 {
                h.max()
            } else {
                h.value_at_percentile(*p)
            };
            (*name, value)
        })
        .collect()
}

/// The `.hgrm` text of a histogram of microseconds, values in milliseconds.
pub fn hgrm(h: &Histogram<u64>) -> String {
    let mut out = String::new();
    writeln!(
        out,
        "{:>12} {:>14} {:>10} {:>14}\n",
        "Value", "Percentile", "TotalCount", "1/(1-Percentile)"
    )
    .unwrap();
    let mut count = 0u64;
    for step in h.iter_quantiles(5) {
        count += step.count_since_last_iteration();
        let q = step.quantile_iterated_to();
        let inverse = if q < 1.0 {
            format!("{:>14.2}", 1.0 / (1.0 - q))
        } else {
            String::new()
        };
        writeln!(
            out,
            "{:>12.3} {:>14.12} {:>10} {inverse}",
            step.value_iterated_to() as f64 / 1000.0,
            q,
            count
        )
        .unwrap();
    }
    let mean = h.mean() / 1000.0;
    let stdev = h.stdev() / 1000.0;
    writeln!(
        out,
        "#[Mean    = {mean:>12.3}, StdDeviation   = {stdev:>12.3}]\n#[Max     = {:>12.3}, Total count    = {:>12}]\n#[Buckets = {:>12}, SubBuckets     = {:>12}]",
        h.max() as f64 / 1000.0,
        h.len(),
        h.buckets(),
        h.distinct_values()
    )
    .unwrap();
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hgrm_lists_rising_percentiles_and_the_totals() {
        let mut h = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).unwrap();
        for us in 1..=1000 {
            h.record(us).unwrap();
        }
        let text = hgrm(&h);
        assert!(text.starts_with("       Value"), "{text}");
        assert!(text.contains("Total count    =         1000"), "{text}");
        let p = percentiles(&h);
        assert_eq!(p[0], ("p50", 500));
        assert_eq!(p[5], ("max", 1000));
    }
}
