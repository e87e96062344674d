//! The explorer and the world outside the page: the address (every view setting is in it, and
//! back/forward restore it), the host page of an embedded view, and the copy-link button.

use leptos::prelude::*;

use crate::page::explorer::{Tab, host_set_message, pushes_history};
use crate::share::ViewState;

use super::super::session::shipped;
use super::super::web;
use super::controller::{LoadSource, apply_view, leave_trace, load};
use super::state::Explorer;

/// Keeps the address in step with the view: typing replaces the entry, other changes push one,
/// and back/forward restore the view they lead to.
pub fn follow_address(explorer: Explorer) {
    let (page, model, view, run, address) = (
        explorer.page,
        explorer.model,
        explorer.view,
        explorer.run,
        explorer.address,
    );
    Effect::new(move |_| {
        let state = ViewState {
            tab: Some(page.tab.get().name().to_string()),
            // A model trained here cannot travel in a link; one opened from disk goes as far as
            // this browser, which keeps its files.
            model: Some(model.id.get())
                .filter(|id| shipped(id).is_some() || (id == "file" && model.kept.get())),
            text: Some(view.text.get()),
            layer: Some(view.layer.get()),
            head: Some(view.head.get().name()),
            view: Some(view.view.get().name().to_string()),
            threshold: Some(view.threshold.get()),
            panel: page.panel.get(),
            other: ViewState::from_query(&web::location_search()).other,
        };
        // An imported trace cannot travel in a link: the address keeps the last model's view.
        if !model.ready.get()
            || address.pending.with_value(Option::is_some)
            || run.imported.get().is_some()
        {
            return;
        }
        let query = state.to_query();
        let current = web::location_search();
        if query == current {
            return;
        }
        let push = pushes_history(&ViewState::from_query(&current), &state)
            && !address.restoring.get_value()
            && !address.first_write.get_value();
        address.restoring.set_value(false);
        address.first_write.set_value(false);
        web::set_query(&query, push);
    });
    web::on_history_change(move || {
        let state = ViewState::from_query(&web::location_search());
        address.restoring.set_value(true);
        page.panel.set(state.panel.clone());
        page.tab.set(Tab::from_name(state.tab.as_deref()));
        match state
            .model
            .clone()
            .filter(|id| *id != model.id.get_untracked())
        {
            Some(id) if shipped(&id).is_some() => {
                address.pending.set_value(Some(state));
                load(explorer, LoadSource::Shipped(id));
            }
            _ => apply_view(explorer, &state),
        }
    });
    // The named panel is scrolled into view once its tab shows and the model is in.
    Effect::new(move |_| {
        let (Some(name), true) = (page.panel.get(), model.ready.get()) else {
            return;
        };
        page.tab.track();
        web::spawn(async move {
            web::next_frame().await;
            web::scroll_to(&format!("panel-{name}"));
        });
    });
}

/// Takes the host page's `glassbox:set` messages (see the embedding docs) and tells it each
/// time a run finishes, with its tokens.
pub fn answer_host(explorer: Explorer) {
    web::on_host_message(move |message| {
        let Some(state) = host_set_message(&message) else {
            return;
        };
        if state.text.is_some() {
            leave_trace(explorer);
        }
        apply_view(explorer, &state);
    });
    let run = explorer.run;
    Effect::new(move |_| {
        let count = run.runs.get();
        if let Some(result) = run.result.get_untracked() {
            web::post_to_host(&serde_json::json!({
                "type": "glassbox:run",
                "runs": count,
                "model": explorer.model.id.get_untracked(),
                "tokens": result.tokens.labels(),
            }));
        }
    });
}

/// Copies the page's address, which carries the whole view; says why when it cannot.
pub fn copy_link(explorer: Explorer) {
    let status = explorer.page.link_status;
    if explorer.run.imported.get_untracked().is_some() {
        status.set(Some(
            "A link cannot carry an imported trace: share the trace file itself (Trace (JSON))."
                .into(),
        ));
        return;
    }
    let href = web::location_href();
    web::copy_text(&href.clone(), move |outcome| {
        status.set(Some(match outcome {
            Ok(()) => "Link copied.".to_string(),
            Err(_) => format!("Copy this link: {href}"),
        }));
    });
}
