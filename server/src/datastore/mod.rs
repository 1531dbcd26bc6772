//! The register datastore: versioned folders of variable metadata (JSON) and data (Parquet).
//!
//! ```text
//! ROOT/<name>/<version>/datastore.json
//! ROOT/<name>/<version>/variables/<VARIABLE>.json
//! ROOT/<name>/<version>/data/<VARIABLE>/part-<n>.parquet   columns unit_id, value,
//!                                                          start_epoch_days, stop_epoch_days
//! ```
//!
//! Invariant: a version folder is complete or absent. Writers fill a hidden staging folder and
//! publish it with one `rename`, so a reader (or a crash) never sees half a version.

pub mod generate;
pub mod input;
mod publish;
mod writer;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use shared::metadata::{DatastoreMetadata, VariableMetadata};
use shared::{DatastoreName, VariableName};

pub use publish::Staging;
pub use writer::{Cell, VariableWriter};

#[derive(Debug, thiserror::Error)]
pub enum DatastoreError {
    #[error("cannot read datastore folder {path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("{path} is not valid metadata: {source}")]
    Metadata { path: PathBuf, source: serde_json::Error },
    #[error("cannot write Parquet file {path}: {source}")]
    Parquet { path: PathBuf, source: parquet::errors::ParquetError },
    #[error(
        "datastore {name} version {version} already exists in {root}; pass --force to replace it or choose another --out"
    )]
    VersionExists { name: String, version: u32, root: PathBuf },
}

impl DatastoreError {
    pub fn io(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> DatastoreError {
        let path = path.into();
        move |source| DatastoreError::Io { path, source }
    }
}

/// One published version of a datastore, with all its variables' metadata in memory.
#[derive(Debug)]
pub struct DatastoreVersion {
    pub metadata: DatastoreMetadata,
    pub path: PathBuf,
    pub variables: BTreeMap<VariableName, VariableMetadata>,
    /// The secret behind this version's record keys (disclosure rule 5). It lives in
    /// `secret.key` beside the data, is never served, and changes only with a new version.
    pub(crate) record_key_secret: [u8; 16],
}

impl DatastoreVersion {
    /// The folder of Parquet parts holding a variable's data.
    pub fn data_dir(&self, variable: &VariableName) -> PathBuf {
        self.path.join("data").join(variable.as_str())
    }
}

/// Every published version of every datastore under one root folder.
#[derive(Debug, Default)]
pub struct Registry {
    pub root: PathBuf,
    /// Datastore name → versions, oldest first.
    pub datastores: BTreeMap<DatastoreName, Vec<DatastoreVersion>>,
}

impl Registry {
    /// Reads the metadata of every published version under `root`. A missing root is an empty
    /// registry: a fresh server starts before any datastore is loaded.
    pub fn open(root: &Path) -> Result<Registry, DatastoreError> {
        let mut registry = Registry { root: root.to_owned(), datastores: BTreeMap::new() };
        if !root.exists() {
            return Ok(registry);
        }
        for entry in read_dir_sorted(root)? {
            let Some(name) = entry.file_name().and_then(|n| n.to_str()).map(str::to_owned) else {
                continue;
            };
            // A file beside the datastores (a README, a script) is not one.
            let Ok(name) = DatastoreName::parse(&name) else { continue };
            if !entry.is_dir() {
                continue;
            }
            let mut versions = Vec::new();
            for version in published_versions(&entry)? {
                versions.push(open_version(&entry.join(version.to_string()))?);
            }
            if !versions.is_empty() {
                registry.datastores.insert(name, versions);
            }
        }
        Ok(registry)
    }

    pub fn latest(&self, name: &DatastoreName) -> Option<&DatastoreVersion> {
        self.datastores.get(name).and_then(|v| v.last())
    }

    /// The newest version of every datastore.
    pub fn latest_versions(&self) -> impl Iterator<Item = &DatastoreVersion> {
        self.datastores.values().filter_map(|v| v.last())
    }
}

/// Version numbers published under a datastore's folder, ascending. Staging folders start with a
/// dot and are never listed.
pub fn published_versions(datastore_dir: &Path) -> Result<Vec<u32>, DatastoreError> {
    if !datastore_dir.exists() {
        return Ok(Vec::new());
    }
    let mut versions: Vec<u32> = read_dir_sorted(datastore_dir)?
        .iter()
        .filter_map(|p| p.file_name()?.to_str()?.parse().ok())
        .filter(|v| *v > 0)
        .collect();
    versions.sort_unstable();
    Ok(versions)
}

fn open_version(path: &Path) -> Result<DatastoreVersion, DatastoreError> {
    let metadata: DatastoreMetadata = read_json(&path.join("datastore.json"))?;
    let mut variables = BTreeMap::new();
    for file in read_dir_sorted(&path.join("variables"))? {
        if file.extension().is_some_and(|e| e == "json") {
            let meta: VariableMetadata = read_json(&file)?;
            variables.insert(meta.name.clone(), meta);
        }
    }
    let record_key_secret = read_or_create_secret(&path.join(SECRET_FILE))?;
    Ok(DatastoreVersion { metadata, path: path.to_owned(), variables, record_key_secret })
}

pub(crate) const SECRET_FILE: &str = "secret.key";

/// Versions published before the secret existed get one at first open; `create_new` makes two
/// servers starting at once agree on the first one written.
fn read_or_create_secret(path: &Path) -> Result<[u8; 16], DatastoreError> {
    if let Ok(bytes) = std::fs::read(path)
        && let Ok(secret) = <[u8; 16]>::try_from(bytes.as_slice())
    {
        return Ok(secret);
    }
    let secret: [u8; 16] = rand::random();
    if crate::create_private(path, &secret).map_err(DatastoreError::io(path))? {
        return Ok(secret);
    }
    let bytes = std::fs::read(path).map_err(DatastoreError::io(path))?;
    <[u8; 16]>::try_from(bytes.as_slice()).map_err(|_| DatastoreError::Io {
        path: path.to_owned(),
        source: std::io::Error::other("the record-key secret must be 16 bytes"),
    })
}

pub(crate) fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> Result<T, DatastoreError> {
    let text = std::fs::read_to_string(path).map_err(DatastoreError::io(path))?;
    serde_json::from_str(&text)
        .map_err(|source| DatastoreError::Metadata { path: path.to_owned(), source })
}

fn read_dir_sorted(dir: &Path) -> Result<Vec<PathBuf>, DatastoreError> {
    let mut paths: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(DatastoreError::io(dir))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .collect();
    paths.sort();
    Ok(paths)
}
