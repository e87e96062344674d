//! Per-parameter gradient statistics, reduced on the device and read back as six numbers per
//! tensor rather than whole gradients.

use burn::module::Param;
use burn::optim::GradientsParams;
use burn::tensor::{Tensor, TensorData, Transaction};

use super::trainer::TrainError;
use crate::analysis::{ParameterGradient, Summary};
use crate::model::paths::{ParameterVisitor, visit_parameters};
use crate::model::{Transformer, execute, floats};

/// Numbers reduced per tensor: mean, std, min, max, gradient norm, weight norm.
const STATS: usize = 6;

/// Summarises the gradient of every parameter of `model` that has one in `grads`.
pub async fn gradient_statistics(
    model: &Transformer,
    grads: &GradientsParams,
) -> Result<Vec<ParameterGradient>, TrainError> {
    let (transaction, pending) = reduce_gradients(model, grads).register(Transaction::default());
    pending.read(&mut execute(transaction).await?.into_iter())
}

/// The gradient statistics of `model`'s parameters, reduced on the device and not yet read:
/// register them into a transaction with others, then [`GradientsReadBack::read`] the answer.
pub fn reduce_gradients(model: &Transformer, grads: &GradientsParams) -> PendingGradients {
    let mut reducer = Reducer {
        grads,
        found: Vec::new(),
        reduced: Vec::new(),
    };
    visit_parameters(model, &mut reducer);
    PendingGradients {
        stats: (!reducer.reduced.is_empty()).then(|| Tensor::cat(reducer.reduced, 0)),
        found: reducer.found,
    }
}

/// Gradient statistics on the device, waiting for a read-back.
pub struct PendingGradients {
    found: Vec<(String, Vec<usize>)>,
    /// `[tensors * STATS]`; none without gradients.
    stats: Option<Tensor<1>>,
}

impl PendingGradients {
    /// Adds the statistics to `transaction`; what it reads back goes to the returned reader.
    pub fn register(self, transaction: Transaction) -> (Transaction, GradientsReadBack) {
        let reader = GradientsReadBack {
            found: self.found,
            registered: self.stats.is_some(),
        };
        let transaction = match self.stats {
            Some(stats) => transaction.register(stats),
            None => transaction,
        };
        (transaction, reader)
    }
}

/// Turns the read-back of [`PendingGradients`] into per-tensor statistics.
pub struct GradientsReadBack {
    found: Vec<(String, Vec<usize>)>,
    registered: bool,
}

impl GradientsReadBack {
    /// Takes this reader's values from `data` (the transaction's results, in registration order).
    pub fn read(
        self,
        data: &mut impl Iterator<Item = TensorData>,
    ) -> Result<Vec<ParameterGradient>, TrainError> {
        if !self.registered {
            return Ok(Vec::new());
        }
        let values = floats(data.next(), "gradient statistics")?;
        Ok(self
            .found
            .into_iter()
            .zip(values.chunks_exact(STATS))
            .map(|((path, shape), stats)| {
                let count = shape.iter().product();
                let [mean, std, min, max, norm, weight_norm] =
                    [0, 1, 2, 3, 4, 5].map(|index| f64::from(stats[index]));
                ParameterGradient {
                    path,
                    shape,
                    gradient: Summary {
                        count,
                        mean,
                        std,
                        min,
                        max,
                        norm,
                    },
                    weight_norm,
                }
            })
            .collect())
    }
}

struct Reducer<'a> {
    grads: &'a GradientsParams,
    found: Vec<(String, Vec<usize>)>,
    reduced: Vec<Tensor<1>>,
}

impl ParameterVisitor for Reducer<'_> {
    fn visit<const D: usize>(&mut self, path: String, param: &Param<Tensor<D>>) {
        let Some(grad) = self.grads.get::<D>(param.id) else {
            return;
        };
        let shape = grad.dims().to_vec();
        let count = shape.iter().product::<usize>();
        let rows = shape.first().copied().unwrap_or(1);
        // [rows, count / rows]: summing each row first, then the row sums, keeps f32 sums of
        // a quarter-million values within ~1e-6 of an f64 sum (one flat sum was off by 4e-4).
        let grad = grad.reshape([rows, count / rows.max(1)]);
        let weight = param.val().inner().reshape([rows, count / rows.max(1)]);
        let mean = sum_by_rows(grad.clone()) / count as f64; // [1]
        let deviations = sum_by_rows((grad.clone() - mean.clone().unsqueeze::<2>()).square());
        let std = (deviations / (count.saturating_sub(1).max(1)) as f64).sqrt();
        let stats = Tensor::cat(
            vec![
                mean,
                std,
                grad.clone().min(),
                grad.clone().max(),
                sum_by_rows(grad.square()).sqrt(),
                sum_by_rows(weight.square()).sqrt(),
            ],
            0,
        ); // [STATS]
        self.found.push((path, shape));
        self.reduced.push(stats);
    }
}

/// Sum of a `[rows, cols]` tensor as `[1]`, row sums first.
fn sum_by_rows(values: Tensor<2>) -> Tensor<1> {
    values.sum_dim(1).sum()
}
