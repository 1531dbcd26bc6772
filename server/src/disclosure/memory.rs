//! What the gate remembers of one user's released outputs (rule 11's populations and the
//! refusal budget), kept per user across workspaces, projects, sessions, batch jobs and
//! restarts. Without it a new cookie, another project, a batch job or a restart would give a
//! fresh memory, and two outputs that one workspace refuses to difference could be had from
//! two.
//!
//! Each owner's memory is loaded from the application database at its first use in a process
//! and shared by every workspace and job of the owner; what a run adds is written back after
//! the run (new sketches appended, the refusal count replaced).

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};

use base64::Engine as _;
use rusqlite::params;

use super::differencing::PopulationSketch;
use crate::identity::SqliteStore;
use crate::identity::store::StoreResult;

/// Populations remembered per owner; each is about 1.6 KB.
pub const REMEMBERED_POPULATIONS: usize = 10_000;
/// Owners' memories kept in this process; beyond it, those no workspace holds are dropped
/// (they are in the database).
const KEPT_OWNERS: usize = 2_000;

#[derive(Debug, Default)]
pub struct DisclosureMemory {
    /// The populations of released outputs, newest last.
    pub populations: VecDeque<PopulationSketch>,
    /// Refusals of rules 4 and 11 so far (the refusal budget).
    pub oracle_refusals: u32,
    /// Populations added since the last save (the newest this many of `populations`).
    unsaved: usize,
    saved_refusals: u32,
}

impl DisclosureMemory {
    pub fn remember(&mut self, population: PopulationSketch) {
        if self.populations.len() >= REMEMBERED_POPULATIONS {
            self.populations.pop_front();
        }
        self.populations.push_back(population);
        self.unsaved = (self.unsaved + 1).min(self.populations.len());
    }
}

pub type SharedMemory = Arc<Mutex<DisclosureMemory>>;

/// Rule 11 passed for one output's populations: the proof that every data-bearing method of
/// the [`Releaser`](super::Releaser) asks for, made only by [`clear`]. When it ends (the
/// command has released what it cleared, or has failed on the way), the populations it holds
/// are remembered. So a command can neither release without rule 11 nor forget to remember
/// what it released: check → release → remember is this one path.
#[must_use = "an output cleared by rule 11 is released with this clearance"]
pub struct Cleared {
    memory: SharedMemory,
    remember: Vec<PopulationSketch>,
}

impl Drop for Cleared {
    fn drop(&mut self) {
        let mut memory = self.memory.lock().unwrap_or_else(|p| p.into_inner());
        for population in self.remember.drain(..) {
            memory.remember(population);
        }
    }
}

impl std::fmt::Debug for Cleared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cleared").field("remember", &self.remember.len()).finish()
    }
}

#[cfg(test)]
impl Cleared {
    /// A clearance over a memory of its own, for the releaser's unit tests.
    pub(crate) fn for_test() -> Cleared {
        Cleared { memory: SharedMemory::default(), remember: Vec::new() }
    }
}

/// What rule 11 compares for one output.
#[derive(Debug, Default)]
pub struct Rule11Check<'p> {
    /// Each against the remembered populations and against those before it in this output:
    /// two rows of a summary over nearly the same units difference as two outputs do.
    pub together: Vec<&'p PopulationSketch>,
    /// Each against the remembered populations only (a histogram's bars, which partition
    /// the output's population and so are far from it and from one another by design).
    pub apart: Vec<&'p PopulationSketch>,
    /// Remembered once the output is released (usually what was checked; not bars too small
    /// to be shown).
    pub remember: Vec<PopulationSketch>,
}

/// Rule 11 for one output against `memory`: the clearance to release it with, and by how
/// many units the last population that came near an earlier one differs from it (released,
/// but flagged for review). A population 1 to `min_change - 1` units from one remembered is
/// refused.
pub fn clear(
    gate: &super::Gate,
    memory: &SharedMemory,
    check: Rule11Check<'_>,
) -> Result<(Cleared, Option<usize>), super::Refusal> {
    let mut near = None;
    {
        let held = memory.lock().unwrap_or_else(|p| p.into_inner());
        for (i, population) in check.together.iter().enumerate() {
            let earlier = held.populations.iter().chain(check.together[..i].iter().copied());
            near = gate.check_differencing(earlier, population)?.or(near);
        }
        for population in &check.apart {
            near = gate.check_differencing(held.populations.iter(), population)?.or(near);
        }
    }
    Ok((Cleared { memory: memory.clone(), remember: check.remember }, near))
}

/// The disclosure memory in the application database.
pub trait MemoryStore: Send + Sync {
    /// The newest `limit` populations of `owner`, oldest first, and their refusal count.
    fn load_memory(&self, owner: &str, limit: usize) -> StoreResult<(Vec<Vec<u8>>, u32)>;
    /// Appends populations and sets the refusal count, in one transaction.
    fn save_memory(&self, owner: &str, added: &[Vec<u8>], refusals: u32) -> StoreResult<()>;
}

/// Every owner's memory in this process.
pub struct Memories {
    store: Arc<dyn crate::identity::AppStore>,
    kept: Mutex<HashMap<String, SharedMemory>>,
}

impl std::fmt::Debug for Memories {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Memories")
    }
}

impl Memories {
    pub fn new(store: Arc<dyn crate::identity::AppStore>) -> Memories {
        Memories { store, kept: Mutex::default() }
    }

    /// The memory of `owner` (`user:ID`, or `guest:ADDRESS`), loaded at its first use. Blocks
    /// on the database.
    pub fn of(&self, owner: &str) -> StoreResult<SharedMemory> {
        let mut kept = self.kept.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(memory) = kept.get(owner) {
            return Ok(memory.clone());
        }
        let (sketches, refusals) = self.store.load_memory(owner, REMEMBERED_POPULATIONS)?;
        let populations: VecDeque<PopulationSketch> =
            sketches.iter().filter_map(|b| PopulationSketch::from_bytes(b)).collect();
        let memory = Arc::new(Mutex::new(DisclosureMemory {
            populations,
            oracle_refusals: refusals,
            unsaved: 0,
            saved_refusals: refusals,
        }));
        if kept.len() >= KEPT_OWNERS {
            kept.retain(|_, m| Arc::strong_count(m) > 1);
        }
        kept.insert(owner.to_owned(), memory.clone());
        Ok(memory)
    }

    /// Writes what runs added to `owner`'s memory since the last save. On failure the additions
    /// stay unsaved in memory, to go with the next save.
    pub fn save(&self, owner: &str) -> StoreResult<()> {
        let Some(memory) = self.kept.lock().unwrap_or_else(|p| p.into_inner()).get(owner).cloned()
        else {
            return Ok(());
        };
        let (added, refusals) = {
            let memory = memory.lock().unwrap_or_else(|p| p.into_inner());
            if memory.unsaved == 0 && memory.oracle_refusals == memory.saved_refusals {
                return Ok(());
            }
            let from = memory.populations.len() - memory.unsaved;
            let added: Vec<Vec<u8>> =
                memory.populations.iter().skip(from).map(PopulationSketch::to_bytes).collect();
            (added, memory.oracle_refusals)
        };
        self.store.save_memory(owner, &added, refusals)?;
        let mut memory = memory.lock().unwrap_or_else(|p| p.into_inner());
        // Runs may have added more meanwhile; those stay unsaved.
        memory.unsaved = memory.unsaved.saturating_sub(added.len());
        memory.saved_refusals = refusals;
        Ok(())
    }
}

impl MemoryStore for SqliteStore {
    fn load_memory(&self, owner: &str, limit: usize) -> StoreResult<(Vec<Vec<u8>>, u32)> {
        self.with(|c| {
            let mut sketches: Vec<Vec<u8>> = c
                .prepare(
                    "SELECT sketch FROM disclosure_populations WHERE owner=?1 \
                     ORDER BY id DESC LIMIT ?2",
                )?
                .query_map(params![owner, limit as i64], |r| r.get::<_, String>(0))?
                .filter_map(|text| {
                    text.map(|t| base64::engine::general_purpose::STANDARD.decode(t).ok())
                        .transpose()
                })
                .collect::<rusqlite::Result<_>>()?;
            sketches.reverse();
            let refusals: Option<u32> = rusqlite::OptionalExtension::optional(c.query_row(
                "SELECT refusals FROM disclosure_refusals WHERE owner=?1",
                [owner],
                |r| r.get(0),
            ))?;
            Ok((sketches, refusals.unwrap_or(0)))
        })
    }

    fn save_memory(&self, owner: &str, added: &[Vec<u8>], refusals: u32) -> StoreResult<()> {
        self.with(|c| {
            let tx = c.unchecked_transaction()?;
            for sketch in added {
                tx.execute(
                    "INSERT INTO disclosure_populations (owner, sketch) VALUES (?1, ?2)",
                    params![owner, base64::engine::general_purpose::STANDARD.encode(sketch)],
                )?;
            }
            tx.execute(
                "INSERT INTO disclosure_refusals (owner, refusals) VALUES (?1, ?2) \
                 ON CONFLICT (owner) DO UPDATE SET refusals=excluded.refusals",
                params![owner, refusals],
            )?;
            // Only the newest are ever read.
            tx.execute(
                "DELETE FROM disclosure_populations WHERE owner=?1 AND id <= \
                 (SELECT id FROM disclosure_populations WHERE owner=?1 ORDER BY id DESC \
                  LIMIT 1 OFFSET ?2)",
                params![owner, REMEMBERED_POPULATIONS as i64],
            )?;
            tx.commit()
        })
    }
}
