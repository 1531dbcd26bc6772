//! Signing in: a passkey, or a password followed by the code from an authenticator app.

use leptos::prelude::*;
use leptos::task::spawn_local;
use leptos_router::hooks::{use_navigate, use_query_map};
use shared::api::{
    ApiError, CodeRequest, LoginRequest, PasskeyBegin, PasskeyChallenge, PasskeyFinish, SessionInfo,
};

use crate::api::post_json;
use crate::passkey;
use crate::session::{Session, required_page};

/// Where to go once signed in.
fn after_sign_in(info: &SessionInfo) -> &'static str {
    required_page(info).unwrap_or("/workbench")
}

#[component]
pub fn LoginPage() -> impl IntoView {
    let session = Session::get();
    let navigate = use_navigate();
    let query = use_query_map();
    let (user, set_user) = signal(String::new());
    let (password, set_password) = signal(String::new());
    let (code, set_code) = signal(String::new());
    let (error, set_error) = signal(None::<String>);
    let (busy, set_busy) = signal(false);
    let second_factor = move || {
        session.0.with(|s| s.as_ref().and_then(|s| s.stage.as_deref()) == Some("second_factor"))
    };

    let done = {
        let navigate = navigate.clone();
        move |result: Result<SessionInfo, ApiError>| {
            set_busy.set(false);
            match result {
                Ok(info) => {
                    let next = (info.stage.as_deref() != Some("second_factor"))
                        .then(|| after_sign_in(&info));
                    session.apply(info);
                    set_error.set(None);
                    if let Some(next) = next {
                        navigate(next, Default::default());
                    }
                }
                Err(e) => set_error.set(Some(e.error)),
            }
        }
    };
    let sign_in = {
        let done = done.clone();
        move |ev: leptos::ev::SubmitEvent| {
            ev.prevent_default();
            set_busy.set(true);
            let request =
                LoginRequest { user: user.get_untracked(), password: password.get_untracked() };
            let done = done.clone();
            spawn_local(async move { done(post_json("/api/auth/login", &request).await) });
        }
    };
    let send_code = {
        let done = done.clone();
        move |ev: leptos::ev::SubmitEvent| {
            ev.prevent_default();
            set_busy.set(true);
            let request = CodeRequest { code: code.get_untracked().trim().to_owned(), token: None };
            let done = done.clone();
            spawn_local(async move { done(post_json("/api/auth/totp", &request).await) });
        }
    };
    let with_passkey = move |_| {
        let name = user.get_untracked();
        if name.trim().is_empty() {
            set_error.set(Some("enter your user name, then choose the passkey".into()));
            return;
        }
        set_busy.set(true);
        let done = done.clone();
        spawn_local(async move {
            let begin = PasskeyBegin { user: Some(name), token: None };
            let result = async {
                let challenge: PasskeyChallenge =
                    post_json("/api/auth/passkey/start", &begin).await?;
                let credential = passkey::get(&challenge.options)
                    .await
                    .map_err(|error| ApiError { error, did_you_mean: Vec::new(), code: None })?;
                let finish =
                    PasskeyFinish { ceremony: challenge.ceremony, credential, token: None };
                post_json::<_, SessionInfo>("/api/auth/passkey/finish", &finish).await
            }
            .await;
            done(result);
        });
    };
    let ended = move || {
        query.with(|q| match q.get("ended").as_deref() {
            Some("idle") => Some("You were signed out after a while without activity."),
            Some("signout") => Some("You are signed out."),
            _ => None,
        })
    };

    view! {
        <section class="form-page">
            <h1>"Sign in"</h1>
            {move || ended().map(|m| view! { <p class="notice-line">{m}</p> })}
            <Show
                when=second_factor
                fallback=move || view! {
                    <form on:submit=sign_in.clone()>
                        <label>"User name"
                            <input id="user" autocomplete="username webauthn" required
                                prop:value=move || user.get()
                                on:input=move |ev| set_user.set(event_target_value(&ev)) />
                        </label>
                        <label>"Password"
                            <input id="password" type="password" autocomplete="current-password"
                                prop:value=move || password.get()
                                on:input=move |ev| set_password.set(event_target_value(&ev)) />
                        </label>
                        <p class="actions">
                            <button id="sign-in" type="submit" disabled=move || busy.get()>"Sign in with password"</button>
                            " "
                            <button id="sign-in-passkey" type="button" disabled=move || busy.get()
                                on:click=with_passkey.clone()>"Sign in with a passkey"</button>
                        </p>
                    </form>
                }
            >
                <form on:submit=send_code.clone()>
                    <label>"Code from your authenticator app"
                        <input id="code" inputmode="numeric" autocomplete="one-time-code" maxlength="6" required
                            prop:value=move || code.get()
                            on:input=move |ev| set_code.set(event_target_value(&ev)) />
                    </label>
                    <p class="actions"><button id="send-code" type="submit" disabled=move || busy.get()>"Continue"</button></p>
                </form>
            </Show>
            {move || error.get().map(|e| view! { <p class="error" role="alert">{e}</p> })}
            <p class="hint">"New here? Your data steward sends you a link to set up your sign-in."</p>
        </section>
    }
}
