//! Writing a new datastore version into a staging folder and publishing it atomically.

use std::path::{Path, PathBuf};

use shared::DatastoreName;
use shared::metadata::{DatastoreMetadata, VariableMetadata};

use super::{DatastoreError, published_versions};

/// A version being written. Dropped without `publish`, it removes itself: a failed build leaves
/// the published datastore untouched and no debris behind.
#[derive(Debug)]
pub struct Staging {
    datastore_dir: PathBuf,
    dir: PathBuf,
    published: bool,
}

impl Staging {
    pub fn new(root: &Path, name: &DatastoreName) -> Result<Staging, DatastoreError> {
        let datastore_dir = root.join(name.as_str());
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default();
        let dir = datastore_dir.join(format!(".staging-{}-{nanos}", std::process::id()));
        for sub in ["variables", "data"] {
            std::fs::create_dir_all(dir.join(sub)).map_err(DatastoreError::io(&dir))?;
        }
        Ok(Staging { datastore_dir, dir, published: false })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn write_variable_metadata(&self, meta: &VariableMetadata) -> Result<(), DatastoreError> {
        let path = self.dir.join("variables").join(format!("{}.json", meta.name));
        write_json(&path, meta)
    }

    /// Publishes as the next version (or as `exact`, replacing it when `replace` is set) and
    /// returns the version number.
    pub fn publish(
        mut self,
        mut metadata: DatastoreMetadata,
        exact: Option<u32>,
        replace: bool,
    ) -> Result<u32, DatastoreError> {
        let io = |p: &Path| DatastoreError::io(p.to_owned());
        loop {
            let existing = published_versions(&self.datastore_dir)?;
            let version = exact.unwrap_or_else(|| existing.last().copied().unwrap_or(0) + 1);
            let target = self.datastore_dir.join(version.to_string());
            metadata.version = version;
            write_json(&self.dir.join("datastore.json"), &metadata)?;
            if existing.contains(&version) {
                if !replace {
                    return Err(DatastoreError::VersionExists {
                        name: metadata.name.to_string(),
                        version,
                        root: self.datastore_dir.parent().unwrap_or(Path::new(".")).to_owned(),
                    });
                }
                // Move the old version aside first so the new one appears in one rename.
                let trash = self.dir.with_extension("replaced");
                std::fs::rename(&target, &trash).map_err(io(&target))?;
                std::fs::rename(&self.dir, &target).map_err(io(&target))?;
                self.published = true;
                std::fs::remove_dir_all(&trash).map_err(io(&trash))?;
                return Ok(version);
            }
            // `rename` onto a non-empty folder fails, so a concurrent publisher of the same
            // number makes us retry with the next one rather than overwrite it.
            match std::fs::rename(&self.dir, &target) {
                Ok(()) => {
                    self.published = true;
                    return Ok(version);
                }
                Err(_) if exact.is_none() && target.exists() => continue,
                Err(e) => return Err(io(&target)(e)),
            }
        }
    }
}

impl Drop for Staging {
    fn drop(&mut self) {
        if !self.published {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

fn write_json<T: serde::Serialize>(path: &Path, value: &T) -> Result<(), DatastoreError> {
    let text = serde_json::to_string_pretty(value).expect("metadata always serialises");
    std::fs::write(path, text).map_err(DatastoreError::io(path))
}
