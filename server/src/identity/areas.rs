//! Where users keep their work on the server: a personal area per user, limited to
//! `personal_area_bytes` (250 MB), and a shared area per project for its members' scripts and
//! released results, limited to `project_area_bytes`. Files are text (scripts, Markdown, the
//! JSON of released outputs) kept in the application database, so they are backed up, deleted
//! and moved with it. Only what already left through the disclosure gate can be saved: the app
//! saves what the server sent it.

use super::store::{Saved, StoredFile};
use super::{AuthError, Identity, SignedIn};

/// Kinds of file an area holds, by extension.
const EXTENSIONS: &[&str] = &["mds", "txt", "md", "json", "csv", "svg"];

/// Which area: the caller's own, or a project's they are a member of.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AreaName {
    Personal,
    Project(String),
}

/// An area the caller may use: its key in the store and its limit.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Area {
    key: String,
    pub limit: u64,
}

/// Checks a file name: 1–100 characters of letters, digits, space, '.', '-', '_', not starting
/// with '.', with one of the known extensions. No folders.
pub fn check_file_name(name: &str) -> Result<(), AuthError> {
    let bad = |why: &str| AuthError::Invalid(format!("file name '{name}': {why}"));
    if name.is_empty() || name.chars().count() > 100 {
        return Err(bad("use 1–100 characters"));
    }
    if name.starts_with('.') || name.starts_with(' ') || name.ends_with(' ') {
        return Err(bad("start and end with a letter or digit"));
    }
    if let Some(c) =
        name.chars().find(|c| !(c.is_alphanumeric() || matches!(c, ' ' | '.' | '-' | '_')))
    {
        return Err(bad(&format!(
            "'{c}' is not allowed; use letters, digits, space, '.', '-' and '_' (no folders)"
        )));
    }
    let extension = name.rsplit_once('.').map(|(_, e)| e.to_ascii_lowercase());
    if !extension.as_deref().is_some_and(|e| EXTENSIONS.contains(&e)) {
        return Err(bad(&format!("end it in one of .{}", EXTENSIONS.join(", ."))));
    }
    Ok(())
}

fn megabytes(bytes: u64) -> String {
    format!("{:.1} MB", bytes as f64 / 1_000_000.0)
}

impl Identity {
    /// The area `name` for `caller`, if they may use it.
    pub fn area(&self, caller: &SignedIn, name: &AreaName) -> Result<Area, AuthError> {
        match name {
            AreaName::Personal => Ok(Area {
                key: format!("user:{}", caller.user.id),
                limit: self.settings.personal_area_bytes,
            }),
            AreaName::Project(project) => {
                let mine = self.store.projects_of(caller.user.id)?;
                let found = mine.into_iter().find(|p| &p.name == project).ok_or_else(|| {
                    AuthError::NotFound(format!(
                        "you are not a member of a project named '{project}'"
                    ))
                })?;
                Ok(Area {
                    key: format!("project:{}", found.id),
                    limit: self.settings.project_area_bytes,
                })
            }
        }
    }

    pub fn list_files(&self, area: &Area) -> Result<Vec<StoredFile>, AuthError> {
        Ok(self.store.files(&area.key)?)
    }

    pub fn read_file(&self, area: &Area, name: &str) -> Result<String, AuthError> {
        check_file_name(name)?;
        self.store
            .read_file(&area.key, name)?
            .ok_or_else(|| AuthError::NotFound(format!("there is no file named '{name}' here")))
    }

    /// Saves `content` as `name`, replacing a file of that name; refused beyond the limit.
    pub fn save_file(
        &self,
        caller: &SignedIn,
        area: &Area,
        name: &str,
        content: &str,
    ) -> Result<StoredFile, AuthError> {
        check_file_name(name)?;
        let file = StoredFile {
            name: name.to_owned(),
            bytes: content.len() as u64,
            updated_at: self.now(),
            updated_by: caller.user.name.clone(),
        };
        match self.store.write_file(&area.key, &file, content, area.limit)? {
            Saved::Saved => Ok(file),
            Saved::OverLimit { used } => Err(AuthError::Invalid(format!(
                "'{name}' ({}) does not fit: this area holds {} of its {}; delete files you no longer need",
                megabytes(file.bytes),
                megabytes(used),
                megabytes(area.limit)
            ))),
        }
    }

    pub fn delete_file(&self, area: &Area, name: &str) -> Result<(), AuthError> {
        check_file_name(name)?;
        if self.store.delete_file(&area.key, name)? {
            Ok(())
        } else {
            Err(AuthError::NotFound(format!("there is no file named '{name}' here")))
        }
    }

    /// Removes a deleted user's personal area.
    pub(super) fn delete_personal_area(&self, user: i64) -> Result<(), AuthError> {
        Ok(self.store.delete_area(&format!("user:{user}"))?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_names_are_plain_names_with_a_known_extension() {
        for good in ["analyse.mds", "Lønn 2021.json", "a_b-c.txt"] {
            assert!(check_file_name(good).is_ok(), "{good}");
        }
        let message = |name: &str| check_file_name(name).unwrap_err().to_string();
        assert!(message("a/x.mds").contains("'/' is not allowed"), "{}", message("a/x.mds"));
        assert!(message("../x.mds").contains("start and end"));
        assert!(message(".hidden.mds").contains("start and end"));
        assert!(message("script").contains("end it in one of .mds"));
        assert!(message("x.exe").contains("end it in one of"));
        assert!(message("").contains("1–100"));
        assert!(message(&"a".repeat(101)).contains("1–100"));
    }
}
