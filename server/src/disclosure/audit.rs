//! The audit log: every released output, with who ran it, which script (by SHA-256), which line,
//! and what each rule decided. Written and flushed to disk as the output is made, so an output
//! that was not logged was never released.
//!
//! The log is a hash chain: each line carries its sequence number, the hash of the line before
//! it and its own hash (SHA-256 of the line up to that field), so [`verify`] finds the first
//! edited, removed, reordered or half-written record. A `.head` file beside the log holds the
//! last sequence number and hash, which tells a log cut short at the end from a whole one.

use std::fs::File;
use std::io::{BufRead, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
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

    /// The newest records, at most `limit`, newest first: what a steward reads in the app.
    fn recent(&self, _limit: usize) -> std::io::Result<Vec<serde_json::Value>> {
        Ok(Vec::new())
    }

    /// The head of the chain ("SEQ HASH"), when the log keeps one.
    fn head(&self) -> std::io::Result<Option<String>> {
        Ok(None)
    }
}

/// The end of the log read for [`AuditLog::recent`]: records are a few hundred bytes, so this
/// holds the newest thousand or more without reading a log of gigabytes.
const TAIL_BYTES: u64 = 1024 * 1024;

/// Appends one JSON object per line to a file, each a link of the hash chain.
#[derive(Debug)]
pub struct JsonLinesAudit {
    file: Mutex<File>,
    head: PathBuf,
}

/// The `prev` of the first record.
const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// The end of every chained line: `,"hash":"` 64 hex digits `"}`.
const HASH_SUFFIX: usize = r#","hash":""#.len() + 64 + r#""}"#.len();

impl JsonLinesAudit {
    pub fn open(path: &Path) -> std::io::Result<JsonLinesAudit> {
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent)?;
        }
        let file = std::fs::OpenOptions::new().create(true).read(true).append(true).open(path)?;
        let regular = file.metadata()?.is_file();
        if regular {
            crate::owner_only(path)?;
        }
        let mut head = path.as_os_str().to_owned();
        head.push(".head");
        Ok(JsonLinesAudit { file: Mutex::new(file), head: PathBuf::from(head) })
    }
}

impl JsonLinesAudit {
    /// Appends one record, whole or not at all, and flushes it to disk before returning:
    /// after a failed write (a full disk) the file is cut back to where it was, so no reader
    /// ever meets half an entry. The file lock keeps the chain whole when another process (an
    /// administrative command beside the server) writes the same log.
    fn write<T: Serialize>(&self, entry: &T) -> std::io::Result<()> {
        let body = serde_json::to_string(entry).map_err(std::io::Error::other)?;
        let mut file = self.file.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let regular = file.metadata().is_ok_and(|m| m.is_file());
        if regular {
            file.lock()?;
        }
        let result = self.append(&mut file, &body, regular);
        if regular {
            let _ = file.unlock();
        }
        if let Err(error) = &result {
            tracing::error!(%error, "cannot write the audit log");
        }
        result
    }

    fn append(&self, file: &mut File, body: &str, regular: bool) -> std::io::Result<()> {
        let (seq, prev) = if regular { last_link(file)? } else { (0, GENESIS.to_owned()) };
        let (mut line, hash) = chained_line(seq + 1, &prev, body);
        if regular && !ends_with_newline(file)? {
            // A line torn by a crash stays as evidence, on a line of its own.
            line.insert(0, '\n');
        }
        let before = file.metadata().map(|m| m.len()).ok();
        let written = file.write_all(line.as_bytes()).and_then(|()| file.sync_data());
        if let Err(error) = written {
            if let Some(before) = before.filter(|_| regular) {
                let _ = file.set_len(before);
            }
            return Err(error);
        }
        if regular {
            // The head is a hint for `verify`, not part of the record: losing it loses no
            // output, so it is written without a flush of its own.
            let _ = std::fs::write(&self.head, format!("{} {hash}\n", seq + 1));
        }
        Ok(())
    }
}

/// The line of record `seq` after a record whose hash is `prev`, and its hash. `body` is one
/// JSON object; the chain's fields go first and the hash last, over the bytes before it.
fn chained_line(seq: u64, prev: &str, body: &str) -> (String, String) {
    let fields = body.strip_prefix('{').and_then(|b| b.strip_suffix('}')).unwrap_or("");
    let separator = if fields.is_empty() { "" } else { "," };
    let unsigned = format!(r#"{{"seq":{seq},"prev":"{prev}"{separator}{fields}"#);
    let hash = hex(&Sha256::digest(format!("{unsigned}}}").as_bytes()));
    (format!("{unsigned},\"hash\":\"{hash}\"}}\n"), hash)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The sequence number and hash of the log's last record, read from its tail; (0, genesis)
/// for an empty log or one whose last line is not a record of the chain (a log from before
/// the chain: `verify` reports it).
fn last_link(file: &mut File) -> std::io::Result<(u64, String)> {
    let len = file.metadata()?.len();
    let mut window = 4096u64;
    loop {
        let start = len.saturating_sub(window);
        file.seek(SeekFrom::Start(start))?;
        let mut tail = Vec::new();
        Read::by_ref(file).take(len - start).read_to_end(&mut tail)?;
        let text = String::from_utf8_lossy(&tail);
        let trimmed = text.strip_suffix('\n').unwrap_or(&text);
        match trimmed.rfind('\n') {
            Some(at) => return Ok(link_of(&trimmed[at + 1..])),
            None if start == 0 => return Ok(link_of(trimmed)),
            None => window *= 4,
        }
    }
}

fn ends_with_newline(file: &mut File) -> std::io::Result<bool> {
    let len = file.metadata()?.len();
    if len == 0 {
        return Ok(true);
    }
    file.seek(SeekFrom::Start(len - 1))?;
    let mut last = [0u8];
    file.read_exact(&mut last)?;
    Ok(last[0] == b'\n')
}

fn link_of(line: &str) -> (u64, String) {
    match parse_link(line) {
        Some(link) if link.hash == link.computed => (link.seq, link.hash),
        _ => (0, GENESIS.to_owned()),
    }
}

/// One line of the log, taken apart.
struct Link {
    seq: u64,
    prev: String,
    hash: String,
    /// The hash of the line's bytes before its hash field.
    computed: String,
}

fn parse_link(line: &str) -> Option<Link> {
    #[derive(serde::Deserialize)]
    struct Fields {
        seq: u64,
        prev: String,
    }
    let cut = line.len().checked_sub(HASH_SUFFIX)?;
    let (unsigned, suffix) = (line.get(..cut)?, line.get(cut..)?);
    let hash = suffix.strip_prefix(r#","hash":""#)?.strip_suffix(r#""}"#)?;
    let signed = format!("{unsigned}}}");
    let fields: Fields = serde_json::from_str(&signed).ok()?;
    Some(Link {
        seq: fields.seq,
        prev: fields.prev,
        hash: hash.to_owned(),
        computed: hex(&Sha256::digest(signed.as_bytes())),
    })
}

/// Where a log stops being the chain it should be.
#[derive(Debug, PartialEq)]
pub struct Broken {
    /// The line (from 1) where the break is seen.
    pub line: u64,
    pub reason: String,
}

impl std::fmt::Display for Broken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "line {}: {}", self.line, self.reason)
    }
}

/// Checks a log line by line, and against its head (last sequence number and hash) when
/// there is one: the number of records when the chain is whole, else the first break.
pub fn verify(log: impl BufRead, head: Option<(u64, String)>) -> Result<u64, Broken> {
    let (mut seq, mut prev) = (0u64, GENESIS.to_owned());
    let mut line_number = 0;
    for line in log.split(b'\n') {
        line_number += 1;
        let broken = |reason: String| Broken { line: line_number, reason };
        let line = line.map_err(|e| broken(format!("cannot be read: {e}")))?;
        let line = String::from_utf8(line)
            .map_err(|_| broken("is not text: the log was overwritten here".into()))?;
        let link = parse_link(&line).ok_or_else(|| {
            broken("is not a record of the chain: it was edited, written half, or comes from before the chain".into())
        })?;
        if link.hash != link.computed {
            return Err(broken(format!(
                "record {} was edited: its content no longer matches its hash",
                link.seq
            )));
        }
        if link.seq > seq + 1 {
            let missing = if link.seq == seq + 2 {
                format!("record {} is", seq + 1)
            } else {
                format!("records {} to {} are", seq + 1, link.seq - 1)
            };
            return Err(broken(format!("{missing} missing before record {}", link.seq)));
        }
        if link.seq <= seq {
            return Err(broken(format!(
                "record {} comes after record {seq}: the records were reordered or repeated",
                link.seq
            )));
        }
        if link.prev != prev {
            return Err(broken(format!(
                "record {} does not follow record {seq}: one of the two was replaced",
                link.seq
            )));
        }
        (seq, prev) = (link.seq, link.hash);
    }
    match head {
        Some((last, _)) if last > seq => Err(Broken {
            line: line_number + 1,
            reason: if last == seq + 1 {
                format!("record {last} is missing at the end (the head says the log ends with it)")
            } else {
                format!(
                    "records {} to {last} are missing at the end (the head says the log ends with {last})",
                    seq + 1
                )
            },
        }),
        Some((last, hash)) if last == seq && hash != prev => Err(Broken {
            line: line_number,
            reason: format!("record {seq} is not the one the head names: it was replaced"),
        }),
        _ => Ok(seq),
    }
}

/// A head as its file holds it, "SEQ HASH": (last sequence number, its hash).
pub fn parse_head(text: &str) -> Option<(u64, String)> {
    let mut parts = text.split_whitespace();
    let seq = parts.next().and_then(|s| s.parse().ok());
    seq.zip(parts.next().map(str::to_owned))
}

/// The head file beside a log, when there is one: (last sequence number, its hash).
pub fn read_head(log: &Path) -> std::io::Result<Option<(u64, String)>> {
    let mut path = log.as_os_str().to_owned();
    path.push(".head");
    match std::fs::read_to_string(PathBuf::from(path)) {
        Ok(text) => Ok(parse_head(&text)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

impl AuditLog for JsonLinesAudit {
    fn record(&self, entry: &AuditEntry) -> std::io::Result<()> {
        self.write(entry)
    }

    fn recent(&self, limit: usize) -> std::io::Result<Vec<serde_json::Value>> {
        use std::io::{Read, Seek, SeekFrom};
        let tail = {
            let mut file = self.file.lock().unwrap_or_else(|p| p.into_inner());
            let from = file.metadata()?.len().saturating_sub(TAIL_BYTES);
            // Appends go to the end whatever the cursor; reads follow it.
            file.seek(SeekFrom::Start(from))?;
            let mut tail = Vec::new();
            file.read_to_end(&mut tail)?;
            // A read from the middle of the file starts inside a record: skip to the next.
            if from > 0 {
                let next = tail.iter().position(|&b| b == b'\n').map_or(tail.len(), |i| i + 1);
                tail.drain(..next);
            }
            tail
        };
        Ok(tail
            .split(|&b| b == b'\n')
            .filter(|line| !line.is_empty())
            .rev()
            .take(limit)
            .map(|line| {
                serde_json::from_slice(line).unwrap_or_else(
                    |_| serde_json::json!({ "unreadable": String::from_utf8_lossy(line) }),
                )
            })
            .collect())
    }

    fn head(&self) -> std::io::Result<Option<String>> {
        match std::fs::read_to_string(&self.head) {
            Ok(text) => Ok(Some(text.trim().to_owned())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
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

#[cfg(test)]
mod tests {
    use super::*;

    fn event(i: usize) -> SecurityEvent {
        SecurityEvent {
            time: i as i64,
            event: "sign-in".into(),
            user: Some(format!("user{i}")),
            address: None,
            detail: String::new(),
        }
    }

    #[test]
    fn a_steward_reads_the_newest_records_first_even_from_a_log_longer_than_the_tail() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.jsonl");
        let audit = JsonLinesAudit::open(&path).unwrap();
        // More than TAIL_BYTES of records, so the read starts inside one.
        let long = "x".repeat(2000);
        let n = (TAIL_BYTES as usize / 2000) + 50;
        for i in 0..n {
            audit.event(&SecurityEvent { detail: long.clone(), ..event(i) });
        }
        let recent = audit.recent(3).unwrap();
        let seqs: Vec<u64> = recent.iter().map(|r| r["seq"].as_u64().unwrap()).collect();
        assert_eq!(seqs, vec![n as u64, n as u64 - 1, n as u64 - 2]);
        assert_eq!(recent[0]["user"], format!("user{}", n - 1));
        let all = audit.recent(usize::MAX).unwrap();
        assert!(all.len() < n && all.iter().all(|r| r.get("unreadable").is_none()));
        assert_eq!(
            audit.head().unwrap(),
            Some(format!("{n} {}", recent[0]["hash"].as_str().unwrap()))
        );
    }

    #[test]
    fn two_writers_of_one_log_keep_one_chain() {
        // The server and an administrative command append to the same file: each takes the
        // last link from the file under its lock, never from memory.
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.jsonl");
        let (a, b) = (JsonLinesAudit::open(&path).unwrap(), JsonLinesAudit::open(&path).unwrap());
        std::thread::scope(|s| {
            s.spawn(|| (0..100).for_each(|i| a.event(&event(i))));
            s.spawn(|| (100..200).for_each(|i| b.event(&event(i))));
        });
        let log = std::io::BufReader::new(File::open(&path).unwrap());
        assert_eq!(verify(log, read_head(&path).unwrap()), Ok(200));
    }

    #[test]
    fn a_line_torn_by_a_crash_stays_on_its_own_line_and_verify_names_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.jsonl");
        let audit = JsonLinesAudit::open(&path).unwrap();
        (0..3).for_each(|i| audit.event(&event(i)));
        let whole = std::fs::read_to_string(&path).unwrap();
        std::fs::write(&path, &whole[..whole.len() - 20]).unwrap();
        audit.event(&event(3));
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(text.lines().count(), 4, "{text}");
        let log = std::io::BufReader::new(File::open(&path).unwrap());
        let broken = verify(log, None).unwrap_err();
        assert_eq!(broken.line, 3, "{broken}");
        assert!(broken.reason.contains("not a record of the chain"), "{broken}");
    }

    #[test]
    fn an_empty_log_is_a_whole_chain_of_nothing() {
        assert_eq!(verify(std::io::Cursor::new(b""), None), Ok(0));
        assert_eq!(
            verify(std::io::Cursor::new(b""), Some((2, GENESIS.to_owned()))).unwrap_err().reason,
            "records 1 to 2 are missing at the end (the head says the log ends with 2)"
        );
    }
}
