//! One variable's page: description, facts, coverage, code list and a ready `import` line.

use leptos::prelude::*;
use leptos::task::spawn_local;
use leptos_router::hooks::{use_params_map, use_query_map};
use shared::api::{ApiError, VariableDetail};
use shared::metadata::{Code, ValueDomain};

use crate::api::{get_json, variable_url};

#[component]
pub fn VariablePage() -> impl IntoView {
    let params = use_params_map();
    let query = use_query_map();
    let (detail, set_detail) = signal(None::<Result<VariableDetail, ApiError>>);
    Effect::new(move |_| {
        let name = params.with(|p| p.get("name").unwrap_or_default());
        let datastore = query.with(|q| q.get("datastore"));
        let url = variable_url(&name, datastore.as_deref());
        set_detail.set(None);
        spawn_local(async move { set_detail.set(Some(get_json::<VariableDetail>(&url).await)) });
    });
    view! {
        <p class="back"><a href="/">"← Back to the catalog"</a></p>
        {move || match detail.get() {
            None => view! { <p class="status">"Loading…"</p> }.into_any(),
            Some(Err(e)) => not_found(e).into_any(),
            Some(Ok(d)) => detail_view(d).into_any(),
        }}
    }
}

fn not_found(e: ApiError) -> impl IntoView {
    view! {
        <section class="notice">
            <p class="error" role="alert">{e.error}</p>
            {(!e.did_you_mean.is_empty()).then(|| view! {
                <p>"Did you mean "
                    {e.did_you_mean.into_iter().map(|n| {
                        let href = format!("/variables/{n}");
                        view! { <a href=href><code>{n}</code></a>" " }
                    }).collect_view()}
                "?"</p>
            })}
        </section>
    }
}

fn detail_view(d: VariableDetail) -> impl IntoView {
    let m = d.metadata;
    let coverage = m.coverage.as_ref().map(|c| {
        let dates = if c.status_dates.is_empty() {
            String::new()
        } else {
            format!(" · measured on {} status dates", c.status_dates.len())
        };
        format!("{} to {}{dates}", c.start, c.latest)
    });
    let import = d.import_lines.clone();
    let (copied, set_copied) = signal(false);
    let copy = move |_| {
        if let Some(window) = web_sys::window() {
            let _ = window.navigator().clipboard().write_text(&import);
            set_copied.set(true);
        }
    };
    let domain = match m.value_domain {
        ValueDomain::CodeList { codes, missing_codes } => view! {
            <h2>"Code list"</h2>
            {code_table(codes)}
            {(!missing_codes.is_empty()).then(|| view! {
                <h3>"Missing-value codes"</h3>
                {code_table(missing_codes)}
            })}
        }
        .into_any(),
        ValueDomain::Measure { unit, description } => view! {
            <h2>"Measure"</h2>
            <p>{format!("Unit: {} ({})", unit.en, unit.nb)}</p>
            <p class="muted">{description.en}</p>
        }
        .into_any(),
    };
    view! {
        <article class="variable">
            <h1><code>{m.name.to_string()}</code></h1>
            <p class="label">{m.label.en.clone()}<span class="label-nb" lang="nb">{format!(" · {}", m.label.nb)}</span></p>
            <section class="description">
                <h2>"Description"</h2>
                <p>{m.description.en.clone()}</p>
                <p lang="nb" class="muted">{m.description.nb.clone()}</p>
            </section>
            <dl class="facts">
                <dt>"Datastore"</dt><dd>{format!("{} version {}", d.datastore, d.version)}</dd>
                <dt>"Unit type"</dt><dd>{m.unit_type.as_str()}</dd>
                <dt>"Temporality"</dt><dd>{m.temporality.as_str()}</dd>
                <dt>"Data type"</dt><dd>{m.data_type.as_str()}</dd>
                <dt>"Subject"</dt><dd>{m.subject_fields.join(", ")}</dd>
                <dt>"Population"</dt><dd>{m.population.en.clone()}</dd>
                <dt>"Coverage"</dt><dd>{coverage.unwrap_or_else(|| "not recorded".into())}</dd>
                {m.points_to.map(|u| view! {
                    <dt>"Points to"</dt>
                    <dd>{format!("{} ids: use it only as a key with merge … on", u.as_str())}</dd>
                })}
            </dl>
            <section class="import">
                <h2>"Use it in a script"</h2>
                <pre><code id="import-lines">{d.import_lines.clone()}</code></pre>
                <button on:click=copy>{move || if copied.get() { "Copied" } else { "Copy" }}</button>
            </section>
            <section class="domain">{domain}</section>
        </article>
    }
}

fn code_table(codes: Vec<Code>) -> impl IntoView {
    view! {
        <table class="codes">
            <thead><tr><th scope="col">"Code"</th><th scope="col">"Label"</th><th scope="col">"Norwegian"</th><th scope="col">"Valid"</th></tr></thead>
            <tbody>
                {codes.into_iter().map(|c| {
                    let valid = match (c.valid_from, c.valid_until) {
                        (None, None) => String::new(),
                        (Some(f), None) => format!("from {f}"),
                        (None, Some(u)) => format!("until {u}"),
                        (Some(f), Some(u)) => format!("{f} – {u}"),
                    };
                    view! { <tr><td><code>{c.code}</code></td><td>{c.label.en}</td><td lang="nb">{c.label.nb}</td><td>{valid}</td></tr> }
                }).collect_view()}
            </tbody>
        </table>
    }
}
