//! The worker's side of the explorer: its own copy of the explorer's model, run on the text the
//! page tokenized, and the traces of those runs kept on the worker's device until the page lets
//! them go. The page asks for [`SliceKey`]s; each is reduced on the device and sent back small.

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;
use std::sync::Arc;

use crate::model::{Checkpoint, Sidecars, Transformer, run_on_device};
use crate::page::slices::{MAX_CACHED_MAPS, RunTrace, SliceKey, TraceSlices};
use crate::train::{self, Analysis, Batch};
use crate::worker::protocol::{ExplorerWeights, Reply, TraceRequest, Traced};

use super::host::{device, device_started};

/// The explorer's model and the runs the page still shows.
#[derive(Default)]
struct Explorer {
    /// The page's number for the model, its weights, and the model once built.
    model: Option<(u32, Arc<ExplorerWeights>, Option<Transformer>)>,
    /// Traces kept on the device, by the id of the request that ran them.
    runs: HashMap<u32, Rc<TraceSlices>>,
}

thread_local! {
    static EXPLORER: RefCell<Explorer> = RefCell::new(Explorer::default());
}

/// The explorer's model is now `weights`; it is built when it first runs.
pub(super) fn open(model: u32, weights: Arc<ExplorerWeights>) {
    EXPLORER.with_borrow_mut(|explorer| explorer.model = Some((model, weights, None)));
}

/// Runs `request` and keeps its trace under `run`.
pub(super) async fn trace(run: u32, request: TraceRequest) -> Reply {
    device_started().await;
    match traced(run, request).await {
        Ok(traced) => Reply::Traced(Box::new(traced)),
        Err(failure) => Reply::Refused(failure),
    }
}

async fn traced(run: u32, request: TraceRequest) -> Result<Traced, String> {
    let device = device().ok_or("the model worker has no device")?;
    let model = model_for(request.model, &device)?;
    let trace = run_on_device(&model, &[request.ids], Some(&[request.types]), &device)
        .await
        .map_err(|error| error.to_string())?;
    let slices = TraceSlices::new(RunTrace::Device(trace), request.positions);
    // Every run needs its heads' entropies (the opening choice, the model view): they go back
    // with it, which also waits for the forward pass to finish on any device.
    let moved = slices.load(&[SliceKey::Summaries]).await?;
    let summaries = slices
        .get(SliceKey::Summaries)
        .ok_or("the heads' summaries were not read back")?;
    let traced = Traced {
        run,
        layers: slices.layers(),
        heads: slices.heads(),
        bytes: slices.trace.bytes(),
        summaries,
        moved,
    };
    EXPLORER.with_borrow_mut(|explorer| explorer.runs.insert(run, Rc::new(slices)));
    Ok(traced)
}

/// Analyses `batch` on the explorer's model `model`: its gradients and activations, nothing
/// updated.
pub(super) async fn analyse(model: u32, batch: Batch) -> Reply {
    device_started().await;
    match analysed(model, &batch).await {
        Ok(analysis) => Reply::Analysis(Box::new(analysis)),
        Err(failure) => Reply::Refused(failure),
    }
}

async fn analysed(model: u32, batch: &Batch) -> Result<Analysis, String> {
    let device = device().ok_or("the model worker has no device")?;
    let model = model_for(model, &device)?;
    train::analyse(&model, batch)
        .await
        .map_err(|error| error.to_string())
}

/// The explorer's model `model`, built on `device` the first time it is asked for.
fn model_for(model: u32, device: &burn::tensor::Device) -> Result<Transformer, String> {
    EXPLORER.with_borrow_mut(|explorer| {
        let Some((current, weights, built)) = explorer.model.as_mut() else {
            return Err("the model worker holds no model yet".into());
        };
        if *current != model {
            return Err("the page has opened another model since".into());
        }
        if built.is_none() {
            *built = Some(build(weights, device)?);
        }
        Ok(built.clone().expect("built above"))
    })
}

/// `weights` as a model on `device`.
fn build(weights: &ExplorerWeights, device: &burn::tensor::Device) -> Result<Transformer, String> {
    match weights {
        ExplorerWeights::Checkpoint {
            bytes,
            config_json,
            vocabulary,
        } => {
            let sidecars = Sidecars {
                config_json: config_json.as_deref(),
                vocabulary: vocabulary.as_deref(),
            };
            Checkpoint::parse(bytes, sidecars)
                .and_then(|checkpoint| checkpoint.to_model(device))
                .map_err(|error| error.to_string())
        }
        ExplorerWeights::Seeded { config, seed } => config
            .init_seeded(*seed, device)
            .map_err(|error| error.to_string()),
    }
}

/// The answers to `keys` from the trace kept under `run`.
pub(super) async fn slices(run: u32, keys: Vec<SliceKey>) -> Reply {
    let Some(slices) = kept(run) else {
        return gone();
    };
    // Full maps are read a cache's worth at a time, so that none is dropped before it is sent.
    let (maps, others): (Vec<SliceKey>, Vec<SliceKey>) = keys
        .into_iter()
        .partition(|key| matches!(key, SliceKey::Map { .. }));
    let mut answers = Vec::new();
    let mut moved = 0;
    for group in std::iter::once(others.as_slice()).chain(maps.chunks(MAX_CACHED_MAPS)) {
        match slices.load(group).await {
            Ok(bytes) => moved += bytes,
            Err(failure) => return Reply::Refused(failure),
        }
        for &key in group {
            match slices.get(key) {
                Some(slice) => answers.push((key, slice)),
                None => return Reply::Refused(format!("{key:?} could not be read back")),
            }
        }
    }
    Reply::Slices { answers, moved }
}

/// The whole trace kept under `run`, read back.
pub(super) async fn whole(run: u32) -> Reply {
    let Some(slices) = kept(run) else {
        return gone();
    };
    match slices.whole(|_, _| {}).await {
        Ok(trace) => Reply::Trace(Box::new(trace)),
        Err(failure) => Reply::Refused(failure),
    }
}

/// Drops the trace kept under `run`.
pub(super) fn forget(run: u32) {
    EXPLORER.with_borrow_mut(|explorer| explorer.runs.remove(&run));
}

fn kept(run: u32) -> Option<Rc<TraceSlices>> {
    EXPLORER.with_borrow(|explorer| explorer.runs.get(&run).cloned())
}

fn gone() -> Reply {
    Reply::Refused("the model worker no longer holds this run's trace".into())
}
