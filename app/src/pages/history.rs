//! Run history in the workbench: the user's earlier runs, newest first, each opened again into
//! the editor with its released outputs. Signed in, they are the job records the server keeps
//! (every run is a job), so they outlive the session, a sign-out and a restart; a guest's are
//! this page's own, kept while it is open.

use leptos::prelude::*;
use leptos::task::spawn_local;
use shared::api::{JobDetail, JobKind, JobSummary};
use shared::output::Output;

use super::tokens::time_text;
use crate::api::get_json;

/// Runs listed.
const LISTED: usize = 10;

/// A guest's run, kept in the page.
#[derive(Clone, Debug, PartialEq)]
pub struct SessionRun {
    /// Unix milliseconds.
    pub at: f64,
    pub script: String,
    pub outputs: Vec<Output>,
}

/// The first line of a script that is not blank or a comment, for a run's row.
fn first_line(script: &str) -> String {
    let line = script
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty() && !l.starts_with("//") && !l.starts_with("require "))
        .unwrap_or("");
    let mut shown: String = line.chars().take(60).collect();
    if shown.len() < line.len() {
        shown.push('…');
    }
    shown
}

#[component]
pub fn RunHistory(
    signed_in: Memo<bool>,
    /// Changes after each run, so the list follows.
    runs: ReadSignal<u32>,
    session_runs: ReadSignal<Vec<SessionRun>>,
    set_script: WriteSignal<String>,
    set_outputs: WriteSignal<Vec<Output>>,
) -> impl IntoView {
    let jobs = LocalResource::new(move || {
        runs.track();
        let signed = signed_in.get();
        async move {
            if !signed {
                return Ok(Vec::new());
            }
            get_json::<Vec<JobSummary>>(&format!("/api/jobs?limit={LISTED}")).await
        }
    });
    let (error, set_error) = signal(None::<String>);
    let open_job = move |id: i64| {
        spawn_local(async move {
            match get_json::<JobDetail>(&format!("/api/jobs/{id}")).await {
                Ok(job) => {
                    set_error.set(None);
                    set_script.set(job.script);
                    set_outputs.set(job.outputs);
                }
                Err(e) => set_error.set(Some(e.error)),
            }
        })
    };
    let job_rows = move || {
        let list = match jobs.get() {
            Some(Ok(list)) => list,
            Some(Err(e)) => {
                return view! { <p class="error" role="alert">{e.error}</p> }.into_any();
            }
            None => Vec::new(),
        };
        if list.is_empty() {
            return view! { <p class="hint">"No runs yet."</p> }.into_any();
        }
        view! {
            <ol class="history-runs">
                {list.into_iter().map(|j| {
                    let id = j.id;
                    let kind = match j.kind {
                        JobKind::Batch => "batch job",
                        JobKind::Interactive => "run",
                    };
                    let finished = j.state.is_finished();
                    view! {
                        <li id=format!("history-job-{id}")>
                            <span>{format!("{kind} {id} · {} · {} commands · {}", j.state.as_str(), j.steps, time_text(j.submitted_at, true))}</span>
                            " "
                            <button class="open-run" disabled=!finished on:click=move |_| open_job(id)
                                aria-label=format!("Open {kind} {id} in the editor")>"Open"</button>
                        </li>
                    }
                }).collect_view()}
            </ol>
        }
        .into_any()
    };
    let session_rows = move || {
        let list = session_runs.get();
        if list.is_empty() {
            return view! { <p class="hint">"No runs yet in this page."</p> }.into_any();
        }
        view! {
            <ol class="history-runs">
                {list.into_iter().rev().enumerate().map(|(i, r)| {
                    let n = r.outputs.len();
                    let outputs = if n == 1 { "1 output".to_owned() } else { format!("{n} outputs") };
                    let label = format!("{} · {} · {outputs}", time_text(r.at as i64, true), first_line(&r.script));
                    view! {
                        <li id=format!("history-run-{i}")>
                            <span>{label}</span>
                            " "
                            <button class="open-run" on:click=move |_| {
                                set_script.set(r.script.clone());
                                set_outputs.set(r.outputs.clone());
                            } aria-label=format!("Open run {} in the editor", i + 1)>"Open"</button>
                        </li>
                    }
                }).collect_view()}
            </ol>
        }
        .into_any()
    };
    view! {
        <details class="history" id="run-history">
            <summary>"Run history"</summary>
            {move || if signed_in.get() {
                view! {
                    <p class="hint">"Your last runs and batch jobs, kept by the server. "<a href="/jobs">"All jobs"</a></p>
                    {job_rows}
                }.into_any()
            } else {
                view! {
                    <p class="hint">"A guest's runs are kept while this page is open."</p>
                    {session_rows}
                }.into_any()
            }}
            {move || error.get().map(|e| view! { <p class="error" role="alert">{e}</p> })}
        </details>
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_runs_row_shows_its_first_command() {
        let script = "// wages\nrequire demo:1 as db\n\ncreate-dataset persons\nimport db/X as x";
        assert_eq!(first_line(script), "create-dataset persons");
        assert_eq!(first_line(&format!("tabulate {}", "a".repeat(80))).chars().count(), 61);
        assert_eq!(first_line(""), "");
    }
}
