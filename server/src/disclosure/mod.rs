//! Disclosure control: the only way from a computed aggregate to something a user may see.
//!
//! So far this holds the cell-key method (`ckm`): record keys, cell keys and the perturbation
//! table for counts. The `Released` output type, the rules of
//! ../shared/reference/disclosure.md and the audit trail come with the engine.

pub mod ckm;
