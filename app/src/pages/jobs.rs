//! The Jobs page: the user's runs and batch jobs, newest first, with their progress. A finished
//! job's released outputs open again here, after sign-out or a restart of the server, and any
//! job's script can run again as a new batch job.

use leptos::prelude::*;
use leptos::task::spawn_local;
use shared::api::{JobDetail, JobKind, JobSummary, SubmitJob};

use super::tokens::time_text;
use crate::api::{Empty, follow_job, get_json, post_json};
use crate::session::Session;

/// Unfinished jobs whose progress streams at once. A browser opens only about six connections
/// to one server; the rest of the app needs some. The others are followed as these finish.
const FOLLOWED_AT_ONCE: usize = 3;

#[component]
pub fn JobsPage() -> impl IntoView {
    let session = Session::get();
    let signed_in = Memo::new(move |_| session.signed_in());
    let (jobs, set_jobs) = signal(Vec::<JobSummary>::new());
    let (error, set_error) = signal(None::<String>);
    let (opened, set_opened) = signal(None::<JobDetail>);
    let refresh = move || {
        spawn_local(async move {
            match get_json::<Vec<JobSummary>>("/api/jobs").await {
                Ok(list) => {
                    set_jobs.try_set(list);
                }
                Err(e) => {
                    set_error.try_set(Some(e.error));
                }
            }
        })
    };
    Effect::new(move |_| {
        if signed_in.get() {
            refresh();
        }
    });
    // Each unfinished job's row follows the server's stream of its progress. Reading it is not
    // activity (the server does not count it), so an open Jobs page does not keep an idle
    // session alive. The streams end with the page.
    let aborts = send_wrapper::SendWrapper::new(web_sys::AbortController::new().ok());
    let abort = StoredValue::new_local(aborts.as_ref().map(|a| a.signal()));
    on_cleanup(move || {
        if let Some(controller) = aborts.as_ref() {
            controller.abort();
        }
    });
    let followed = StoredValue::new(std::collections::HashSet::<i64>::new());
    let follow = move |id: i64| {
        let Some(Some(signal)) = abort.try_get_value() else { return };
        let started = followed
            .try_update_value(|f| f.len() < FOLLOWED_AT_ONCE && f.insert(id))
            .unwrap_or(false);
        if !started {
            return;
        }
        spawn_local(async move {
            let changed = move |job: &JobSummary| {
                set_jobs.try_update(|list| {
                    if let Some(row) = list.iter_mut().find(|j| j.id == job.id) {
                        *row = job.clone();
                    }
                });
            };
            let ended = follow_job(id, &signal, changed).await;
            followed.try_update_value(|f| f.remove(&id));
            if signal.aborted() {
                return; // the page has closed
            }
            match ended {
                // Read the list again: the job's end, and the next ones to follow.
                Ok(_) => refresh(),
                Err(e) => {
                    set_error.try_set(Some(e.error));
                }
            }
        });
    };
    Effect::new(move |_| {
        jobs.with(|list| {
            for job in list.iter().filter(|j| !j.state.is_finished()) {
                follow(job.id);
            }
        })
    });
    let cancel = move |id: i64| {
        spawn_local(async move {
            if let Err(e) =
                post_json::<_, JobSummary>(&format!("/api/jobs/{id}/cancel"), &Empty {}).await
            {
                set_error.set(Some(e.error));
            }
            refresh();
        });
    };
    let open = move |id: i64| {
        spawn_local(async move {
            match get_json::<JobDetail>(&format!("/api/jobs/{id}")).await {
                Ok(job) => set_opened.set(Some(job)),
                Err(e) => set_error.set(Some(e.error)),
            }
        });
    };
    let again = move |id: i64| {
        spawn_local(async move {
            let submitted = match get_json::<JobDetail>(&format!("/api/jobs/{id}")).await {
                Ok(job) => {
                    let request = SubmitJob { script: job.script, project: job.summary.project };
                    post_json::<_, JobSummary>("/api/jobs", &request).await
                }
                Err(e) => Err(e),
            };
            if let Err(e) = submitted {
                set_error.set(Some(e.error));
            }
            refresh();
        });
    };
    view! {
        <section class="jobs">
            <h1>"Jobs"</h1>
            <Show when=move || signed_in.get() fallback=|| view! {
                <p><a href="/login">"Sign in"</a>" to see your jobs."</p>
            }>
                <p class="lead">"Every run is kept here with what it released. Batch jobs go on after you sign out; submit one from the workbench or with "<code>"skjold batch submit"</code>"."</p>
                {move || error.get().map(|e| view! { <p class="error" role="alert">{e}</p> })}
                <table class="result" id="jobs">
                    <thead><tr>
                        <th scope="col">"Job"</th><th scope="col">"Kind"</th><th scope="col">"State"</th>
                        <th scope="col">"Progress"</th><th scope="col">"Submitted"</th><th scope="col">"Actions"</th>
                    </tr></thead>
                    <tbody>
                        {move || jobs.get().into_iter().map(|j| job_row(j, cancel, open, again)).collect_view()}
                    </tbody>
                </table>
                {move || opened.get().map(|job| {
                    let title = format!("Job {} ({})", job.summary.id, job.summary.state.as_str());
                    view! {
                        <section id="job-outputs" aria-labelledby="job-title">
                            <h2 id="job-title">{title}</h2>
                            <pre class="text">{job.script}</pre>
                            <div class="outputs">
                                {job.outputs.into_iter().map(super::workbench::output_view).collect_view()}
                            </div>
                        </section>
                    }
                })}
            </Show>
        </section>
    }
}

fn job_row(
    j: JobSummary,
    cancel: impl Fn(i64) + Copy + 'static,
    open: impl Fn(i64) + Copy + 'static,
    again: impl Fn(i64) + Copy + 'static,
) -> impl IntoView {
    let id = j.id;
    let finished = j.state.is_finished();
    let kind = match j.kind {
        JobKind::Batch => "batch",
        JobKind::Interactive => "workbench run",
    };
    let progress = if j.steps > 0 {
        format!("{} of {}: {}", j.step, j.steps, j.command)
    } else {
        String::new()
    };
    let state = match &j.error {
        Some(e) => format!("{}: {e}", j.state.as_str()),
        None => j.state.as_str().to_owned(),
    };
    view! {
        <tr id=format!("job-{id}")>
            <th scope="row">{id}</th>
            <td>{kind}</td>
            <td class="state">{state}</td>
            <td>
                <progress max=j.steps.max(1) value=if finished { j.steps.max(1) } else { j.step }
                    aria-label=format!("progress of job {id}")></progress>
                " " <span class="hint">{progress}</span>
            </td>
            <td>{time_text(j.submitted_at, true)}</td>
            <td>
                {(!finished).then(|| view! { <button class="danger" on:click=move |_| cancel(id)>"Cancel"</button> })}
                {finished.then(|| view! { <button class="open-job" on:click=move |_| open(id)>"Open"</button> })}
                " " <button on:click=move |_| again(id)>"Run again"</button>
            </td>
        </tr>
    }
}
