//! The worker's side: it holds the device and the trainer, answers the page's requests and
//! steps a run, yielding to its own event loop between steps so that a Pause or a Reset
//! posted during a step is read before the next one starts. The explorer's model and its
//! traces are [`super::traces`]'.

use std::cell::RefCell;
use std::collections::BTreeMap;

use wasm_bindgen::prelude::Closure;

use crate::model::checkpoint::save_checkpoint;
use crate::model::{BackendInfo, WordTokenizer, run_traced};
use crate::structure::AttentionCapture;
use crate::train::{TrainConfig, TrainError, Trainer};
use crate::worker::protocol::{Envelope, Reply, Request, RunPlan, RunSnapshot, StepMessage, Stop};

use super::super::session::start_backend;
use super::super::web;
use super::{bytes_of, post, traces};

/// A stepping run sends the page a snapshot of its weights at most this often (and before it
/// stops): a worker that dies loses at most these seconds of training.
const SNAPSHOT_EVERY_MS: f64 = 5_000.0;

/// What the worker holds between messages.
#[derive(Default)]
struct Host {
    /// The device, once the page asked for one.
    backend: Option<BackendInfo>,
    /// The device is being started.
    starting: bool,
    /// The run's trainer; out of its cell while a step runs.
    trainer: Option<Trainer>,
    /// A run is stepping.
    running: bool,
    /// Stop after the step in flight.
    pausing: bool,
    /// Bumped by every reset and new run, so that a loop of an older run stops.
    generation: u64,
}

thread_local! {
    static HOST: RefCell<Host> = RefCell::new(Host::default());
}

/// Takes requests from the page, then tells it the worker is ready.
pub fn serve() {
    let scope = js_sys::global();
    let on_message =
        Closure::<dyn FnMut(web_sys::MessageEvent)>::new(|event: web_sys::MessageEvent| {
            match bytes_of(&event).map(|bytes| Envelope::decode(&bytes)) {
                Some(Ok(request)) => handle(request),
                Some(Err(failure)) => reply(0, Reply::Refused(failure)),
                None => reply(0, Reply::Refused("a message without bytes".into())),
            }
        });
    let _ = js_sys::Reflect::set(&scope, &"onmessage".into(), on_message.as_ref());
    // The worker lives as long as the page: so does its handler.
    on_message.forget();
    reply(0, Reply::Hello);
}

/// Sends `body` to the page as the answer to request `id`.
fn reply(id: u32, body: Reply) {
    // Posting to our own page cannot fail but for a closed worker, which has no one to tell.
    let _ = post(&js_sys::global(), &Envelope { id, body });
}

fn handle(Envelope { id, body }: Envelope<Request>) {
    match body {
        Request::Start { choice } => {
            // Set before the next message is read, so that a NewRun or Resume behind it waits.
            HOST.with_borrow_mut(|host| host.starting = true);
            web::spawn(start(id, choice));
        }
        // A new worker is asked to take a run up as soon as it starts: these wait for the device.
        Request::NewRun {
            config,
            analyse_every,
        } => web::spawn(async move {
            device_started().await;
            reply(id, new_run(config, analyse_every));
        }),
        Request::Resume {
            config,
            analyse_every,
            snapshot,
        } => web::spawn(async move {
            device_started().await;
            reply(id, resume(config, analyse_every, &snapshot));
        }),
        Request::Reconfigure {
            config,
            analyse_every,
        } => reply(id, reconfigure(config, analyse_every)),
        Request::Run(plan) => {
            let generation = HOST.with_borrow_mut(|host| {
                (!host.running && host.trainer.is_some()).then(|| {
                    host.running = true;
                    host.pausing = false;
                    host.generation
                })
            });
            match generation {
                Some(generation) => web::spawn(run(id, plan, generation)),
                None => reply(id, Reply::Refused("no run is ready to step".into())),
            }
        }
        Request::Pause => HOST.with_borrow_mut(|host| host.pausing = host.running),
        Request::Reset => HOST.with_borrow_mut(|host| {
            host.generation += 1;
            host.trainer = None;
            host.running = false;
            host.pausing = false;
        }),
        Request::Weights => web::spawn(async move { reply(id, weights().await) }),
        Request::Open { model, weights } => traces::open(model, weights),
        Request::Trace(request) => {
            web::spawn(async move { reply(id, traces::trace(id, *request).await) })
        }
        Request::Slices { run, keys } => {
            web::spawn(async move { reply(id, traces::slices(run, keys).await) })
        }
        Request::WholeTrace { run } => {
            web::spawn(async move { reply(id, traces::whole(run).await) })
        }
        Request::Forget { run } => traces::forget(run),
        Request::Analyse { model, batch } => {
            web::spawn(async move { reply(id, traces::analyse(model, *batch).await) })
        }
    }
}

/// Starts the device for `choice` and tells the page which it is.
async fn start(id: u32, choice: crate::model::BackendChoice) {
    let backend = start_backend(choice).await;
    let (label, webgpu) = (backend.label.clone(), backend.webgpu);
    HOST.with_borrow_mut(|host| {
        host.backend = Some(backend);
        host.starting = false;
    });
    reply(id, Reply::Started { label, webgpu });
}

/// The worker's device, once started.
pub(super) fn device() -> Option<burn::tensor::Device> {
    HOST.with_borrow(|host| host.backend.as_ref().map(|backend| backend.device.clone()))
}

/// Resolves once the device asked for is ready (at once when none is being started).
pub(super) async fn device_started() {
    while HOST.with_borrow(|host| host.starting) {
        web::sleep_ms(10).await;
    }
}

/// A trainer for `config`, in place of any other run.
fn new_run(config: TrainConfig, analyse_every: usize) -> Reply {
    install(analyse_every, |device| Trainer::new(config, device))
}

/// The run of `snapshot`, taken up in place of any other.
fn resume(config: TrainConfig, analyse_every: usize, snapshot: &RunSnapshot) -> Reply {
    install(analyse_every, |device| {
        Trainer::resume(config, &snapshot.checkpoint, snapshot.progress, device)
    })
}

/// The trainer `make` builds on the worker's device, in place of any other run.
fn install(
    analyse_every: usize,
    make: impl FnOnce(&burn::tensor::Device) -> Result<Trainer, TrainError>,
) -> Reply {
    HOST.with_borrow_mut(|host| {
        let Some(backend) = &host.backend else {
            return Reply::Refused("the device is not ready yet".into());
        };
        match make(&backend.device) {
            Ok(mut trainer) => {
                trainer.set_analysis(analyse_every);
                host.generation += 1;
                host.trainer = Some(trainer);
                host.running = false;
                Reply::Done
            }
            Err(error) => Reply::Refused(error.to_string()),
        }
    })
}

/// The form's changes applied to the run's trainer.
fn reconfigure(config: TrainConfig, analyse_every: usize) -> Reply {
    HOST.with_borrow_mut(|host| {
        let Some(trainer) = host.trainer.as_mut().filter(|_| !host.running) else {
            return Reply::Refused("there is no paused run to change".into());
        };
        match trainer.reconfigure(config) {
            Ok(()) => {
                trainer.set_analysis(analyse_every);
                Reply::Done
            }
            Err(error) => Reply::Refused(error.to_string()),
        }
    })
}

/// Steps the run of `generation` until it ends, pauses or fails, reporting every step.
async fn run(id: u32, plan: RunPlan, generation: u64) {
    let current = move || HOST.with_borrow(|host| host.generation == generation);
    let mut snapshot_ms = web::now_ms();
    loop {
        let Some(mut trainer) = HOST.with_borrow_mut(|host| host.trainer.take()) else {
            return;
        };
        let outcome = step(&mut trainer, plan).await;
        if !current() {
            // Reset while the step ran: its trainer goes with it.
            return;
        }
        let steps_done = trainer.steps_done();
        let last = steps_done >= trainer.config().steps;
        HOST.with_borrow_mut(|host| host.trainer = Some(trainer));
        let message = match outcome {
            Ok(message) => message,
            Err(failure) => return stop(id, generation, steps_done, Stop::Failed(failure)).await,
        };
        reply(id, Reply::Step(Box::new(message)));
        if last {
            return stop(id, generation, steps_done, Stop::Finished).await;
        }
        if plan.once {
            return stop(id, generation, steps_done, Stop::Paused).await;
        }
        if web::now_ms() - snapshot_ms >= SNAPSHOT_EVERY_MS {
            send_snapshot(id, generation).await;
            snapshot_ms = web::now_ms();
        }
        // A Pause or a Reset posted during the step is handled here, before the next one.
        web::next_frame().await;
        if !current() {
            return;
        }
        if HOST.with_borrow(|host| host.pausing) {
            return stop(id, generation, steps_done, Stop::Paused).await;
        }
    }
}

/// Ends the run's loop and says why, after a snapshot of where it stopped.
async fn stop(id: u32, generation: u64, steps_done: usize, why: Stop) {
    send_snapshot(id, generation).await;
    HOST.with_borrow_mut(|host| {
        host.running = false;
        host.pausing = false;
    });
    reply(id, Reply::Stopped { steps_done, why });
}

/// Sends the page a [`RunSnapshot`] of the run of `generation`, if it is still the run; a
/// snapshot that cannot be read is skipped (the page keeps the one before).
async fn send_snapshot(id: u32, generation: u64) {
    let ready = HOST.with_borrow(|host| {
        host.trainer
            .as_ref()
            .filter(|_| host.generation == generation)
            .map(|trainer| (checkpoint(trainer), trainer.progress()))
    });
    let Some((checkpoint, progress)) = ready else {
        return;
    };
    if let Ok(checkpoint) = checkpoint.await
        && HOST.with_borrow(|host| host.generation == generation)
    {
        reply(
            id,
            Reply::Snapshot(Box::new(RunSnapshot {
                progress,
                checkpoint,
            })),
        );
    }
}

/// One step, with the evaluation and the probe's snapshot when they are due.
async fn step(trainer: &mut Trainer, plan: RunPlan) -> Result<StepMessage, String> {
    let report = trainer.step().await.map_err(|error| match error {
        TrainError::NonFinite { .. } => error.to_string(),
        other => format!("Training stopped: {other}"),
    })?;
    let last = report.step >= trainer.config().steps;
    let due = |every: usize| last || report.step.is_multiple_of(every.max(1));
    let evaluation = if due(plan.eval_every) {
        Some(
            trainer
                .evaluate()
                .await
                .map_err(|error| format!("Evaluation failed: {error}"))?,
        )
    } else {
        None
    };
    let snapshot = if due(plan.probe_every) {
        probe_attention(trainer).await
    } else {
        None
    };
    Ok(StepMessage {
        report,
        epochs: trainer.epochs(),
        evaluation,
        snapshot,
    })
}

/// The probe text traced through the current weights: its attention only.
async fn probe_attention(trainer: &Trainer) -> Option<Vec<AttentionCapture>> {
    let device = device()?;
    let task = trainer.task();
    let tokenizer = WordTokenizer::new(
        task.vocabulary().clone(),
        trainer.model_config().max_seq_len,
    );
    let tokens = tokenizer.tokenize(task.probe_text());
    let trace = run_traced(&trainer.model(), &[tokens.ids()], &device)
        .await
        .ok()?;
    Some(trace.attention)
}

/// `trainer`'s weights as a glassbox checkpoint, read when awaited; the host is not borrowed
/// while they are read.
fn checkpoint(
    trainer: &Trainer,
) -> impl Future<Output = Result<Vec<u8>, crate::model::CheckpointError>> + use<> {
    let (model, config, vocabulary) = (
        trainer.model(),
        trainer.model_config().clone(),
        trainer.task().vocabulary().clone(),
    );
    async move { save_checkpoint(&model, &config, &vocabulary, &BTreeMap::new()).await }
}

/// The run's weights as a checkpoint, once the step in flight (if any) is over.
async fn weights() -> Reply {
    loop {
        let ready = HOST.with_borrow(|host| {
            host.trainer
                .as_ref()
                .map(|trainer| (checkpoint(trainer), trainer.steps_done()))
        });
        if let Some((checkpoint, steps_done)) = ready {
            return match checkpoint.await {
                Ok(bytes) => Reply::Weights { steps_done, bytes },
                Err(error) => Reply::Refused(format!("the weights could not be read: {error}")),
            };
        }
        if !HOST.with_borrow(|host| host.running) {
            return Reply::Refused("there is no run to take weights from".into());
        }
        web::next_frame().await;
    }
}
