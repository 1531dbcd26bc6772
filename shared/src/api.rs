//! Request and response shapes of the HTTP API, shared by the server and the app.

use serde::{Deserialize, Serialize};

use crate::metadata::{DataType, Localized, Temporality, UnitType, VariableMetadata};

/// `GET /api/health`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Health {
    pub status: String,
    pub version: String,
    pub datastores: usize,
}

/// One entry of `GET /api/catalog/datastores`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DatastoreSummary {
    pub name: String,
    pub label: Localized,
    pub description: Localized,
    /// Every published version, oldest first.
    pub versions: Vec<u32>,
    pub latest: u32,
    /// Variables in the latest version.
    pub variable_count: usize,
    pub unit_types: Vec<UnitType>,
}

/// One search hit of `GET /api/catalog/variables`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct VariableHit {
    pub datastore: String,
    pub name: String,
    pub label: Localized,
    pub unit_type: UnitType,
    pub temporality: Temporality,
    pub data_type: DataType,
    pub subject_fields: Vec<String>,
}

/// A page of `GET /api/catalog/variables?q=&unit_type=&temporality=&subject=&page=`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct VariablePage {
    pub query: String,
    /// Hits over all pages.
    pub total: usize,
    /// 1-based.
    pub page: usize,
    pub page_size: usize,
    pub hits: Vec<VariableHit>,
    /// Subject fields present in the catalog, for the filter menu.
    pub subjects: Vec<String>,
}

/// `GET /api/catalog/variables/{NAME}`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct VariableDetail {
    pub datastore: String,
    pub version: u32,
    pub metadata: VariableMetadata,
    /// A `require` and an `import` line ready to paste into a script.
    pub import_lines: String,
}

/// Every error response has this body.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ApiError {
    pub error: String,
    /// Close matches, for "did you mean" on unknown names.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub did_you_mean: Vec<String>,
}

/// `POST /api/run`: a script (or the selected part of one) to run in the caller's workspace.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunRequest {
    pub script: String,
}

/// `GET /api/catalog/datastores/{name}/rules`: the disclosure rules of a datastore's newest
/// version, in plain words and as settings.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RulesPage {
    pub datastore: String,
    pub version: u32,
    /// (rule number, the rule in plain words).
    pub rules: Vec<(u32, String)>,
    /// The thresholds as the server enforces them.
    pub settings: serde_json::Value,
}
