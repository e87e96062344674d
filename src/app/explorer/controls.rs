//! The explorer's controls, one small component each: the model bar, the text, the view
//! pickers, the export bar and the pin picker, plus the tab bar and the status line.

use leptos::prelude::*;

use crate::model::BackendChoice;
use crate::page::explorer::{HeadChoice, RunLine, Tab, ViewKind, pinned_label, token_notice};
use crate::page::predictions::{heading, prediction_positions, prediction_rows};
use crate::page::slices::{Slice, SliceKey};
use crate::share::ViewState;

use super::super::session::SHIPPED_MODELS;
use super::super::web;
use super::address::copy_link;
use super::controller::{LoadSource, forget_kept, leave_trace, load, pin, save_model};
use super::export::{ExportKind, ViewCanvases, export_view};
use super::state::Explorer;

/// The device, and what the last run did.
#[component]
pub fn StatusLine(explorer: Explorer) -> impl IntoView {
    let run = explorer.run;
    let line = move || {
        let result = run.result.get();
        let line = match (run.running.get(), result) {
            (true, _) => RunLine::Running,
            (false, Some(result)) if run.shipped.with(Option::is_some) => RunLine::Shipped {
                tokens: result.tokens.tokens.len(),
            },
            (false, Some(result)) if run.imported.get().is_some() => RunLine::Imported {
                tokens: result.tokens.tokens.len(),
                layers: result.trace.layers(),
            },
            (false, Some(result)) => RunLine::Ran {
                forward_ms: result.forward_ms,
                tokens: result.tokens.tokens.len(),
            },
            (false, None) => RunLine::Nothing,
        };
        line.words()
    };
    view! {
        <p class="status" aria-live="polite">
            <span id="backend">{move || explorer.model.backend_label.get()}</span>
            <BackendPicker />
            <span id="forward" data-ms=move || run.result.get().map(|result| format!("{:.1}", result.forward_ms))>{line}</span>
        </p>
    }
}

/// Switches the backend by reopening the page at the same address with another `?backend=`:
/// the view's settings travel in the address, and a burn device cannot be swapped under a
/// loaded model.
#[component]
fn BackendPicker() -> impl IntoView {
    let current = BackendChoice::from_query(web::query_param("backend").as_deref());
    let on_change = move |event: leptos::ev::Event| {
        let choice = BackendChoice::ALL
            .into_iter()
            .find(|choice| choice.words() == event_target_value(&event))
            .unwrap_or_default();
        if choice != current {
            let mut state = ViewState::from_query(&web::location_search());
            state.other.retain(|(key, _)| key != "backend");
            if let Some(value) = choice.query_value() {
                state.other.push(("backend".into(), value.into()));
            }
            web::reopen_with_query(&state.to_query());
        }
    };
    view! {
        <label class="backend-choice">"Backend "
            <select id="backend-choice" on:change=on_change>
                {BackendChoice::ALL.map(|choice| view! {
                    <option selected=choice == current>{choice.words()}</option>
                })}
            </select>
        </label>
    }
}

/// The tab bar.
#[component]
pub fn TabBar(explorer: Explorer) -> impl IntoView {
    let page = explorer.page;
    let tab_button = move |tab: Tab, label: &'static str| {
        view! {
            <button id=format!("tab-{}", tab.name()) type="button" role="tab"
                aria-selected=move || (page.tab.get() == tab).to_string()
                on:click=move |_| { page.panel.set(None); page.tab.set(tab); }>{label}</button>
        }
    };
    view! {
        <nav class="tabs" role="tablist" aria-label="Tools">
            {tab_button(Tab::Explore, "Explore attention")}
            {tab_button(Tab::Train, "Train")}
            {tab_button(Tab::Inside, "Gradients & activations")}
            {tab_button(Tab::Diagnostics, "Model diagnostics")}
        </nav>
    }
}

/// Model picker, open, save and copy link.
#[component]
pub fn ModelBar(explorer: Explorer) -> impl IntoView {
    let model = explorer.model;
    let on_open = move |event: leptos::ev::Event| {
        let input: web_sys::HtmlInputElement = event_target(&event);
        let files = web::files::input_files(&input);
        // Cleared so that choosing the same file again is a change.
        input.set_value("");
        if !files.is_empty() {
            load(explorer, LoadSource::Files(files));
        }
    };
    view! {
        <div class="controls model-controls" role="group" aria-label="Model">
            <label>"Model "
                <select id="model" aria-label="Model" prop:value=move || model.id.get()
                    on:change=move |event| {
                        let id = event_target_value(&event);
                        if id != "file" {
                            load(explorer, LoadSource::Shipped(id));
                        }
                    }>
                    {SHIPPED_MODELS.iter().map(|shipped| view! {
                        <option value=shipped.id selected=move || model.id.get() == shipped.id>
                            {shipped.label}
                        </option>
                    }).collect_view()}
                    {move || model.file_label.get().map(|name| view! {
                        <option value="file" selected=move || model.id.get() == "file">
                            {format!("Opened: {name}")}
                        </option>
                    })}
                </select>
            </label>
            <label class="file-button">"Open checkpoint or trace…"
                <input id="open" type="file" multiple accept=".safetensors,.json,.txt"
                    aria-label="Open a .safetensors checkpoint (with its config JSON and vocabulary if it has no glassbox metadata), a glassbox trace .json, or a HuggingFace model's files (config.json, model.safetensors, tokenizer.json)"
                    on:change=on_open />
            </label>
            <label class="file-button">"Open model folder…"
                <input id="open-folder" type="file" prop:webkitdirectory=true multiple
                    aria-label="Open a HuggingFace model folder (BERT or GPT-2: config.json, model.safetensors, tokenizer.json); nothing is uploaded"
                    on:change=on_open />
            </label>
            <progress id="load-progress" max="1" hidden=move || model.progress.get().is_none()
                prop:value=move || model.progress.get().unwrap_or(0.0)
                aria-label="Loading the model's weights"></progress>
            <button id="save" type="button" on:click=move |_| save_model(explorer)
                disabled=move || !model.ready.get()>"Save model (.safetensors)"</button>
            <span id="save-status" aria-live="polite">{move || model.saved.get()}</span>
            <button id="copy-link" type="button" on:click=move |_| copy_link(explorer)
                title="The address carries the model, text, layer, head, view and threshold">"Copy link to this view"</button>
            <span id="link-status" aria-live="polite">{move || explorer.page.link_status.get()}</span>
            <p id="kept" class="notice" hidden=move || model.kept_message.get().is_none()>
                {move || model.kept_message.get()}
                " "
                <button id="forget-kept" type="button" hidden=move || !model.kept.get()
                    on:click=move |_| forget_kept(explorer)>"Forget it"</button>
            </p>
        </div>
    }
}

/// The text the model reads, and what the page says about its tokens.
#[component]
pub fn TextBox(explorer: Explorer) -> impl IntoView {
    let (view, run, model) = (explorer.view, explorer.run, explorer.model);
    let notice = move || {
        let result = run.result.get()?;
        let tokens = &result.tokens;
        token_notice(
            tokens.tokens.len(),
            tokens.dropped,
            model.max_tokens.get(),
            tokens.unknown_count(),
        )
    };
    view! {
        <label class="field" for="text">"Text"</label>
        <textarea id="text" rows="3" spellcheck="false" inert=explorer.page.locked()
            prop:value=move || view.text.get()
            on:input=move |event| {
                leave_trace(explorer);
                view.text.set(event_target_value(&event));
            }></textarea>
        <div hidden=move || !model.takes_pair.get()>
            <label class="field" for="text-b">"Sentence B (token type 1)"</label>
            <textarea id="text-b" rows="2" spellcheck="false" inert=explorer.page.locked()
                prop:value=move || view.text_b.get()
                on:input=move |event| {
                    leave_trace(explorer);
                    view.text_b.set(event_target_value(&event));
                }></textarea>
        </div>
        <p id="token-notice" class="notice" hidden=move || notice().is_none()>{notice}</p>
    }
}

/// View, layer, head and threshold pickers.
#[component]
pub fn ViewPickers(explorer: Explorer) -> impl IntoView {
    let (view, model) = (explorer.view, explorer.model);
    view! {
        <div class="controls view-controls" role="group" aria-label="View controls" inert=explorer.page.locked()>
            <label>"View "
                <select id="view" aria-label="View" prop:value=move || view.view.get().name()
                    on:change=move |event| view.view.set(ViewKind::parse(&event_target_value(&event)))>
                    <option value="heatmap">"Heatmap"</option>
                    <option value="flow">"Flow"</option>
                    <option value="heads">"All heads + similarity"</option>
                    <option value="model">"Every layer × head + entropy"</option>
                </select>
            </label>
            <label>"Layer "
                <select id="layer" aria-label="Layer" prop:value=move || view.layer.get().to_string()
                    on:change=move |event| {
                        explorer.run.choose_opening.set_value(false);
                        view.layer.set(event_target_value(&event).parse().unwrap_or(0));
                    }>
                    {move || (0..model.num_layers.get()).map(|index| view! {
                        <option value=index.to_string() selected=move || view.layer.get() == index>
                            {format!("Layer {index}")}
                        </option>
                    }).collect_view()}
                </select>
            </label>
            <label>"Head "
                <select id="head" aria-label="Head" prop:value=move || view.head.get().name()
                    disabled=move || view.view.get() == ViewKind::Heads
                    on:change=move |event| {
                        explorer.run.choose_opening.set_value(false);
                        view.head.set(HeadChoice::parse(&event_target_value(&event)));
                    }>
                    <option value="mean" selected=move || view.head.get() == HeadChoice::Mean>"Mean of heads"</option>
                    {move || (0..model.num_heads.get()).map(|index| view! {
                        <option value=index.to_string() selected=move || view.head.get() == HeadChoice::Head(index)>
                            {format!("Head {index}")}
                        </option>
                    }).collect_view()}
                </select>
            </label>
            <label hidden=move || view.view.get() != ViewKind::Flow>"Threshold "
                <input id="threshold" type="range" min="0" max="1" step="0.01" aria-label="Flow threshold"
                    prop:value=move || view.threshold.get().to_string()
                    on:input=move |event| view.threshold.set(event_target_value(&event).parse().unwrap_or(0.1)) />
                <output for="threshold">{move || format!("{:.2}", view.threshold.get())}</output>
            </label>
        </div>
    }
}

/// Export buttons for the view on screen and the whole run.
#[component]
pub fn ExportBar(explorer: Explorer, canvases: ViewCanvases) -> impl IntoView {
    let button =
        move |id: &'static str, kind: ExportKind, label: &'static str, title: &'static str| {
            view! {
                <button id=id type="button" title=title
                    on:click=move |_| export_view(explorer, canvases, kind)>{label}</button>
            }
        };
    view! {
        <div class="controls export" role="group" aria-label="Export this view"
            hidden=move || explorer.run.result.get().is_none()>
            "Export this view: "
            {button("export-png", ExportKind::Png, "PNG", "The view as an image")}
            {button("export-svg", ExportKind::Svg, "SVG", "The view as vectors and text")}
            {button("export-view-json", ExportKind::Json, "JSON (its data)", "The weights the view shows, with its tokens")}
            {button("export-csv", ExportKind::Csv, "CSV", "The weights the view shows, one row per query")}
            {button("export-trace", ExportKind::Trace, "Trace (JSON)",
                "Every layer and head of this run, and every module's output: opens again here without the model")}
            {button("export-trace-binary", ExportKind::TraceBinary, "Trace (.safetensors)",
                "The same trace as a safetensors file: half the size, for long texts")}
            <progress id="export-progress" max="1"
                hidden=move || explorer.page.export_progress.get().is_none()
                prop:value=move || explorer.page.export_progress.get().unwrap_or(0.0)></progress>
            <span id="export-status" aria-live="polite">{move || explorer.page.export_status.get()}</span>
        </div>
    }
}

/// Pins a token from the keyboard; the pinned token is highlighted in every view.
#[component]
pub fn PinPicker(explorer: Explorer) -> impl IntoView {
    let (view, run) = (explorer.view, explorer.run);
    let label = move || {
        let index = view.pinned.get()?;
        let result = run.result.get()?;
        Some(pinned_label(
            index,
            &result.tokens.tokens.get(index)?.display,
        ))
    };
    // One option per token, made once per run: the select's value follows the pin, so no
    // option holds a closure of its own.
    let options = move || {
        run.result.get().map(|result| {
            result
                .tokens
                .tokens
                .iter()
                .enumerate()
                .map(|(index, token)| {
                    let selected = view.pinned.get_untracked() == Some(index);
                    view! { <option value=index.to_string() selected=selected>{format!("#{index} “{}”", token.display)}</option> }
                })
                .collect_view()
        })
    };
    view! {
        <div hidden=move || run.result.get().is_none()>
            <label class="pin-picker">"Pin a token "
                <select id="pin" aria-label="Pin a token: highlight it in every view"
                    prop:value=move || { run.result.track(); view.pinned.get().map_or(String::new(), |index| index.to_string()) }
                    on:change=move |event| pin(explorer, event_target_value(&event).parse::<usize>().ok())>
                    <option value="">"None"</option>
                    {options}
                </select>
            </label>
            <p id="pinned" class="notice" hidden=move || label().is_none()
                data-token=move || view.pinned.get().map_or(String::new(), |index| index.to_string())>
                {label}
            </p>
        </div>
    }
}

/// The model head's top-5 tokens at each `[MASK]` (BERT) or after each position (GPT-2),
/// from the logits of the run shown; hovering a token shows its id.
#[component]
pub fn Predictions(explorer: Explorer) -> impl IntoView {
    let (model, run) = (explorer.model, explorer.run);
    let rows = move || {
        model.version.track();
        run.slices_ready.track();
        let result = run.result.get()?;
        model.loaded.with_value(|loaded| {
            let loaded = loaded.as_ref()?;
            let tokenizer = loaded.tokenizer.hf()?;
            let mask = tokenizer.mask();
            let mask_token = mask.map_or("[MASK]", |(token, _)| token);
            let mask = mask.map(|(_, id)| id);
            let head = loaded.config.head;
            let (positions, more) = prediction_positions(head, &result.tokens.tokens, mask)?;
            // The top-k are found on the device; until they come, the panel waits for them.
            let top = match result.trace.get(SliceKey::Predictions) {
                Some(Slice::Predictions(top)) => top,
                _ => {
                    load_predictions(explorer, result.clone());
                    return None;
                }
            };
            let rows = prediction_rows(&result.tokens.tokens, &positions, &top, |id| {
                tokenizer.token_text(id)
            });
            Some((heading(head, mask_token), rows, more, mask_token))
        })
    };
    move || {
        rows().map(|(title, rows, more, mask_token)| {
            let empty = rows.is_empty();
            let label = title.clone();
            view! {
                <section id="predictions" class="predictions" aria-label=label>
                    <h3>{title}</h3>
                    <p class="notice" hidden=!empty>{format!("No {mask_token} in the text: type {mask_token} where a word should be predicted.")}</p>
                    <table hidden=empty>
                        <thead><tr><th>"#"</th><th>"token"</th><th>"top 5 (probability)"</th></tr></thead>
                        <tbody>
                            {rows.into_iter().map(|row| view! {
                                <tr data-position=row.position>
                                    <td>{row.position}</td>
                                    <td>{row.token}</td>
                                    <td>{row.top.into_iter().map(|(text, id, probability)| view! {
                                        <span class="prediction" title=format!("id {id}") data-id=id>
                                            {format!("{text} ({:.1}%)", 100.0 * probability)}
                                        </span>
                                    }).collect_view()}</td>
                                </tr>
                            }).collect_view()}
                        </tbody>
                    </table>
                    <p class="notice" hidden=more == 0>{format!("{more} more positions are not listed.")}</p>
                </section>
            }
        })
    }
}

/// Reads the run's top-k predictions back from the device, then wakes the panel.
fn load_predictions(explorer: Explorer, result: std::sync::Arc<super::super::session::RunResult>) {
    let run = explorer.run;
    web::spawn(async move {
        match result.trace.load(&[SliceKey::Predictions]).await {
            Ok(_) => run.slices_ready.update(|count| *count += 1),
            Err(failure) => run
                .draw_error
                .set(Some(format!("Reading the predictions failed: {failure}"))),
        }
    });
}
