//! The Skjold browser app: the public variable catalog and the workbench.

mod api;
mod pages;

use leptos::prelude::*;
use leptos_router::components::{A, Route, Router, Routes};
use leptos_router::path;

fn main() {
    console_error_panic_hook::set_once();
    leptos::mount::mount_to_body(App);
}

#[component]
fn App() -> impl IntoView {
    view! {
        <Router>
            <a class="skip" href="#main">"Skip to content"</a>
            <header class="top">
                <A href="/" attr:class="brand">"Skjold"</A>
                <nav aria-label="Main">
                    <A href="/">"Variable catalog"</A>
                    <A href="/workbench">"Workbench"</A>
                    <A href="/rules/demo">"Disclosure rules"</A>
                </nav>
            </header>
            <main id="main">
                <Routes fallback=pages::NotFound>
                    <Route path=path!("/") view=pages::catalog::CatalogPage />
                    <Route path=path!("/variables/:name") view=pages::variable::VariablePage />
                    <Route path=path!("/workbench") view=pages::workbench::WorkbenchPage />
                    <Route path=path!("/rules/:name") view=pages::rules::RulesPage />
                </Routes>
            </main>
        </Router>
    }
}
