//! Names parsed once at the edge: a register variable name and a datastore name.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize};

/// A register variable's name: upper-case letters, digits and `_`, starting with a letter,
/// such as `INNTEKT_WLONN`. At most 64 characters.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(transparent)]
pub struct VariableName(String);

/// A datastore's name: lower-case letters, digits, `_`, `-` and `.`, starting with a letter,
/// such as `demo` or `no.ssb.fdb`. At most 64 characters.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(transparent)]
pub struct DatastoreName(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    #[error(
        "'{0}' is not a variable name: use capital letters, digits and '_', starting with a letter (e.g. INNTEKT_WLONN)"
    )]
    Variable(String),
    #[error(
        "'{0}' is not a datastore name: use lower-case letters, digits, '_', '-' and '.', starting with a letter (e.g. demo)"
    )]
    Datastore(String),
}

impl VariableName {
    pub fn parse(text: &str) -> Result<VariableName, NameError> {
        let ok = (1..=64).contains(&text.len())
            && text.starts_with(|c: char| c.is_ascii_uppercase())
            && text.chars().all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_');
        if ok {
            Ok(VariableName(text.to_owned()))
        } else {
            Err(NameError::Variable(text.to_owned()))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Pointer variables (`…_FNR`) hold another unit's id and may only serve as keys.
    pub fn is_pointer(&self) -> bool {
        self.0.ends_with("_FNR")
    }
}

impl DatastoreName {
    pub fn parse(text: &str) -> Result<DatastoreName, NameError> {
        let ok = (1..=64).contains(&text.len())
            && text.starts_with(|c: char| c.is_ascii_lowercase())
            && text.chars().all(|c| {
                c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '_' | '-' | '.')
            })
            && !text.contains("..");
        if ok {
            Ok(DatastoreName(text.to_owned()))
        } else {
            Err(NameError::Datastore(text.to_owned()))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

macro_rules! name_impls {
    ($ty:ident) => {
        impl fmt::Display for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl<'de> Deserialize<'de> for $ty {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<$ty, D::Error> {
                let text = String::deserialize(deserializer)?;
                $ty::parse(&text).map_err(serde::de::Error::custom)
            }
        }

        impl std::str::FromStr for $ty {
            type Err = NameError;
            fn from_str(text: &str) -> Result<$ty, NameError> {
                $ty::parse(text)
            }
        }
    };
}

name_impls!(VariableName);
name_impls!(DatastoreName);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn variable_names_follow_the_register_convention() {
        for good in ["INNTEKT_WLONN", "BEFOLKNING_MOR_FNR", "A1"] {
            assert!(VariableName::parse(good).is_ok(), "{good}");
        }
        for bad in ["", "inntekt_wlonn", "_X", "1ABC", "A-B", "A B", &"A".repeat(65)] {
            assert!(VariableName::parse(bad).is_err(), "{bad}");
        }
        assert!(VariableName::parse("BEFOLKNING_MOR_FNR").unwrap().is_pointer());
        assert!(!VariableName::parse("INNTEKT_WLONN").unwrap().is_pointer());
    }

    #[test]
    fn datastore_names_cannot_escape_a_folder() {
        for good in ["demo", "no.ssb.fdb", "course-2026_a"] {
            assert!(DatastoreName::parse(good).is_ok(), "{good}");
        }
        for bad in ["", "Demo", "../etc", "a/b", ".hidden", "a..b", "1demo"] {
            assert!(DatastoreName::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_bad_name_in_json_is_refused_with_the_name_in_the_message() {
        let err = serde_json::from_str::<VariableName>("\"wage\"").unwrap_err();
        assert!(err.to_string().contains("'wage' is not a variable name"), "{err}");
    }
}
