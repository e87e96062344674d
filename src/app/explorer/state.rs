//! The explorer's state: one typed struct per concern, all `Copy` handles to signals, bundled
//! in [`Explorer`] for the controllers and handed in parts to the components that draw them.

use std::sync::Arc;

use leptos::prelude::*;

use crate::analysis::Matrix;
use crate::charts::{HeatmapLayout, ModelViewLayout};
use crate::model::BackendInfo;
use crate::page::explorer::{
    Controls, HeadChoice, RunScheduler, Tab, ViewKind, ViewSettings, Window,
};
use crate::share::ViewState;

use super::super::session::{LoadedModel, RunResult};
use super::super::web;

/// The page around the tools: which tab and panel show, and how it is embedded.
#[derive(Clone, Copy)]
pub struct PageState {
    /// The tab on show.
    pub tab: RwSignal<Tab>,
    /// The panel the address names; the page scrolls to it.
    pub panel: RwSignal<Option<String>>,
    /// Embed mode (`?embed=1`): one view without the app's chrome, for an iframe.
    pub embed: bool,
    /// How an embedded view shows its controls.
    pub controls: Controls,
    /// The in-page benchmark (`?bench=1`) runs before the first model, and its output.
    pub bench: Option<RwSignal<String>>,
    /// What the last export or "copy link" did, in words.
    pub export_status: RwSignal<Option<String>>,
    /// What "copy link" did.
    pub link_status: RwSignal<Option<String>>,
    /// How much of a trace export has been read back, from 0 to 1, while it is.
    pub export_progress: RwSignal<Option<f64>>,
}

impl PageState {
    /// The page as the address opens it.
    fn from_address(address: &ViewState) -> Self {
        let embed = web::query_param("embed").is_some_and(|value| value != "0");
        Self {
            tab: RwSignal::new(Tab::from_name(address.tab.as_deref())),
            panel: RwSignal::new(address.panel.clone()),
            embed,
            controls: Controls::from_name(web::query_param("controls").as_deref()),
            bench: web::query_param("bench").map(|_| RwSignal::new(String::new())),
            export_status: RwSignal::new(None),
            link_status: RwSignal::new(None),
            export_progress: RwSignal::new(None),
        }
    }

    /// Whether the view controls show their settings but take no input.
    pub fn locked(&self) -> bool {
        self.embed && self.controls == Controls::Lock
    }
}

/// The device and the model the explorer runs, and what the page says about them.
#[derive(Clone, Copy)]
pub struct ModelState {
    /// The device, once chosen.
    pub backend: StoredValue<Option<BackendInfo>, LocalStorage>,
    /// The model the explorer runs.
    pub loaded: StoredValue<Option<LoadedModel>, LocalStorage>,
    /// Its id (`reverse`, `seed`, `file`, …).
    pub id: RwSignal<String>,
    /// Counts installs, so that views of the model follow a new one.
    pub version: RwSignal<u32>,
    /// The name of the file the user opened, offered in the model picker.
    pub file_label: RwSignal<Option<String>>,
    /// The files of the model opened from disk are kept in this browser (`?model=file`).
    pub kept: RwSignal<bool>,
    /// What the page says about keeping them.
    pub kept_message: RwSignal<Option<String>>,
    /// Set while a model loads.
    pub loading: RwSignal<bool>,
    /// Why the last load or save failed.
    pub load_error: RwSignal<Option<String>>,
    /// What the last save wrote.
    pub saved: RwSignal<Option<String>>,
    /// The device in words.
    pub backend_label: RwSignal<String>,
    /// Where the model comes from and how it was trained.
    pub provenance: RwSignal<String>,
    /// The model's (or the shown trace's) layer count.
    pub num_layers: RwSignal<usize>,
    /// The model's (or the shown trace's) head count.
    pub num_heads: RwSignal<usize>,
    /// The longest input the model takes.
    pub max_tokens: RwSignal<usize>,
    /// Set once the first model is installed.
    pub ready: RwSignal<bool>,
    /// How far a model folder's weights have loaded, from 0 to 1, while they load.
    pub progress: RwSignal<Option<f64>>,
    /// Whether the model reads sentence pairs (token types): the sentence B box shows.
    pub takes_pair: RwSignal<bool>,
}

impl ModelState {
    fn new() -> Self {
        Self {
            backend: StoredValue::new_local(None),
            loaded: StoredValue::new_local(None),
            id: RwSignal::new(String::new()),
            version: RwSignal::new(0),
            file_label: RwSignal::new(None),
            kept: RwSignal::new(false),
            kept_message: RwSignal::new(None),
            loading: RwSignal::new(false),
            load_error: RwSignal::new(None),
            saved: RwSignal::new(None),
            backend_label: RwSignal::new("Starting: asking the browser for WebGPU…".to_string()),
            provenance: RwSignal::new(String::new()),
            num_layers: RwSignal::new(0),
            num_heads: RwSignal::new(0),
            max_tokens: RwSignal::new(0),
            ready: RwSignal::new(false),
            progress: RwSignal::new(None),
            takes_pair: RwSignal::new(false),
        }
    }
}

/// The explorer's view settings, one signal each, so that each view redraws on what it reads.
#[derive(Clone, Copy)]
pub struct ViewSignals {
    /// The text the model reads.
    pub text: RwSignal<String>,
    /// Sentence B (token type 1), for a model that reads sentence pairs.
    pub text_b: RwSignal<String>,
    /// Layer, from 0.
    pub layer: RwSignal<usize>,
    /// One head or the mean of heads.
    pub head: RwSignal<HeadChoice>,
    /// Heatmap, flow or head grid.
    pub view: RwSignal<ViewKind>,
    /// The flow view's threshold.
    pub threshold: RwSignal<f32>,
    /// The token pinned by a click, highlighted in every view until Escape.
    pub pinned: RwSignal<Option<usize>>,
    /// The flow view's arrows per query, at most.
    pub flow_k: RwSignal<usize>,
    /// The heatmap's window when zoomed in; `None` shows the whole map.
    pub zoom: RwSignal<Option<Window>>,
}

impl ViewSignals {
    fn new() -> Self {
        let defaults = ViewSettings::default();
        Self {
            text: RwSignal::new(defaults.text),
            text_b: RwSignal::new(String::new()),
            layer: RwSignal::new(defaults.layer),
            head: RwSignal::new(defaults.head),
            view: RwSignal::new(defaults.view),
            threshold: RwSignal::new(defaults.threshold),
            pinned: RwSignal::new(None),
            flow_k: RwSignal::new(crate::page::explorer::FLOW_TOP_K),
            zoom: RwSignal::new(None),
        }
    }

    /// The settings as plain data.
    pub fn get_untracked(&self) -> ViewSettings {
        ViewSettings {
            text: self.text.get_untracked(),
            layer: self.layer.get_untracked(),
            head: self.head.get_untracked(),
            view: self.view.get_untracked(),
            threshold: self.threshold.get_untracked(),
        }
    }

    /// Sets every signal whose value changed (an unchanged one wakes nothing).
    pub fn set(&self, settings: ViewSettings) {
        fn update<T: PartialEq + Send + Sync + 'static>(signal: RwSignal<T>, value: T) {
            if signal.with_untracked(|current| *current != value) {
                signal.set(value);
            }
        }
        update(self.text, settings.text);
        update(self.layer, settings.layer);
        update(self.head, settings.head);
        update(self.view, settings.view);
        update(self.threshold, settings.threshold);
    }
}

/// What the heatmap currently shows, kept for hover look-ups without redrawing.
#[derive(Clone)]
pub struct Shown {
    /// Where each cell is on the canvas.
    pub layout: HeatmapLayout,
    /// The whole map, of which the window is drawn.
    pub matrix: Arc<Matrix>,
    /// The part of it drawn.
    pub window: Window,
}

/// Where the model view put its cells, for clicks.
#[derive(Clone, Copy)]
pub struct ModelShown {
    /// The layers × heads grid of maps.
    pub grid: ModelViewLayout,
    /// The entropy heatmap.
    pub entropy: HeatmapLayout,
}

/// The run the views show, and the bookkeeping of runs in flight.
#[derive(Clone, Copy)]
pub struct RunState {
    /// The last run (or the imported trace) the views show.
    pub result: RwSignal<Option<Arc<RunResult>>>,
    /// Set while the views show an imported trace file (its name) instead of a run.
    pub imported: RwSignal<Option<String>>,
    /// Set while a text waits for its run or runs.
    pub running: RwSignal<bool>,
    /// Why the last run failed.
    pub error: RwSignal<Option<String>>,
    /// Why the last drawing failed; cleared by the next drawing that works.
    pub draw_error: RwSignal<Option<String>>,
    /// Runs whose result the views showed.
    pub runs: RwSignal<u32>,
    /// Runs started (a superseded text never starts one), as the scheduler counts them.
    pub started: RwSignal<u64>,
    /// Redraws done.
    pub draws: RwSignal<u32>,
    /// Decides when a typed text runs.
    pub scheduler: StoredValue<RunScheduler>,
    /// Set when the next run should choose the layer and head the explorer opens on.
    pub choose_opening: StoredValue<bool>,
    /// Why the explorer opened on its layer and head.
    pub opening: RwSignal<Option<String>>,
    /// What the heatmap shows, for hover.
    pub shown: StoredValue<Option<Shown>, LocalStorage>,
    /// The cell under the pointer, in words.
    pub hover: RwSignal<Option<String>>,
    /// Each query's strongest key in the heatmap (the canvas' text alternative).
    pub strongest: RwSignal<Vec<usize>>,
    /// Counts answers read back from the device, so that a view waiting for one redraws.
    pub slices_ready: RwSignal<u64>,
    /// Bytes read back from the device for the view on show by its last read.
    pub last_read_bytes: RwSignal<u64>,
    /// Where the model view's cells are.
    pub model_shown: StoredValue<Option<ModelShown>>,
    /// The text was run again after the model worker died, and no run has come back since: a
    /// second death is not followed by a third try.
    pub rerun_after_death: StoredValue<bool>,
    /// Reads of what the view draws still in flight: the page is busy until they are drawn.
    pub fetching: RwSignal<u32>,
    /// The text of the opening trace shipped with the page, while the views show it (before
    /// the model's own first run replaces it).
    pub shipped: RwSignal<Option<String>>,
    /// Set once the views have drawn the shipped opening trace; its draws are not counted in
    /// `draws`, which counts the drawings of the model's own runs and of imported traces.
    pub shipped_drawn: RwSignal<bool>,
}

impl RunState {
    fn new() -> Self {
        Self {
            result: RwSignal::new(None),
            imported: RwSignal::new(None),
            running: RwSignal::new(false),
            error: RwSignal::new(None),
            draw_error: RwSignal::new(None),
            runs: RwSignal::new(0),
            started: RwSignal::new(0),
            draws: RwSignal::new(0),
            scheduler: StoredValue::new(RunScheduler::default()),
            choose_opening: StoredValue::new(false),
            opening: RwSignal::new(None),
            shown: StoredValue::new_local(None),
            hover: RwSignal::new(None),
            strongest: RwSignal::new(Vec::new()),
            slices_ready: RwSignal::new(0),
            last_read_bytes: RwSignal::new(0),
            model_shown: StoredValue::new(None),
            rerun_after_death: StoredValue::new(false),
            fetching: RwSignal::new(0),
            shipped: RwSignal::new(None),
            shipped_drawn: RwSignal::new(false),
        }
    }
}

/// The address' view settings, applied once the model they refer to is installed, and the
/// bookkeeping that keeps following back/forward from writing new entries.
#[derive(Clone, Copy)]
pub struct AddressState {
    /// Settings waiting for their model.
    pub pending: StoredValue<Option<ViewState>, LocalStorage>,
    /// Set while the page follows back/forward.
    pub restoring: StoredValue<bool>,
    /// Set until the page wrote the address once.
    pub first_write: StoredValue<bool>,
}

/// Everything the explorer holds, for the controllers that change it.
#[derive(Clone, Copy)]
pub struct Explorer {
    /// Tabs, panels and embedding.
    pub page: PageState,
    /// The device and the model.
    pub model: ModelState,
    /// The view settings.
    pub view: ViewSignals,
    /// The run on show.
    pub run: RunState,
    /// The address.
    pub address: AddressState,
}

impl Explorer {
    /// The explorer as the page's address opens it.
    pub fn from_address() -> Self {
        let address = ViewState::from_query(&web::location_search());
        Self {
            page: PageState::from_address(&address),
            model: ModelState::new(),
            view: ViewSignals::new(),
            run: RunState::new(),
            address: AddressState {
                pending: StoredValue::new_local(Some(address)),
                restoring: StoredValue::new(false),
                first_write: StoredValue::new(true),
            },
        }
    }
}
