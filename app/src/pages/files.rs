//! The workbench's files: the personal area and the areas of the user's projects, for scripts
//! and the results the server released.

use leptos::prelude::*;
use leptos::task::spawn_local;
use shared::api::{AreaListing, FileContent, FileSummary, ProjectSummary};
use shared::output::Output;

use crate::api::{area_url, delete_json, get_json, put_json, size_text};

#[component]
pub fn FilesPanel(
    script: ReadSignal<String>,
    set_script: WriteSignal<String>,
    outputs: ReadSignal<Vec<Output>>,
    projects: LocalResource<Vec<ProjectSummary>>,
) -> impl IntoView {
    // None: the personal area.
    let (area, set_area) = signal(None::<String>);
    let listing = LocalResource::new(move || {
        let area = area.get();
        async move { get_json::<AreaListing>(&area_url(area.as_deref(), None)).await }
    });
    let (name, set_name) = signal("analysis.mds".to_owned());
    let (message, set_message) = signal(None::<Result<String, String>>);
    let save = move |content: String, file: String| {
        let url = area_url(area.get_untracked().as_deref(), Some(&file));
        spawn_local(async move {
            let result = put_json::<_, FileSummary>(&url, &FileContent { content }).await;
            set_message.set(Some(
                result
                    .map(|f| format!("Saved {} ({}).", f.name, size_text(f.bytes)))
                    .map_err(|e| e.error),
            ));
            listing.refetch();
        });
    };
    let save_script = move |_| save(script.get_untracked(), name.get_untracked());
    let save_results = move |_| {
        let file = name.get_untracked();
        let stem = file.rsplit_once('.').map_or(file.as_str(), |(s, _)| s).to_owned();
        let json = serde_json::to_string_pretty(&outputs.get_untracked()).unwrap_or_default();
        save(json, format!("{stem}.json"));
    };
    let open = move |file: String| {
        let url = area_url(area.get_untracked().as_deref(), Some(&file));
        spawn_local(async move {
            match get_json::<FileContent>(&url).await {
                Ok(f) => {
                    set_script.set(f.content);
                    set_name.set(file.clone());
                    set_message.set(Some(Ok(format!("Opened {file}."))));
                }
                Err(e) => set_message.set(Some(Err(e.error))),
            }
        });
    };
    let delete = move |file: String| {
        let url = area_url(area.get_untracked().as_deref(), Some(&file));
        spawn_local(async move {
            let result = delete_json::<serde_json::Value>(&url).await;
            set_message.set(Some(result.map(|_| format!("Deleted {file}.")).map_err(|e| e.error)));
            listing.refetch();
        });
    };

    view! {
        <section class="files" aria-labelledby="files-title">
            <h2 id="files-title">"Files"</h2>
            <label>"Area "
                <select id="area" on:change=move |ev| {
                    let v = event_target_value(&ev);
                    set_area.set((!v.is_empty()).then_some(v));
                }>
                    <option value="">"Personal"</option>
                    {move || projects.get().unwrap_or_default().into_iter().map(|p| {
                        let label = format!("Project {}", p.name);
                        view! { <option value=p.name>{label}</option> }
                    }).collect_view()}
                </select>
            </label>
            <Suspense fallback=|| ()>
                {move || listing.get().map(|l| match l {
                    Err(e) => view! { <p class="error">{e.error}</p> }.into_any(),
                    Ok(l) => view! {
                        <p class="hint" id="area-usage">{format!("{} of {} used", size_text(l.used), size_text(l.limit))}</p>
                        <ul class="file-list">
                            {l.files.into_iter().map(|f| {
                                let (a, b) = (f.name.clone(), f.name.clone());
                                let script = f.name.ends_with(".mds") || f.name.ends_with(".txt");
                                view! {
                                    <li>
                                        <span class="file-name">{f.name.clone()}</span>
                                        " " <span class="hint">{format!("{} · {}", size_text(f.bytes), f.updated_by)}</span>
                                        " " {script.then(|| view! { <button on:click=move |_| open(a.clone())>"Open"</button> })}
                                        " " <button class="danger" on:click=move |_| delete(b.clone())>"Delete"</button>
                                    </li>
                                }
                            }).collect_view()}
                        </ul>
                    }.into_any(),
                })}
            </Suspense>
            <p class="actions">
                <input id="file-name" aria-label="File name" prop:value=move || name.get()
                    on:input=move |ev| set_name.set(event_target_value(&ev)) />
                " " <button id="save-script" on:click=save_script>"Save script"</button>
                " " <button id="save-results" on:click=save_results>"Save results"</button>
            </p>
            {move || message.get().map(|m| match m {
                Ok(m) => view! { <p class="notice-line" id="files-message">{m}</p> }.into_any(),
                Err(e) => view! { <p class="error" role="alert">{e}</p> }.into_any(),
            })}
        </section>
    }
}
