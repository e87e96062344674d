//! Exports of the explorer: the view on screen as PNG or SVG, the attention it shows as JSON or
//! CSV, and the whole run as a trace file.

use leptos::html;
use leptos::prelude::*;
use strum::{EnumString, IntoStaticStr};

use crate::model::{Trace, TraceFile};
use crate::page::explorer::{ViewKind, full_maps_of};
use crate::page::slices::SliceKey;
use crate::share::{ExportedMap, matrix_csv, view_json};

use super::super::session::RunResult;
use super::super::views::save_canvas;
use super::super::web;
use super::state::Explorer;
use crate::page::explorer::view_maps;

/// What an export button saves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, EnumString, IntoStaticStr)]
#[strum(serialize_all = "kebab-case")]
pub enum ExportKind {
    /// The view's canvas as an image.
    Png,
    /// The view's canvas as vectors.
    Svg,
    /// The attention the view shows, as JSON.
    Json,
    /// The attention the view shows, as CSV.
    Csv,
    /// The whole run as a `glassbox.trace` JSON file.
    Trace,
    /// The whole run as a safetensors trace.
    TraceBinary,
}

/// The explorer's canvases, for image exports of the view on screen.
#[derive(Clone, Copy)]
pub struct ViewCanvases {
    /// The heatmap.
    pub heatmap: NodeRef<html::Canvas>,
    /// The flow diagram.
    pub flow: NodeRef<html::Canvas>,
    /// The head grid.
    pub grid: NodeRef<html::Canvas>,
    /// The head-to-head similarity.
    pub similarity: NodeRef<html::Canvas>,
    /// Every head of every layer.
    pub model: NodeRef<html::Canvas>,
    /// Every head's entropy.
    pub entropy: NodeRef<html::Canvas>,
    /// The zoomed heatmap's minimap.
    pub minimap: NodeRef<html::Canvas>,
}

impl ViewCanvases {
    /// Canvas handles not yet bound to elements.
    pub fn new() -> Self {
        Self {
            heatmap: NodeRef::new(),
            flow: NodeRef::new(),
            grid: NodeRef::new(),
            similarity: NodeRef::new(),
            model: NodeRef::new(),
            entropy: NodeRef::new(),
            minimap: NodeRef::new(),
        }
    }

    /// The canvas that shows `view`.
    fn of(&self, view: ViewKind) -> Option<web_sys::HtmlCanvasElement> {
        match view {
            ViewKind::Heatmap => self.heatmap.get_untracked(),
            ViewKind::Flow => self.flow.get_untracked(),
            ViewKind::Heads => self.grid.get_untracked(),
            ViewKind::Model => self.model.get_untracked(),
        }
    }
}

/// Saves what `kind` asks for and says in the page what was saved, or why not. What is not on
/// the host yet is read back first: the maps a JSON or CSV export holds, or, for a trace, the
/// whole run a tensor at a time with a progress bar.
pub fn export_view(explorer: Explorer, canvases: ViewCanvases, kind: ExportKind) {
    let Some(run) = explorer.run.result.get_untracked() else {
        return;
    };
    let settings = explorer.view.get_untracked();
    let model_id = explorer.model.id.get_untracked();
    let base = format!(
        "glassbox-{model_id}-layer{}-{}",
        settings.layer,
        settings.view.name()
    );
    let status = explorer.page.export_status;
    let report = move |outcome: Result<(), String>, saved: String| {
        status.set(Some(match outcome {
            Ok(()) => format!("Saved {saved}"),
            Err(failure) => format!("Export failed: {failure}"),
        }));
    };
    match kind {
        ExportKind::Png | ExportKind::Svg => {
            let extension: &str = kind.into();
            let outcome = canvases
                .of(settings.view)
                .ok_or_else(|| "the view is not drawn".to_string())
                .and_then(|canvas| save_canvas(&canvas, &base, extension));
            report(outcome, format!("{base}.{extension}"));
        }
        ExportKind::Trace | ExportKind::TraceBinary => {
            let binary = kind == ExportKind::TraceBinary;
            let name = format!(
                "glassbox-{model_id}-trace.{}",
                if binary { "safetensors" } else { "json" }
            );
            let progress = explorer.page.export_progress;
            web::spawn(async move {
                progress.set(Some(0.0));
                let trace = run
                    .trace
                    .whole(|done, total| progress.set(Some(done as f64 / total.max(1) as f64)))
                    .await;
                progress.set(None);
                let outcome = trace.and_then(|trace| {
                    let file = trace_file(explorer, &run, &trace);
                    if binary {
                        file.to_safetensors()
                            .map_err(|error| error.to_string())
                            .and_then(|bytes| web::files::download(&name, &bytes))
                    } else {
                        web::files::download(&name, file.to_json().as_bytes())
                    }
                });
                report(outcome, name);
            });
        }
        ExportKind::Json | ExportKind::Csv => {
            let json = kind == ExportKind::Json;
            let name = format!("{base}.{}", if json { "json" } else { "csv" });
            let mut keys = full_maps_of(
                settings.view,
                settings.layer,
                settings.head,
                run.trace.heads(),
            );
            if settings.view == ViewKind::Heads {
                keys.push(SliceKey::Similarity {
                    layer: settings.layer,
                });
            }
            web::spawn(async move {
                let outcome = match run.trace.load(&keys).await {
                    Ok(_) => {
                        let text = if json {
                            attention_json(&model_id, &run, &settings)
                        } else {
                            attention_csv(&run, &settings)
                        };
                        web::files::download(&name, text.as_bytes())
                    }
                    Err(failure) => Err(failure),
                };
                report(outcome, name);
            });
        }
    }
}

/// The whole run, as a trace file that opens again without the model.
fn trace_file(explorer: Explorer, run: &RunResult, trace: &Trace) -> TraceFile {
    TraceFile::new(
        &explorer
            .run
            .imported
            .get_untracked()
            .unwrap_or_else(|| explorer.model.id.get_untracked()),
        &explorer.model.provenance.get_untracked(),
        &explorer.view.text.get_untracked(),
        &run.tokens,
        trace,
    )
}

/// The attention the view shows, with its tokens and settings, as JSON.
fn attention_json(
    model_id: &str,
    run: &RunResult,
    settings: &crate::page::explorer::ViewSettings,
) -> String {
    let maps = view_maps(run, settings.layer, settings.head, settings.view);
    let exported: Vec<ExportedMap<'_>> = maps
        .iter()
        .map(|(name, matrix)| ExportedMap {
            name: name.clone(),
            matrix,
        })
        .collect();
    let similarity = (settings.view == ViewKind::Heads)
        .then(|| {
            run.trace.get(SliceKey::Similarity {
                layer: settings.layer,
            })
        })
        .flatten()
        .and_then(|slice| slice.map().map(|matrix| (**matrix).clone()));
    view_json(
        model_id,
        &run.tokens.labels(),
        settings.layer,
        settings.view.name(),
        (settings.view == ViewKind::Flow).then_some(settings.threshold),
        &exported,
        similarity.as_ref(),
    )
}

/// The attention the view shows as CSV; several maps (the head grid) each under a `# name` line.
fn attention_csv(run: &RunResult, settings: &crate::page::explorer::ViewSettings) -> String {
    let tokens = run.tokens.labels();
    let maps = view_maps(run, settings.layer, settings.head, settings.view);
    maps.iter()
        .map(|(name, matrix)| {
            if maps.len() > 1 {
                format!("# {name}\n{}", matrix_csv(&tokens, matrix))
            } else {
                matrix_csv(&tokens, matrix)
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}
