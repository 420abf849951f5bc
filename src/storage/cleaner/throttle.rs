//! `log.cleaner.io.max.bytes.per.second`: the cleaner's reads and writes, paced (Kafka's
//! `Throttler`). Each slice of I/O books `bytes / rate` seconds on a timeline; when the
//! timeline runs ahead of the clock the cleaner sleeps until the clock catches up, so
//! over any stretch the rate holds, with slices small enough to keep it smooth.
//!
//! One per shard's cleaner; the broker-wide rate is shared out evenly between shards.

use std::time::{Duration, Instant};

pub(crate) struct Throttler {
    /// Bytes per second; infinite (Kafka's default, `Double.MAX_VALUE`) never waits.
    rate: f64,
    /// Until when the I/O booked so far would keep the rate.
    booked_until: Instant,
    /// Time spent waiting, for the metrics.
    pub waited: Duration,
}

impl Throttler {
    pub fn new(bytes_per_second: f64) -> Throttler {
        Throttler {
            rate: bytes_per_second,
            booked_until: Instant::now(),
            waited: Duration::ZERO,
        }
    }

    pub fn unlimited(&self) -> bool {
        !self.rate.is_finite() || self.rate >= f64::MAX / 2.0
    }

    /// A slice size that keeps pauses short at this rate (a tenth of a second's worth),
    /// within `[16 KiB, max]`.
    pub fn slice(&self, max: usize) -> usize {
        if self.unlimited() {
            return max;
        }
        ((self.rate / 10.0) as usize).clamp(16 << 10, max.max(16 << 10))
    }

    /// Books `bytes` of I/O and waits if the rate is exceeded.
    pub async fn throttle(&mut self, bytes: u64) {
        if self.unlimited() || bytes == 0 {
            return;
        }
        let now = Instant::now();
        let cost = Duration::from_secs_f64(bytes as f64 / self.rate.max(1.0));
        self.booked_until = self.booked_until.max(now) + cost;
        let ahead = self.booked_until.saturating_duration_since(now);
        if ahead > Duration::from_millis(5) {
            shards::rt::sleep(ahead).await;
            self.waited += ahead;
        }
    }
}
