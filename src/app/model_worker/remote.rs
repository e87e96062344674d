//! The page's side of the explorer's runs in the worker: a text the page tokenized goes to the
//! worker, which runs it and keeps the trace; the views' [`SliceKey`]s go after it, and the
//! trace is let go when the page drops the run.

use std::sync::Arc;

use crate::model::Tokenized;
use crate::page::explorer::RunResult;
use crate::page::slices::{
    Answer, RemoteTrace, RunTrace, Slice, SliceKey, SliceSource, TraceSlices,
};
use crate::structure::Trace;
use crate::worker::protocol::{Reply, Request, TraceRequest};

use super::super::web;
use super::client::ModelWorker;

/// Runs `tokens` through the worker's copy of the explorer's model `model`; the result's views
/// read from the trace the worker keeps.
pub async fn run(
    worker: &ModelWorker,
    model: u32,
    tokens: Tokenized,
    positions: Vec<usize>,
) -> Result<RunResult, String> {
    let started_ms = web::now_ms();
    let request = TraceRequest {
        model,
        ids: tokens.ids(),
        types: tokens.segments(),
        positions: positions.clone(),
    };
    let traced = match worker.ask(Request::Trace(Box::new(request))).await? {
        Reply::Traced(traced) => traced,
        other => return Err(unexpected(other)),
    };
    let source = Arc::new(WorkerSlices { run: traced.run });
    let trace = TraceSlices::new(
        RunTrace::Remote(RemoteTrace {
            layers: traced.layers,
            heads: traced.heads,
            bytes: traced.bytes,
            source,
        }),
        positions,
    );
    trace.remember(SliceKey::Summaries, traced.summaries, traced.moved);
    Ok(RunResult {
        tokens,
        trace,
        forward_ms: web::now_ms() - started_ms,
    })
}

/// A run whose trace the worker keeps under `run`.
#[derive(Debug)]
struct WorkerSlices {
    run: u32,
}

impl SliceSource for WorkerSlices {
    fn slices(&self, keys: Vec<SliceKey>) -> Answer<(Vec<(SliceKey, Slice)>, u64)> {
        let run = self.run;
        Box::pin(async move {
            match ask(Request::Slices { run, keys }).await? {
                Reply::Slices { answers, moved } => Ok((answers, moved)),
                other => Err(unexpected(other)),
            }
        })
    }

    fn whole(&self) -> Answer<Trace> {
        let run = self.run;
        Box::pin(async move {
            match ask(Request::WholeTrace { run }).await? {
                Reply::Trace(trace) => Ok(*trace),
                other => Err(unexpected(other)),
            }
        })
    }
}

impl Drop for WorkerSlices {
    fn drop(&mut self) {
        if let Some(worker) = ModelWorker::page() {
            worker.send(Request::Forget { run: self.run });
        }
    }
}

async fn ask(request: Request) -> Result<Reply, String> {
    ModelWorker::page()
        .ok_or("the model worker is not running")?
        .ask(request)
        .await
}

/// A refusal in the worker's words, or what else came back (which is a bug).
fn unexpected(reply: Reply) -> String {
    match reply {
        Reply::Refused(why) => why,
        other => format!(
            "the model worker answered out of turn ({})",
            format!("{other:?}").chars().take(60).collect::<String>()
        ),
    }
}
