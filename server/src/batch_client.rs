//! `skjold batch …`: the batch client. It talks to a server's jobs API with a personal access
//! token (made in the app), so a script can be submitted from a terminal or a scheduler and its
//! released outputs fetched later, after sign-out or a restart of the server.

use std::path::{Path, PathBuf};
use std::time::Duration;

use shared::api::{ApiError, JobDetail, JobSummary, SubmitJob};

/// What to do.
#[derive(Debug)]
pub enum Action {
    Submit {
        file: PathBuf,
        project: Option<String>,
    },
    Status {
        id: i64,
    },
    /// Waits until the job has finished, at most `timeout`.
    Wait {
        id: i64,
        timeout: Duration,
    },
    /// Writes the job with its outputs as JSON, and each table as CSV, into `out`.
    Fetch {
        id: i64,
        out: PathBuf,
    },
    List,
    Cancel {
        id: i64,
    },
}

/// The outcome: what to print, and whether the command succeeded (a job that failed or was
/// cancelled makes `wait` fail, for scripts that chain on it).
pub struct Outcome {
    pub text: String,
    pub success: bool,
}

pub struct Client {
    http: reqwest::Client,
    server: String,
    token: String,
}

impl Client {
    pub fn new(server: &str, token: &str) -> Result<Client, String> {
        if !server.starts_with("http://") && !server.starts_with("https://") {
            return Err(format!(
                "--server {server}: give the server's address with its scheme, e.g. https://skjold.example.org"
            ));
        }
        if token.is_empty() {
            return Err("no token: make one in the app (Account → Access tokens) and pass it \
                 with --token or SKJOLD_TOKEN"
                .into());
        }
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(60))
            .build()
            .map_err(|e| format!("cannot make an HTTP client: {e}"))?;
        Ok(Client { http, server: server.trim_end_matches('/').to_owned(), token: token.into() })
    }

    async fn call<T: serde::de::DeserializeOwned>(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<serde_json::Value>,
    ) -> Result<T, String> {
        let url = format!("{}/api{path}", self.server);
        let mut request = self.http.request(method, &url).bearer_auth(&self.token);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request
            .send()
            .await
            .map_err(|e| format!("cannot reach {}: {e} (check --server)", self.server))?;
        let status = response.status();
        let bytes = response.bytes().await.map_err(|e| format!("{url}: {e}"))?;
        if status == reqwest::StatusCode::UNAUTHORIZED {
            return Err("the server does not know this token, or it was revoked or has \
                 expired: make a new one in the app (Account → Access tokens)"
                .into());
        }
        if !status.is_success() {
            let message = serde_json::from_slice::<ApiError>(&bytes)
                .map(|e| e.error)
                .unwrap_or_else(|_| String::from_utf8_lossy(&bytes).into_owned());
            return Err(format!("{message} (HTTP {})", status.as_u16()));
        }
        serde_json::from_slice(&bytes)
            .map_err(|e| format!("{url} answered what this client cannot read: {e}"))
    }

    async fn job(&self, id: i64) -> Result<JobDetail, String> {
        self.call(reqwest::Method::GET, &format!("/jobs/{id}"), None).await
    }

    pub async fn run(&self, action: Action) -> Result<Outcome, String> {
        let done = |text: String| Ok(Outcome { text, success: true });
        match action {
            Action::Submit { file, project } => {
                let script = std::fs::read_to_string(&file)
                    .map_err(|e| format!("cannot read the script {}: {e}", file.display()))?;
                let body = serde_json::to_value(SubmitJob { script, project })
                    .map_err(|e| e.to_string())?;
                let job: JobSummary = self.call(reqwest::Method::POST, "/jobs", Some(body)).await?;
                done(format!(
                    "submitted job {} ({}); follow it with `skjold batch wait {}`",
                    job.id,
                    job.state.as_str(),
                    job.id
                ))
            }
            Action::Status { id } => done(status_line(&self.job(id).await?.summary)),
            Action::Wait { id, timeout } => {
                let started = std::time::Instant::now();
                let mut pause = Duration::from_millis(250);
                loop {
                    let job = self.job(id).await?;
                    if job.summary.state.is_finished() {
                        let success = job.summary.state == shared::api::JobState::Done;
                        return Ok(Outcome { text: status_line(&job.summary), success });
                    }
                    if started.elapsed() >= timeout {
                        return Err(format!(
                            "job {id} has not finished after {} s: {}",
                            timeout.as_secs(),
                            status_line(&job.summary)
                        ));
                    }
                    tokio::time::sleep(pause).await;
                    pause = (pause * 2).min(Duration::from_secs(5));
                }
            }
            Action::Fetch { id, out } => {
                let job = self.job(id).await?;
                if !job.summary.state.is_finished() {
                    return Err(format!(
                        "job {id} is {}: fetch it once it has finished (`skjold batch wait {id}`)",
                        job.summary.state.as_str()
                    ));
                }
                let written = write_job(&job, &out)?;
                done(format!("{}\n{}", status_line(&job.summary), written.join("\n")))
            }
            Action::List => {
                let jobs: Vec<JobSummary> = self.call(reqwest::Method::GET, "/jobs", None).await?;
                done(jobs.iter().map(status_line).collect::<Vec<_>>().join("\n"))
            }
            Action::Cancel { id } => {
                let job: JobSummary = self
                    .call(
                        reqwest::Method::POST,
                        &format!("/jobs/{id}/cancel"),
                        Some(serde_json::json!({})),
                    )
                    .await?;
                done(status_line(&job))
            }
        }
    }
}

/// One line per job: id, kind, state, progress, and the error if any.
pub fn status_line(job: &JobSummary) -> String {
    let kind = match job.kind {
        shared::api::JobKind::Batch => "batch",
        shared::api::JobKind::Interactive => "run",
    };
    let mut line = format!("job {}\t{kind}\t{}", job.id, job.state.as_str());
    if job.steps > 0 {
        line.push_str(&format!("\tcommand {} of {}: {}", job.step, job.steps, job.command));
    }
    if let Some(error) = &job.error {
        line.push_str(&format!("\t{error}"));
    }
    line
}

/// Writes `job-ID.json` (the job and its released outputs) and `job-ID-NN-COMMAND.csv` per
/// table into `out`; returns the files written.
fn write_job(job: &JobDetail, out: &Path) -> Result<Vec<String>, String> {
    std::fs::create_dir_all(out).map_err(|e| format!("cannot make {}: {e}", out.display()))?;
    let id = job.summary.id;
    let mut written = Vec::new();
    let mut write = |name: String, content: &str| -> Result<(), String> {
        let path = out.join(&name);
        std::fs::write(&path, content)
            .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
        written.push(path.display().to_string());
        Ok(())
    };
    let json = serde_json::to_string_pretty(job).map_err(|e| e.to_string())?;
    write(format!("job-{id}.json"), &json)?;
    for (n, output) in job.outputs.iter().enumerate() {
        if let Some(table) = output.as_table() {
            let command: String = output
                .command
                .chars()
                .map(|c| if c.is_ascii_alphanumeric() || c == '-' { c } else { '_' })
                .collect();
            write(format!("job-{id}-{:02}-{command}.csv", n + 1), &table.to_csv())?;
        }
    }
    Ok(written)
}
