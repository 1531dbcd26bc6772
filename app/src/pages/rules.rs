//! The disclosure rules of a datastore in plain words, as the server enforces them: the page
//! is generated from the same settings the gate reads, so it cannot drift from the code.

use leptos::prelude::*;
use leptos::task::spawn_local;
use leptos_router::hooks::use_params_map;
use shared::api::{ApiError, RulesPage};

use crate::api::get_json;

#[component]
pub fn RulesPage() -> impl IntoView {
    let params = use_params_map();
    let (page, set_page) = signal(None::<Result<RulesPage, ApiError>>);
    Effect::new(move |_| {
        let name = params.with(|p| p.get("name").unwrap_or_else(|| "demo".into()));
        let url = format!("/api/catalog/datastores/{}/rules", crate::api::encode(&name));
        set_page.set(None);
        spawn_local(async move { set_page.set(Some(get_json::<RulesPage>(&url).await)) });
    });
    view! {
        {move || match page.get() {
            None => view! { <p class="status">"Loading…"</p> }.into_any(),
            Some(Err(e)) => view! { <p class="error" role="alert">{e.error}</p> }.into_any(),
            Some(Ok(p)) => rules_view(p).into_any(),
        }}
    }
}

fn rules_view(p: RulesPage) -> impl IntoView {
    let title = format!("How outputs from {} (version {}) are protected", p.datastore, p.version);
    view! {
        <section class="rules">
            <h1>{title}</h1>
            <p>
                "Every table, statistic, model and chart passes these rules before it leaves the "
                "server. Individual data never do."
            </p>
            <ol class="rules">
                {p.rules.into_iter().map(|(number, text)| view! {
                    <li value=number.to_string()>{text}</li>
                }).collect_view()}
            </ol>
        </section>
    }
}
