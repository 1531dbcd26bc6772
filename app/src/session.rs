//! Who is signed in, shared by every page: the session from `GET /api/session`, the gate that
//! sends a half-signed-in user to the one page they may use, and the idle prompt.

use std::time::Duration;

use leptos::prelude::*;
use leptos::task::spawn_local;
use leptos_router::hooks::{use_location, use_navigate};
use shared::api::SessionInfo;

use crate::api::{Empty, get_json, post_json, set_csrf};

/// The session as last reported; `None` until the first answer.
#[derive(Clone, Copy)]
pub struct Session(pub RwSignal<Option<SessionInfo>>);

impl Session {
    pub fn get() -> Session {
        expect_context::<Session>()
    }

    /// Takes a `SessionInfo` the server sent (sign-in steps answer with one).
    pub fn apply(self, info: SessionInfo) {
        set_csrf(info.csrf.clone());
        self.0.set(Some(info));
    }

    pub fn refresh(self) {
        spawn_local(async move {
            if let Ok(info) = get_json::<SessionInfo>("/api/session").await {
                self.apply(info);
            }
        });
    }

    pub fn signed_in(self) -> bool {
        self.0.with(|s| s.as_ref().is_some_and(|s| s.signed_in))
    }

    pub fn role(self) -> Option<String> {
        self.0.with(|s| s.as_ref().and_then(|s| s.role.clone()))
    }
}

/// Where a session in `info` must go before anything else, if anywhere.
pub fn required_page(info: &SessionInfo) -> Option<&'static str> {
    match info.stage.as_deref() {
        Some("change_password") => Some("/account"),
        Some("active") if info.needs_terms => Some("/terms"),
        _ => None,
    }
}

/// Sends a user with a password to change or terms to accept to that page, whatever they
/// open: nothing else is reachable until then (the server refuses it too).
#[component]
pub fn SessionGate() -> impl IntoView {
    let session = Session::get();
    let location = use_location();
    let navigate = use_navigate();
    Effect::new(move |_| {
        let path = location.pathname.get();
        let target = session.0.with(|s| s.as_ref().and_then(required_page));
        if let Some(target) = target
            && path != target
        {
            navigate(target, Default::default());
        }
    });
}

/// The "stay signed in?" prompt: shown for the last `idle_warning` seconds before idle
/// sign-out. Polling `/api/session` is not activity, so the server's count stays true; the
/// prompt counts down locally between polls.
#[component]
pub fn IdlePrompt() -> impl IntoView {
    let session = Session::get();
    let left = RwSignal::new(i64::MAX);
    let navigate = use_navigate();
    Effect::new(move |_| {
        if let Some(info) = session.0.get() {
            left.set(if info.stage.is_some() { info.idle_left } else { i64::MAX });
        }
    });
    // Set when the countdown runs out, so that the sign-out that follows is told apart from
    // one the user asked for (those pages navigate by themselves).
    let expiring = RwSignal::new(false);
    let ticks = RwSignal::new(0u32);
    let _ = set_interval_with_handle(
        move || {
            if left.get_untracked() == i64::MAX {
                return;
            }
            left.update(|l| *l -= 1);
            ticks.update(|t| *t += 1);
            if left.get_untracked() <= 0 {
                expiring.set(true);
            }
            // Ask the server now and then, and at the end, in case another tab kept us alive.
            if ticks.get_untracked().is_multiple_of(15) || left.get_untracked() <= 0 {
                session.refresh();
            }
        },
        Duration::from_secs(1),
    );
    Effect::new(move |previous: Option<bool>| {
        let signed_in = session.0.with(|s| s.as_ref().is_some_and(|s| s.stage.is_some()));
        if previous == Some(true) && !signed_in && expiring.get_untracked() {
            expiring.set(false);
            navigate("/login?ended=idle", Default::default());
        } else if signed_in {
            expiring.set(false);
        }
        signed_in
    });
    let warning = move || session.0.with(|s| s.as_ref().map_or(0, |s| s.idle_warning));
    let stay = move |_| {
        spawn_local(async move {
            if let Ok(info) = post_json::<_, SessionInfo>("/api/session/keepalive", &Empty {}).await
            {
                session.apply(info);
            }
        });
    };
    view! {
        <Show when=move || { left.get() <= warning() && left.get() > 0 }>
            <div class="idle-prompt" role="alertdialog" aria-labelledby="idle-title">
                <h2 id="idle-title">"Stay signed in?"</h2>
                <p>{move || format!("You will be signed out in {} s because nothing has happened for a while.", left.get())}</p>
                <button id="stay-signed-in" on:click=stay>"Stay signed in"</button>
            </div>
        </Show>
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn half_signed_in_users_are_sent_to_the_one_page_they_may_use() {
        let mut info = SessionInfo { stage: Some("change_password".into()), ..Default::default() };
        assert_eq!(required_page(&info), Some("/account"));
        info.stage = Some("active".into());
        info.needs_terms = true;
        assert_eq!(required_page(&info), Some("/terms"));
        info.needs_terms = false;
        assert_eq!(required_page(&info), None);
        assert_eq!(required_page(&SessionInfo::default()), None);
    }
}
