//! The catalog page: search as you type, filters, and results that link to each variable.

use leptos::prelude::*;
use leptos::task::spawn_local;
use leptos_router::NavigateOptions;
use leptos_router::hooks::{use_navigate, use_query_map};
use shared::api::{ApiError, DatastoreSummary, VariablePage};
use shared::metadata::{Temporality, UnitType};
use wasm_bindgen::JsCast;

use crate::api::{CatalogQuery, encode, get_json};

const KEYS: [&str; 5] = ["q", "unit_type", "temporality", "subject", "page"];

#[component]
pub fn CatalogPage() -> impl IntoView {
    let query_map = use_query_map();
    let query = Memo::new(move |_| {
        query_map.with(|m| {
            let pairs: Vec<(&str, String)> =
                KEYS.iter().filter_map(|&k| m.get(k).map(|v| (k, v))).collect();
            CatalogQuery::from_pairs(pairs.iter().map(|(k, v)| (*k, v.as_str())))
        })
    });

    // The latest answer wins: a slow response to an older keystroke is dropped.
    let (results, set_results) = signal(None::<Result<VariablePage, ApiError>>);
    let latest = StoredValue::new(0u64);
    Effect::new(move |_| {
        let url = query.get().api_url();
        let ticket = latest.get_value() + 1;
        latest.set_value(ticket);
        spawn_local(async move {
            let answer = get_json::<VariablePage>(&url).await;
            // The page may be gone by now (the user followed a result): then nothing is set.
            if latest.try_get_value() == Some(ticket) {
                set_results.try_set(Some(answer));
            }
        });
    });

    let (datastores, set_datastores) = signal(Vec::<DatastoreSummary>::new());
    spawn_local(async move {
        if let Ok(list) = get_json::<Vec<DatastoreSummary>>("/api/catalog/datastores").await {
            set_datastores.set(list);
        }
    });

    let navigate = use_navigate();
    let go = move |q: CatalogQuery| {
        navigate(
            &q.page_url(),
            NavigateOptions { replace: true, scroll: false, ..Default::default() },
        );
    };
    let go_text = go.clone();

    view! {
        <section class="catalog">
            <h1>"Variable catalog"</h1>
            <p class="lead">
                "Every register variable you can analyse, documented in Norwegian and English. "
                "Search by name, label or description; spelling mistakes are forgiven."
            </p>
            <p class="datastores">
                {move || datastores.get().into_iter().map(|d| view! {
                    <span class="datastore">
                        <strong>{d.name.clone()}</strong>
                        {format!(" version {} · {} variables · {}", d.latest, d.variable_count, d.label.en)}
                    </span>
                }).collect_view()}
            </p>
            <div class="search" role="search">
                <label for="search">"Search variables"</label>
                <input
                    id="search"
                    type="search"
                    autocomplete="off"
                    placeholder="e.g. inntekt, wage, kjønn, BOSATTEFDT"
                    autofocus
                    prop:value=move || query.get().text
                    on:input=move |ev| {
                        let text = event_target_value(&ev);
                        go_text(CatalogQuery { text, page: 1, ..query.get_untracked() });
                    }
                    on:keydown=move |ev| {
                        if ev.key() == "ArrowDown" {
                            ev.prevent_default();
                            focus_result(0);
                        }
                    }
                />
                <div class="filters">
                    <Filter label="Unit type" key="unit_type" query=query
                        options=Signal::derive(|| UnitType::ALL.iter().map(|u| u.as_str().to_owned()).collect::<Vec<_>>()) />
                    <Filter label="Temporality" key="temporality" query=query
                        options=Signal::derive(|| Temporality::ALL.iter().map(|t| t.as_str().to_owned()).collect::<Vec<_>>()) />
                    <Filter label="Subject" key="subject" query=query
                        options=Signal::derive(move || subjects(&results.get())) />
                </div>
            </div>
            <div aria-live="polite" class="results-area">
                {move || match results.get() {
                    None => view! { <p class="status">"Searching…"</p> }.into_any(),
                    Some(Err(e)) => view! { <p class="error" role="alert">{e.error}</p> }.into_any(),
                    Some(Ok(page)) => results_view(page, query.get(), go.clone()).into_any(),
                }}
            </div>
        </section>
    }
}

/// One filter menu: "All" plus its options; picking one updates the URL's query.
#[component]
fn Filter(
    label: &'static str,
    key: &'static str,
    query: Memo<CatalogQuery>,
    options: Signal<Vec<String>>,
) -> impl IntoView {
    let navigate = use_navigate();
    view! {
        <label>
            {label}" "
            <select on:change=move |ev| {
                let q = query.get_untracked().with_filter(key, event_target_value(&ev));
                navigate(&q.page_url(), NavigateOptions { replace: true, scroll: false, ..Default::default() });
            }>
                <option value="" selected=move || query.get().filter(key).is_empty()>"All"</option>
                {move || options.get().into_iter().map(|option| {
                    let value = option.clone();
                    let is_selected = option.clone();
                    view! {
                        <option value=value selected=move || query.get().filter(key) == is_selected>{option}</option>
                    }
                }).collect_view()}
            </select>
        </label>
    }
}

fn subjects(results: &Option<Result<VariablePage, ApiError>>) -> Vec<String> {
    match results {
        Some(Ok(page)) => page.subjects.clone(),
        _ => Vec::new(),
    }
}

fn results_view(
    page: VariablePage,
    query: CatalogQuery,
    go: impl Fn(CatalogQuery) + Clone + 'static,
) -> impl IntoView {
    let pages = page.total.div_ceil(page.page_size).max(1);
    let summary = match page.total {
        0 => "No variables match. Try fewer or shorter words.".to_owned(),
        1 => "1 variable".to_owned(),
        n => format!("{n} variables"),
    };
    let (prev, next) = (go.clone(), go);
    let (q_prev, q_next) = (query.clone(), query.clone());
    let current = page.page;
    view! {
        <p class="status">{summary}</p>
        <ul class="results" on:keydown=move_between_results>
            {page.hits.into_iter().map(|hit| {
                let href = format!("/variables/{}?datastore={}", encode(&hit.name), encode(&hit.datastore));
                view! {
                    <li>
                        <a href=href class="result">
                            <code class="name">{hit.name.clone()}</code>
                            <span class="label">{hit.label.en.clone()}</span>
                            <span class="label-nb" lang="nb">{hit.label.nb.clone()}</span>
                            <span class="facts">
                                {format!("{} · {} · {}", hit.unit_type.as_str(), hit.temporality.as_str(), hit.datastore)}
                            </span>
                        </a>
                    </li>
                }
            }).collect_view()}
        </ul>
        <nav class="pager" aria-label="Result pages">
            <button disabled={current <= 1} on:click=move |_| prev(CatalogQuery { page: current - 1, ..q_prev.clone() })>
                "Previous"
            </button>
            <span>{format!("Page {current} of {pages}")}</span>
            <button disabled={current >= pages} on:click=move |_| next(CatalogQuery { page: current + 1, ..q_next.clone() })>
                "Next"
            </button>
        </nav>
    }
}

fn result_links() -> Vec<web_sys::HtmlElement> {
    let Some(document) = web_sys::window().and_then(|w| w.document()) else { return Vec::new() };
    let Ok(nodes) = document.query_selector_all(".results a.result") else { return Vec::new() };
    (0..nodes.length())
        .filter_map(|i| nodes.item(i)?.dyn_into::<web_sys::HtmlElement>().ok())
        .collect()
}

fn focus_result(index: usize) {
    if let Some(link) = result_links().get(index) {
        let _ = link.focus();
    }
}

/// Arrow keys move between results; ArrowUp from the first goes back to the search box.
fn move_between_results(ev: web_sys::KeyboardEvent) {
    let links = result_links();
    let active = web_sys::window().and_then(|w| w.document()).and_then(|d| d.active_element());
    let Some(position) =
        links.iter().position(|l| Some(l.unchecked_ref::<web_sys::Element>()) == active.as_ref())
    else {
        return;
    };
    match ev.key().as_str() {
        "ArrowDown" => {
            ev.prevent_default();
            focus_result((position + 1).min(links.len() - 1));
        }
        "ArrowUp" if position == 0 => {
            ev.prevent_default();
            if let Some(input) = web_sys::window()
                .and_then(|w| w.document())
                .and_then(|d| d.get_element_by_id("search"))
                .and_then(|e| e.dyn_into::<web_sys::HtmlElement>().ok())
            {
                let _ = input.focus();
            }
        }
        "ArrowUp" => {
            ev.prevent_default();
            focus_result(position - 1);
        }
        _ => {}
    }
}
