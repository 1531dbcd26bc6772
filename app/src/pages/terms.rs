//! The terms of use: readable by anyone, accepted at first sign-in and after every new version.

use leptos::prelude::*;
use leptos::task::spawn_local;
use leptos_router::hooks::use_navigate;
use shared::api::{SessionInfo, Terms};

use crate::api::{get_json, post_json};
use crate::session::Session;

#[derive(serde::Serialize)]
struct Accept {
    version: u32,
}

#[component]
pub fn TermsPage() -> impl IntoView {
    let session = Session::get();
    let navigate = use_navigate();
    let terms = LocalResource::new(|| get_json::<Terms>("/api/terms"));
    let (error, set_error) = signal(None::<String>);
    let accept = move |version: u32| {
        let navigate = navigate.clone();
        spawn_local(async move {
            match post_json::<_, SessionInfo>("/api/terms", &Accept { version }).await {
                Ok(info) => {
                    session.apply(info);
                    navigate("/workbench", Default::default());
                }
                Err(e) => set_error.set(Some(e.error)),
            }
        });
    };
    let needs = move || session.0.with(|s| s.as_ref().is_some_and(|s| s.needs_terms));
    view! {
        <section class="terms">
            <h1>"Terms of use"</h1>
            <Suspense fallback=|| view! { <p>"Loading the terms…"</p> }>
                {move || terms.get().map(|t| match t {
                    Ok(t) => {
                        let version = t.version;
                        let accept = accept.clone();
                        view! {
                            <div class="terms-text">
                                {t.text.split("\n\n").map(|p| view! { <p>{p.trim_start_matches('#').trim().to_owned()}</p> }).collect_view()}
                            </div>
                            <p class="hint">{format!("Version {version}")}</p>
                            <Show when=needs>
                                <p class="actions">
                                    <button id="accept-terms" on:click={
                                        let accept = accept.clone();
                                        move |_| accept(version)
                                    }>"I accept these terms"</button>
                                </p>
                            </Show>
                        }.into_any()
                    }
                    Err(e) => view! { <p class="error" role="alert">{e.error}</p> }.into_any(),
                })}
            </Suspense>
            {move || error.get().map(|e| view! { <p class="error" role="alert">{e}</p> })}
        </section>
    }
}
