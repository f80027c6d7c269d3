//! The value axis of a chart: a range chosen from the data, with 3 to 5 round ticks (steps of
//! 1, 2, 2.5 or 5 times a power of ten), so an error ratio near zero reads 0–0.2 % instead of
//! lying flat on a 0–100 % axis.

/// A value axis: from `lo` to `hi`, a tick every `step`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Axis {
    pub lo: f64,
    pub hi: f64,
    pub step: f64,
}

/// At most this many ticks on a value axis.
pub const MOST_TICKS: usize = 5;

/// The round steps: these times a power of ten.
const MANTISSAS: [f64; 4] = [1.0, 2.0, 2.5, 5.0];

impl Axis {
    /// The axis for `values` (non-finite ones are left out): from the lowest value or zero,
    /// whichever is lower, to the highest, widened to round ticks; at least `min_span` wide
    /// (all zeros show 0 to `min_span`), its step at least `min_step` (1 for counts).
    pub fn for_values(values: impl IntoIterator<Item = f64>, min_span: f64, min_step: f64) -> Axis {
        let (mut lo, mut hi) = (0.0_f64, f64::NEG_INFINITY);
        for v in values.into_iter().filter(|v| v.is_finite()) {
            lo = lo.min(v);
            hi = hi.max(v);
        }
        if !hi.is_finite() {
            hi = lo;
        }
        if min_span.is_finite() && hi - lo < min_span {
            hi = lo + min_span;
        }
        if hi <= lo {
            hi = lo + 1.0;
        }
        Axis::round(lo, hi, min_step)
    }

    /// `lo`..`hi` widened to the smallest round step that needs at most [`MOST_TICKS`] ticks.
    fn round(lo: f64, hi: f64, min_step: f64) -> Axis {
        let span = hi - lo;
        let mut exponent = (span / (MOST_TICKS - 1) as f64).log10().floor() as i32 - 1;
        loop {
            for m in MANTISSAS {
                let step = m * 10f64.powi(exponent);
                if step < min_step || (min_step >= 1.0 && step.fract() != 0.0) {
                    continue;
                }
                let (a, b) = ((lo / step).floor(), (hi / step).ceil());
                if b - a <= (MOST_TICKS - 1) as f64 {
                    return Axis {
                        lo: clean(a * step, step),
                        hi: clean(b * step, step),
                        step,
                    };
                }
            }
            exponent += 1;
        }
    }

    /// The tick values from `lo` to `hi`.
    pub fn ticks(&self) -> Vec<f64> {
        let n = ((self.hi - self.lo) / self.step).round() as usize;
        (0..=n)
            .map(|i| clean(self.lo + i as f64 * self.step, self.step))
            .collect()
    }

    /// Digits after the point that a tick of this axis needs, its values times `scale` (100
    /// for a ratio shown in percent): 0 for a step of 5, 1 for 0.5, 2 for 0.25.
    pub fn decimals(&self, scale: f64) -> usize {
        decimals(self.step * scale)
    }
}

/// Digits after the point that multiples of `step` need.
pub fn decimals(step: f64) -> usize {
    (0..10)
        .find(|d| {
            let s = step * 10f64.powi(*d as i32);
            (s - s.round()).abs() < 1e-6 * s.abs().max(1.0)
        })
        .unwrap_or(10)
}

/// `v` without the float noise of adding steps (`0.30000000000000004` → `0.3`).
fn clean(v: f64, step: f64) -> f64 {
    let d = decimals(step) as i32 + 1;
    let f = 10f64.powi(d);
    let r = (v * f).round() / f;
    if r == 0.0 {
        0.0
    } else {
        r
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_axis_has_three_to_five_round_ticks_around_the_data() {
        // (values, min span, min step) → (lo, hi, step)
        type Case = (&'static [f64], f64, f64, (f64, f64, f64));
        let cases: [Case; 11] = [
            (&[0.0, 0.0, 0.0], 0.002, 0.0, (0.0, 0.002, 0.0005)),
            (&[0.0, 0.00004, 0.0001], 0.002, 0.0, (0.0, 0.002, 0.0005)),
            (&[0.0, 0.2], 0.002, 0.0, (0.0, 0.2, 0.05)),
            (&[31.0, 48.7, 12.0], 1.0, 0.0, (0.0, 60.0, 20.0)),
            (&[31.0, 52.0], 1.0, 0.0, (0.0, 60.0, 20.0)),
            (&[97.0, 99.5], 1.0, 0.0, (0.0, 100.0, 25.0)),
            (&[100.0, 312.0, 250.0], 1.0, 0.0, (0.0, 400.0, 100.0)),
            (&[2.0, 4.0, 6.0], 1.0, 1.0, (0.0, 6.0, 2.0)),
            (&[2.0, 3.0], 1.0, 1.0, (0.0, 3.0, 1.0)),
            (&[-11.1, 100.0], 1.0, 0.0, (-50.0, 100.0, 50.0)),
            (&[f64::NAN, 0.38, f64::INFINITY], 0.1, 0.0, (0.0, 0.4, 0.1)),
        ];
        for (values, span, min_step, (lo, hi, step)) in cases {
            let a = Axis::for_values(values.iter().copied(), span, min_step);
            assert_eq!((a.lo, a.hi, a.step), (lo, hi, step), "{values:?}");
            let n = a.ticks().len();
            assert!(
                (3..=MOST_TICKS).contains(&n),
                "{n} ticks for {values:?}: {a:?}"
            );
            assert!(values
                .iter()
                .filter(|v| v.is_finite())
                .all(|v| (a.lo..=a.hi).contains(v)));
        }
    }

    #[test]
    fn ticks_are_clean_multiples_of_the_step() {
        let a = Axis::for_values([0.0, 0.0013], 0.002, 0.0);
        assert_eq!(a.ticks(), [0.0, 0.0005, 0.001, 0.0015, 0.002]);
        assert_eq!(a.decimals(100.0), 2, "0.05 % steps");
        let b = Axis::for_values([0.0, 0.3], 0.0, 0.0);
        assert_eq!(b.ticks(), [0.0, 0.1, 0.2, 0.3]);
        assert_eq!(b.decimals(1.0), 1);
        let counts = Axis::for_values([0.0, 7.0], 1.0, 1.0);
        assert_eq!(counts.ticks(), [0.0, 2.0, 4.0, 6.0, 8.0]);
        assert_eq!(counts.decimals(1.0), 0);
        assert_eq!(decimals(2.5), 1);
        assert_eq!(decimals(0.25), 2);
    }

    #[test]
    fn no_values_give_the_smallest_axis() {
        let a = Axis::for_values(std::iter::empty(), 1.0, 1.0);
        assert_eq!((a.lo, a.hi), (0.0, 1.0));
        let b = Axis::for_values([f64::NAN], 0.0, 0.0);
        assert_eq!((b.lo, b.hi), (0.0, 1.0), "no span asked: one");
    }
}
