//! The commands of the language, one file per family, each as methods of `Step` that
//! `Step::execute` dispatches to by verb. A new command goes here: its catalogue entry in
//! `shared::script::catalog`, its arm in `Step::execute` and in `check.rs` (the compiler asks
//! for both), and its implementation in the file of its family, ending in the `Releaser`.
//! Pure numerics (likelihoods, optimisers, quantiles) live in `crate::stats`, apart from the
//! data and the gate.

// What the commands share from the engine, by the names they use (`super::Step`, …).
use super::{EngineError, Invariant, Step, dataset, deadline, expand, expr, partition};

pub(super) mod decompose;
pub(crate) mod describe;
pub(super) mod discontinuity;
pub(super) mod events;
pub(super) mod groups;
pub(super) mod import;
pub(super) mod mixed;
pub(crate) mod models;
pub(crate) mod panel;
pub(super) mod prepare;
pub(super) mod recode;
pub(super) mod reshape;
pub(crate) mod statistics;
pub(crate) mod survival;
pub(super) mod transform;
pub(super) mod weibull;
