//! The one round-tick rule of every chart's linear axes (the training monitor, the gradient
//! panels and the activation histograms), and the trimming their labels share.

/// Never more ticks than this on an axis, whatever the range.
const MAX_TICKS: usize = 32;

/// About `target` round ticks (1, 2 or 5 times a power of ten apart) in `lo..=hi`.
pub fn linear_ticks(lo: f64, hi: f64, target: usize) -> Vec<f64> {
    let span = hi - lo;
    if !(span > 0.0 && span.is_finite()) {
        return Vec::new();
    }
    let raw = span / target.max(1) as f64;
    let magnitude = 10f64.powf(raw.log10().floor());
    // Round steps from a tenth of the magnitude up; take the smallest at least `raw`, or a
    // smaller one when that leaves fewer than two ticks.
    let ladder: Vec<f64> = [0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0]
        .into_iter()
        .map(|m| m * magnitude)
        .collect();
    let chosen = ladder
        .iter()
        .position(|&step| step >= raw)
        .unwrap_or(ladder.len() - 1);
    let mut ticks = Vec::new();
    for &step in ladder[..=chosen].iter().rev() {
        // The slack keeps 0.6 / 0.2 = 2.9999999999999996 from losing the tick at 0.6.
        let first = (lo / step - 1e-9).ceil() as i64;
        let last = (hi / step + 1e-9).floor() as i64;
        ticks = (first..=last)
            .take(MAX_TICKS)
            .map(|k| {
                let tick = k as f64 * step;
                // Keep rounding noise from printing 0 as 1e-17.
                if tick.abs() < step * 1e-9 { 0.0 } else { tick }
            })
            .collect();
        if ticks.len() >= 2 {
            break;
        }
    }
    ticks
}

/// `text` without trailing zeros after a decimal point, and without the point when nothing
/// follows it: the tick labels' `0.50` is `0.5`, `2.00e-3` is `2e-3`.
pub fn trim_zeros(text: &str) -> &str {
    if text.contains('.') {
        text.trim_end_matches('0').trim_end_matches('.')
    } else {
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticks_are_round_and_at_least_two() {
        assert_eq!(linear_ticks(0.0, 10.0, 5), [0.0, 2.0, 4.0, 6.0, 8.0, 10.0]);
        let ticks = linear_ticks(0.0, 0.6, 3);
        assert_eq!(ticks.len(), 4, "{ticks:?}");
        for (tick, expected) in ticks.iter().zip([0.0, 0.2, 0.4, 0.6]) {
            assert!((tick - expected).abs() < 1e-12, "{ticks:?}");
        }
        // A narrow range off the round values still gets two ticks, from a finer step.
        let ticks = linear_ticks(0.95, 1.05, 1);
        assert!(ticks.len() >= 2, "{ticks:?}");
        assert!(ticks.iter().all(|t| (0.95..=1.05).contains(t)));
        assert!(linear_ticks(1.0, 1.0, 5).is_empty());
        assert!(linear_ticks(0.0, f64::INFINITY, 5).is_empty());
        assert!(linear_ticks(0.0, 1e9, 1000).len() <= MAX_TICKS);
    }

    #[test]
    fn labels_lose_trailing_zeros_only_after_a_point() {
        assert_eq!(trim_zeros("0.50"), "0.5");
        assert_eq!(trim_zeros("2.00"), "2");
        assert_eq!(trim_zeros("100"), "100");
    }
}
