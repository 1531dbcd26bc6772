//! Personal access tokens on the account page: the batch client (`skjold batch`) signs in with
//! one. A new token is shown once; the list shows when each was last used.

use leptos::prelude::*;
use leptos::task::spawn_local;
use shared::api::{AccessTokenInfo, CreatedAccessToken, NewAccessToken};

use crate::api::{delete_json, get_json, post_json};

/// A Unix time in seconds (or milliseconds with `ms`) as `YYYY-MM-DD HH:MM UTC`.
pub fn time_text(at: i64, ms: bool) -> String {
    let millis = if ms { at } else { at.saturating_mul(1000) } as f64;
    let iso = String::from(js_sys::Date::new(&millis.into()).to_iso_string());
    format!("{} UTC", iso.get(..16).unwrap_or(&iso).replace('T', " "))
}

#[component]
pub fn TokensPanel() -> impl IntoView {
    let tokens =
        LocalResource::new(|| async { get_json::<Vec<AccessTokenInfo>>("/api/tokens").await });
    let (name, set_name) = signal("batch client".to_owned());
    let (days, set_days) = signal("30".to_owned());
    let (created, set_created) = signal(None::<String>);
    let (error, set_error) = signal(None::<String>);
    let create = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let request = NewAccessToken {
            name: name.get_untracked(),
            days: days.get_untracked().trim().parse().unwrap_or(0),
        };
        spawn_local(async move {
            match post_json::<_, CreatedAccessToken>("/api/tokens", &request).await {
                Ok(made) => {
                    set_error.set(None);
                    set_created.set(Some(made.token));
                    tokens.refetch();
                }
                Err(e) => set_error.set(Some(e.error)),
            }
        });
    };
    let revoke = move |id: i64| {
        spawn_local(async move {
            match delete_json::<serde_json::Value>(&format!("/api/tokens/{id}")).await {
                Ok(_) => set_error.set(None),
                Err(e) => set_error.set(Some(e.error)),
            }
            tokens.refetch();
        });
    };
    view! {
        <h2>"Access tokens"</h2>
        <p>"The batch client signs in with a token: "<code>"SKJOLD_TOKEN=… skjold batch submit job.mds --server …"</code>
            ". A token acts with your grants until it expires or you revoke it."</p>
        <form on:submit=create class="inline">
            <label>"Name " <input id="token-name" prop:value=move || name.get()
                on:input=move |ev| set_name.set(event_target_value(&ev)) /></label>
            " " <label>"Days " <input id="token-days" type="number" min="1" max="365" prop:value=move || days.get()
                on:input=move |ev| set_days.set(event_target_value(&ev)) /></label>
            " " <button id="create-token" type="submit">"Create token"</button>
        </form>
        {move || created.get().map(|t| view! {
            <p class="notice-line">"Your new token, shown this once: copy it now. "
                <code id="new-token">{t}</code></p>
        })}
        {move || error.get().map(|e| view! { <p class="error" role="alert">{e}</p> })}
        <Suspense fallback=|| ()>
            <ul class="tokens" id="tokens">
                {move || tokens.get().and_then(Result::ok).unwrap_or_default().into_iter().map(|t| {
                    let used = t.last_used_at.map_or("never used".to_owned(), |u| format!("last used {}", time_text(u, false)));
                    let label = format!("{}: expires {}, {used}", t.name, time_text(t.expires_at, false));
                    let id = t.id;
                    view! { <li>{label}" " <button class="danger" on:click=move |_| revoke(id)>"Revoke"</button></li> }
                }).collect_view()}
            </ul>
        </Suspense>
    }
}
