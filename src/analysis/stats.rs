//! Summary statistics of a tensor's values, the numbers the gradient and activation views show.

/// Mean, spread, range and size of a set of values, accumulated in `f64`.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Summary {
    /// Number of values.
    pub count: usize,
    /// Arithmetic mean.
    pub mean: f64,
    /// Sample standard deviation (n − 1 in the denominator, as `torch.std`).
    pub std: f64,
    /// Smallest value.
    pub min: f64,
    /// Largest value.
    pub max: f64,
    /// L2 norm, `sqrt(Σ x²)`.
    pub norm: f64,
}

impl Summary {
    /// Summarises `values`; `None` when there are none.
    pub fn of(values: &[f32]) -> Option<Self> {
        if values.is_empty() {
            return None;
        }
        let count = values.len();
        let mut sum = 0.0;
        let mut squares = 0.0;
        let mut min = f64::INFINITY;
        let mut max = f64::NEG_INFINITY;
        for &value in values {
            let value = f64::from(value);
            sum += value;
            squares += value * value;
            min = min.min(value);
            max = max.max(value);
        }
        let mean = sum / count as f64;
        // A second pass for the spread: subtracting the mean first keeps it exact when the
        // mean is large next to the spread.
        let deviations: f64 = values
            .iter()
            .map(|&value| (f64::from(value) - mean).powi(2))
            .sum();
        let std = if count > 1 {
            (deviations / (count - 1) as f64).sqrt()
        } else {
            0.0
        };
        Some(Self {
            count,
            mean,
            std,
            min,
            max,
            norm: squares.sqrt(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_hand_computed_values() {
        let summary = Summary::of(&[1.0, 2.0, 3.0, 4.0]).unwrap();
        assert_eq!(summary.count, 4);
        assert!((summary.mean - 2.5).abs() < 1e-12);
        // Sample variance of 1..4 is 5/3.
        assert!((summary.std - (5.0f64 / 3.0).sqrt()).abs() < 1e-12);
        assert_eq!((summary.min, summary.max), (1.0, 4.0));
        assert!((summary.norm - 30.0f64.sqrt()).abs() < 1e-12);
    }

    #[test]
    fn one_value_has_no_spread_and_none_has_no_summary() {
        let summary = Summary::of(&[-2.0]).unwrap();
        assert_eq!((summary.std, summary.norm, summary.mean), (0.0, 2.0, -2.0));
        assert!(Summary::of(&[]).is_none());
    }
}
