//! The data steward's page: accounts, their enrolment links, roles and deletions.

use leptos::prelude::*;
use leptos::task::spawn_local;
use shared::api::{ApiError, EnrolmentLink, NewUser, UserSummary};

use crate::api::{Empty, encode, get_json, post_json};

#[derive(serde::Serialize)]
struct RoleChange {
    role: String,
}

#[component]
pub fn AdminPage() -> impl IntoView {
    let users = LocalResource::new(|| get_json::<Vec<UserSummary>>("/api/admin/users"));
    let (message, set_message) = signal(None::<String>);
    let (error, set_error) = signal(None::<String>);
    let report = move |result: Result<String, ApiError>| {
        match result {
            Ok(m) => {
                set_error.set(None);
                set_message.set(Some(m));
            }
            Err(e) => {
                set_message.set(None);
                set_error.set(Some(e.error));
            }
        }
        users.refetch();
    };
    let (name, set_name) = signal(String::new());
    let (display_name, set_display_name) = signal(String::new());
    let (role, set_role) = signal("member".to_owned());
    let (email, set_email) = signal(String::new());
    let add = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let new = NewUser {
            name: name.get_untracked().trim().to_owned(),
            display_name: display_name.get_untracked().trim().to_owned(),
            email: Some(email.get_untracked().trim().to_owned()).filter(|e| !e.is_empty()),
            role: role.get_untracked(),
        };
        spawn_local(async move {
            let result = post_json::<_, EnrolmentLink>("/api/admin/users", &new).await;
            report(result.map(|l| {
                let mailed = l.mailed.map(|m| format!(" The e-mail was {m}.")).unwrap_or_default();
                format!("Account made.{mailed} Its one-time enrolment link: {}", l.link)
            }));
        });
    };
    let act = move |user: String, action: &'static str| {
        spawn_local(async move {
            let url = format!("/api/admin/users/{}/{action}", encode(&user));
            let result = match action {
                "enrolment" => post_json::<_, EnrolmentLink>(&url, &Empty {}).await.map(|l| {
                    let mailed = l.mailed.map(|m| format!(" (e-mail {m})")).unwrap_or_default();
                    format!("New enrolment link for {user}{mailed}: {}", l.link)
                }),
                _ => post_json::<_, serde_json::Value>(&url, &Empty {})
                    .await
                    .map(|_| format!("{user} is deleted.")),
            };
            report(result);
        });
    };
    let change_role = move |user: String, role: String| {
        spawn_local(async move {
            let url = format!("/api/admin/users/{}/role", encode(&user));
            let result =
                post_json::<_, serde_json::Value>(&url, &RoleChange { role: role.clone() }).await;
            report(result.map(|_| format!("{user} is now {role}.")));
        });
    };
    view! {
        <section class="admin">
            <h1>"Accounts"</h1>
            {move || message.get().map(|m| view! { <p class="notice-line" id="admin-message">{m}</p> })}
            {move || error.get().map(|e| view! { <p class="error" role="alert">{e}</p> })}
            <form on:submit=add class="inline">
                <label>"User name " <input id="new-user" required on:input=move |ev| set_name.set(event_target_value(&ev)) /></label>
                <label>"Full name " <input id="new-display-name" required on:input=move |ev| set_display_name.set(event_target_value(&ev)) /></label>
                <label>"E-mail (optional) " <input id="new-email" type="email" on:input=move |ev| set_email.set(event_target_value(&ev)) /></label>
                <label>"Role "
                    <select id="new-role" on:change=move |ev| set_role.set(event_target_value(&ev))>
                        <option value="member">"member"</option>
                        <option value="teacher">"teacher"</option>
                        <option value="steward">"steward"</option>
                    </select>
                </label>
                <button id="add-user" type="submit">"Add account"</button>
            </form>
            <Suspense fallback=|| view! { <p>"Loading accounts…"</p> }>
                {move || users.get().map(|list| match list {
                    Err(e) => view! { <p class="error" role="alert">{e.error}</p> }.into_any(),
                    Ok(list) => view! {
                        <table class="users">
                            <thead><tr><th>"User"</th><th>"Name"</th><th>"Role"</th><th>"Sign-in"</th><th></th></tr></thead>
                            <tbody>
                                {list.into_iter().map(|u| {
                                    let (a, b, c) = (u.name.clone(), u.name.clone(), u.name.clone());
                                    let deletion = u.deletion_requested_at.is_some();
                                    view! {
                                        <tr>
                                            <td>{u.name.clone()}</td>
                                            <td>{u.display_name.clone()}</td>
                                            <td>
                                                <select aria-label=format!("Role of {}", u.name) on:change=move |ev| change_role(a.clone(), event_target_value(&ev))>
                                                    {["member", "teacher", "steward"].map(|r| view! { <option value=r selected=u.role == r>{r}</option> })}
                                                </select>
                                            </td>
                                            <td>{if u.method == "none" { "not enrolled".to_owned() } else { u.method.clone() }}</td>
                                            <td>
                                                <button on:click=move |_| act(b.clone(), "enrolment")>"New enrolment link"</button>
                                                {deletion.then(|| view! {
                                                    " "<button class="danger" on:click=move |_| act(c.clone(), "delete")>"Delete (requested)"</button>
                                                })}
                                            </td>
                                        </tr>
                                    }
                                }).collect_view()}
                            </tbody>
                        </table>
                    }.into_any(),
                })}
            </Suspense>
            <AuditPanel />
        </section>
    }
}

/// The newest records of the audit log: every released output and security event, with the
/// chain's head to check the whole log against (`skjold audit verify`).
#[component]
fn AuditPanel() -> impl IntoView {
    let page =
        LocalResource::new(|| get_json::<shared::api::AuditPage>("/api/admin/audit?limit=200"));
    let text = |v: &serde_json::Value, key: &str| match &v[key] {
        serde_json::Value::String(s) => s.clone(),
        serde_json::Value::Null => String::new(),
        other => other.to_string(),
    };
    view! {
        <h2>"Audit log"</h2>
        <Suspense fallback=|| ()>
            {move || page.get().map(|p| match p {
                Err(e) => view! { <p class="error">{e.error}</p> }.into_any(),
                Ok(p) => view! {
                    <p class="hint" id="audit-head">{p.head.map_or("The log keeps no head yet.".to_owned(), |h| format!("Head of the chain: {h}"))}</p>
                    <table class="result" id="audit">
                        <thead><tr>
                            <th scope="col">"#"</th><th scope="col">"Time"</th><th scope="col">"User"</th>
                            <th scope="col">"What"</th><th scope="col">"Decisions or detail"</th>
                        </tr></thead>
                        <tbody>
                            {p.records.into_iter().map(|r| {
                                let what = if r.get("event").is_some() {
                                    text(&r, "event")
                                } else {
                                    format!("{} (line {}, {})", text(&r, "command"), text(&r, "line"), text(&r, "kind"))
                                };
                                let detail = match r.get("decisions").and_then(|d| d.as_array()) {
                                    Some(d) => d.iter().map(|d| format!("rule {}: {}", text(d, "rule"), text(d, "outcome"))).collect::<Vec<_>>().join("; "),
                                    None => text(&r, "detail"),
                                };
                                let review = text(&r, "review");
                                let detail = if review.is_empty() { detail } else { format!("{detail} · review: {review}") };
                                let time = r["time"].as_i64().map(|t| super::tokens::time_text(t, false)).unwrap_or_default();
                                view! {
                                    <tr>
                                        <th scope="row">{text(&r, "seq")}</th><td>{time}</td><td>{text(&r, "user")}</td>
                                        <td>{what}</td><td>{detail}</td>
                                    </tr>
                                }
                            }).collect_view()}
                        </tbody>
                    </table>
                }.into_any(),
            })}
        </Suspense>
    }
}
