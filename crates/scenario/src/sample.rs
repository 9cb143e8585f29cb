//! Random draws of the workload: arrival times of open-loop processes and token counts.

use rand::Rng;
use rand_distr::{Distribution, Gamma, StandardNormal};

use crate::model::{ArrivalProcess, SizeDistribution};
use crate::replay::RecordedArrival;

impl SizeDistribution {
    /// Draws one count.
    ///
    /// ```
    /// use rand::SeedableRng;
    /// use scenario::SizeDistribution;
    ///
    /// let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
    /// let uniform = SizeDistribution::Uniform { min: 10, max: 20 };
    /// let draw = uniform.sample(&mut rng);
    /// assert!((10..=20).contains(&draw));
    /// assert_eq!(SizeDistribution::Fixed(5).sample(&mut rng), 5);
    /// ```
    pub fn sample<R: Rng + ?Sized>(&self, rng: &mut R) -> u32 {
        match self {
            SizeDistribution::Fixed(value) => *value,
            SizeDistribution::Uniform { min, max } => rng.random_range(*min..=*max),
            SizeDistribution::Normal {
                mean,
                std_dev,
                min,
                max,
            } => {
                let normal: f64 = StandardNormal.sample(rng);
                clamp_round(mean + std_dev * normal, *min, *max)
            }
            SizeDistribution::Lognormal {
                median,
                sigma,
                min,
                max,
            } => {
                let normal: f64 = StandardNormal.sample(rng);
                clamp_round(median * (sigma * normal).exp(), *min, *max)
            }
            SizeDistribution::Empirical { values, cumulative } => {
                let draw: f64 = rng.random();
                let index = cumulative.partition_point(|&edge| edge <= draw);
                values[index.min(values.len() - 1)]
            }
        }
    }
}

fn clamp_round(value: f64, min: u32, max: u32) -> u32 {
    // Token counts are small and positive: rounded half away from zero through an integer,
    // exactly as `f64::round` does (the fraction `value - trunc(value)` is exact), without its
    // library call, which showed in the simulator's profile (x86-64's baseline has no rounding
    // instruction). Anything else takes `round`.
    if (0.0..2_147_483_648.0).contains(&value) {
        let whole = value as i64;
        let rounded = whole + i64::from(value - whole as f64 >= 0.5);
        return (rounded as u32).clamp(min, max);
    }
    // `as` saturates and maps NaN to 0, so the clamp below always yields a value in range.
    (value.round().max(0.0) as u32).clamp(min, max)
}

/// Exponential gap with the given rate per second.
fn exponential_gap<R: Rng + ?Sized>(rng: &mut R, rate_per_second: f64) -> f64 {
    let uniform: f64 = rng.random();
    -(1.0 - uniform).ln() / rate_per_second
}

/// The state of one instance's arrival process: yields arrival times in seconds since the
/// instance's start, in non-decreasing order.
#[derive(Debug, Clone)]
pub(crate) struct ArrivalClock {
    process: ArrivalProcess,
    gamma: Option<Gamma<f64>>,
    /// Time of the last arrival, seconds since the instance's start.
    last: f64,
    /// Requests of the current burst still to emit.
    burst_left: u32,
    /// Next index into a replayed trace, or arrivals so far of a constant process.
    replay_index: usize,
    started: bool,
}

impl ArrivalClock {
    pub(crate) fn new(process: ArrivalProcess) -> Self {
        let gamma = match &process {
            ArrivalProcess::Gamma { rpm, burstiness } => {
                // Shape k and scale 1/(rate k) give mean gap 1/rate, as vLLM's benchmark does.
                Gamma::new(*burstiness, 60.0 / (rpm * burstiness)).ok()
            }
            _ => None,
        };
        ArrivalClock {
            process,
            gamma,
            last: 0.0,
            burst_left: 0,
            replay_index: 0,
            started: false,
        }
    }

    /// The next arrival before `until` seconds, with the recorded request for replays.
    #[inline]
    pub(crate) fn next<R: Rng + ?Sized>(
        &mut self,
        rng: &mut R,
        until: f64,
    ) -> Option<(f64, Option<RecordedArrival>)> {
        let first = !self.started;
        self.started = true;
        let at = match &self.process {
            ArrivalProcess::Constant { rpm } => {
                // Multiplying instead of summing gaps keeps long runs free of drift.
                let at = self.replay_index as f64 * 60.0 / rpm;
                self.replay_index += 1;
                at
            }
            ArrivalProcess::Poisson { rpm } => self.last + exponential_gap(rng, rpm / 60.0),
            ArrivalProcess::Gamma { .. } => {
                let gamma = self.gamma?;
                self.last + gamma.sample(rng)
            }
            ArrivalProcess::Burst { count, at, every } => {
                if first {
                    self.burst_left = *count;
                    self.last = at.as_secs_f64();
                }
                if self.burst_left == 0 {
                    let every = (*every)?;
                    self.burst_left = *count;
                    self.last += every.as_secs_f64();
                }
                self.burst_left -= 1;
                self.last
            }
            ArrivalProcess::Replay { trace, time_scale } => {
                let recorded = *trace.arrivals.get(self.replay_index)?;
                self.replay_index += 1;
                let at = recorded.at.as_secs_f64() * time_scale;
                if at >= until {
                    return None;
                }
                self.last = at;
                return Some((at, Some(recorded)));
            }
            ArrivalProcess::Spike { .. }
            | ArrivalProcess::Ramp { .. }
            | ArrivalProcess::Diurnal { .. } => self.thinned(rng, until)?,
        };
        if at >= until {
            return None;
        }
        self.last = at;
        Some((at, None))
    }

    /// A non-homogeneous Poisson arrival by thinning (Lewis and Shedler): candidates at the peak
    /// rate, each kept with probability `rate(t) / peak`.
    fn thinned<R: Rng + ?Sized>(&mut self, rng: &mut R, until: f64) -> Option<f64> {
        let peak = self.peak_rate_per_second();
        let mut candidate = self.last;
        loop {
            candidate += exponential_gap(rng, peak);
            if candidate >= until {
                return None;
            }
            let keep: f64 = rng.random();
            if keep * peak < self.rate_per_second(candidate) {
                return Some(candidate);
            }
        }
    }

    fn peak_rate_per_second(&self) -> f64 {
        let rpm = match &self.process {
            ArrivalProcess::Spike {
                base_rpm, peak_rpm, ..
            } => base_rpm.max(*peak_rpm),
            ArrivalProcess::Ramp {
                from_rpm, to_rpm, ..
            } => from_rpm.max(*to_rpm),
            ArrivalProcess::Diurnal {
                mean_rpm,
                amplitude_rpm,
                ..
            } => mean_rpm + amplitude_rpm,
            ArrivalProcess::Constant { rpm }
            | ArrivalProcess::Poisson { rpm }
            | ArrivalProcess::Gamma { rpm, .. } => *rpm,
            ArrivalProcess::Burst { .. } | ArrivalProcess::Replay { .. } => 0.0,
        };
        rpm / 60.0
    }

    fn rate_per_second(&self, at: f64) -> f64 {
        let rpm = match &self.process {
            ArrivalProcess::Spike {
                base_rpm,
                peak_rpm,
                start,
                length,
            } => {
                let start = start.as_secs_f64();
                if at >= start && at < start + length.as_secs_f64() {
                    *peak_rpm
                } else {
                    *base_rpm
                }
            }
            ArrivalProcess::Ramp {
                from_rpm,
                to_rpm,
                over,
            } => {
                let progress = (at / over.as_secs_f64()).min(1.0);
                from_rpm + (to_rpm - from_rpm) * progress
            }
            ArrivalProcess::Diurnal {
                mean_rpm,
                amplitude_rpm,
                period,
                phase,
            } => {
                let cycle = (at + phase.as_secs_f64()) / period.as_secs_f64();
                mean_rpm + amplitude_rpm * (std::f64::consts::TAU * cycle).sin()
            }
            _ => return self.peak_rate_per_second(),
        };
        rpm / 60.0
    }
}

#[cfg(test)]
mod tests {
    use super::clamp_round;

    /// The reference: what `clamp_round` computed before its integer path.
    fn by_round(value: f64) -> u32 {
        (value.round().max(0.0) as u32).clamp(0, u32::MAX)
    }

    #[test]
    fn the_integer_rounding_is_f64_round_exactly() {
        let tricky = [
            0.0,
            -0.0,
            0.49999999999999994,
            0.5,
            1.5,
            2.5,
            2.4999999999999996,
            4_503_599_627_370_495.5,
            2_147_483_647.5,
            2_147_483_647.499_999_8,
            2_147_483_648.0,
            4_294_967_295.5,
            1e300,
            -3.5,
            f64::NAN,
            f64::INFINITY,
            f64::NEG_INFINITY,
        ];
        for value in tricky {
            assert_eq!(clamp_round(value, 0, u32::MAX), by_round(value), "{value}");
        }
        // Every half and its neighbours up to 4096, and a spread of magnitudes.
        let mut value = 0.0f64;
        while value < 4096.0 {
            for probe in [value, value.next_down(), value.next_up()] {
                assert_eq!(clamp_round(probe, 0, u32::MAX), by_round(probe), "{probe}");
            }
            value += 0.5;
        }
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        for _ in 0..200_000 {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            let probe = f64::from_bits(state).abs() % 3e9;
            assert_eq!(clamp_round(probe, 0, u32::MAX), by_round(probe), "{probe}");
        }
        assert_eq!(clamp_round(7.5, 10, 20), 10);
        assert_eq!(clamp_round(70.5, 10, 20), 20);
    }
}
