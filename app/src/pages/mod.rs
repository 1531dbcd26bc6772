//! One module per page.

pub mod account;
pub mod admin;
pub mod catalog;
pub mod enrol;
pub mod export;
pub mod files;
pub mod history;
pub mod jobs;
pub mod login;
pub mod rules;
pub mod terms;
pub mod tokens;
pub mod variable;
pub mod workbench;

use leptos::prelude::*;

#[component]
pub fn NotFound() -> impl IntoView {
    view! {
        <section class="notice">
            <h1>"Page not found"</h1>
            <p><a href="/">"Search the variable catalog"</a></p>
        </section>
    }
}
