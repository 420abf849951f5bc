//! Live progress of a series: a progress bar with the current rate and p99 on a
//! terminal (indicatif), one plain line per second otherwise (CI logs, pipes).

use hdrhistogram::Histogram;
use indicatif::{ProgressBar, ProgressStyle};
use std::io::IsTerminal;
use std::sync::Mutex;
use std::time::{Duration, Instant};

pub struct Progress {
    bar: Option<ProgressBar>,
    last_line: Mutex<Option<Instant>>,
}

impl Progress {
    pub fn new() -> Progress {
        Progress {
            bar: None,
            last_line: Mutex::new(None),
        }
    }

    /// Starts a series: a fresh bar on a terminal.
    pub fn start(&mut self, label: &str, total: Duration) {
        if !std::io::stderr().is_terminal() {
            eprintln!("{label}: running for {:.1} s", total.as_secs_f64());
            return;
        }
        let bar = ProgressBar::new(total.as_millis() as u64);
        bar.set_style(
            ProgressStyle::with_template("{prefix:>28} [{bar:30}] {elapsed:>4} {msg}")
                .expect("a valid template")
                .progress_chars("=> "),
        );
        bar.set_prefix(label.to_string());
        self.bar = Some(bar);
    }

    /// The latest second's acknowledged records and bytes, and latencies since the
    /// previous tick.
    pub fn tick(
        &self,
        elapsed: Duration,
        total: Duration,
        records: u64,
        bytes: u64,
        live: &Histogram<u64>,
    ) {
        let p99 = if live.is_empty() {
            "-".to_string()
        } else {
            format!("{:.2} ms", live.value_at_quantile(0.99) as f64 / 1000.0)
        };
        let message = format!("{records} rec/s, {:.1} MB/s, p99 {p99}", bytes as f64 / 1e6);
        match &self.bar {
            Some(bar) => {
                bar.set_position(elapsed.min(total).as_millis() as u64);
                bar.set_message(message);
            }
            None => {
                let mut last = self.last_line.lock().unwrap();
                if last.is_none_or(|t| t.elapsed() >= Duration::from_secs(1)) {
                    *last = Some(Instant::now());
                    eprintln!("  t={:>5.1}s {message}", elapsed.as_secs_f64());
                }
            }
        }
    }

    pub fn finish(&self, label: &str) {
        match &self.bar {
            Some(bar) => bar.finish_with_message("done"),
            None => eprintln!("{label}: done"),
        }
    }
}

impl Default for Progress {
    fn default() -> Self {
        Progress::new()
    }
}
