//! A dense row-major `f32` matrix, the shape every chart draws.

/// A dense matrix of `rows × cols` values in row-major order.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Matrix {
    /// Number of rows.
    pub rows: usize,
    /// Number of columns.
    pub cols: usize,
    /// Values in row-major order; `values.len() == rows * cols`.
    pub values: Vec<f32>,
}

impl Matrix {
    /// Wraps `values` as a `rows × cols` matrix, or `None` when the length does not match.
    pub fn new(rows: usize, cols: usize, values: Vec<f32>) -> Option<Self> {
        (rows.checked_mul(cols)? == values.len()).then_some(Self { rows, cols, values })
    }

    /// A `rows × cols` matrix of zeros.
    pub fn zeros(rows: usize, cols: usize) -> Self {
        Self {
            rows,
            cols,
            values: vec![0.0; rows * cols],
        }
    }

    /// Whether the matrix has no cells.
    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }

    /// The value at `(row, col)`, or `None` when out of range.
    pub fn get(&self, row: usize, col: usize) -> Option<f32> {
        if row >= self.rows || col >= self.cols {
            return None;
        }
        self.values.get(row * self.cols + col).copied()
    }

    /// The values of row `row`, or `None` when out of range.
    pub fn row(&self, row: usize) -> Option<&[f32]> {
        if row >= self.rows {
            return None;
        }
        self.values.get(row * self.cols..(row + 1) * self.cols)
    }

    /// The smallest value, ignoring NaN; `None` when there is none.
    pub fn min(&self) -> Option<f32> {
        self.values
            .iter()
            .copied()
            .filter(|v| !v.is_nan())
            .reduce(f32::min)
    }

    /// The largest value, ignoring NaN; `None` when there is none.
    pub fn max(&self) -> Option<f32> {
        self.values
            .iter()
            .copied()
            .filter(|v| !v.is_nan())
            .reduce(f32::max)
    }

    /// The `(row, col)` of the largest value (the first one on ties), ignoring NaN.
    pub fn argmax(&self) -> Option<(usize, usize)> {
        let max = self.max()?;
        let index = self.values.iter().position(|&v| v == max)?;
        Some((index / self.cols, index % self.cols))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn new_checks_length() {
        assert!(Matrix::new(2, 3, vec![0.0; 6]).is_some());
        assert!(Matrix::new(2, 3, vec![0.0; 5]).is_none());
        assert!(Matrix::new(usize::MAX, 2, vec![]).is_none());
        assert!(Matrix::new(0, 0, vec![]).is_some_and(|m| m.is_empty()));
    }

    #[test]
    fn get_row_min_max() {
        let m = Matrix::new(2, 3, vec![1.0, 5.0, f32::NAN, -2.0, 0.5, 3.0]).unwrap();
        assert_eq!(m.get(0, 1), Some(5.0));
        assert_eq!(m.get(1, 0), Some(-2.0));
        assert_eq!(m.get(2, 0), None);
        assert_eq!(m.get(0, 3), None);
        assert_eq!(m.row(1), Some(&[-2.0, 0.5, 3.0][..]));
        assert_eq!(m.row(2), None);
        assert_eq!(m.min(), Some(-2.0));
        assert_eq!(m.max(), Some(5.0));
        assert_eq!(m.argmax(), Some((0, 1)));
        assert_eq!(Matrix::zeros(0, 4).max(), None);
    }
}
