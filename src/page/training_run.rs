//! The run that is running, as the page describes it: where it stands, which of the form's
//! changes a started run takes (the trainer reuse rules), and the status line with its pace.

use strum::IntoStaticStr;

use super::training::{ModelPreset, RunSettings};
use crate::analysis::training::{StepRecord, throughput};
use crate::format::group_thousands;

/// Steps the pace is measured over.
const PACE_WINDOW: usize = 20;

/// Where a run stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, IntoStaticStr)]
#[strum(serialize_all = "lowercase")]
pub enum Phase {
    /// No trainer yet.
    Idle,
    /// Steps are running.
    Running,
    /// Stopped by the user, by a NaN, or between single steps.
    Paused,
    /// All planned steps done.
    Done,
}

impl Phase {
    /// The phase's name, as `data-phase` carries it.
    pub fn name(self) -> &'static str {
        self.into()
    }

    /// The words on the start button in this phase.
    pub fn start_label(self) -> &'static str {
        match self {
            Self::Idle | Self::Running => "Start",
            Self::Paused => "Resume",
            Self::Done => "Continue",
        }
    }
}

/// Whether a started run can take a new value of a setting.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Rule {
    /// The trainer takes the new value from the next step on.
    Applies,
    /// The value shaped the weights, the data or the optimizer state: only a new run has it.
    Fixed,
    /// Part of the custom architecture: fixed, and compared only when both are custom models.
    Architecture,
}

/// The form's name for each address key, and whether a started run can take a change of it.
fn rule(key: &str) -> (&'static str, Rule) {
    match key {
        "task" => ("task", Rule::Fixed),
        "train_problem" => ("problem preset", Rule::Applies),
        "train_preset" => ("model", Rule::Fixed),
        "train_layers" => ("layers", Rule::Architecture),
        "train_d_model" => ("d_model", Rule::Architecture),
        "train_heads" => ("heads", Rule::Architecture),
        "train_d_ff" => ("feed-forward width", Rule::Architecture),
        "train_norm" => ("LayerNorm position", Rule::Architecture),
        "train_activation" => ("activation", Rule::Architecture),
        "train_causal" => ("causal mask", Rule::Architecture),
        "train_residual" => ("residual connections", Rule::Architecture),
        "train_optimizer" => ("optimizer", Rule::Fixed),
        "train_lr" => ("learning rate", Rule::Applies),
        "train_schedule" => ("schedule", Rule::Applies),
        "train_warmup" => ("warm-up steps", Rule::Applies),
        "train_batch" => ("batch size", Rule::Applies),
        "train_clip" => ("clip norm", Rule::Applies),
        "train_seed" => ("seed", Rule::Fixed),
        "train_steps" => ("steps", Rule::Applies),
        "train_eval_every" => ("evaluation interval", Rule::Applies),
        "train_probe_every" => ("probe interval", Rule::Applies),
        "train_analyse_every" => ("analysis interval", Rule::Applies),
        _ => ("setting", Rule::Fixed),
    }
}

/// One setting whose value in the form differs from the run's.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Change {
    /// The form's name for it.
    pub label: &'static str,
    /// The run's value.
    pub from: String,
    /// The form's value.
    pub to: String,
}

impl Change {
    /// `steps 600 → 800`.
    fn words(&self) -> String {
        format!("{} {} → {}", self.label, self.from, self.to)
    }
}

/// What the trainer reuse rules decided about the form's changes to a started run.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Reuse {
    /// Changes the run takes from the next step on.
    pub applied: Vec<Change>,
    /// Changes only a new run can have.
    pub refused: Vec<Change>,
    /// Set when the form's step count is not above the steps already done.
    pub steps_done: Option<usize>,
}

/// The trainer reuse rules: which of `form`'s differences from the run's settings (`run`,
/// `run_frozen`) a run that has done `steps_done` steps can take.
///
/// The learning rate, schedule, warm-up, batch size, clip norm and the intervals apply from the
/// next step on, and so does the step count when it stays above `steps_done`. The task, model,
/// seed, optimizer, the dying-ReLU bias and the frozen modules shaped the weights, the data or
/// the optimizer state, so a change to them is refused: only a new run (Reset) can have them.
pub fn reuse(
    run: &RunSettings,
    run_frozen: &[String],
    form: &RunSettings,
    form_frozen: &[String],
    steps_done: usize,
) -> Reuse {
    let both_custom = run.preset == ModelPreset::Custom && form.preset == ModelPreset::Custom;
    let mut decided = Reuse::default();
    for ((key, from), (_, to)) in run.texts().into_iter().zip(form.texts()) {
        if from == to {
            continue;
        }
        let (label, rule) = rule(key);
        let change = Change { label, from, to };
        let fixed = match rule {
            Rule::Applies if key == "train_problem" => {
                // A preset's other settings are compared on their own; only the bias it
                // starts the weights with is fixed.
                run.problem.ff_bias_init() != form.problem.ff_bias_init()
            }
            Rule::Applies if key == "train_steps" && form.steps <= steps_done => {
                decided.steps_done = Some(steps_done);
                true
            }
            Rule::Applies => false,
            Rule::Fixed => true,
            Rule::Architecture if both_custom => true,
            Rule::Architecture => continue,
        };
        if fixed {
            decided.refused.push(change);
        } else {
            decided.applied.push(change);
        }
    }
    if run_frozen != form_frozen {
        let list = |frozen: &[String]| {
            if frozen.is_empty() {
                "none".to_string()
            } else {
                frozen.join(", ")
            }
        };
        decided.refused.push(Change {
            label: "frozen modules",
            from: list(run_frozen),
            to: list(form_frozen),
        });
    }
    decided
}

/// `a`, `a and b`, `a, b and c`.
fn listed(items: &[String]) -> String {
    match items {
        [] => String::new(),
        [one] => one.clone(),
        [rest @ .., last] => format!("{} and {last}", rest.join(", ")),
    }
}

impl Reuse {
    /// Whether the form says what the run does.
    pub fn is_empty(&self) -> bool {
        self.applied.is_empty() && self.refused.is_empty()
    }

    /// Whether the run may go on with the form as it is.
    pub fn can_continue(&self) -> bool {
        self.refused.is_empty()
    }

    /// Why the run does not go on, in words; `None` when it may.
    pub fn refusal(&self) -> Option<String> {
        if self.refused.is_empty() {
            return None;
        }
        let mut text = String::from("Not resumed: ");
        let fixed: Vec<String> = self
            .refused
            .iter()
            .filter(|change| change.label != "steps")
            .map(Change::words)
            .collect();
        if !fixed.is_empty() {
            text.push_str(&format!(
                "a run that has started cannot change its {}. Set {} back, or press Reset to start \
                 a new run with {}.",
                listed(&fixed),
                if fixed.len() == 1 { "it" } else { "them" },
                if fixed.len() == 1 { "it" } else { "them" },
            ));
        }
        if let Some(done) = self.steps_done {
            if !fixed.is_empty() {
                text.push(' ');
            }
            text.push_str(&format!(
                "{} run has already done {} steps: choose more steps to continue it.",
                if fixed.is_empty() { "the" } else { "The" },
                group_thousands(done)
            ));
        }
        Some(text)
    }

    /// What the run took from the form when it went on; `None` when nothing changed.
    pub fn applied_words(&self) -> Option<String> {
        if self.applied.is_empty() {
            return None;
        }
        let changes: Vec<String> = self.applied.iter().map(Change::words).collect();
        Some(format!(
            "Applied to this run from the next step on: {}.",
            listed(&changes)
        ))
    }

    /// The form's pending changes to a paused run, in words; `None` when there are none.
    pub fn pending_words(&self) -> Option<String> {
        if self.is_empty() {
            return None;
        }
        let mut parts = Vec::new();
        if !self.applied.is_empty() {
            let changes: Vec<String> = self.applied.iter().map(Change::words).collect();
            parts.push(format!("{} (applied when you resume)", listed(&changes)));
        }
        if !self.refused.is_empty() {
            let changes: Vec<String> = self.refused.iter().map(Change::words).collect();
            parts.push(format!(
                "{} (not in this run: press Reset to start a new run with {})",
                listed(&changes),
                if changes.len() == 1 { "it" } else { "them" }
            ));
        }
        Some(format!(
            "Changed since the run started: {}.",
            parts.join("; ")
        ))
    }
}

/// Why a run with nothing left to do does not go on.
pub fn finished_words(steps: usize) -> String {
    format!(
        "The run has done all its {} steps: raise Steps to continue it, or press Reset to start a \
         new run.",
        group_thousands(steps)
    )
}

/// How far the run is, in `[0, 1]`.
pub fn progress(steps_done: usize, total_steps: usize) -> f64 {
    (steps_done as f64 / total_steps.max(1) as f64).min(1.0)
}

/// The status line: `running · step 40 of 600`, with the pace and time left when known.
pub fn status_words(
    phase: Phase,
    pausing: bool,
    steps_done: usize,
    total_steps: usize,
    steps: &[StepRecord],
) -> String {
    let mut text = format!(
        "{} · step {} of {}",
        if pausing {
            "pausing after this step"
        } else {
            phase.name()
        },
        group_thousands(steps_done),
        group_thousands(total_steps)
    );
    if let Some(pace) = pace_words(steps, total_steps) {
        text.push_str(" · ");
        text.push_str(&pace);
    }
    text
}

/// `12.5 steps/s · about 40 s left`, from the last steps' pace and the run's own step count.
pub fn pace_words(steps: &[StepRecord], total_steps: usize) -> Option<String> {
    let remaining = total_steps.saturating_sub(steps.last().map_or(0, |step| step.step));
    throughput(steps, PACE_WINDOW, remaining)
        .map(|(per_s, eta_s)| format!("{per_s:.1} steps/s · about {} left", seconds_words(eta_s)))
}

/// `40 s` below a minute and a half, else `2.5 min`.
pub fn seconds_words(seconds: f64) -> String {
    if seconds < 90.0 {
        format!("{seconds:.0} s")
    } else {
        format!("{:.1} min", seconds / 60.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::structure::Activation;
    use crate::train::{OptimizerChoice, Problem, ScheduleChoice};

    fn paused_run() -> RunSettings {
        RunSettings::default()
    }

    #[test]
    fn steps_batch_schedule_and_rate_apply_to_a_paused_run() {
        let run = paused_run();
        let form = RunSettings {
            steps: 800,
            batch_size: 32,
            schedule: ScheduleChoice::Constant,
            learning_rate: 5e-4,
            eval_every: 10,
            ..run.clone()
        };
        let decided = reuse(&run, &[], &form, &[], 300);
        assert!(decided.can_continue(), "{decided:?}");
        let labels: Vec<&str> = decided.applied.iter().map(|c| c.label).collect();
        assert_eq!(
            labels,
            [
                "learning rate",
                "schedule",
                "batch size",
                "steps",
                "evaluation interval"
            ]
        );
        assert_eq!(
            decided.applied_words().unwrap(),
            "Applied to this run from the next step on: learning rate 0.001 → 0.0005, schedule \
             cosine → constant, batch size 64 → 32, steps 600 → 800 and evaluation interval 50 → 10."
        );
        assert_eq!(reuse(&run, &[], &run, &[], 300), Reuse::default());
    }

    #[test]
    fn what_shaped_the_weights_or_the_optimizer_is_refused_in_words() {
        let run = paused_run();
        let form = RunSettings {
            optimizer: OptimizerChoice::Sgd,
            seed: 3,
            steps: 900,
            ..run.clone()
        };
        let frozen = vec!["embedding".to_string()];
        let decided = reuse(&run, &[], &form, &frozen, 10);
        assert!(!decided.can_continue());
        let refused: Vec<&str> = decided.refused.iter().map(|c| c.label).collect();
        assert_eq!(refused, ["optimizer", "seed", "frozen modules"]);
        assert_eq!(decided.applied.len(), 1, "the step count still applies");
        assert_eq!(
            decided.refusal().unwrap(),
            "Not resumed: a run that has started cannot change its optimizer adamw → sgd, seed \
             0 → 3 and frozen modules none → embedding. Set them back, or press Reset to start a \
             new run with them."
        );
        let pending = decided.pending_words().unwrap();
        assert!(
            pending.contains("steps 600 → 900 (applied when you resume)"),
            "{pending}"
        );
        assert!(
            pending.contains("(not in this run: press Reset"),
            "{pending}"
        );
    }

    #[test]
    fn steps_at_or_below_those_done_are_refused() {
        let run = paused_run();
        let form = RunSettings {
            steps: 200,
            ..run.clone()
        };
        let decided = reuse(&run, &[], &form, &[], 250);
        assert!(!decided.can_continue());
        assert_eq!(
            decided.refusal().unwrap(),
            "Not resumed: the run has already done 250 steps: choose more steps to continue it."
        );
        assert!(reuse(&run, &[], &form, &[], 150).can_continue());
    }

    #[test]
    fn the_architecture_counts_only_between_custom_models() {
        let run = paused_run();
        // Hidden custom fields of a preset model change nothing.
        let hidden = RunSettings {
            layers: 5,
            activation: Activation::Gelu,
            ..run.clone()
        };
        assert!(reuse(&run, &[], &hidden, &[], 1).is_empty());
        let custom = RunSettings {
            preset: ModelPreset::Custom,
            ..run.clone()
        };
        let wider = RunSettings {
            d_model: 128,
            causal: true,
            ..custom.clone()
        };
        let decided = reuse(&custom, &[], &wider, &[], 1);
        let refused: Vec<&str> = decided.refused.iter().map(|c| c.label).collect();
        assert_eq!(refused, ["d_model", "causal mask"]);
        // The dying-ReLU preset starts the weights differently; exploding only changes settings
        // that are judged on their own.
        let dying = RunSettings {
            problem: Problem::DyingRelu,
            ..run.clone()
        };
        assert_eq!(
            reuse(&run, &[], &dying, &[], 1).refused[0].label,
            "problem preset"
        );
        let exploding = RunSettings {
            problem: Problem::Exploding,
            ..run.clone()
        };
        assert!(reuse(&run, &[], &exploding, &[], 1).can_continue());
    }

    #[test]
    fn the_status_line_counts_the_run_s_steps() {
        let records: Vec<StepRecord> = (1..=30)
            .map(|step| StepRecord {
                step,
                loss: 1.0,
                grad_norm: 1.0,
                learning_rate: 1e-3,
                update_ratio: None,
                elapsed_ms: step as f64 * 100.0,
            })
            .collect();
        assert_eq!(
            status_words(Phase::Running, false, 30, 1230, &records),
            "running · step 30 of 1,230 · 10.0 steps/s · about 2.0 min left"
        );
        assert_eq!(
            status_words(Phase::Paused, true, 0, 600, &[]),
            "pausing after this step · step 0 of 600"
        );
        assert_eq!(progress(30, 60), 0.5);
        assert_eq!(progress(9, 0), 1.0);
        assert_eq!(seconds_words(42.4), "42 s");
        assert_eq!(Phase::Paused.start_label(), "Resume");
        assert_eq!(Phase::Done.name(), "done");
        assert!(finished_words(1000).contains("all its 1,000 steps"));
    }
}
