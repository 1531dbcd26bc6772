//! Enrolment from the one-time link a data steward passed on (`/enrol#TOKEN`: the token stays
//! in the fragment, so it never reaches a server log). The user links exactly one method: a
//! passkey, or a password with an authenticator app.

use leptos::prelude::*;
use leptos::task::spawn_local;
use shared::api::{
    ApiError, CodeRequest, EnrolRequest, EnrolStatus, PasskeyBegin, PasskeyChallenge,
    PasskeyFinish, TotpSetup,
};

use crate::api::post_json;
use crate::passkey;

#[derive(Clone, Debug, PartialEq)]
enum Step {
    Loading,
    Choose(EnrolStatus),
    Password(EnrolStatus),
    Code(TotpSetup),
    Done(&'static str),
    Broken(String),
}

fn token_from_fragment() -> String {
    let hash = window().location().hash().unwrap_or_default();
    hash.trim_start_matches('#').to_owned()
}

fn failed(error: String) -> ApiError {
    ApiError { error, did_you_mean: Vec::new(), code: None }
}

#[component]
pub fn EnrolPage() -> impl IntoView {
    let token = token_from_fragment();
    let step = RwSignal::new(Step::Loading);
    let (error, set_error) = signal(None::<String>);
    let (password, set_password) = signal(String::new());
    let (repeat, set_repeat) = signal(String::new());
    let (code, set_code) = signal(String::new());
    {
        let token = token.clone();
        spawn_local(async move {
            let request = EnrolRequest { token, password: None };
            step.set(match post_json::<_, EnrolStatus>("/api/enrol/status", &request).await {
                Ok(status) => Step::Choose(status),
                Err(e) => Step::Broken(e.error),
            });
        });
    }

    let choose_passkey = {
        let token = token.clone();
        move |_| {
            let token = token.clone();
            set_error.set(None);
            spawn_local(async move {
                let result = async {
                    let begin = PasskeyBegin { user: None, token: Some(token.clone()) };
                    let challenge: PasskeyChallenge =
                        post_json("/api/enrol/passkey/start", &begin).await?;
                    let credential = passkey::create(&challenge.options).await.map_err(failed)?;
                    let finish = PasskeyFinish {
                        ceremony: challenge.ceremony,
                        credential,
                        token: Some(token),
                    };
                    post_json::<_, serde_json::Value>("/api/enrol/passkey/finish", &finish).await
                }
                .await;
                match result {
                    Ok(_) => step.set(Step::Done("passkey")),
                    Err(e) => set_error.set(Some(e.error)),
                }
            });
        }
    };
    let set_new_password = {
        let token = token.clone();
        move |ev: leptos::ev::SubmitEvent| {
            ev.prevent_default();
            if password.get_untracked() != repeat.get_untracked() {
                set_error.set(Some("the two passwords differ: type the same one twice".into()));
                return;
            }
            set_error.set(None);
            let request =
                EnrolRequest { token: token.clone(), password: Some(password.get_untracked()) };
            spawn_local(async move {
                match post_json::<_, TotpSetup>("/api/enrol/password", &request).await {
                    Ok(setup) => step.set(Step::Code(setup)),
                    Err(e) => set_error.set(Some(e.error)),
                }
            });
        }
    };
    let confirm_code = {
        let token = token.clone();
        move |ev: leptos::ev::SubmitEvent| {
            ev.prevent_default();
            set_error.set(None);
            let request = CodeRequest {
                code: code.get_untracked().trim().to_owned(),
                token: Some(token.clone()),
            };
            spawn_local(async move {
                match post_json::<_, serde_json::Value>("/api/enrol/totp", &request).await {
                    Ok(_) => step.set(Step::Done("password and authenticator app")),
                    Err(e) => set_error.set(Some(e.error)),
                }
            });
        }
    };

    let body = move || {
        match step.get() {
        Step::Loading => view! { <p>"Checking your link…"</p> }.into_any(),
        Step::Broken(message) => view! {
            <p class="error" role="alert">{message}</p>
            <p>"Ask your data steward for a new link."</p>
        }
        .into_any(),
        Step::Choose(status) => {
            let replaces = match status.method.as_str() {
                "password" => " It replaces your password and authenticator app.",
                "passkey" => " It replaces your passkeys.",
                _ => "",
            };
            let for_password = status.clone();
            view! {
                <p>{format!("Welcome, {} ({}). Choose how you will sign in.{replaces}", status.display_name, status.user)}</p>
                <div class="choices">
                    <div class="choice">
                        <h2>"A passkey (recommended)"</h2>
                        <p>"Your device's screen lock, fingerprint or a security key. Nothing to remember, nothing to phish."</p>
                        <button id="choose-passkey" disabled=!passkey::supported() on:click=choose_passkey.clone()>"Create a passkey"</button>
                    </div>
                    <div class="choice">
                        <h2>"A password and an authenticator app"</h2>
                        <p>"At least 12 characters from three of: lower case, upper case, digits, other characters. Then a code from an app such as Google Authenticator, Microsoft Authenticator or FreeOTP."</p>
                        <button id="choose-password" on:click=move |_| step.set(Step::Password(for_password.clone()))>"Use a password"</button>
                    </div>
                </div>
            }
            .into_any()
        }
        Step::Password(status) => view! {
            <form on:submit=set_new_password.clone()>
                <input type="hidden" autocomplete="username" value=status.user />
                <label>"New password"
                    <input id="new-password" type="password" autocomplete="new-password" required
                        on:input=move |ev| set_password.set(event_target_value(&ev)) />
                </label>
                <label>"The same password again"
                    <input id="repeat-password" type="password" autocomplete="new-password" required
                        on:input=move |ev| set_repeat.set(event_target_value(&ev)) />
                </label>
                <p class="actions"><button id="save-password" type="submit">"Continue"</button></p>
            </form>
        }
        .into_any(),
        Step::Code(setup) => view! {
            <p>"Scan this code with your authenticator app, then type the six digits it shows."</p>
            <div class="qr" inner_html=setup.qr_svg></div>
            <p>"Cannot scan? Enter this key by hand: " <code id="totp-secret">{setup.secret}</code></p>
            <form on:submit=confirm_code.clone()>
                <label>"Code"
                    <input id="code" inputmode="numeric" autocomplete="one-time-code" maxlength="6" required
                        on:input=move |ev| set_code.set(event_target_value(&ev)) />
                </label>
                <p class="actions"><button id="confirm-code" type="submit">"Finish"</button></p>
            </form>
        }
        .into_any(),
        Step::Done(method) => view! {
            <p id="enrolled">{format!("Done: you sign in with a {method}.")}</p>
            <p><a href="/login">"Sign in"</a></p>
        }
        .into_any(),
    }
    };

    view! {
        <section class="form-page">
            <h1>"Set up your sign-in"</h1>
            {body}
            {move || error.get().map(|e| view! { <p class="error" role="alert">{e}</p> })}
        </section>
    }
}
