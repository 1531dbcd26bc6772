//! The Skjold browser app: the public variable catalog and the workbench.

mod api;
mod pages;
mod passkey;
mod session;

use leptos::prelude::*;
use leptos::task::spawn_local;
use leptos_router::components::{A, Route, Router, Routes};
use leptos_router::hooks::use_navigate;
use leptos_router::path;
use shared::api::SessionInfo;

use crate::api::{Empty, post_json};
use crate::session::{IdlePrompt, Session, SessionGate};

fn main() {
    console_error_panic_hook::set_once();
    leptos::mount::mount_to_body(App);
}

#[component]
fn App() -> impl IntoView {
    let session = Session(RwSignal::new(None));
    provide_context(session);
    session.refresh();
    view! {
        <Router>
            <a class="skip" href="#main">"Skip to content"</a>
            <header class="top">
                <A href="/" attr:class="brand">"Skjold"</A>
                <nav aria-label="Main">
                    <A href="/">"Variable catalog"</A>
                    <A href="/workbench">"Workbench"</A>
                    <A href="/rules/demo">"Disclosure rules"</A>
                    <JobsLink />
                </nav>
                <AccountMenu />
            </header>
            <SessionGate />
            <IdlePrompt />
            <main id="main">
                <Routes fallback=pages::NotFound>
                    <Route path=path!("/") view=pages::catalog::CatalogPage />
                    <Route path=path!("/variables/:name") view=pages::variable::VariablePage />
                    <Route path=path!("/workbench") view=pages::workbench::WorkbenchPage />
                    <Route path=path!("/rules/:name") view=pages::rules::RulesPage />
                    <Route path=path!("/login") view=pages::login::LoginPage />
                    <Route path=path!("/enrol") view=pages::enrol::EnrolPage />
                    <Route path=path!("/terms") view=pages::terms::TermsPage />
                    <Route path=path!("/account") view=pages::account::AccountPage />
                    <Route path=path!("/admin") view=pages::admin::AdminPage />
                    <Route path=path!("/jobs") view=pages::jobs::JobsPage />
                </Routes>
            </main>
        </Router>
    }
}

/// The Jobs page, for users who are signed in.
#[component]
fn JobsLink() -> impl IntoView {
    let session = Session::get();
    view! {
        <Show when=move || session.signed_in()>
            <A href="/jobs">"Jobs"</A>
        </Show>
    }
}

/// Sign in, or who is signed in with their account, the steward's page and sign out.
#[component]
fn AccountMenu() -> impl IntoView {
    let session = Session::get();
    let navigate = use_navigate();
    let sign_out = move |_| {
        let navigate = navigate.clone();
        spawn_local(async move {
            if let Ok(info) = post_json::<_, SessionInfo>("/api/auth/logout", &Empty {}).await {
                session.apply(info);
            }
            navigate("/login?ended=signout", Default::default());
        });
    };
    view! {
        <nav class="account-menu" aria-label="Account">
            <Show
                when=move || session.signed_in()
                fallback=|| view! { <A href="/login">"Sign in"</A> }
            >
                <A href="/account">{move || session.0.with(|s| s.as_ref().and_then(|s| s.display_name.clone()).unwrap_or_default())}</A>
                <Show when=move || session.role().as_deref() == Some("steward")>
                    <A href="/admin">"Accounts"</A>
                </Show>
                <button id="sign-out" class="link" on:click=sign_out.clone()>"Sign out"</button>
            </Show>
        </nav>
    }
}
