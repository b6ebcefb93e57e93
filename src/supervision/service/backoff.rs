//! Restart backoff (in the spirit of Pebble): the delay starts at `initial`, is multiplied by `factor`
//! after each restart up to `limit`, gets 0–10 % jitter (never above `limit`), and resets after a run
//! at least as long as `limit`. `max_failures` restarts within `window` is a crash loop: give up.
//!
//! Pure: time is a parameter and the jitter comes from a seeded xorshift generator kept in the state,
//! so a table of inputs gives exactly one answer.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use crate::config::role::BackoffSpec;

/// Largest jitter, as a fraction of the delay.
pub const JITTER: f64 = 0.1;

/// What the backoff remembers between restarts of one service.
#[derive(Debug, Clone, PartialEq)]
pub struct Backoff {
    /// The delay the next restart waits (before jitter).
    current: Duration,
    /// When the recent restarts happened (only those inside the crash-loop window are kept).
    recent: VecDeque<Instant>,
    /// xorshift64 state for the jitter (never 0).
    rng: u64,
}

/// The backoff's answer to "the service ended and should be restarted".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Restart after this delay (jitter included).
    RestartAfter(Duration),
    /// `max_failures` restarts within `window`: the service is failed for good.
    GiveUp,
}

impl Backoff {
    /// A fresh backoff; `seed` feeds the jitter (any value; 0 is replaced).
    pub fn new(spec: &BackoffSpec, seed: u64) -> Self {
        Self {
            current: spec.initial.0.min(spec.limit.0),
            recent: VecDeque::new(),
            rng: splitmix64(seed),
        }
    }

    /// Forgets the restart history (operator start/restart).
    pub fn reset(&mut self, spec: &BackoffSpec) {
        self.current = spec.initial.0.min(spec.limit.0);
        self.recent.clear();
    }

    /// Number of restarts inside the current crash-loop window.
    pub fn recent_failures(&self) -> usize {
        self.recent.len()
    }

    /// The service that started at `started` ended at `now` and the policy says restart: how long to
    /// wait, or give up. A run of at least `limit` first resets the delay (a stable run).
    pub fn on_end(
        &mut self,
        spec: &BackoffSpec,
        started: Option<Instant>,
        now: Instant,
    ) -> Verdict {
        let limit = spec.limit.0;
        if started.is_some_and(|s| now.saturating_duration_since(s) >= limit) {
            self.current = spec.initial.0.min(limit);
        }
        let window = spec.window.0;
        while self
            .recent
            .front()
            .is_some_and(|t| now.saturating_duration_since(*t) >= window)
        {
            self.recent.pop_front();
        }
        self.recent.push_back(now);
        if spec.max_failures > 0 && self.recent.len() >= spec.max_failures as usize {
            return Verdict::GiveUp;
        }
        let base = self.current;
        let jittered = base
            .mul_f64(1.0 + JITTER * self.next_fraction())
            .min(limit.max(base));
        let factor = if spec.factor.is_finite() && spec.factor >= 1.0 {
            spec.factor
        } else {
            1.0
        };
        // try_from: a huge factor saturates at the limit instead of overflowing.
        self.current = Duration::try_from_secs_f64(base.as_secs_f64() * factor)
            .unwrap_or(limit)
            .min(limit);
        Verdict::RestartAfter(jittered)
    }

    /// A number in [0, 1) from the xorshift64 generator.
    fn next_fraction(&mut self) -> f64 {
        let mut x = self.rng;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.rng = x;
        (x >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// Spreads any seed (small ones included) over 64 bits; never returns 0 for xorshift.
fn splitmix64(seed: u64) -> u64 {
    let mut z = seed.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^= z >> 31;
    if z == 0 {
        1
    } else {
        z
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::panic, clippy::indexing_slicing)]
    use super::*;
    use crate::config::role::DurationSpec;

    fn spec(initial_ms: u64, limit_ms: u64, max_failures: u32, window_ms: u64) -> BackoffSpec {
        BackoffSpec {
            initial: DurationSpec(Duration::from_millis(initial_ms)),
            factor: 2.0,
            limit: DurationSpec(Duration::from_millis(limit_ms)),
            max_failures,
            window: DurationSpec(Duration::from_millis(window_ms)),
        }
    }

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    /// The default policy: 0.5 s doubling to 30 s, each delay within [base, base + 10 %] and ≤ 30 s.
    #[test]
    fn default_sequence_doubles_to_the_cap_with_bounded_jitter() {
        let spec = BackoffSpec::default();
        let mut b = Backoff::new(&spec, 42);
        let t0 = Instant::now();
        // (restart number, expected base delay in ms); runs are short (1 ms) so nothing resets.
        let table: &[(u32, u64)] = &[
            (1, 500),
            (2, 1_000),
            (3, 2_000),
            (4, 4_000),
            (5, 8_000),
            (6, 16_000),
            (7, 30_000),
            (8, 30_000),
            (9, 30_000),
        ];
        let mut now = t0;
        let mut spec = spec;
        spec.max_failures = 0; // this table is about delays only
        for &(n, base) in table {
            let started = now;
            now += ms(1);
            match b.on_end(&spec, Some(started), now) {
                Verdict::RestartAfter(d) => {
                    let lo = ms(base);
                    let hi = ms(base + base / 10).min(ms(30_000));
                    assert!(
                        d >= lo && d <= hi,
                        "restart {n}: {d:?} not in [{lo:?}, {hi:?}]"
                    );
                }
                Verdict::GiveUp => panic!("restart {n}: gave up"),
            }
            now += ms(1);
        }
    }

    #[test]
    fn a_stable_run_resets_the_delay() {
        let spec = spec(10, 1_000, 0, 60_000);
        let mut b = Backoff::new(&spec, 7);
        let t0 = Instant::now();
        // (run length ms, expected base delay ms)
        let table: &[(u64, u64)] = &[(1, 10), (1, 20), (1, 40), (999, 80), (1_000, 10), (5, 20)];
        let mut now = t0;
        for &(run, base) in table {
            let started = now;
            now += ms(run);
            let Verdict::RestartAfter(d) = b.on_end(&spec, Some(started), now) else {
                panic!("gave up")
            };
            assert!(
                d >= ms(base) && d <= ms(base + base / 10),
                "run {run}: {d:?} vs {base}"
            );
        }
    }

    #[test]
    fn crash_loop_gives_up_only_within_the_window() {
        // (ms since previous end, expected verdict is give-up?)
        let spec = spec(10, 100, 3, 1_000);
        let table: &[(u64, bool)] = &[
            (0, false),
            (100, false),
            (2_000, false), // the first two fell out of the window
            (100, false),
            (100, true), // 3 within 1 s
        ];
        let mut b = Backoff::new(&spec, 1);
        let mut now = Instant::now();
        for (i, &(gap, give_up)) in table.iter().enumerate() {
            now += ms(gap);
            let v = b.on_end(&spec, Some(now), now);
            assert_eq!(v == Verdict::GiveUp, give_up, "row {i}: {v:?}");
        }
    }

    #[test]
    fn zero_max_failures_never_gives_up_and_reset_forgets() {
        let mut spec = spec(1, 2, 0, 1_000);
        let mut b = Backoff::new(&spec, 3);
        let now = Instant::now();
        for _ in 0..100 {
            assert_ne!(b.on_end(&spec, Some(now), now), Verdict::GiveUp);
        }
        spec.max_failures = 2;
        b.reset(&spec);
        assert_eq!(b.recent_failures(), 0);
        assert_ne!(b.on_end(&spec, Some(now), now), Verdict::GiveUp);
        assert_eq!(b.on_end(&spec, Some(now), now), Verdict::GiveUp);
    }

    #[test]
    fn absurd_factors_saturate_at_the_limit() {
        let now = Instant::now();
        for factor in [1e300, f64::INFINITY, f64::NAN, 0.5, -3.0] {
            let mut s = spec(100, 1_000, 0, 1_000);
            s.factor = factor;
            let mut b = Backoff::new(&s, 9);
            for _ in 0..5 {
                let Verdict::RestartAfter(d) = b.on_end(&s, Some(now), now) else {
                    panic!("gave up")
                };
                assert!(d <= ms(1_000), "factor {factor}: {d:?}");
            }
        }
    }

    #[test]
    fn jitter_differs_between_seeds_and_stays_in_bounds() {
        let spec = spec(1_000, 30_000, 0, 1_000);
        let now = Instant::now();
        let delays: Vec<Duration> = (1..20u64)
            .map(
                |seed| match Backoff::new(&spec, seed).on_end(&spec, None, now) {
                    Verdict::RestartAfter(d) => d,
                    Verdict::GiveUp => panic!("gave up"),
                },
            )
            .collect();
        assert!(delays.iter().all(|d| *d >= ms(1_000) && *d <= ms(1_100)));
        assert!(delays.windows(2).any(|w| w[0] != w[1]), "no jitter at all");
    }
}
