//! The messages between the page and its model worker, in one place.
//!
//! Every message is an [`Envelope`] encoded with postcard into one byte buffer, which the
//! browser transfers (never copies, never JSON): weights and attention maps travel inside it
//! as they are. postcard keeps every `f64` exact, NaN and infinities included, which a
//! training report that hit a NaN needs.

use serde::{Deserialize, Serialize};

use crate::model::BackendChoice;
use crate::structure::trace::AttentionCapture;
use crate::train::{Evaluation, Progress, StepReport, TrainConfig};

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
    fn garbled_bytes_are_refused_in_words() {
        let error = Envelope::<Request>::decode(&[200, 200, 200]).unwrap_err();
        assert!(error.contains("garbled worker message"), "{error}");
    }
}
