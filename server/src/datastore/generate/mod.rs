//! `skjold datastore generate`: a synthetic register population, deterministic for a seed.
//!
//! The population is built from *family groups* (a couple or a single adult, with children),
//! so parents link to children and families and households exist as units. Each person then lives
//! through 2000–2024 year by year: residence, moves, marriage and divorce, education, jobs at
//! companies, unemployment, sickness and work-assessment spells, income, wealth, death and
//! emigration. The dependence is the one researchers expect to find: wages rise with education
//! and experience and differ by sex; mortality rises with age; children's education follows
//! their parents'.
//!
//! Work is split into chunks of persons seeded by (seed, chunk index), so the output does not
//! depend on the number of threads. Each chunk hands one Parquet part per variable its rows
//! ordered by unit id (the writer lays dated variables out by date within each row group), then
//! drops everything: memory is bounded by the chunk size.

mod codes;
mod model;
pub mod variables;

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use shared::metadata::{DatastoreMetadata, Localized};
use shared::{DatastoreName, Date};

use super::writer::{Cell, CoverageTracker, VariableWriter};
use super::{DatastoreError, Staging};
use variables::{VARIABLES, Var};

/// The period every synthetic variable covers.
pub const FIRST_YEAR: i32 = 2000;
pub const LAST_YEAR: i32 = 2024;

#[derive(Debug, Clone)]
pub struct GenerateOptions {
    pub persons: u64,
    pub seed: u64,
    /// The datastore root the `demo` datastore is published under.
    pub out: PathBuf,
    /// Replace an existing `demo` version 1.
    pub force: bool,
    /// Worker threads; the output is the same for any number.
    pub threads: usize,
}

#[derive(Debug, Clone)]
pub struct GenerateReport {
    pub persons: u64,
    pub rows: u64,
    pub variables: usize,
    pub version: u32,
    pub path: PathBuf,
    pub chunks: usize,
}

/// Persons per chunk: small enough to bound memory, large enough to keep files few.
fn chunk_size(persons: u64) -> u64 {
    persons.div_ceil(16).clamp(2_000, 250_000)
}

/// Generates the `demo` datastore, calling `progress(done, total)` as chunks finish.
pub fn generate(
    options: &GenerateOptions,
    progress: &(dyn Fn(usize, usize) + Sync),
) -> Result<GenerateReport, DatastoreError> {
    let name = DatastoreName::parse("demo").expect("valid name");
    let existing = super::published_versions(&options.out.join(name.as_str()))?;
    if existing.contains(&1) && !options.force {
        return Err(DatastoreError::VersionExists {
            name: name.to_string(),
            version: 1,
            root: options.out.clone(),
        });
    }
    let staging = Staging::new(&options.out, &name)?;
    let size = chunk_size(options.persons);
    let chunks = options.persons.div_ceil(size) as usize;
    let companies = model::Companies::generate(options.seed, options.persons);

    let mut totals = Totals::new();
    totals.add(write_fixed_units(staging.dir(), &companies, options.seed)?);

    let next = AtomicUsize::new(0);
    let done = AtomicUsize::new(0);
    let results: Mutex<Vec<Result<ChunkTotals, DatastoreError>>> = Mutex::new(Vec::new());
    std::thread::scope(|scope| {
        for _ in 0..options.threads.max(1) {
            scope.spawn(|| {
                loop {
                    let chunk = next.fetch_add(1, Ordering::Relaxed);
                    if chunk >= chunks {
                        break;
                    }
                    let first = chunk as u64 * size;
                    let target = size.min(options.persons - first);
                    let result =
                        write_chunk(staging.dir(), options.seed, chunk, target, &companies);
                    let failed = result.is_err();
                    results.lock().expect("no worker panics holding the lock").push(result);
                    progress(done.fetch_add(1, Ordering::Relaxed) + 1, chunks);
                    if failed {
                        // Stop handing out work; the error is reported below.
                        next.store(chunks, Ordering::Relaxed);
                    }
                }
            });
        }
    });
    for result in results.into_inner().expect("workers have finished") {
        totals.add(result?);
    }

    let period =
        (Date::from_ymd(FIRST_YEAR, 1, 1).unwrap(), Date::from_ymd(LAST_YEAR, 12, 31).unwrap());
    for (index, def) in VARIABLES.iter().enumerate() {
        let mut meta = def.metadata();
        meta.coverage = Some(totals.coverage[index].coverage(period));
        // Every variable has a data folder, even one no synthetic unit happened to fill.
        let dir = staging.dir().join("data").join(def.name);
        std::fs::create_dir_all(&dir).map_err(DatastoreError::io(&dir))?;
        staging.write_variable_metadata(&meta)?;
    }
    let metadata = DatastoreMetadata {
        name: name.clone(),
        label: Localized::new("Syntetiske registerdata", "Synthetic register data"),
        description: Localized::new(
            format!(
                "En syntetisk befolkning på {} personer, 2000–2024, generert med frø {}. Ingen ekte personer.",
                totals.persons, options.seed
            ),
            format!(
                "A synthetic population of {} persons, 2000–2024, generated with seed {}. No real persons.",
                totals.persons, options.seed
            ),
        ),
        version: 1,
    };
    // Synthetic data has nothing to protect, so its record-key secret follows from the seed:
    // the same (persons, seed) then give the same released outputs, which makes teaching
    // material and the script tests reproducible. Real registers get a random secret.
    let secret = {
        use sha2::Digest;
        let digest =
            sha2::Sha256::digest(format!("skjold demo record keys, seed {}", options.seed));
        digest[..16].to_vec()
    };
    let secret_path = staging.dir().join(super::SECRET_FILE);
    std::fs::write(&secret_path, secret)
        .and_then(|()| crate::owner_only(&secret_path))
        .map_err(DatastoreError::io(secret_path))?;
    let version = staging.publish(metadata, Some(1), options.force)?;
    Ok(GenerateReport {
        persons: totals.persons,
        rows: totals.rows,
        variables: VARIABLES.len(),
        version,
        path: options.out.join(name.as_str()).join(version.to_string()),
        chunks,
    })
}

/// Row counts and coverage, summed over chunks.
struct Totals {
    persons: u64,
    rows: u64,
    coverage: Vec<CoverageTracker>,
}

impl Totals {
    fn new() -> Totals {
        Totals {
            persons: 0,
            rows: 0,
            coverage: VARIABLES.iter().map(|d| CoverageTracker::new(d.temporality)).collect(),
        }
    }

    fn add(&mut self, chunk: ChunkTotals) {
        self.persons += chunk.persons;
        for (index, rows, coverage) in chunk.variables {
            self.rows += rows;
            self.coverage[index].merge(coverage);
        }
    }
}

struct ChunkTotals {
    persons: u64,
    variables: Vec<(usize, u64, CoverageTracker)>,
}

/// One Parquet part per variable, opened when its first row arrives.
pub(crate) struct PartWriters<'a> {
    staging: &'a Path,
    part: usize,
    writers: Vec<Option<VariableWriter>>,
}

impl<'a> PartWriters<'a> {
    fn new(staging: &'a Path, part: usize) -> PartWriters<'a> {
        PartWriters { staging, part, writers: VARIABLES.iter().map(|_| None).collect() }
    }

    pub(crate) fn push(
        &mut self,
        var: Var,
        unit_id: i64,
        value: Cell<'_>,
        start: Option<i32>,
        stop: Option<i32>,
    ) -> Result<(), DatastoreError> {
        let slot = &mut self.writers[var as usize];
        if slot.is_none() {
            let def = var.def();
            let name = shared::VariableName::parse(def.name).expect("valid name");
            *slot = Some(VariableWriter::create(
                self.staging,
                &name,
                def.data_type,
                def.temporality,
                self.part,
            )?);
        }
        slot.as_mut().expect("just created").push(unit_id, value, start, stop)
    }

    fn finish(self, persons: u64) -> Result<ChunkTotals, DatastoreError> {
        let mut variables = Vec::new();
        for (index, writer) in self.writers.into_iter().enumerate() {
            if let Some(writer) = writer {
                let (rows, coverage) = writer.finish()?;
                variables.push((index, rows, coverage));
            }
        }
        Ok(ChunkTotals { persons, variables })
    }
}

fn write_chunk(
    staging: &Path,
    seed: u64,
    chunk: usize,
    persons: u64,
    companies: &model::Companies,
) -> Result<ChunkTotals, DatastoreError> {
    // Part 0 belongs to the company and municipality units; chunks take 1, 2, …
    let mut out = PartWriters::new(staging, chunk + 1);
    let population = model::Chunk::generate(seed, chunk, persons);
    let in_population = population.write(&mut out, companies)?;
    out.finish(in_population)
}

fn write_fixed_units(
    staging: &Path,
    companies: &model::Companies,
    seed: u64,
) -> Result<ChunkTotals, DatastoreError> {
    let mut out = PartWriters::new(staging, 0);
    companies.write(&mut out, seed)?;
    model::write_municipalities(&mut out)?;
    out.finish(0)
}

#[cfg(test)]
mod tests;
