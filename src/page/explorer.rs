//! The attention explorer's decisions: its tabs, views and head choice, the words around the
//! views, how the address changes, what a host page may set, and when a typed text runs.

use strum::{EnumString, IntoStaticStr};

use crate::analysis::Matrix;
use crate::model::Tokenized;
use crate::share::ViewState;

use super::slices::{SliceKey, TraceSlices};

/// The page's tools, one tab each.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, EnumString, IntoStaticStr)]
#[strum(serialize_all = "lowercase")]
pub enum Tab {
    /// The attention explorer.
    #[default]
    Explore,
    /// Training with the monitor.
    Train,
    /// Gradient flow and activations.
    Inside,
    /// Structure, parameters, FLOPs, memory and speed.
    Diagnostics,
}

impl Tab {
    /// The tab's name in the address.
    pub fn name(self) -> &'static str {
        self.into()
    }

    /// The tab an address names; the explorer when it names none or an unknown one.
    pub fn from_name(name: Option<&str>) -> Self {
        name.and_then(|name| name.parse().ok()).unwrap_or_default()
    }
}

/// Which head the heatmap and flow views show.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum HeadChoice {
    /// The mean over all heads of the layer.
    Mean,
    /// One head, counted from 0.
    Head(usize),
}

impl HeadChoice {
    /// Parses the head picker's value (`mean` or a head index).
    pub fn parse(value: &str) -> Self {
        value.parse().map_or(Self::Mean, Self::Head)
    }

    /// The picker's value, as in the address.
    pub fn name(self) -> String {
        match self {
            Self::Mean => "mean".to_string(),
            Self::Head(index) => index.to_string(),
        }
    }

    /// Words for chart titles.
    pub fn describe(self) -> String {
        match self {
            Self::Mean => "mean of heads".to_string(),
            Self::Head(head) => format!("head {head}"),
        }
    }

    /// The choice as JSON for the host page: `"mean"` or the head's index.
    pub fn to_json(self) -> serde_json::Value {
        match self {
            Self::Mean => serde_json::json!("mean"),
            Self::Head(index) => serde_json::json!(index),
        }
    }
}

/// The three views of the attention explorer.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, EnumString, IntoStaticStr)]
#[strum(serialize_all = "lowercase")]
pub enum ViewKind {
    /// One attention map as a heatmap.
    #[default]
    Heatmap,
    /// Query → key arrows for weights above a threshold.
    Flow,
    /// Every head of the layer, and how alike the heads are.
    Heads,
    /// Every head of every layer at once (BertViz's model view), beside each head's entropy.
    Model,
}

impl ViewKind {
    /// The picker's value, as in the address.
    pub fn name(self) -> &'static str {
        self.into()
    }

    /// Parses the view picker's value; anything unknown is the heatmap.
    pub fn parse(value: &str) -> Self {
        value.parse().unwrap_or_default()
    }
}

/// How an embedded view shows its controls (`?embed=1&controls=…`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, EnumString, IntoStaticStr)]
#[strum(serialize_all = "lowercase")]
pub enum Controls {
    /// The controls work as on the full page.
    #[default]
    Show,
    /// No controls: one view, set by the address or the host page.
    Hide,
    /// The controls show the settings but do not take input.
    Lock,
}

impl Controls {
    /// The mode the address asks for; `show` for anything else.
    pub fn from_name(name: Option<&str>) -> Self {
        name.and_then(|name| name.parse().ok()).unwrap_or_default()
    }

    /// The mode's name, as in the address and the page's `data-controls`.
    pub fn name(self) -> &'static str {
        self.into()
    }
}

/// The explorer's view settings, as plain data.
#[derive(Debug, Clone, PartialEq)]
pub struct ViewSettings {
    /// The text the model reads.
    pub text: String,
    /// Layer, from 0.
    pub layer: usize,
    /// One head or the mean of heads.
    pub head: HeadChoice,
    /// Heatmap, flow or head grid.
    pub view: ViewKind,
    /// The flow view's threshold, in `[0, 1]`.
    pub threshold: f32,
}

impl Default for ViewSettings {
    fn default() -> Self {
        Self {
            text: String::new(),
            layer: 0,
            head: HeadChoice::Mean,
            view: ViewKind::Heatmap,
            threshold: 0.1,
        }
    }
}

impl ViewSettings {
    /// Takes the settings of a link (or a host page's message) that fit a model with `layers`
    /// layers and `heads` heads; the rest stay as they are.
    pub fn apply(&mut self, state: &ViewState, layers: usize, heads: usize) {
        if let Some(text) = &state.text {
            self.text.clone_from(text);
        }
        if let Some(layer) = state.layer.filter(|&layer| layer < layers) {
            self.layer = layer;
        }
        if let Some(head) = &state.head {
            let choice = HeadChoice::parse(head);
            if !matches!(choice, HeadChoice::Head(index) if index >= heads) {
                self.head = choice;
            }
        }
        if let Some(view) = &state.view {
            self.view = ViewKind::parse(view);
        }
        if let Some(threshold) = state.threshold {
            self.threshold = threshold.clamp(0.0, 1.0);
        }
    }

    /// Brings the layer and head back into a model with `layers` layers and `heads` heads: a
    /// choice past them goes back to layer 0 or the mean.
    pub fn fit(&mut self, layers: usize, heads: usize) {
        if self.layer >= layers {
            self.layer = 0;
        }
        if matches!(self.head, HeadChoice::Head(index) if index >= heads) {
            self.head = HeadChoice::Mean;
        }
    }
}

/// Whether a change of the address from `before` to `after` gets a history entry of its own:
/// typing replaces the entry (a link to every keystroke is no use to back/forward), every other
/// change pushes one.
pub fn pushes_history(before: &ViewState, after: &ViewState) -> bool {
    let without_text = |state: &ViewState| ViewState {
        text: None,
        ..state.clone()
    };
    without_text(before) != without_text(after)
}

/// The settings a host page's `glassbox:set` message asks for, checked as a link's would be;
/// `None` for any other message.
pub fn host_set_message(message: &serde_json::Value) -> Option<ViewState> {
    if message.get("type").and_then(serde_json::Value::as_str) != Some("glassbox:set") {
        return None;
    }
    let text = |key: &str| {
        message
            .get(key)
            .and_then(serde_json::Value::as_str)
            .map(str::to_string)
    };
    let state = ViewState {
        text: text("text"),
        layer: message
            .get("layer")
            .and_then(serde_json::Value::as_u64)
            .and_then(|layer| usize::try_from(layer).ok()),
        head: message.get("head").map(|head| match head {
            serde_json::Value::String(text) => text.clone(),
            other => other.to_string(),
        }),
        view: text("view"),
        threshold: message
            .get("threshold")
            .and_then(serde_json::Value::as_f64)
            .map(|threshold| threshold as f32),
        ..ViewState::default()
    };
    // Through the address' own parser, so that a host can set nothing a link could not.
    Some(ViewState::from_query(&state.to_query()))
}

/// "Strongest key per query: “3” → “6”, …" for `tokens`, from each query's strongest key.
pub fn strongest_summary(keys: &[usize], tokens: &[String]) -> String {
    let pairs: Vec<String> = keys
        .iter()
        .enumerate()
        .filter_map(|(query, &key)| {
            Some(format!("“{}” → “{}”", tokens.get(query)?, tokens.get(key)?))
        })
        .collect();
    format!("Strongest key per query: {}", pairs.join(", "))
}

/// What the explorer says about the tokens of a run: how many were cut, how many are unknown.
pub fn token_notice(
    shown: usize,
    dropped: usize,
    max_tokens: usize,
    unknown: usize,
) -> Option<String> {
    let mut parts = Vec::new();
    if dropped > 0 {
        parts.push(format!(
            "Showing the first {shown} tokens; {dropped} more were dropped (the model takes at most {max_tokens})."
        ));
    }
    if unknown > 0 {
        parts.push(format!(
            "{unknown} of {shown} tokens are not in the model's vocabulary and show as [UNK]."
        ));
    }
    (!parts.is_empty()).then(|| parts.join(" "))
}

/// The line about the run the views show.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum RunLine {
    /// A run is in flight or waiting for the typing to stop.
    Running,
    /// The views show an imported trace.
    Imported {
        /// Tokens in the trace.
        tokens: usize,
        /// Layers in the trace.
        layers: usize,
    },
    /// The views show the opening trace shipped with the page while the model loads.
    Shipped {
        /// Tokens in the trace.
        tokens: usize,
    },
    /// The views show the model's last run.
    Ran {
        /// Forward pass and read-back, in milliseconds.
        forward_ms: f64,
        /// Tokens in the run.
        tokens: usize,
    },
    /// Nothing ran yet.
    Nothing,
}

impl RunLine {
    /// The line's words.
    pub fn words(self) -> String {
        match self {
            Self::Running => "running…".to_string(),
            Self::Imported { tokens, layers } => {
                format!("imported trace: {tokens} tokens, {layers} layers, no model run")
            }
            Self::Shipped { tokens } => {
                format!(
                    "opening trace of {tokens} tokens, recorded when the page was built; the model is loading"
                )
            }
            Self::Ran { forward_ms, tokens } => {
                format!("last forward + capture: {forward_ms:.1} ms for {tokens} tokens")
            }
            Self::Nothing => String::new(),
        }
    }
}

/// "Pinned: “cat” (#3), …": the notice under the views while a token is pinned.
pub fn pinned_label(index: usize, token: &str) -> String {
    format!(
        "Pinned: “{token}” (#{index}), highlighted in every view. Escape or a second click lets it go."
    )
}

/// Everything one run produced: its tokens, and its captures with what the views read of them.
#[derive(Debug)]
pub struct RunResult {
    /// The tokens that went in (and how many were cut).
    pub tokens: Tokenized,
    /// What the model captured, on the device or the host.
    pub trace: TraceSlices,
    /// Forward pass plus the first read-back (the heads' entropies), in milliseconds.
    pub forward_ms: f64,
}

/// What `view` reads to draw (or export) `layer`'s attention at full resolution: the chosen
/// head (or the mean) for the heatmap and the flow, every head for the head grid's export.
pub fn full_maps_of(view: ViewKind, layer: usize, head: HeadChoice, heads: usize) -> Vec<SliceKey> {
    match view {
        ViewKind::Heads | ViewKind::Model => (0..heads)
            .map(|index| SliceKey::Map {
                layer,
                head: HeadChoice::Head(index),
            })
            .collect(),
        _ => vec![SliceKey::Map { layer, head }],
    }
}

/// The maps `view` shows for `layer`, each with its name, from what the host has of the run:
/// the chosen head (or the mean) for the heatmap and the flow, every head for the head grid.
pub fn view_maps(
    result: &RunResult,
    layer: usize,
    head: HeadChoice,
    view: ViewKind,
) -> Vec<(String, Matrix)> {
    full_maps_of(view, layer, head, result.trace.heads())
        .into_iter()
        .filter_map(|key| {
            let SliceKey::Map { head, .. } = key else {
                return None;
            };
            let slice = result.trace.get(key)?;
            Some((head.describe(), (**slice.map()?).clone()))
        })
        .collect()
}

/// The attention map a view shows: one head or the mean of heads of `layer`, sequence 0, if
/// the host has it.
pub fn selected_matrix(result: &RunResult, layer: usize, head: HeadChoice) -> Option<Matrix> {
    let slice = result.trace.get(SliceKey::Map { layer, head })?;
    Some((**slice.map()?).clone())
}

/// The flow view's arrows per query at most, at first: at 1,024 tokens a threshold alone can
/// leave a million curves.
pub const FLOW_TOP_K: usize = 3;

/// Cells a side of the head grid's maps at most: each panel is about this many pixels.
pub const GRID_THUMBNAIL: usize = 128;

/// Cells a side of the model view's maps at most: at 12 × 12 a cell is about 55 pixels.
pub const MODEL_THUMBNAIL: usize = 48;

/// What `view` reads back to draw `layer` (and `head`) of a model with `layers` layers.
pub fn keys_of_view(
    view: ViewKind,
    layer: usize,
    head: HeadChoice,
    layers: usize,
) -> Vec<SliceKey> {
    match view {
        ViewKind::Heatmap | ViewKind::Flow => vec![SliceKey::Map { layer, head }],
        ViewKind::Heads => vec![
            SliceKey::Thumbnails {
                layer,
                size: GRID_THUMBNAIL,
            },
            SliceKey::Similarity { layer },
            SliceKey::Summaries,
        ],
        ViewKind::Model => (0..layers)
            .map(|layer| SliceKey::Thumbnails {
                layer,
                size: MODEL_THUMBNAIL,
            })
            .chain([SliceKey::Summaries])
            .collect(),
    }
}

/// The fewest tokens a zoomed heatmap shows a side.
pub const MIN_ZOOM_SPAN: usize = 8;

/// The part of an `n × n` map the heatmap shows: a square window `span` tokens a side whose
/// top-left cell is query `row`, key `col`. The whole map is `row = col = 0, span = n`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    /// First query shown.
    pub row: usize,
    /// First key shown.
    pub col: usize,
    /// Tokens shown a side.
    pub span: usize,
}

impl Window {
    /// The whole `n × n` map.
    pub fn full(n: usize) -> Self {
        Self {
            row: 0,
            col: 0,
            span: n,
        }
    }

    /// Whether it shows less than the whole of an `n × n` map.
    pub fn is_zoomed(&self, n: usize) -> bool {
        self.span < n
    }

    /// The window made to fit an `n × n` map: the span within `MIN_ZOOM_SPAN..=n` and the
    /// window inside the map.
    pub fn fit(self, n: usize) -> Self {
        let span = self.span.clamp(MIN_ZOOM_SPAN.min(n), n);
        Self {
            row: self.row.min(n - span),
            col: self.col.min(n - span),
            span,
        }
    }

    /// Zoomed by `factor` (below 1 zooms in) around cell `(query, key)`, which stays under the
    /// same point of the view.
    pub fn zoom(self, n: usize, (query, key): (usize, usize), factor: f64) -> Self {
        let span = ((self.span as f64 * factor).round() as usize).clamp(MIN_ZOOM_SPAN.min(n), n);
        let keep = |start: usize, at: usize| {
            let share = (at.saturating_sub(start)) as f64 / self.span.max(1) as f64;
            at.saturating_sub((share * span as f64).round() as usize)
        };
        Self {
            row: keep(self.row, query),
            col: keep(self.col, key),
            span,
        }
        .fit(n)
    }

    /// Moved by `rows` queries and `cols` keys (negative: up or left), kept inside the map.
    pub fn pan(self, n: usize, rows: isize, cols: isize) -> Self {
        let shift = |start: usize, by: isize| start.saturating_add_signed(by);
        Self {
            row: shift(self.row, rows),
            col: shift(self.col, cols),
            ..self
        }
        .fit(n)
    }

    /// The window's cells of the row-major `n × n` map `values`.
    pub fn cut(&self, values: &[f32], n: usize) -> Matrix {
        let mut out = Vec::with_capacity(self.span * self.span);
        for query in self.row..self.row + self.span {
            out.extend_from_slice(&values[query * n + self.col..query * n + self.col + self.span]);
        }
        Matrix::new(self.span, self.span, out).unwrap_or_else(|| Matrix::zeros(0, 0))
    }
}

/// How long the text must stay unchanged before the model runs on it.
pub const TYPING_PAUSE_MS: i32 = 150;

/// Decides when a text runs, so that typing runs the model a few times, not once a keystroke.
///
/// Every change of the text takes a ticket, which makes every older one stale. A text runs
/// only once its pause ran out while it was still the newest: at once when no run is in flight,
/// else as soon as that run finishes. A run that finishes shows its result only if no newer
/// text came while it ran.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RunScheduler {
    newest: u64,
    in_flight: Option<u64>,
    /// The newest ticket whose pause ran out while a run was in flight.
    waiting: Option<u64>,
    started: u64,
}

impl RunScheduler {
    /// The text changed: returns its ticket, which makes every older one stale.
    pub fn changed(&mut self) -> u64 {
        self.newest += 1;
        self.newest
    }

    /// `ticket`'s pause ran out: whether it runs now (it is marked in flight if so).
    pub fn pause_over(&mut self, ticket: u64) -> bool {
        if ticket != self.newest {
            return false;
        }
        if self.in_flight.is_some() {
            self.waiting = Some(ticket);
            return false;
        }
        self.start(ticket);
        true
    }

    /// `ticket`'s run finished. Returns whether its result is the newest text's (show it), and
    /// the ticket to run at once: the newest text, when its pause ran out during this run.
    pub fn finished(&mut self, ticket: u64) -> (bool, Option<u64>) {
        if self.in_flight == Some(ticket) {
            self.in_flight = None;
        }
        let next = self
            .waiting
            .take()
            .filter(|&waiting| waiting == self.newest);
        if let Some(next) = next {
            self.start(next);
        }
        (ticket == self.newest, next)
    }

    /// How many runs started so far.
    pub fn started(&self) -> u64 {
        self.started
    }

    /// Drops every pending text (an imported trace replaces the run): nothing older runs.
    pub fn cancel(&mut self) -> u64 {
        self.waiting = None;
        self.newest += 1;
        self.newest
    }

    fn start(&mut self, ticket: u64) {
        self.in_flight = Some(ticket);
        self.started += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tabs_views_and_controls_read_their_address_names() {
        assert_eq!(Tab::from_name(Some("inside")), Tab::Inside);
        assert_eq!(Tab::from_name(Some("nonsense")), Tab::Explore);
        assert_eq!(Tab::from_name(None), Tab::Explore);
        assert_eq!(Tab::Diagnostics.name(), "diagnostics");
        assert_eq!(ViewKind::parse("heads"), ViewKind::Heads);
        assert_eq!(ViewKind::parse("pie"), ViewKind::Heatmap);
        assert_eq!(ViewKind::Flow.name(), "flow");
        assert_eq!(Controls::from_name(Some("lock")), Controls::Lock);
        assert_eq!(Controls::from_name(Some("x")), Controls::Show);
        assert_eq!(HeadChoice::parse("3"), HeadChoice::Head(3));
        assert_eq!(HeadChoice::parse("mean"), HeadChoice::Mean);
        assert_eq!(HeadChoice::Head(2).name(), "2");
    }

    #[test]
    fn a_link_sets_only_what_fits_the_model() {
        let mut settings = ViewSettings::default();
        let state = ViewState::from_query("?layer=5&head=9&view=flow&threshold=3&text=a%20b");
        settings.apply(&state, 2, 4);
        assert_eq!(settings.layer, 0);
        assert_eq!(settings.head, HeadChoice::Mean);
        assert_eq!(settings.view, ViewKind::Flow);
        assert_eq!(settings.threshold, 1.0);
        assert_eq!(settings.text, "a b");
        settings.apply(&ViewState::from_query("?layer=1&head=3"), 2, 4);
        assert_eq!((settings.layer, settings.head), (1, HeadChoice::Head(3)));
        settings.fit(1, 2);
        assert_eq!((settings.layer, settings.head), (0, HeadChoice::Mean));
    }

    #[test]
    fn typing_replaces_the_history_entry_and_other_changes_push_one() {
        let before = ViewState::from_query("?text=a&layer=0");
        assert!(!pushes_history(
            &before,
            &ViewState::from_query("?text=ab&layer=0")
        ));
        assert!(pushes_history(
            &before,
            &ViewState::from_query("?text=a&layer=1")
        ));
    }

    #[test]
    fn host_messages_set_what_a_link_could_and_nothing_else() {
        let message = serde_json::json!({
            "type": "glassbox:set", "text": "1 2 3", "layer": 1, "head": 2,
            "view": "sideways", "threshold": 0.5,
        });
        let state = host_set_message(&message).unwrap();
        assert_eq!(state.text.as_deref(), Some("1 2 3"));
        assert_eq!(state.layer, Some(1));
        assert_eq!(state.head.as_deref(), Some("2"));
        assert_eq!(state.view, None, "an unknown view is dropped as in a link");
        assert_eq!(state.threshold, Some(0.5));
        assert_eq!(
            host_set_message(&serde_json::json!({"type": "other"})),
            None
        );
    }

    #[test]
    fn words_around_the_views() {
        let tokens = ["a".to_string(), "b".to_string()];
        assert_eq!(
            strongest_summary(&[1, 0], &tokens),
            "Strongest key per query: “a” → “b”, “b” → “a”"
        );
        assert_eq!(token_notice(3, 0, 8, 0), None);
        let notice = token_notice(8, 2, 8, 1).unwrap();
        assert!(
            notice.contains("first 8 tokens; 2 more were dropped"),
            "{notice}"
        );
        assert!(notice.contains("1 of 8 tokens"), "{notice}");
        assert_eq!(
            RunLine::Ran {
                forward_ms: 1.25,
                tokens: 4
            }
            .words(),
            "last forward + capture: 1.2 ms for 4 tokens"
        );
        assert_eq!(
            RunLine::Shipped { tokens: 8 }.words(),
            "opening trace of 8 tokens, recorded when the page was built; the model is loading"
        );
        assert!(pinned_label(3, "cat").starts_with("Pinned: “cat” (#3)"));
    }

    #[test]
    fn fast_typing_runs_the_first_pause_and_then_only_the_newest_text() {
        let mut runs = RunScheduler::default();
        // Thirty keystrokes, each within the pause of the last: only the last one's pause ends.
        let tickets: Vec<u64> = (0..30).map(|_| runs.changed()).collect();
        for &ticket in &tickets[..29] {
            assert!(
                !runs.pause_over(ticket),
                "a superseded keystroke must not run"
            );
        }
        assert!(runs.pause_over(tickets[29]));
        assert_eq!(runs.started(), 1);
        assert_eq!(runs.finished(tickets[29]), (true, None));
    }

    #[test]
    fn text_typed_during_a_run_runs_after_its_own_pause_and_the_stale_result_is_dropped() {
        let mut runs = RunScheduler::default();
        let first = runs.changed();
        assert!(runs.pause_over(first));
        let second = runs.changed();
        // The run ends before the second text's pause: nothing starts until that pause ends.
        assert_eq!(runs.finished(first), (false, None));
        assert!(runs.pause_over(second));
        assert_eq!(runs.finished(second), (true, None));
        assert_eq!(runs.started(), 2);
    }

    #[test]
    fn a_pause_that_ends_during_a_run_starts_the_text_when_the_run_finishes() {
        let mut runs = RunScheduler::default();
        let first = runs.changed();
        assert!(runs.pause_over(first));
        let second = runs.changed();
        let third = runs.changed();
        assert!(!runs.pause_over(second), "superseded");
        assert!(!runs.pause_over(third), "one run at a time");
        assert_eq!(runs.finished(first), (false, Some(third)));
        assert_eq!(runs.finished(third), (true, None));
        assert_eq!(runs.started(), 2);
        // A text typed after the pause ran out but before the run ended is not started early.
        let fourth = runs.changed();
        assert!(runs.pause_over(fourth));
        let fifth = runs.changed();
        assert_eq!(runs.finished(fourth), (false, None));
        assert!(runs.pause_over(fifth));
        assert_eq!(runs.started(), 4);
    }

    #[test]
    fn zooming_keeps_the_cell_under_the_pointer_and_the_window_inside_the_map() {
        let n = 1024;
        let full = Window::full(n);
        assert!(!full.is_zoomed(n));
        // Zooming in 4× around the cell at 3/4 of the way keeps it at 3/4 of the window.
        let zoomed = full.zoom(n, (768, 256), 0.25);
        assert_eq!(zoomed.span, 256);
        assert_eq!((zoomed.row, zoomed.col), (768 - 192, 256 - 64));
        assert!(zoomed.is_zoomed(n));
        // Never below the smallest span, never past the edges.
        let tiny = zoomed.zoom(n, (1000, 1000), 0.001);
        assert_eq!(tiny.span, MIN_ZOOM_SPAN);
        let panned = tiny.pan(n, 10_000, -10_000);
        assert_eq!((panned.row, panned.col), (n - MIN_ZOOM_SPAN, 0));
        assert_eq!(zoomed.zoom(n, (0, 0), 100.0), full);
        // A window of a 3 × 3 map: rows 1..3, columns 0..2.
        let values: Vec<f32> = (0..9).map(|v| v as f32).collect();
        let window = Window {
            row: 1,
            col: 0,
            span: 2,
        };
        assert_eq!(window.cut(&values, 3).values, vec![3.0, 4.0, 6.0, 7.0]);
        assert_eq!(
            Window {
                row: 5,
                col: 5,
                span: 99
            }
            .fit(3),
            Window::full(3)
        );
    }

    #[test]
    fn a_cancelled_text_never_runs() {
        let mut runs = RunScheduler::default();
        let typed = runs.changed();
        runs.cancel();
        assert!(!runs.pause_over(typed));
        assert_eq!(runs.started(), 0);
    }

    #[test]
    fn each_view_gets_the_maps_it_draws() {
        use crate::page::slices::RunTrace;
        use crate::structure::AttentionCapture;
        // One layer, two heads over two tokens: head 0 looks back, head 1 looks at itself.
        let attention = AttentionCapture {
            layer: 0,
            batch: 1,
            heads: 2,
            queries: 2,
            keys: 2,
            values: vec![0.0, 1.0, 1.0, 0.0, 1.0, 0.0, 0.0, 1.0],
        };
        let run = RunResult {
            tokens: Tokenized {
                tokens: Vec::new(),
                dropped: 0,
            },
            trace: TraceSlices::new(
                RunTrace::Host(crate::model::Trace {
                    attention: vec![attention],
                    modules: Vec::new(),
                }),
                Vec::new(),
            ),
            forward_ms: 0.0,
        };
        let heads = view_maps(&run, 0, HeadChoice::Mean, ViewKind::Heads);
        assert_eq!(heads.len(), 2);
        assert_eq!(heads[1].0, "head 1");
        assert_eq!(heads[1].1.values, vec![1.0, 0.0, 0.0, 1.0]);
        let mean = view_maps(&run, 0, HeadChoice::Mean, ViewKind::Heatmap);
        assert_eq!(mean.len(), 1);
        assert_eq!(mean[0].1.values, vec![0.5; 4]);
        assert_eq!(
            view_maps(&run, 0, HeadChoice::Head(0), ViewKind::Flow)[0]
                .1
                .values,
            vec![0.0, 1.0, 1.0, 0.0]
        );
        assert!(view_maps(&run, 3, HeadChoice::Mean, ViewKind::Heatmap).is_empty());
    }
}
