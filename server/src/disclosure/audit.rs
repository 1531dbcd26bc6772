//! The audit log: every released output, with who ran it, which script (by SHA-256), which line,
//! and what each rule decided. Written as the output is made, so an output that was not logged
//! was never released.

use std::fs::File;
use std::io::Write;
use std::path::Path;
use std::sync::Mutex;

use serde::Serialize;
use sha2::{Digest, Sha256};
use shared::output::{Output, OutputBody};

use super::Decision;

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct AuditEntry {
    /// Seconds since 1970-01-01 UTC.
    pub time: u64,
    pub user: String,
    pub script_sha256: String,
    pub line: u32,
    pub command: String,
    pub kind: &'static str,
    pub decisions: Vec<Decision>,
    /// Set when the differencing detector wants a steward to look (rule 11): a refused
    /// differencing output, or a released one whose population is close to an earlier one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub review: Option<String>,
}

impl AuditEntry {
    pub(super) fn new(
        user: &str,
        script_hash: &str,
        output: &Output,
        decisions: &[Decision],
    ) -> Self {
        let time = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let kind = match output.body {
            OutputBody::Table(_) => "table",
            OutputBody::Summary(_) => "summary",
            OutputBody::Model(_) => "model",
            OutputBody::Chart(_) => "chart",
            OutputBody::Text { .. } => "text",
            OutputBody::Notice { .. } => "notice",
            OutputBody::Error { .. } => "error",
        };
        AuditEntry {
            time,
            user: user.to_owned(),
            script_sha256: script_hash.to_owned(),
            line: output.line,
            command: output.command.clone(),
            kind,
            decisions: decisions.to_vec(),
            review: None,
        }
    }
}

pub fn script_hash(script: &str) -> String {
    let digest = Sha256::digest(script.as_bytes());
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

/// Sign-ins, failures, lockouts, enrolments, role and grant changes, deletions: who did what to
/// access, beside the outputs. Never holds a password, code or token.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct SecurityEvent {
    pub time: i64,
    pub event: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub address: Option<String>,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub detail: String,
}

pub trait AuditLog: Send + Sync {
    /// Writes the entry of an output about to be released. An error means it was not
    /// written, and the output must then be withheld: the log fails closed.
    fn record(&self, entry: &AuditEntry) -> std::io::Result<()>;
    fn event(&self, event: &SecurityEvent);
}

/// Appends one JSON object per line to a file.
#[derive(Debug)]
pub struct JsonLinesAudit {
    file: Mutex<File>,
}

impl JsonLinesAudit {
    pub fn open(path: &Path) -> std::io::Result<JsonLinesAudit> {
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent)?;
        }
        let file = std::fs::OpenOptions::new().create(true).append(true).open(path)?;
        if file.metadata()?.is_file() {
            crate::owner_only(path)?;
        }
        Ok(JsonLinesAudit { file: Mutex::new(file) })
    }
}

impl JsonLinesAudit {
    /// Appends one line, whole or not at all: after a failed write (a full disk) the file is
    /// cut back to where it was, so no reader ever meets half an entry.
    fn write<T: Serialize>(&self, entry: &T) -> std::io::Result<()> {
        let mut line = serde_json::to_string(entry).map_err(std::io::Error::other)?;
        line.push('\n');
        let mut file = self.file.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let before = file.metadata().map(|m| m.len()).ok();
        let written = file.write_all(line.as_bytes());
        if let Err(error) = written {
            tracing::error!(%error, "cannot write the audit log");
            if let Some(before) = before.filter(|_| file.metadata().is_ok_and(|m| m.is_file())) {
                let _ = file.set_len(before);
            }
            return Err(error);
        }
        Ok(())
    }
}

impl AuditLog for JsonLinesAudit {
    fn record(&self, entry: &AuditEntry) -> std::io::Result<()> {
        self.write(entry)
    }

    fn event(&self, event: &SecurityEvent) {
        // Losing a security event must be loud; the request it records has happened.
        let _ = self.write(event);
    }
}

/// Keeps entries in memory, for tests and for the CLI's `--audit` summary.
#[derive(Debug, Default)]
pub struct MemoryAudit {
    pub entries: Mutex<Vec<AuditEntry>>,
    pub events: Mutex<Vec<SecurityEvent>>,
}

impl MemoryAudit {
    /// The names of the security events so far, in order.
    pub fn event_names(&self) -> Vec<String> {
        self.events
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .map(|e| e.event.clone())
            .collect()
    }
}

impl AuditLog for MemoryAudit {
    fn record(&self, entry: &AuditEntry) -> std::io::Result<()> {
        self.entries.lock().unwrap_or_else(|p| p.into_inner()).push(entry.clone());
        Ok(())
    }

    fn event(&self, event: &SecurityEvent) {
        self.events.lock().unwrap_or_else(|p| p.into_inner()).push(event.clone());
    }
}
