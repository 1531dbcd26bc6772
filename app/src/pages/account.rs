//! The signed-in user's own account: password, passkeys, courses, sessions and deletion.

use leptos::prelude::*;
use leptos::task::spawn_local;
use leptos_router::hooks::use_navigate;
use shared::api::{
    ApiError, EnrolmentLink, PasskeyChallenge, PasskeyFinish, PasswordChange, ProjectSummary,
    Reauthentication, SessionInfo,
};

use crate::api::{Empty, get_json, post_json};
use crate::passkey;
use crate::session::Session;

#[derive(serde::Serialize)]
struct Join {
    code: String,
}

#[derive(serde::Serialize)]
struct NewCourse {
    name: String,
}

#[derive(serde::Deserialize)]
struct Scheduled {
    deleted_by: i64,
}

#[component]
pub fn AccountPage() -> impl IntoView {
    let session = Session::get();
    let navigate = use_navigate();
    let (message, set_message) = signal(None::<String>);
    let (error, set_error) = signal(None::<String>);
    let report = move |result: Result<String, shared::api::ApiError>| match result {
        Ok(m) => {
            set_error.set(None);
            set_message.set(Some(m));
        }
        Err(e) => {
            set_message.set(None);
            set_error.set(Some(e.error));
        }
    };
    let info = move || session.0.get().unwrap_or_default();
    let must_change = move || info().stage.as_deref() == Some("change_password");
    // A memo: the idle prompt's session poll must not refetch (refetching is activity).
    let active = Memo::new(move |_| info().signed_in && !info().needs_terms);
    let projects = LocalResource::new(move || async move {
        if active.get() {
            get_json::<Vec<ProjectSummary>>("/api/projects").await.unwrap_or_default()
        } else {
            Vec::new()
        }
    });

    let (current, set_current) = signal(String::new());
    let (new, set_new) = signal(String::new());
    let change_password = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let request = PasswordChange { current: current.get_untracked(), new: new.get_untracked() };
        spawn_local(async move {
            let result = post_json::<_, SessionInfo>("/api/account/password", &request).await;
            report(result.map(|info| {
                session.apply(info);
                "Your password is changed.".to_owned()
            }));
        });
    };
    let (join_code, set_join_code) = signal(String::new());
    let join =
        move |ev: leptos::ev::SubmitEvent| {
            ev.prevent_default();
            let request = Join { code: join_code.get_untracked().trim().to_owned() };
            spawn_local(async move {
                let result = post_json::<_, serde_json::Value>("/api/courses/join", &request).await;
                report(result.map(|v| {
                    format!("You joined {}.", v["joined"].as_str().unwrap_or("the course"))
                }));
                projects.refetch();
            });
        };
    let (course_name, set_course_name) = signal(String::new());
    let open_course = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let request = NewCourse { name: course_name.get_untracked().trim().to_owned() };
        spawn_local(async move {
            let result = post_json::<_, ProjectSummary>("/api/courses", &request).await;
            report(result.map(|c| {
                format!(
                    "Course {} is open; students join with the code {}.",
                    c.name,
                    c.join_code.unwrap_or_default()
                )
            }));
            projects.refetch();
        });
    };
    // Switching method and adding a passkey need the credential proved again first: a
    // passkey assertion, or the password and a fresh code typed into the fields below.
    let (reauth_password, set_reauth_password) = signal(String::new());
    let (reauth_code, set_reauth_code) = signal(String::new());
    let reauthenticate = move |_| {
        spawn_local(async move {
            let result = async {
                let proof = if info().method.as_deref() == Some("passkey") {
                    let challenge: PasskeyChallenge =
                        post_json("/api/account/reauth/passkey/start", &Empty {}).await?;
                    let credential = passkey::get(&challenge.options).await.map_err(|error| {
                        ApiError { error, did_you_mean: Vec::new(), code: None }
                    })?;
                    Reauthentication {
                        ceremony: Some(challenge.ceremony),
                        credential: Some(credential),
                        ..Default::default()
                    }
                } else {
                    Reauthentication {
                        password: Some(reauth_password.get_untracked()),
                        code: Some(reauth_code.get_untracked().trim().to_owned()),
                        ..Default::default()
                    }
                };
                post_json::<_, serde_json::Value>("/api/account/reauth", &proof).await
            }
            .await;
            report(result.map(|_| {
                "Confirmed: for five minutes you may switch method or add a passkey.".to_owned()
            }));
        });
    };
    let add_passkey = move |_| {
        spawn_local(async move {
            let result = async {
                let challenge: PasskeyChallenge =
                    post_json("/api/account/passkeys/start", &Empty {}).await?;
                let credential = passkey::create(&challenge.options)
                    .await
                    .map_err(|error| ApiError { error, did_you_mean: Vec::new(), code: None })?;
                let finish =
                    PasskeyFinish { ceremony: challenge.ceremony, credential, token: None };
                post_json::<_, serde_json::Value>("/api/account/passkeys/finish", &finish).await
            }
            .await;
            report(result.map(|_| "Another passkey now signs you in.".to_owned()));
        });
    };
    let switch_method = move |_| {
        spawn_local(async move {
            let result =
                post_json::<_, EnrolmentLink>("/api/account/switch-method", &Empty {}).await;
            report(result.map(|l| {
                format!(
                    "Open this link to set up the other method (it replaces the current one): {}",
                    l.link
                )
            }));
        });
    };
    let sign_out_everywhere = {
        let navigate = navigate.clone();
        move |_| {
            let navigate = navigate.clone();
            spawn_local(async move {
                match post_json::<_, SessionInfo>("/api/auth/logout-all", &Empty {}).await {
                    Ok(info) => {
                        session.apply(info);
                        navigate("/login?ended=signout", Default::default());
                    }
                    Err(e) => report(Err(e)),
                }
            });
        }
    };
    let request_deletion = move |_| {
        let confirmed = window()
            .confirm_with_message("Delete your account? A data steward carries it out, at the latest after the grace period.")
            .unwrap_or(false);
        if !confirmed {
            return;
        }
        spawn_local(async move {
            let result = post_json::<_, Scheduled>("/api/account/delete", &Empty {}).await;
            report(result.map(|s| {
                let date = js_sys::Date::new(&((s.deleted_by as f64) * 1000.0).into());
                format!(
                    "Deletion requested: your account goes by {}.",
                    String::from(date.to_date_string())
                )
            }));
        });
    };

    view! {
        <section class="account">
            <h1>"Your account"</h1>
            <p>{move || info().display_name.map(|n| format!("Signed in as {n} ({}).", info().user.unwrap_or_default()))}</p>
            {move || message.get().map(|m| view! { <p class="notice-line" id="account-message">{m}</p> })}
            {move || error.get().map(|e| view! { <p class="error" role="alert">{e}</p> })}
            <Show when=move || must_change() || info().method.as_deref() == Some("password")>
                <h2>"Password"</h2>
                <Show when=must_change>
                    <p class="notice-line">"Your password was set for you: choose your own before you go on."</p>
                </Show>
                <form on:submit=change_password>
                    <label>"Current password"
                        <input id="current-password" type="password" autocomplete="current-password" required
                            on:input=move |ev| set_current.set(event_target_value(&ev)) />
                    </label>
                    <label>"New password"
                        <input id="new-password" type="password" autocomplete="new-password" required
                            on:input=move |ev| set_new.set(event_target_value(&ev)) />
                    </label>
                    <p class="actions"><button id="change-password" type="submit">"Change password"</button></p>
                </form>
            </Show>
            <Show when=move || active.get()>
                <h2>"Projects and courses"</h2>
                <Suspense fallback=|| ()>
                    <ul class="projects">
                        {move || projects.get().unwrap_or_default().into_iter().map(|p| {
                            let code = p.join_code.map(|c| format!(" · join code {c}")).unwrap_or_default();
                            view! { <li>{format!("{} ({}): {}{code}", p.name, p.kind, p.grants.join(", "))}</li> }
                        }).collect_view()}
                    </ul>
                </Suspense>
                <form on:submit=join class="inline">
                    <label>"Join a course with its code "
                        <input id="join-code" on:input=move |ev| set_join_code.set(event_target_value(&ev)) />
                    </label>
                    <button type="submit">"Join"</button>
                </form>
                <Show when=move || matches!(info().role.as_deref(), Some("teacher" | "steward"))>
                    <form on:submit=open_course class="inline">
                        <label>"Open a course on the synthetic data "
                            <input id="course-name" on:input=move |ev| set_course_name.set(event_target_value(&ev)) />
                        </label>
                        <button type="submit">"Open course"</button>
                    </form>
                </Show>
                <super::tokens::TokensPanel />
                <h2>"Sign-in"</h2>
                <p>"Switching method or adding a passkey asks you to confirm it is you first."</p>
                <Show when=move || info().method.as_deref() == Some("password")>
                    <label>"Password"
                        <input id="reauth-password" type="password" autocomplete="current-password"
                            on:input=move |ev| set_reauth_password.set(event_target_value(&ev)) />
                    </label>
                    <label>"Code from your authenticator app"
                        <input id="reauth-code" inputmode="numeric" autocomplete="one-time-code"
                            on:input=move |ev| set_reauth_code.set(event_target_value(&ev)) />
                    </label>
                </Show>
                <p class="actions">
                    <button id="reauth" on:click=reauthenticate>"Confirm it is you"</button>
                </p>
                <p class="actions">
                    <Show when=move || info().method.as_deref() == Some("passkey")>
                        <button id="add-passkey" on:click=add_passkey>"Add another passkey"</button>
                        " "
                    </Show>
                    <button id="switch-method" on:click=switch_method>"Switch sign-in method"</button>
                    " "
                    <button id="sign-out-everywhere" on:click=sign_out_everywhere.clone()>"Sign out everywhere"</button>
                </p>
                <h2>"Delete account"</h2>
                <p><button id="request-deletion" class="danger" on:click=request_deletion>"Request deletion of my account"</button></p>
            </Show>
        </section>
    }
}
