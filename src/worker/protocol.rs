//! The messages between the page and its model worker, in one place.
//!
//! Every message is an [`Envelope`] encoded with postcard into one byte buffer, which the
//! browser transfers (never copies, never JSON): weights and attention maps travel inside it
//! as they are. postcard keeps every `f64` exact, NaN and infinities included, which a
//! training report that hit a NaN needs.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::model::BackendChoice;
use crate::page::slices::{Slice, SliceKey};
use crate::structure::TransformerConfig;
use crate::structure::trace::{AttentionCapture, Trace};
use crate::train::{Analysis, Batch, Evaluation, Progress, StepReport, TrainConfig};

/// A request or a reply with its id: a reply carries the id of the request it answers;
/// what the worker sends unasked (step reports, progress) carries the id of the run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Envelope<T> {
    /// Pairs replies with requests.
    pub id: u32,
    /// The message.
    pub body: T,
}

impl<T: Serialize> Envelope<T> {
    /// The bytes the browser transfers.
    pub fn encode(&self) -> Vec<u8> {
        // Serialising plain data into a growable buffer cannot fail.
        postcard::to_allocvec(self).expect("a message always encodes")
    }
}

impl<T: for<'de> Deserialize<'de>> Envelope<T> {
    /// The message in `bytes`, or what is wrong with them.
    pub fn decode(bytes: &[u8]) -> Result<Self, String> {
        postcard::from_bytes(bytes).map_err(|error| format!("a garbled worker message ({error})"))
    }
}

/// What the page asks of the worker.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Request {
    /// Start a device for `choice`; answered by [`Reply::Started`].
    Start { choice: BackendChoice },
    /// Build a trainer for `config` (dropping any other), with analysis every
    /// `analyse_every` steps; answered by [`Reply::Done`] or [`Reply::Refused`].
    NewRun {
        config: TrainConfig,
        analyse_every: usize,
    },
    /// Take up a run from a snapshot (after a worker died; see `Trainer::resume`), in place of
    /// any other run; answered by [`Reply::Done`] or [`Reply::Refused`].
    Resume {
        config: TrainConfig,
        analyse_every: usize,
        snapshot: Box<RunSnapshot>,
    },
    /// Apply the form's changes to the run's trainer (see `Trainer::reconfigure`).
    Reconfigure {
        config: TrainConfig,
        analyse_every: usize,
    },
    /// Step the run until its last step, a pause or an error; or one step with `once`.
    /// The worker sends [`Reply::Step`] after each step and [`Reply::Stopped`] at the end.
    Run(RunPlan),
    /// Stop after the step in flight; answered by the run's [`Reply::Stopped`].
    Pause,
    /// Drop the run.
    Reset,
    /// The run's weights as a glassbox checkpoint; answered by [`Reply::Weights`].
    Weights,
    /// The explorer's model is now `weights`, known as `model` (the page's count of models
    /// installed); built on the worker's device when it first runs. Not answered.
    Open {
        model: u32,
        #[serde(with = "crate::page::slices::shared")]
        weights: Arc<ExplorerWeights>,
    },
    /// Run the explorer's model `model` on one sequence and keep its trace on the device under
    /// this request's id; answered by [`Reply::Traced`] (or [`Reply::Refused`], in words).
    Trace(Box<TraceRequest>),
    /// The answers to `keys` from the trace kept under `run`; answered by [`Reply::Slices`].
    Slices { run: u32, keys: Vec<SliceKey> },
    /// The whole trace kept under `run`, read back; answered by [`Reply::Trace`].
    WholeTrace { run: u32 },
    /// Drop the trace kept under `run` (the page no longer shows it). Not answered.
    Forget { run: u32 },
    /// One forward and backward pass of the explorer's model `model` on `batch`, nothing
    /// updated ("analyse one batch"); answered by [`Reply::Analysis`] (or [`Reply::Refused`]).
    Analyse { model: u32, batch: Box<Batch> },
}

/// The weights of the explorer's model, as the worker builds its own copy of them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum ExplorerWeights {
    /// A glassbox or PyTorch checkpoint, with the sidecars it was opened with.
    Checkpoint {
        /// The `.safetensors` file.
        bytes: Vec<u8>,
        /// A config JSON opened beside it.
        config_json: Option<String>,
        /// A vocabulary opened beside it.
        vocabulary: Option<String>,
    },
    /// Random weights of `config` from `seed` (the seed preset, `?config=`).
    Seeded {
        /// The shape.
        config: TransformerConfig,
        /// The weights' seed.
        seed: u64,
    },
}

/// One explorer run: the page tokenized the text, the worker runs and captures it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TraceRequest {
    /// The model it is meant for ([`Request::Open`]); a worker holding another refuses it.
    pub model: u32,
    /// Token ids.
    pub ids: Vec<u32>,
    /// Token types (segments), one per id.
    pub types: Vec<u32>,
    /// The positions the predictions panel lists.
    pub positions: Vec<usize>,
}

/// What the worker says of a run it traced and keeps.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Traced {
    /// The id the worker keeps the trace under (its request's).
    pub run: u32,
    /// Layers with attention.
    pub layers: usize,
    /// Heads per layer.
    pub heads: usize,
    /// Bytes the captures take on the worker's device.
    pub bytes: u64,
    /// Every head's entropy and sharpness ([`SliceKey::Summaries`]), which every run needs.
    pub summaries: Slice,
    /// Bytes reading the summaries back moved.
    pub moved: u64,
}

/// How a run steps: when it evaluates and takes attention snapshots.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct RunPlan {
    /// One step, then stop.
    pub once: bool,
    /// Evaluate on the held-out set every this many steps (and at the last).
    pub eval_every: usize,
    /// Trace the probe text every this many steps (and at the last).
    pub probe_every: usize,
}

/// What the worker sends back.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Reply {
    /// The worker's wasm is running and takes requests.
    Hello,
    /// The device the worker runs on, in the page's words (`WebGPU (…)` or `CPU (burn-flex): …`).
    Started { label: String, webgpu: bool },
    /// The request was carried out.
    Done,
    /// The request was refused, in words for the page.
    Refused(String),
    /// One step of a run, with what was measured after it.
    Step(Box<StepMessage>),
    /// A run stopped after `steps_done` steps.
    Stopped { steps_done: usize, why: Stop },
    /// A checkpoint of the run's weights after `steps_done` steps.
    Weights { steps_done: usize, bytes: Vec<u8> },
    /// What a new worker needs to take the run up, sent unasked while it steps (every few
    /// seconds, and before it stops).
    Snapshot(Box<RunSnapshot>),
    /// A run traced and kept, under the id of its [`Request::Trace`].
    Traced(Box<Traced>),
    /// Answers to [`Request::Slices`], and the bytes they moved from the device.
    Slices {
        answers: Vec<(SliceKey, Slice)>,
        moved: u64,
    },
    /// A whole trace, read back.
    Trace(Box<Trace>),
    /// What a [`Request::Analyse`] found: every parameter's gradient, every module's
    /// activations.
    Analysis(Box<Analysis>),
}

/// A run's weights and where it stands: what [`Request::Resume`] takes up.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunSnapshot {
    /// Steps done, examples seen and the batch stream's position.
    pub progress: Progress,
    /// The weights, as a glassbox checkpoint.
    pub checkpoint: Vec<u8>,
}

/// One step's report and what came with it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StepMessage {
    /// What the step measured.
    pub report: StepReport,
    /// Passes over the training data so far.
    pub epochs: f64,
    /// The held-out evaluation, when one was due.
    pub evaluation: Option<Evaluation>,
    /// The probe's attention, when a snapshot was due.
    pub snapshot: Option<Vec<AttentionCapture>>,
}

/// Why a run stopped.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Stop {
    /// After its last step.
    Finished,
    /// A pause (or `once`).
    Paused,
    /// An error, in words for the page.
    Failed(String),
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::structure::TransformerConfig;
    use crate::train::TaskKind;

    #[test]
    fn a_request_and_a_reply_come_back_as_they_went_nan_included() {
        let request = Envelope {
            id: 7,
            body: Request::NewRun {
                config: TrainConfig::new(TaskKind::Reverse, TransformerConfig::tiny()),
                analyse_every: 5,
            },
        };
        assert_eq!(
            Envelope::<Request>::decode(&request.encode()).unwrap(),
            request
        );
        let reply = Envelope {
            id: 8,
            body: Reply::Stopped {
                steps_done: 3,
                why: Stop::Failed("loss is NaN".into()),
            },
        };
        assert_eq!(Envelope::<Reply>::decode(&reply.encode()).unwrap(), reply);
        let weights = Envelope {
            id: 9,
            body: Reply::Weights {
                steps_done: 1,
                bytes: vec![0, 1, 2, 255],
            },
        };
        assert_eq!(
            Envelope::<Reply>::decode(&weights.encode()).unwrap(),
            weights
        );
        let nan = Envelope {
            id: 1,
            body: f64::NAN,
        };
        assert!(
            Envelope::<f64>::decode(&nan.encode())
                .unwrap()
                .body
                .is_nan()
        );
    }

    #[test]
    fn the_explorers_requests_and_answers_come_back_as_they_went() {
        let open = Envelope {
            id: 2,
            body: Request::Open {
                model: 3,
                weights: Arc::new(ExplorerWeights::Seeded {
                    config: TransformerConfig::seed(),
                    seed: 42,
                }),
            },
        };
        assert_eq!(Envelope::<Request>::decode(&open.encode()).unwrap(), open);
        let map = crate::analysis::Matrix::new(2, 2, vec![0.25, 0.75, 1.0, f32::MIN_POSITIVE]);
        let answers = Envelope {
            id: 4,
            body: Reply::Slices {
                answers: vec![
                    (
                        SliceKey::Map {
                            layer: 1,
                            head: crate::page::explorer::HeadChoice::Head(0),
                        },
                        Slice::Map(Arc::new(map.unwrap())),
                    ),
                    (
                        SliceKey::Summaries,
                        Slice::Summaries(Arc::new(vec![crate::structure::HeadSummary {
                            layer: 0,
                            head: 1,
                            entropy: 0.5,
                            normalised_entropy: f64::NAN,
                            top_key: (2, 0.9),
                        }])),
                    ),
                ],
                moved: 20,
            },
        };
        let back = Envelope::<Reply>::decode(&answers.encode()).unwrap();
        let Reply::Slices {
            answers: got,
            moved,
        } = back.body
        else {
            panic!("not slices: {back:?}");
        };
        assert_eq!(moved, 20);
        assert_eq!(got[0], {
            let Reply::Slices { answers, .. } = &answers.body else {
                unreachable!()
            };
            answers[0].clone()
        });
        let Slice::Summaries(heads) = &got[1].1 else {
            panic!("not summaries");
        };
        assert!(heads[0].normalised_entropy.is_nan());
        assert_eq!(heads[0].top_key, (2, 0.9));
    }

    #[test]
    fn analysing_one_batch_crosses_as_it_went() {
        let batch = crate::train::Batch {
            inputs: vec![vec![3, 1, 4], vec![1, 5, 9]],
            targets: vec![vec![4, 1, 3], vec![9, 5, 1]],
            types: Some(vec![vec![0, 0, 1], vec![0, 1, 1]]),
            counted: Some(vec![vec![true, false, true], vec![true, true, false]]),
        };
        let request = Envelope {
            id: 5,
            body: Request::Analyse {
                model: 2,
                batch: Box::new(batch),
            },
        };
        assert_eq!(
            Envelope::<Request>::decode(&request.encode()).unwrap(),
            request
        );
        // A real analysis, every gradient and activation statistic of the tiny preset.
        let device = burn::tensor::Device::flex();
        let model = TransformerConfig::tiny().init_seeded(1, &device).unwrap();
        let batch = crate::train::Batch::new(vec![vec![1, 2, 3, 4]], vec![vec![4, 3, 2, 1]]);
        let analysis = pollster::block_on(crate::train::analyse_batch(&model, &batch)).unwrap();
        assert!(!analysis.gradients.is_empty());
        let reply = Envelope {
            id: 5,
            body: Reply::Analysis(Box::new(analysis)),
        };
        assert_eq!(Envelope::<Reply>::decode(&reply.encode()).unwrap(), reply);
    }

    #[test]
    fn garbled_bytes_are_refused_in_words() {
        let error = Envelope::<Request>::decode(&[200, 200, 200]).unwrap_err();
        assert!(error.contains("garbled worker message"), "{error}");
    }
}
