//! The analysis engine: runs scripts of the language over a user's workspace.
//!
//! A run has two phases. *Expansion* (sync, no data) checks the parsed script, evaluates `let`,
//! unrolls `for` loops and substitutes `$bindings`, giving a flat list of commands with their
//! script lines; a script that does not parse runs nothing. *Execution* runs the commands in
//! order on the workspace's datasets, with DataFusion scanning Parquet and evaluating
//! expressions. Every command's outcome goes through the disclosure [`Releaser`]: the engine's
//! own results are raw aggregates (`disclosure::raw`) that only the gate can turn into output.
//! The first failing command stops the run, since later lines depend on it.

mod check;
mod commands;
pub mod dataset;
mod deadline;
pub(crate) mod expand;
pub mod expr;
mod partition;

// The command modules the dispatch names.
use commands::{import, models, prepare};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use datafusion::arrow::array::Array;
use datafusion::prelude::{SessionConfig, SessionContext};
use futures::FutureExt;
use shared::script::{
    Command, OptionValue, Span, Token, TokenKind, TypedOption, Verb, line_column,
};

use crate::datastore::{DatastoreVersion, Registry};
use crate::disclosure::ckm::RecordKeySecret;
use crate::disclosure::differencing::PopulationSketch;
use crate::disclosure::memory::{Cleared, DisclosureMemory, Rule11Check, SharedMemory};
use crate::disclosure::{AuditLog, Gate, Origin, Refusal, Released, Releaser, Rules};
use dataset::Dataset;

/// A command that could not run. `span` is in the text of the command as run.
#[derive(Clone, Debug, PartialEq)]
pub struct EngineError {
    pub message: String,
    pub span: Option<Span>,
    pub refusal: Option<Refusal>,
}

impl EngineError {
    pub fn new(message: impl Into<String>) -> EngineError {
        EngineError { message: message.into(), span: None, refusal: None }
    }

    pub fn at(span: Span, message: impl Into<String>) -> EngineError {
        EngineError { message: message.into(), span: Some(span), refusal: None }
    }

    /// A fault of ours, not of the script: logged in full, shown to the user in general terms.
    pub fn internal(detail: impl Into<String>) -> EngineError {
        let detail = detail.into();
        tracing::error!(%detail, "internal engine error");
        EngineError::new(
            "the server could not run this command; the error is logged for the operators",
        )
    }

    pub fn with_span(mut self, span: Span) -> EngineError {
        self.span.get_or_insert(span);
        self
    }
}

/// An invariant the engine relies on (a variable checked to exist, a cast's known type), as
/// an internal error instead of a panic if it is ever broken: no script may crash the server.
pub(crate) trait Invariant<T> {
    fn invariant(self, what: &str) -> Result<T, EngineError>;
}

impl<T> Invariant<T> for Option<T> {
    fn invariant(self, what: &str) -> Result<T, EngineError> {
        self.ok_or_else(|| EngineError::internal(format!("broken invariant: {what}")))
    }
}

impl From<Refusal> for EngineError {
    fn from(refusal: Refusal) -> EngineError {
        EngineError { message: refusal.message.clone(), span: None, refusal: Some(refusal) }
    }
}

/// Bounds on one run, so a runaway script stops with a message naming the limit.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct Limits {
    /// Commands after loops are unrolled.
    pub max_commands: usize,
    /// Wall time of one run.
    pub max_seconds: u64,
    /// Rows in any dataset.
    pub max_rows: usize,
    /// Memory DataFusion may use for one scan or aggregation.
    pub max_memory_mb: usize,
    /// The datasets one guest workspace may hold between runs.
    pub guest_workspace_mb: usize,
    /// All guests' workspaces together; the least recently used go first beyond it.
    pub guest_workspaces_total_mb: usize,
    /// All signed-in users' workspaces together, likewise.
    pub workspaces_total_mb: usize,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            max_commands: 10_000,
            max_seconds: 600,
            max_rows: 50_000_000,
            max_memory_mb: 4096,
            guest_workspace_mb: 128,
            guest_workspaces_total_mb: 1024,
            workspaces_total_mb: 8192,
        }
    }
}

/// The engine: datastores, their gates and a DataFusion context. Shared by every run.
pub struct Engine {
    registry: Arc<Registry>,
    gates: BTreeMap<dataset::Origin, Arc<Gate>>,
    /// Protects outputs that carry no data (help, errors) when no datastore is in play.
    no_data_gate: Gate,
    ctx: SessionContext,
    pub limits: Limits,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine").field("datastores", &self.gates.keys()).finish()
    }
}

impl Engine {
    pub fn new(
        registry: Arc<Registry>,
        limits: Limits,
    ) -> Result<Engine, crate::datastore::DatastoreError> {
        let mut gates = BTreeMap::new();
        for (name, versions) in &registry.datastores {
            for version in versions {
                let rules = rules_of(version)?;
                let origin = dataset::Origin {
                    datastore: name.as_str().to_owned(),
                    version: version.metadata.version,
                };
                gates.insert(
                    origin,
                    Arc::new(Gate::new(rules, RecordKeySecret::new(version.record_key_secret))),
                );
            }
        }
        let runtime = datafusion::execution::runtime_env::RuntimeEnvBuilder::new()
            .with_memory_limit(limits.max_memory_mb * 1024 * 1024, 1.0)
            .build_arc()
            .map_err(|e| crate::datastore::DatastoreError::Io {
                path: registry.root.clone(),
                source: std::io::Error::other(e.to_string()),
            })?;
        let mut config = SessionConfig::new()
            .with_target_partitions(std::thread::available_parallelism().map_or(2, |n| n.get()));
        // Code lists arrive as plain Utf8, the type a workspace keeps: read as views, every
        // import of codes would be cast, a copy of the column.
        config.options_mut().execution.parquet.schema_force_view_types = false;
        let ctx = SessionContext::new_with_config_rt(config, runtime);
        Ok(Engine {
            registry,
            gates,
            no_data_gate: Gate::new(Rules::default(), RecordKeySecret::new(rand::random())),
            ctx,
            limits,
        })
    }

    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// The published rules of a datastore version.
    pub fn rules(&self, datastore: &str, version: u32) -> Option<&Rules> {
        let origin = dataset::Origin { datastore: datastore.to_owned(), version };
        self.gates.get(&origin).map(|g| g.rules())
    }

    fn gate(&self, origin: Option<&dataset::Origin>) -> &Gate {
        origin.and_then(|o| self.gates.get(o)).map_or(&self.no_data_gate, |g| g.as_ref())
    }

    /// Runs a script on a workspace. Never panics on any script: every problem is an output.
    pub async fn run(
        &self,
        workspace: &mut Workspace,
        script: &str,
        audit: &dyn AuditLog,
        user: &str,
    ) -> Vec<Released> {
        self.run_timed(workspace, script, audit, user).await.0
    }

    /// [`Engine::run`], also telling how long the run took and how much of it the gate.
    pub async fn run_timed(
        &self,
        workspace: &mut Workspace,
        script: &str,
        audit: &dyn AuditLog,
        user: &str,
    ) -> (Vec<Released>, RunTimings) {
        self.run_with_progress(workspace, script, audit, user, &|_| {}).await
    }

    /// [`Engine::run_timed`], telling `progress` as each command starts, for long scripts.
    pub async fn run_with_progress(
        &self,
        workspace: &mut Workspace,
        script: &str,
        audit: &dyn AuditLog,
        user: &str,
        progress: &(dyn Fn(Progress) + Sync),
    ) -> (Vec<Released>, RunTimings) {
        let control = RunControl { progress, cancelled: Arc::default() };
        self.run_controlled(workspace, script, audit, user, &control).await
    }

    /// A run that its job can stop: once `control.cancelled` is set, the command running
    /// stops at its next await or iteration, and nothing after it runs.
    pub async fn run_controlled(
        &self,
        workspace: &mut Workspace,
        script: &str,
        audit: &dyn AuditLog,
        user: &str,
        control: &RunControl<'_>,
    ) -> (Vec<Released>, RunTimings) {
        let started = Instant::now();
        let releaser = Releaser::new(audit, user, script);
        let outputs = self.run_steps(workspace, script, &releaser, control).await;
        (outputs, RunTimings { total: started.elapsed(), gate: releaser.gate_time() })
    }

    async fn run_steps(
        &self,
        workspace: &mut Workspace,
        script: &str,
        releaser: &Releaser<'_>,
        control: &RunControl<'_>,
    ) -> Vec<Released> {
        let progress = control.progress;
        let cancelled = || control.cancelled.load(std::sync::atomic::Ordering::Relaxed);
        // A script that does not parse, or names what will not exist, runs nothing: every
        // problem is reported at once, and no one waits on imports to learn of a typo.
        // The first problems are the ones to fix first; a script of thousands of broken lines
        // must not answer (and audit) thousands of outputs.
        let as_errors = |problems: Vec<expand::Problem>| -> Vec<Released> {
            let more = problems.len().saturating_sub(MAX_PROBLEMS_SHOWN);
            let last_line = problems.get(MAX_PROBLEMS_SHOWN).map(|p| p.line);
            let mut outputs: Vec<Released> = problems
                .into_iter()
                .take(MAX_PROBLEMS_SHOWN)
                .map(|p| {
                    let origin = Origin { line: p.line, command: &p.command };
                    releaser.error(origin, p.message, Some(p.column))
                })
                .collect();
            if let Some(line) = last_line {
                let origin = Origin { line, command: "" };
                let message = format!("… and {more} more problems: fix these first");
                outputs.push(releaser.error(origin, message, None));
            }
            outputs
        };
        let steps = match expand::expand(script, self.limits.max_commands) {
            Ok(steps) => steps,
            Err(problems) => return as_errors(problems),
        };
        let problems = check::check(self, workspace, &steps);
        if !problems.is_empty() {
            return as_errors(problems);
        }
        let deadline = Instant::now() + Duration::from_secs(self.limits.max_seconds);
        let mut outputs = Vec::new();
        for (index, step) in steps.iter().enumerate() {
            progress(Progress {
                step: index + 1,
                of: steps.len(),
                line: step.line,
                command: step.command.name.clone(),
            });
            if cancelled() {
                let origin = Origin { line: step.line, command: &step.command.name };
                outputs.push(releaser.error(origin, CANCELLED.into(), None));
                break;
            }
            if Instant::now() > deadline {
                let origin = Origin { line: step.line, command: &step.command.name };
                outputs.push(releaser.error(
                    origin,
                    format!("the run stopped at the time limit of {} s (max_seconds): split the script or ask for a batch job", self.limits.max_seconds),
                    None,
                ));
                break;
            }
            let gate = self.gate(workspace.current().and_then(|d| d.origin.as_ref()));
            let refusals = workspace.memory().oracle_refusals;
            if let Err(refusal) = gate.check_refusal_budget(refusals) {
                let origin = Origin { line: step.line, command: &step.command.name };
                releaser.flag_for_review(format!(
                    "{refusals} refusals of rules 4 and 11 by this user (refusal budget met)"
                ));
                outputs.push(releaser.refusal(origin, refusal));
                break;
            }
            let before = outputs.len();
            let remaining = deadline.saturating_duration_since(Instant::now());
            let mut run = Step {
                engine: self,
                workspace: &mut *workspace,
                releaser,
                step,
                outputs: &mut outputs,
            };
            // A panic in a library is our bug, not the script's: it becomes an error output and
            // the workspace stays as the command found it (commands change it only at the end).
            let guarded = std::panic::AssertUnwindSafe(run.execute()).catch_unwind();
            let command_started = Instant::now();
            let within = deadline::within(deadline, control.cancelled.clone(), guarded);
            let timed = tokio::select! {
                timed = tokio::time::timeout(remaining, within) => timed,
                () = deadline::cancellation(&control.cancelled) => {
                    Ok(Ok(Err(EngineError::new(CANCELLED))))
                }
            };
            tracing::debug!(
                line = step.line,
                command = %step.command.name,
                seconds = command_started.elapsed().as_secs_f64(),
                "command ran"
            );
            let out_of_time = || {
                EngineError::new(format!(
                    "the command stopped at the time limit of {} s (max_seconds): narrow it, or ask for a batch job",
                    self.limits.max_seconds
                ))
            };
            let result = match timed {
                Ok(Ok(Err(_))) if cancelled() => Err(EngineError::new(CANCELLED)),
                // An estimator that stopped early at the deadline fails for want of time,
                // whatever it says about itself.
                Ok(Ok(Err(_))) if Instant::now() > deadline => Err(out_of_time()),
                Ok(Ok(result)) => result,
                Ok(Err(panic)) => {
                    let detail = panic
                        .downcast_ref::<&str>()
                        .map(|s| s.to_string())
                        .or_else(|| panic.downcast_ref::<String>().cloned())
                        .unwrap_or_default();
                    Err(EngineError::internal(format!("panic in {}: {detail}", step.command.name)))
                }
                Err(_) => Err(out_of_time()),
            };
            if step.verb() != Verb::Textblock {
                workspace.history.push(step.text.clone());
            }
            let result = result.and_then(|()| workspace.within_budget());
            if let Err(error) = result {
                let origin = Origin { line: step.line, command: &step.command.name };
                let released = match error.refusal {
                    Some(refusal) => {
                        if ORACLE_RULES.contains(&refusal.rule) {
                            workspace.memory().oracle_refusals += 1;
                        }
                        releaser.refusal(origin, refusal)
                    }
                    None => {
                        let column = error.span.map(|s| {
                            line_column(&step.text, s.start).1 as u32 + step.column_offset
                        });
                        releaser.error(origin, error.message, column)
                    }
                };
                outputs.truncate(before);
                outputs.push(released);
                break;
            }
        }
        outputs
    }
}

fn rules_of(version: &DatastoreVersion) -> Result<Rules, crate::datastore::DatastoreError> {
    let path = version.path.join("disclosure.json");
    if path.exists() { crate::datastore::read_json(&path) } else { Ok(Rules::default()) }
}

/// The rules whose refusals answer a yes/no question on exact data: rule 4 (does this
/// comparison set apart 1..9 units?) and rule 11 (does this population differ from an earlier
/// one by 1..9 units?). A binary search over thresholds turns such answers into a value, so
/// they count against the datastore's `max_refusals`.
const ORACLE_RULES: [u32; 2] = [4, 11];

/// The error output of a job stopped by its owner.
pub const CANCELLED: &str = "the job was cancelled by its owner";

/// What a caller can see and do while a run goes on.
pub struct RunControl<'a> {
    /// Told as each command starts.
    pub progress: &'a (dyn Fn(Progress) + Sync),
    /// Set to stop the run.
    pub cancelled: Arc<std::sync::atomic::AtomicBool>,
}

/// Problems shown for a script that cannot run; the rest are counted.
const MAX_PROBLEMS_SHOWN: usize = 50;

/// A command about to run: the `step`th of `of` after loops are unrolled.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct Progress {
    pub step: usize,
    pub of: usize,
    pub line: u32,
    pub command: String,
}

/// Where a run's time went.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct RunTimings {
    pub total: Duration,
    /// Record keys and the release rules.
    pub gate: Duration,
}

/// One user's datasets and bindings. Lives on the server between runs.
#[derive(Debug, Default)]
pub struct Workspace {
    datasets: BTreeMap<String, Dataset>,
    current: Option<String>,
    /// `require` aliases → datastore version.
    aliases: BTreeMap<String, dataset::Origin>,
    history: Vec<String>,
    /// What this workspace may import (its project's grants); `None` allows everything (the
    /// CLI's batch path on a local datastore).
    grants: Option<crate::identity::Grants>,
    /// Value labels made with define-labels.
    labels: BTreeMap<String, prepare::LabelSet>,
    /// The populations of released outputs (rule 11) and the refusals of rules 4 and 11 met
    /// so far (past the datastore's `max_refusals`, nothing more runs): the owner's, shared
    /// with their other workspaces and jobs, and never dropped with the datasets.
    memory: SharedMemory,
    /// The most bytes of datasets this workspace may hold (guests'); `None`: no bound of its own.
    byte_budget: Option<usize>,
}

impl Workspace {
    /// A workspace that may bind only the named datastores.
    pub fn restricted_to(datastores: &[&str]) -> Workspace {
        let grants = datastores.iter().map(|d| ((*d).to_owned(), None)).collect();
        Workspace::with_grants(crate::identity::Grants(grants))
    }

    /// Replaces the grants (a steward may have changed them since the last run).
    pub fn set_grants(&mut self, grants: crate::identity::Grants) {
        self.grants = Some(grants);
    }

    /// A workspace that may import only what `grants` allow (a project's).
    pub fn with_grants(grants: crate::identity::Grants) -> Workspace {
        Workspace { grants: Some(grants), ..Workspace::default() }
    }

    /// Shares `memory` (its owner's) from now on; what this workspace remembered so far is
    /// added to it.
    pub fn set_memory(&mut self, memory: SharedMemory) {
        if Arc::ptr_eq(&self.memory, &memory) {
            return;
        }
        let mine = std::mem::take(&mut *self.memory());
        {
            let mut shared = memory.lock().unwrap_or_else(|p| p.into_inner());
            for population in mine.populations {
                shared.remember(population);
            }
            shared.oracle_refusals += mine.oracle_refusals;
        }
        self.memory = memory;
    }

    /// What the gate remembers for this workspace's owner. Held briefly, never across an
    /// await.
    pub fn memory(&self) -> std::sync::MutexGuard<'_, DisclosureMemory> {
        self.memory.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The datastore versions this workspace has bound with `require`, as `name@version`.
    pub fn bound_datastores(&self) -> Vec<String> {
        let bound: std::collections::BTreeSet<String> =
            self.aliases.values().map(|o| format!("{}@{}", o.datastore, o.version)).collect();
        bound.into_iter().collect()
    }

    pub fn current(&self) -> Option<&Dataset> {
        self.current.as_ref().and_then(|n| self.datasets.get(n))
    }

    pub fn dataset(&self, name: &str) -> Option<&Dataset> {
        self.datasets.get(name)
    }

    /// Bounds the datasets this workspace may hold; a run that goes over clears them.
    pub fn set_byte_budget(&mut self, bytes: usize) {
        self.byte_budget = Some(bytes);
    }

    /// What the workspace holds in memory, roughly: its datasets, the rule-11 memory and the
    /// history. What budgets and eviction count.
    pub fn approximate_bytes(&self) -> usize {
        self.arrow_bytes()
            + self.memory().populations.len() * std::mem::size_of::<PopulationSketch>()
            + self.history.iter().map(|h| h.len() + std::mem::size_of::<String>()).sum::<usize>()
    }

    /// Memory held by the datasets' Arrow arrays.
    pub fn arrow_bytes(&self) -> usize {
        self.datasets
            .values()
            .map(|d| {
                d.ids.get_array_memory_size()
                    + d.variables.iter().map(|v| v.values.get_array_memory_size()).sum::<usize>()
            })
            .sum()
    }

    /// After a command: over its budget, the workspace drops its datasets (never its rule-11
    /// memory, which would otherwise be a way to forget what was released) and says why.
    fn within_budget(&mut self) -> Result<(), EngineError> {
        let Some(budget) = self.byte_budget else { return Ok(()) };
        let held = self.arrow_bytes();
        if held <= budget {
            return Ok(());
        }
        self.datasets.clear();
        self.current = None;
        let mib = |b: usize| b.div_ceil(1024 * 1024);
        Err(EngineError::new(format!(
            "the datasets came to {} MiB, over this workspace's limit of {} MiB (guest_workspace_mb), so they were cleared: import fewer variables or a smaller population, or sign in",
            mib(held),
            mib(budget)
        )))
    }

    pub fn dataset_names(&self) -> impl Iterator<Item = &str> {
        self.datasets.keys().map(String::as_str)
    }
}

/// One command being executed.
struct Step<'a> {
    engine: &'a Engine,
    workspace: &'a mut Workspace,
    releaser: &'a Releaser<'a>,
    step: &'a expand::Expanded,
    outputs: &'a mut Vec<Released>,
}

impl<'a> Step<'a> {
    fn origin(&self) -> Origin<'a> {
        Origin { line: self.step.line, command: &self.step.command.name }
    }

    fn command(&self) -> &'a Command {
        &self.step.command
    }

    fn source(&self) -> &'a str {
        &self.step.text
    }

    /// The gate of the current dataset's datastore version. It lives as long as the engine,
    /// not this step, so a step can hold it while it records what the gate released.
    fn gate(&self) -> &'a Gate {
        self.engine.gate(self.workspace.current().and_then(|d| d.origin.as_ref()))
    }

    /// The gate for an output over variables of which up to `copies` units share a value.
    fn gate_for(&self, copies: u64) -> std::borrow::Cow<'a, Gate> {
        self.gate().for_copies(copies)
    }

    /// Rule 11 for an output (see [`memory::clear`]): its clearance, without which the
    /// releaser releases no data, and which remembers the populations when it ends. An output
    /// close to an earlier one (but not refused) is flagged for review in the audit log. The
    /// time counts as disclosure work.
    fn clear(&self, check: Rule11Check<'_>) -> Result<Cleared, EngineError> {
        let started = Instant::now();
        let result = crate::disclosure::memory::clear(self.gate(), &self.workspace.memory, check);
        self.releaser.account(started.elapsed());
        let (cleared, near) = result?;
        if let Some(units) = near {
            self.releaser.flag_for_review(format!(
                "population differs from an earlier output's by {units} units (rule 11 detector)"
            ));
        }
        Ok(cleared)
    }

    /// Rule 11 for an output over one population.
    fn clear_one(&self, population: &PopulationSketch) -> Result<Cleared, EngineError> {
        self.clear_all(&[population])
    }

    /// Rule 11 for an output made of several populations (a summary's rows, a model and its
    /// instruments), each also against those before it; all are remembered.
    fn clear_all(&self, populations: &[&PopulationSketch]) -> Result<Cleared, EngineError> {
        let remember = populations.iter().map(|&p| p.clone()).collect();
        self.clear(Rule11Check { together: populations.to_vec(), apart: Vec::new(), remember })
    }

    /// Record keys of the dataset's units; the time counts as disclosure work.
    fn record_keys(&self, gate: &Gate, dataset: &Dataset) -> Vec<u64> {
        let started = Instant::now();
        // A group's key is the sum of its members' keys: the same people, the same noise.
        let keys = match &dataset.members {
            None => gate.record_keys(&dataset.ids),
            Some(_) => (0..dataset.len())
                .map(|i| {
                    dataset
                        .units_of_row(i)
                        .iter()
                        .fold(0u64, |key, &m| key.wrapping_add(gate.record_key(m)))
                })
                .collect(),
        };
        self.releaser.account(started.elapsed());
        keys
    }

    fn notice(&mut self, message: impl Into<String>) {
        let released = self.releaser.notice(self.origin(), message.into());
        self.outputs.push(released);
    }

    fn current_name(&self) -> Result<String, EngineError> {
        self.workspace.current.clone().ok_or_else(|| {
            EngineError::new(
                "there is no current dataset: create one with create-dataset, or pick one with use",
            )
        })
    }

    fn current(&self) -> Result<(&str, &Dataset), EngineError> {
        let name = self.workspace.current.as_deref().ok_or_else(|| {
            EngineError::new(
                "there is no current dataset: create one with create-dataset, or pick one with use",
            )
        })?;
        Ok((name, self.workspace.datasets.get(name).invariant("the current dataset exists")?))
    }

    fn current_mut(&mut self) -> Result<&mut Dataset, EngineError> {
        let name = self.current_name()?;
        self.workspace.datasets.get_mut(&name).invariant("the current dataset exists")
    }

    /// The current dataset, which must hold data.
    fn populated(&self) -> Result<(&str, &Dataset), EngineError> {
        let (name, dataset) = self.current()?;
        if dataset.unit_type.is_none() {
            return Err(EngineError::new(format!(
                "dataset {name} is empty: import a variable first"
            )));
        }
        Ok((name, dataset))
    }

    /// Option `name` as the catalogue typed it, if the command was given it. Code several
    /// commands share reads the union of their options, so an option absent from this
    /// command's entry is simply not given; a name no entry has is a typo in the engine, which
    /// would never match, and fails a debug assertion in the tests.
    fn option(&self, name: &str) -> Option<&'a TypedOption> {
        debug_assert!(
            shared::script::catalog::commands().iter().any(|c| c.option(name).is_some()),
            "{} reads option {name}, which no catalogue entry has",
            self.step.typed.spec.name
        );
        self.step.typed.option(name)
    }

    fn flag(&self, name: &str) -> bool {
        self.option(name).is_some()
    }

    /// Where option `name` was written, to point an error at; the command's span when the
    /// option is absent (an error about an absent option points at the command).
    fn option_span(&self, name: &str) -> shared::script::Span {
        self.option(name).map_or(self.command().span, |o| o.span)
    }

    /// The text inside an option's parentheses; `None` for a flag or empty parentheses.
    fn option_text(&self, name: &str) -> Option<String> {
        self.option(name).map(|o| o.text.clone()).filter(|text| !text.is_empty())
    }

    /// The variable names of a `Variable` or `Variables` option, with their spans.
    fn option_names(&self, name: &str) -> Option<&'a [(String, Span)]> {
        match &self.option(name)?.value {
            OptionValue::Names(names) => Some(names),
            _ => None,
        }
    }

    /// A `Number` option's value, read when the command was expanded.
    fn option_number(&self, name: &str) -> Result<Option<f64>, EngineError> {
        let Some(option) = self.option(name) else { return Ok(None) };
        match option.value {
            OptionValue::Number(number) => Ok(Some(number)),
            _ => Err(EngineError::at(
                option.span,
                format!("{name}() takes a number, not '{}'", option.text),
            )),
        }
    }

    /// `level()`, the confidence level in percent: 95 when not given.
    fn confidence_level(&self) -> Result<f64, EngineError> {
        let level = self.option_number("level")?.unwrap_or(95.0);
        if !(10.0..100.0).contains(&level) {
            return Err(EngineError::at(
                self.option_span("level"),
                "level() is a percentage between 10 and 99.9",
            ));
        }
        Ok(level)
    }

    /// The one dispatch: every verb of the catalogue to its implementation. The match is
    /// exhaustive, so a new command does not compile until it is given one.
    async fn execute(&mut self) -> Result<(), EngineError> {
        use models::Likelihood::{Logit, NegativeBinomial, Poisson, Probit};
        let verb = self.step.verb();
        match verb {
            Verb::Require => self.require(),
            Verb::Textblock => {
                let released = self.releaser.text(self.origin(), self.step.text.clone());
                self.outputs.push(released);
                Ok(())
            }
            Verb::CreateDataset
            | Verb::Use
            | Verb::DeleteDataset
            | Verb::CloneDataset
            | Verb::RenameDataset
            | Verb::CloneUnits
            | Verb::Clear => self.dataset_command(verb),
            Verb::Import => self.import().await,
            Verb::Generate | Verb::Replace => self.generate_or_replace(verb == Verb::Generate),
            Verb::Rename => self.rename(),
            Verb::Keep | Verb::Drop => self.keep_or_drop(verb == Verb::Keep),
            Verb::Collapse | Verb::Aggregate => self.collapse_or_aggregate(verb == Verb::Collapse),
            Verb::Merge => self.merge(),
            Verb::Recode => self.recode(),
            Verb::Sample => self.sample(),
            Verb::Destring => self.destring(),
            Verb::CloneVariables => self.clone_variables(),
            Verb::DefineLabels => self.define_labels(),
            Verb::AssignLabels => self.assign_labels(),
            Verb::DropLabels => self.drop_labels(),
            Verb::ListLabels => self.list_labels(),
            Verb::HelpFunction => self.help_function(),
            Verb::Summarize => self.summarize(),
            Verb::Tabulate => self.tabulate(),
            Verb::Histogram => self.histogram(),
            Verb::Hexbin => self.hexbin(),
            Verb::Barchart | Verb::Piechart => self.bar_or_pie_chart(verb == Verb::Piechart),
            Verb::Boxplot => self.boxplot(),
            Verb::Correlate => self.correlate(),
            Verb::Ci => self.ci(),
            Verb::Normaltest => self.normaltest(),
            Verb::Anova => self.anova(),
            Verb::Regress => self.regress(),
            Verb::Logit => self.likelihood_model(Logit),
            Verb::Probit => self.likelihood_model(Probit),
            Verb::Poisson => self.likelihood_model(Poisson),
            Verb::NegativeBinomial => self.likelihood_model(NegativeBinomial),
            Verb::RegressPredict => self.predict(None),
            Verb::LogitPredict => self.predict(Some(Logit)),
            Verb::ProbitPredict => self.predict(Some(Probit)),
            Verb::PoissonPredict => self.predict(Some(Poisson)),
            Verb::Ivregress => self.ivregress(),
            Verb::Coefplot => self.coefplot(),
            Verb::Mlogit => self.mlogit(),
            Verb::Cox => self.cox(),
            Verb::Weibull => self.weibull(),
            Verb::Oaxaca => self.oaxaca(),
            Verb::RegressMml => self.regress_mml(),
            Verb::Rdd => self.rdd(),
            Verb::ImportPanel => self.import_panel().await,
            Verb::SummarizePanel => self.summarize_panel(),
            Verb::TabulatePanel => self.tabulate_panel(),
            Verb::TransitionsPanel => self.transitions_panel(),
            Verb::RegressPanel => self.regress_panel(),
            Verb::Hausman => self.hausman(),
            Verb::ReshapeToPanel => self.reshape_to_panel(),
            Verb::ReshapeFromPanel => self.reshape_from_panel(),
            Verb::KaplanMeier => self.kaplan_meier(),
            Verb::Sankey => self.sankey(),
            Verb::ImportEvent => self.import_event().await,
            Verb::Help => self.help(),
            Verb::Variables => self.variables(),
            Verb::History => {
                let text = self.workspace.history.join("\n");
                let released = self.releaser.text(self.origin(), format!("```\n{text}\n```"));
                self.outputs.push(released);
                Ok(())
            }
            // Expansion consumes bindings and loops: they never reach a step.
            Verb::Let | Verb::For => Err(EngineError::internal(format!(
                "{} reached the engine after expansion",
                verb.name()
            ))),
        }
    }

    fn require(&mut self) -> Result<(), EngineError> {
        let tokens = &self.command().args;
        let source = self.source();
        let as_at =
            tokens.iter().position(|t| t.kind == TokenKind::Ident && t.span.text(source) == "as");
        let usage = "write require <datastore>:<version> as <alias>, such as require demo:1 as db";
        let (Some(as_at), Some(first)) = (as_at, tokens.first()) else {
            return Err(EngineError::at(self.command().span, usage));
        };
        if as_at == 0 || as_at + 2 != tokens.len() {
            return Err(EngineError::at(self.command().span, usage));
        }
        let target = &source[first.span.start as usize..tokens[as_at - 1].span.end as usize];
        let alias = tokens[as_at + 1].span.text(source).to_owned();
        let (name, version) = match target.split_once(':') {
            Some((n, v)) => (n.trim(), Some(v.trim())),
            None => (target.trim(), None),
        };
        let registry = self.engine.registry();
        let Some((datastore, versions)) =
            registry.datastores.iter().find(|(n, _)| n.as_str() == name)
        else {
            let names = registry.datastores.keys().map(|n| n.as_str());
            let hint = match shared::script::catalog::nearest(name, names) {
                Some(near) => format!("did you mean {near}?"),
                None => format!(
                    "this server has {}",
                    registry.datastores.keys().map(|n| n.as_str()).collect::<Vec<_>>().join(", ")
                ),
            };
            return Err(EngineError::at(first.span, format!("unknown datastore {name}: {hint}")));
        };
        if let Some(grants) = &self.workspace.grants
            && !grants.allows_datastore(datastore.as_str())
        {
            let granted: Vec<&str> = grants.0.keys().map(String::as_str).collect();
            let granted =
                if granted.is_empty() { "no datastore".to_owned() } else { granted.join(", ") };
            return Err(EngineError::at(
                first.span,
                format!(
                    "this workspace's project is granted {granted}, not {name}: ask your data steward for a grant, or run in a project that has one"
                ),
            ));
        }
        let latest = versions.last().map_or(0, |v| v.metadata.version);
        let version = match version {
            None => latest,
            Some(v) => v.parse::<u32>().map_err(|_| {
                EngineError::at(
                    first.span,
                    format!("the version after ':' must be a number, such as {name}:{latest}"),
                )
            })?,
        };
        if !versions.iter().any(|v| v.metadata.version == version) {
            let list: Vec<String> =
                versions.iter().map(|v| v.metadata.version.to_string()).collect();
            return Err(EngineError::at(
                first.span,
                format!("{name} has no version {version}; its versions are {}", list.join(", ")),
            ));
        }
        let origin = dataset::Origin { datastore: datastore.as_str().to_owned(), version };
        self.workspace.aliases.insert(alias.clone(), origin);
        let newer =
            if version < latest { format!(" (version {latest} is newer)") } else { String::new() };
        self.notice(format!("{name}:{version} is bound as {alias}{newer}"));
        Ok(())
    }

    fn dataset_command(&mut self, verb: Verb) -> Result<(), EngineError> {
        let args: Vec<(String, Span)> = self.names_in_args()?;
        let want = |n: usize| -> Result<(), EngineError> {
            if args.len() != n {
                return Err(EngineError::new(format!("write {}", verb.spec().syntax)));
            }
            Ok(())
        };
        let exists = |ws: &Workspace, (n, span): &(String, Span)| -> Result<(), EngineError> {
            if ws.datasets.contains_key(n) {
                Ok(())
            } else {
                let hint = match shared::script::catalog::nearest(n, ws.dataset_names()) {
                    Some(near) => format!(": did you mean {near}?"),
                    None => ": create it with create-dataset".into(),
                };
                Err(EngineError::at(*span, format!("there is no dataset {n}{hint}")))
            }
        };
        let fresh = |ws: &Workspace, (n, span): &(String, Span)| -> Result<(), EngineError> {
            if ws.datasets.contains_key(n) {
                return Err(EngineError::at(
                    *span,
                    format!(
                        "dataset {n} already exists: choose another name, or delete-dataset {n}"
                    ),
                ));
            }
            if !n.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                return Err(EngineError::at(*span, "dataset names use A–Z, a–z, 0–9 and _"));
            }
            Ok(())
        };
        let ws = &mut *self.workspace;
        let message = match verb {
            Verb::CreateDataset => {
                want(1)?;
                fresh(ws, &args[0])?;
                ws.datasets.insert(args[0].0.clone(), Dataset::default());
                ws.current = Some(args[0].0.clone());
                format!("dataset {} created and in use", args[0].0)
            }
            Verb::Use => {
                want(1)?;
                exists(ws, &args[0])?;
                ws.current = Some(args[0].0.clone());
                format!("dataset {} in use", args[0].0)
            }
            Verb::DeleteDataset => {
                want(1)?;
                exists(ws, &args[0])?;
                ws.datasets.remove(&args[0].0);
                if ws.current.as_deref() == Some(args[0].0.as_str()) {
                    ws.current = None;
                }
                format!("dataset {} deleted", args[0].0)
            }
            Verb::CloneDataset | Verb::RenameDataset | Verb::CloneUnits => {
                want(2)?;
                exists(ws, &args[0])?;
                fresh(ws, &args[1])?;
                let source = ws.datasets[&args[0].0].clone();
                let copy = match verb {
                    Verb::CloneUnits => Dataset { variables: Vec::new(), ..source },
                    _ => source,
                };
                ws.datasets.insert(args[1].0.clone(), copy);
                if verb == Verb::RenameDataset {
                    ws.datasets.remove(&args[0].0);
                    if ws.current.as_deref() == Some(args[0].0.as_str()) {
                        ws.current = Some(args[1].0.clone());
                    }
                }
                format!("{} → {}", args[0].0, args[1].0)
            }
            _ => {
                want(0)?;
                ws.datasets.clear();
                ws.current = None;
                "every dataset deleted".into()
            }
        };
        self.notice(message);
        Ok(())
    }

    /// The command's arguments as plain names (identifiers only).
    fn names_in_args(&self) -> Result<Vec<(String, Span)>, EngineError> {
        self.command()
            .args
            .iter()
            .map(|t: &Token| {
                if t.kind == TokenKind::Ident {
                    Ok((t.span.text(self.source()).to_owned(), t.span))
                } else {
                    Err(EngineError::at(
                        t.span,
                        format!("expected a name here, not '{}'", t.span.text(self.source())),
                    ))
                }
            })
            .collect()
    }

    fn help(&mut self) -> Result<(), EngineError> {
        use shared::script::catalog;
        let args = self.names_in_args()?;
        let text = match args.first() {
            None => {
                let mut text = String::from("## Commands\n");
                let mut family = None;
                for c in catalog::commands() {
                    if family != Some(c.family) {
                        family = Some(c.family);
                        text.push_str(&format!("\n**{}**: ", c.family.label()));
                    } else {
                        text.push_str(", ");
                    }
                    text.push_str(c.name);
                }
                text.push_str("\n\nhelp <command> shows one in full.");
                text
            }
            Some((name, span)) => {
                let spec = catalog::command(name).ok_or_else(|| {
                    let near = catalog::nearest(name, catalog::commands().iter().map(|c| c.name));
                    EngineError::at(
                        *span,
                        match near {
                            Some(n) => format!("unknown command {name}: did you mean {n}?"),
                            None => format!("unknown command {name}: help lists the commands"),
                        },
                    )
                })?;
                let options = if spec.options.is_empty() {
                    String::new()
                } else {
                    format!(
                        "\n\nOptions: {}",
                        spec.options.iter().map(|o| o.name).collect::<Vec<_>>().join(", ")
                    )
                };
                format!(
                    "## {}\n\n`{}`\n\n{}{}\n\nExample:\n```\n{}\n```",
                    spec.name, spec.syntax, spec.help, options, spec.example
                )
            }
        };
        let released = self.releaser.text(self.origin(), text);
        self.outputs.push(released);
        Ok(())
    }

    fn variables(&mut self) -> Result<(), EngineError> {
        let (name, dataset) = self.current()?;
        let mut text = format!("## Dataset {name}\n\n");
        if let Some(unit) = dataset.unit_type {
            text.push_str(&format!("Unit: {}\n\n", unit.as_str()));
        }
        if let Some(panel) = &dataset.panel {
            let dates: Vec<String> =
                panel.dates.iter().map(|&d| shared::Date::from_epoch_days(d).to_string()).collect();
            text.push_str(&format!("Panel: a row per unit and date, at {}\n\n", dates.join(", ")));
        }
        text.push_str("| variable | type | from |\n|---|---|---|\n");
        for v in &dataset.variables {
            let kind = match dataset::Kind::of(v.values.data_type()) {
                dataset::Kind::Text => "code",
                _ if v.info.pointer => "identifier (key only)",
                _ => "number",
            };
            text.push_str(&format!("| {} | {} | {} |\n", v.name, kind, v.info.source));
        }
        let released = self.releaser.text(self.origin(), text);
        self.outputs.push(released);
        Ok(())
    }
}

#[cfg(test)]
mod tests;

#[cfg(test)]
mod reference_tests;
