//! The metadata model of a register variable, as stored in a datastore and shown in the catalog.
//!
//! The JSON form of these types *is* the datastore's metadata format (and the input format for
//! `skjold datastore build`), so field names follow the open format microdata.no's services use.

use serde::{Deserialize, Serialize};

use crate::{Date, VariableName};

/// What kind of unit a variable describes; a dataset holds units of one type only.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum UnitType {
    Person,
    Family,
    Household,
    Job,
    Course,
    Company,
    Establishment,
    Municipality,
}

/// How a variable's values relate to time; decides which dates an `import` needs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Temporality {
    /// One value per unit for all time (sex, birth month).
    Fixed,
    /// Values measured on given days (residence on 1 January).
    Status,
    /// Values over a period (annual wage income).
    Accumulated,
    /// Spells with a start and an optional stop (benefit spells, courses).
    Event,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum DataType {
    String,
    Long,
    Double,
    Date,
}

impl UnitType {
    pub const ALL: [UnitType; 8] = [
        UnitType::Person,
        UnitType::Family,
        UnitType::Household,
        UnitType::Job,
        UnitType::Course,
        UnitType::Company,
        UnitType::Establishment,
        UnitType::Municipality,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            UnitType::Person => "PERSON",
            UnitType::Family => "FAMILY",
            UnitType::Household => "HOUSEHOLD",
            UnitType::Job => "JOB",
            UnitType::Course => "COURSE",
            UnitType::Company => "COMPANY",
            UnitType::Establishment => "ESTABLISHMENT",
            UnitType::Municipality => "MUNICIPALITY",
        }
    }

    pub fn parse(text: &str) -> Option<UnitType> {
        UnitType::ALL.into_iter().find(|u| u.as_str().eq_ignore_ascii_case(text))
    }
}

impl Temporality {
    pub const ALL: [Temporality; 4] =
        [Temporality::Fixed, Temporality::Status, Temporality::Accumulated, Temporality::Event];

    pub fn as_str(self) -> &'static str {
        match self {
            Temporality::Fixed => "FIXED",
            Temporality::Status => "STATUS",
            Temporality::Accumulated => "ACCUMULATED",
            Temporality::Event => "EVENT",
        }
    }

    pub fn parse(text: &str) -> Option<Temporality> {
        Temporality::ALL.into_iter().find(|t| t.as_str().eq_ignore_ascii_case(text))
    }
}

impl DataType {
    pub fn as_str(self) -> &'static str {
        match self {
            DataType::String => "STRING",
            DataType::Long => "LONG",
            DataType::Double => "DOUBLE",
            DataType::Date => "DATE",
        }
    }
}

/// Text in Norwegian (bokmål) and English.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Localized {
    pub nb: String,
    pub en: String,
}

impl Localized {
    pub fn new(nb: impl Into<String>, en: impl Into<String>) -> Localized {
        Localized { nb: nb.into(), en: en.into() }
    }
}

/// One code of a code list, valid over a period (municipality codes change with reforms).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Code {
    pub code: String,
    pub label: Localized,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub valid_from: Option<Date>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub valid_until: Option<Date>,
}

/// What values a variable takes: codes from a list, or a measured quantity.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ValueDomain {
    CodeList {
        codes: Vec<Code>,
        /// Sentinel codes that mean "missing" (unknown, not applicable).
        #[serde(default)]
        missing_codes: Vec<Code>,
    },
    Measure {
        /// Unit of measurement, such as NOK or days.
        unit: Localized,
        description: Localized,
    },
}

/// The period a variable has data for, computed from the data when a datastore is built.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Coverage {
    pub start: Date,
    pub latest: Date,
    /// For STATUS variables: the days values were measured on.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub status_dates: Vec<Date>,
}

/// Everything known about one register variable.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VariableMetadata {
    pub name: VariableName,
    pub label: Localized,
    pub description: Localized,
    pub unit_type: UnitType,
    pub temporality: Temporality,
    pub data_type: DataType,
    pub subject_fields: Vec<String>,
    pub population: Localized,
    pub value_domain: ValueDomain,
    /// For pointer variables (`…_FNR`): the unit type whose ids the values are.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub points_to: Option<UnitType>,
    /// Filled in from the data by `datastore build`; input files leave it out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub coverage: Option<Coverage>,
}

/// The description of a datastore as a whole, one per published version.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatastoreMetadata {
    pub name: crate::DatastoreName,
    pub label: Localized,
    pub description: Localized,
    /// Set when the version is published; input files leave it out.
    #[serde(default)]
    pub version: u32,
}

/// The two lines a user pastes into a script to bring this variable into a dataset.
///
/// The date follows the temporality: none for FIXED, the latest status date for STATUS, the end of
/// the latest period for ACCUMULATED, and the whole coverage for EVENT.
pub fn import_lines(datastore: &str, version: u32, meta: &VariableMetadata) -> String {
    let require = format!("require {datastore}:{version} as db");
    let name = &meta.name;
    let latest = meta.coverage.as_ref().map(|c| c.latest.to_string());
    let latest = latest.as_deref().unwrap_or("2024-01-01");
    let import = match meta.temporality {
        Temporality::Fixed => format!("import db/{name}"),
        Temporality::Status | Temporality::Accumulated => format!("import db/{name} {latest}"),
        Temporality::Event => {
            let start = meta.coverage.as_ref().map(|c| c.start.to_string());
            let start = start.as_deref().unwrap_or("2000-01-01");
            format!("import-event db/{name} {start} to {latest}")
        }
    };
    format!("{require}\n{import}")
}
