//! The workbench: a script editor with line numbers and diagnostics as you type (the shared
//! parser, compiled to WASM: no round trip), Run (Ctrl+Enter runs the current line or the
//! selection, Ctrl+Shift+Enter the whole script), and the released outputs in order: tables,
//! statistics, models, charts as SVG, each table or chart with its downloads.

use leptos::prelude::*;
use leptos::task::spawn_local;
use shared::api::{
    ApiError, JobSummary, OrderResponse, ProjectSummary, RunRequest, SubmitJob, VariablePage,
};
use shared::output::{Chart, Model, Output, OutputBody, Summary, Table, format_number};
use shared::script::{line_column, parse};
use wasm_bindgen::JsCast;

use crate::api::{RunProgress, get_json, post_json, run_streamed};
use crate::session::Session;

const EXAMPLE: &str = "require demo:1 as db
create-dataset persons
import db/BEFOLKNING_KJOENN as sex
import db/BEFOLKNING_FOEDSELS_AAR_MND as birth
generate age = 2021 - int(birth / 100)
import db/INNTEKT_WLONN 2021-12-31 as wage
keep if age >= 25 & age <= 66
tabulate sex, summarize(wage)
histogram wage
";

/// One problem the parser found, for the list under the editor.
#[derive(Clone, Debug, PartialEq)]
struct Problem {
    line: usize,
    column: usize,
    message: String,
}

fn problems(script: &str) -> Vec<Problem> {
    parse(script)
        .diagnostics
        .into_iter()
        .map(|d| {
            let (line, column) = line_column(script, d.span.start);
            Problem { line, column, message: d.message }
        })
        .collect()
}

/// The byte offset in `text` of a browser's selection offset, which counts UTF-16 units.
fn byte_offset(text: &str, units: u32) -> usize {
    let mut seen = 0u32;
    for (byte, ch) in text.char_indices() {
        if seen >= units {
            return byte;
        }
        seen += ch.len_utf16() as u32;
    }
    text.len()
}

/// The text to run for Ctrl+Enter: the selection, else the line the caret is on; with the
/// number of lines before it, so output lines can be shown as lines of the whole script.
fn selected_text(script: &str, start: usize, end: usize) -> (String, u32) {
    let (start, end) = (start.min(script.len()), end.min(script.len()));
    let clamp = |i: usize| (0..=i).rev().find(|&j| script.is_char_boundary(j)).unwrap_or(0);
    let (start, end) = (clamp(start), clamp(end));
    let line_start = script[..start].rfind('\n').map_or(0, |i| i + 1);
    let offset = script[..line_start].matches('\n').count() as u32;
    if start != end {
        return (script[line_start..end].to_owned(), offset);
    }
    let line_end = script[start..].find('\n').map_or(script.len(), |i| start + i);
    (script[line_start..line_end].to_owned(), offset)
}

/// Pages of the catalogue read for completion (100 variables each).
const CATALOG_PAGES: usize = 20;

/// The editor's line (0-based) at `offset_y` pixels from the textarea's top edge. Lines do
/// not wrap (`white-space: pre`), so a line is one line height.
fn line_under(area: &web_sys::HtmlTextAreaElement, offset_y: i32) -> usize {
    let style = web_sys::window().and_then(|w| w.get_computed_style(area).ok().flatten());
    let pixels = |name: &str| {
        let value = style.as_ref()?.get_property_value(name).ok()?;
        value.trim_end_matches("px").parse::<f64>().ok()
    };
    let line_height = pixels("line-height").or_else(|| pixels("font-size").map(|f| f * 1.2));
    let line_height = line_height.filter(|h| *h > 0.0).unwrap_or(18.0);
    let y =
        f64::from(offset_y) + f64::from(area.scroll_top()) - pixels("padding-top").unwrap_or(0.0);
    (y / line_height).floor().max(0.0) as usize
}

/// The datastore of the script's first `require`, for the link to its rules.
fn required_datastore(script: &str) -> Option<String> {
    script.lines().find_map(|line| {
        let spec = line.trim_start().strip_prefix("require ")?.split_whitespace().next()?;
        Some(spec.split(':').next().unwrap_or(spec).to_owned())
    })
}

#[component]
pub fn WorkbenchPage() -> impl IntoView {
    let (script, set_script) = signal(EXAMPLE.to_owned());
    let diagnostics = Memo::new(move |_| script.with(|s| problems(s)));
    let (outputs, set_outputs) = signal(Vec::<Output>::new());
    let (running, set_running) = signal(false);
    let (failure, set_failure) = signal(None::<String>);
    // The command running, streamed by the server; the last one stays shown after the run.
    let (progress, set_progress) = signal(None::<RunProgress>);
    let gutter = NodeRef::<leptos::html::Pre>::new();
    let editor = NodeRef::<leptos::html::Textarea>::new();
    // Signed in, a script runs in one of the user's projects and imports what it is granted.
    let session = Session::get();
    // A memo, so the session poll of the idle prompt does not refetch (which the server would
    // count as activity, keeping an idle session alive for ever).
    let signed_in = Memo::new(move |_| session.signed_in());
    let projects = LocalResource::new(move || async move {
        if signed_in.get() {
            get_json::<Vec<ProjectSummary>>("/api/projects").await.unwrap_or_default()
        } else {
            Vec::new()
        }
    });
    let (project, set_project) = signal(None::<String>);
    // Run history: a count of finished runs the history follows, and a guest's runs.
    let (runs, set_runs) = signal(0u32);
    let (session_runs, set_session_runs) = signal(Vec::<super::history::SessionRun>::new());

    let run = move |text: String, line_offset: u32| {
        if running.get_untracked() {
            return;
        }
        set_running.set(true);
        set_failure.set(None);
        set_progress.set(None);
        spawn_local(async move {
            let request = RunRequest { script: text.clone(), project: project.get_untracked() };
            let result = run_streamed(&request, |p| set_progress.set(Some(p))).await;
            match result {
                Ok(mut response) => {
                    for o in &mut response.outputs {
                        o.line += line_offset;
                    }
                    if !signed_in.get_untracked() {
                        let outputs = response.outputs.clone();
                        let at = js_sys::Date::now();
                        set_session_runs.update(|r| {
                            r.push(super::history::SessionRun { at, script: text, outputs });
                            // A page keeps the last few only.
                            if r.len() > 10 {
                                r.remove(0);
                            }
                        });
                    }
                    set_outputs.update(|all| {
                        // The newest run first, as a log read from the top.
                        let mut fresh = response.outputs;
                        fresh.append(all);
                        *all = fresh;
                    });
                }
                Err(ApiError { error, .. }) => set_failure.set(Some(error)),
            }
            set_running.set(false);
            set_runs.update(|n| *n += 1);
        });
    };

    // The data order: what the script uses, for an application for the full microdata.
    let (order, set_order) = signal(None::<Result<OrderResponse, String>>);
    let make_order = move |_| {
        let body = serde_json::json!({ "script": script.get_untracked() });
        spawn_local(async move {
            let made = post_json::<_, OrderResponse>("/api/order", &body).await;
            set_order.set(Some(made.map_err(|e| e.error)));
        });
    };
    // A batch job goes on after sign-out; its outputs open on the Jobs page.
    let (batch_message, set_batch_message) = signal(None::<Result<i64, String>>);
    let submit_batch = move |_| {
        let request =
            SubmitJob { script: script.get_untracked(), project: project.get_untracked() };
        spawn_local(async move {
            let result = post_json::<_, JobSummary>("/api/jobs", &request).await;
            set_batch_message.set(Some(result.map(|j| j.id).map_err(|e| e.error)));
        });
    };

    // The signature line follows the caret: the syntax and options of the command on its line.
    let (caret, set_caret) = signal(0usize);
    let follow_caret = move || {
        if let Some(area) = editor.get_untracked() {
            let area: &web_sys::HtmlTextAreaElement = area.unchecked_ref();
            let units = area.selection_start().ok().flatten().unwrap_or(0);
            set_caret.set(byte_offset(&area.value(), units));
        }
    };
    let signature = Memo::new(move |_| {
        let at = caret.get();
        script.with(|s| shared::script::catalog::signature_at(s, at))
    });
    // The datastores' variable names, for completion after `alias/`: fetched once, when the
    // script first requires a datastore (the catalogue is public).
    let (catalog_names, set_catalog_names) = signal(Vec::<(String, String)>::new());
    let catalog_fetched = StoredValue::new(false);
    Effect::new(move |_| {
        if !script.with(|s| s.contains("require")) || catalog_fetched.get_value() {
            return;
        }
        catalog_fetched.set_value(true);
        spawn_local(async move {
            let mut names = Vec::new();
            for page in 1..=CATALOG_PAGES {
                let url = format!("/api/catalog/variables?page_size=100&page={page}");
                let Ok(found) = get_json::<VariablePage>(&url).await else { break };
                let last = found.hits.is_empty() || found.page * found.page_size >= found.total;
                names.extend(found.hits.into_iter().map(|h| (h.datastore, h.name)));
                if last {
                    break;
                }
            }
            set_catalog_names.try_set(names);
        });
    });
    // Completion at the caret (shared::script::complete); arrows choose, Tab or Enter takes,
    // Esc closes it until the next input.
    let (dismissed, set_dismissed) = signal(false);
    let completion = Memo::new(move |_| {
        let at = caret.get();
        if dismissed.get() {
            return None;
        }
        catalog_names.with(|names| {
            let catalog = |store: &str| -> Vec<String> {
                names.iter().filter(|(d, _)| d == store).map(|(_, n)| n.clone()).collect()
            };
            script.with(|s| shared::script::complete::completions_at(s, at, &catalog))
        })
    });
    // The list opens by itself as one types, so Enter takes a name only once the arrows have
    // chosen one; otherwise it is a new line. Tab always takes one.
    let (chosen, set_chosen) = signal(0usize);
    let (navigated, set_navigated) = signal(false);
    Effect::new(move |_| {
        completion.track();
        set_chosen.set(0);
        set_navigated.set(false);
    });
    let accept = move |item: &str| {
        let (Some(c), Some(area)) = (completion.get_untracked(), editor.get_untracked()) else {
            return;
        };
        let area: &web_sys::HtmlTextAreaElement = area.unchecked_ref();
        let text = area.value();
        let at = caret.get_untracked().min(text.len());
        let completed = format!("{}{item}{}", &text[..c.start], &text[at..]);
        let after = c.start + item.len();
        area.set_value(&completed);
        let units = completed[..after].encode_utf16().count() as u32;
        let _ = area.set_selection_range(units, units);
        set_script.set(completed);
        set_caret.set(after);
    };
    // The help of a command: of the line under the mouse, or of the caret's line after F1.
    let (hovered_line, set_hovered_line) = signal(None::<usize>);
    let (help_pinned, set_help_pinned) = signal(false);
    let help = Memo::new(move |_| {
        let at = hovered_line.get().or_else(|| help_pinned.get().then(|| caret.get()))?;
        script.with(|s| shared::script::catalog::help_at(s, at))
    });
    let on_mousemove = move |ev: web_sys::MouseEvent| {
        let Some(area) = editor.get_untracked() else { return };
        let area: &web_sys::HtmlTextAreaElement = area.unchecked_ref();
        let line = line_under(area, ev.offset_y());
        let text = area.value();
        let start: usize = text.split('\n').take(line).map(|l| l.len() + 1).sum();
        set_hovered_line.set((start <= text.len()).then_some(start));
    };
    let on_keydown = move |ev: web_sys::KeyboardEvent| {
        if let Some(c) = completion.get_untracked() {
            let n = c.items.len();
            let plain = !(ev.ctrl_key() || ev.meta_key() || ev.alt_key() || ev.shift_key());
            match ev.key().as_str() {
                "ArrowDown" if plain => {
                    ev.prevent_default();
                    set_chosen.update(|i| *i = (*i + 1) % n);
                    set_navigated.set(true);
                    return;
                }
                "ArrowUp" if plain => {
                    ev.prevent_default();
                    set_chosen.update(|i| *i = (*i + n - 1) % n);
                    set_navigated.set(true);
                    return;
                }
                "Tab" | "Enter" if plain && (ev.key() == "Tab" || navigated.get_untracked()) => {
                    ev.prevent_default();
                    accept(&c.items[chosen.get_untracked().min(n - 1)]);
                    return;
                }
                "Escape" => {
                    ev.prevent_default();
                    set_dismissed.set(true);
                    return;
                }
                _ => {}
            }
        }
        match ev.key().as_str() {
            "F1" => {
                ev.prevent_default();
                set_help_pinned.update(|p| *p = !*p);
                return;
            }
            "Escape" if help_pinned.get_untracked() => {
                ev.prevent_default();
                set_help_pinned.set(false);
                return;
            }
            _ => {}
        }
        if ev.key() == "Enter" && (ev.ctrl_key() || ev.meta_key()) {
            ev.prevent_default();
            let Some(area) = editor.get_untracked() else { return };
            let area: &web_sys::HtmlTextAreaElement = area.unchecked_ref();
            let text = area.value();
            // Ctrl+Shift+Enter runs the whole script, as the Run button does.
            if ev.shift_key() {
                run(text, 0);
                return;
            }
            // Browsers count selection offsets in UTF-16 units; convert to bytes.
            let to_byte = |units: u32| byte_offset(&text, units);
            let start = to_byte(area.selection_start().ok().flatten().unwrap_or(0));
            let end = to_byte(area.selection_end().ok().flatten().unwrap_or(0));
            let (selected, offset) = selected_text(&text, start, end);
            run(selected, offset);
        }
    };
    let on_scroll = move |_| {
        if let (Some(area), Some(gutter)) = (editor.get_untracked(), gutter.get_untracked()) {
            gutter.set_scroll_top(area.scroll_top());
        }
    };
    let line_numbers = move || {
        let bad: Vec<usize> = diagnostics.with(|d| d.iter().map(|p| p.line).collect());
        let lines = script.with(|s| s.split('\n').count());
        (1..=lines)
            .map(|n| {
                let class = if bad.contains(&n) { "bad" } else { "" };
                view! { <span class=class>{n}"\n"</span> }
            })
            .collect_view()
    };

    view! {
        <section class="workbench">
            <h1>"Workbench"</h1>
            <p class="lead">
                {move || if signed_in.get() {
                    "Scripts run in your project, on the data it is granted. "
                } else {
                    "As a guest, scripts run on the synthetic demo datastore. "
                }}
                "Only aggregates that pass disclosure control come back. "
                <kbd>"Ctrl"</kbd>"+"<kbd>"Enter"</kbd>" runs the current line or the selection; "
                <kbd>"F1"</kbd>" shows the help of the current line."
            </p>
            {move || {
                let list = projects.get().unwrap_or_default();
                (list.len() > 1).then(|| view! {
                    <label class="project">"Project "
                        <select id="project" on:change=move |ev| {
                            let v = event_target_value(&ev);
                            set_project.set((!v.is_empty()).then_some(v));
                        }>
                            <option value="">"choose…"</option>
                            {list.into_iter().map(|p| view! { <option value=p.name.clone()>{format!("{} ({})", p.name, p.grants.join(", "))}</option> }).collect_view()}
                        </select>
                    </label>
                })
            }}
            <div class="editor">
                <pre class="gutter" aria-hidden="true" node_ref=gutter>{line_numbers}</pre>
                <textarea
                    id="editor"
                    aria-label="Script"
                    spellcheck="false"
                    autocomplete="off"
                    node_ref=editor
                    prop:value=move || script.get()
                    on:input=move |ev| {
                        set_script.set(event_target_value(&ev));
                        set_dismissed.set(false);
                        follow_caret();
                    }
                    on:keydown=on_keydown
                    on:keyup=move |_| follow_caret()
                    on:click=move |_| follow_caret()
                    on:scroll=on_scroll
                    on:mousemove=on_mousemove
                    on:mouseleave=move |_| set_hovered_line.set(None)
                    aria-controls=move || completion.get().map(|_| "completions")
                    aria-activedescendant=move || completion.get().map(|_| format!("completion-{}", chosen.get()))
                ></textarea>
            </div>
            {move || completion.get().map(|c| view! {
                <ul class="completions" id="completions" role="listbox" aria-label="Completions (arrows choose, Tab or Enter takes, Esc closes)">
                    {c.items.into_iter().enumerate().map(|(i, item)| {
                        let taken = item.clone();
                        view! {
                            <li
                                role="option"
                                id=format!("completion-{i}")
                                class:chosen=move || chosen.get() == i
                                aria-selected=move || (chosen.get() == i).to_string()
                                on:mouseenter=move |_| set_chosen.set(i)
                                on:mousedown=move |ev| {
                                    ev.prevent_default();
                                    accept(&taken);
                                }
                            >{item}</li>
                        }
                    }).collect_view()}
                </ul>
            })}
            <p class="hint signature" id="signature">
                {move || signature.get().unwrap_or_default()}
            </p>
            {move || help.get().map(|h| {
                let rules = h.rules.iter().map(|(n, words)| format!("{n} ({words})")).collect::<Vec<_>>().join(", ");
                let store = script.with(|s| required_datastore(s)).unwrap_or_else(|| "demo".to_owned());
                view! {
                    <aside class="command-help" id="command-help" aria-live="polite">
                        <p><strong>{h.name}</strong>" — "{h.help}</p>
                        <p class="hint"><code>{h.syntax}</code></p>
                        <p class="hint">
                            {if rules.is_empty() { "Releases no data.".to_owned() } else { format!("Disclosure rules: {rules}. ") }}
                            <a href=format!("/rules/{store}")>"The rules in full"</a>
                        </p>
                    </aside>
                }
            })}
            <ul class="diagnostics" aria-live="polite">
                {move || diagnostics.get().into_iter().map(|p| view! {
                    <li class="diagnostic">{format!("line {}, column {}: {}", p.line, p.column, p.message)}</li>
                }).collect_view()}
            </ul>
            <p class="actions">
                <button
                    id="run"
                    disabled=move || running.get()
                    on:click=move |_| run(script.get_untracked(), 0)
                >{move || if running.get() { "Running…" } else { "Run script" }}</button>
                " "
                <button on:click=move |_| set_outputs.set(Vec::new())>"Clear outputs"</button>
                <Show when=move || signed_in.get()>
                    " " <button id="submit-batch" on:click=submit_batch>"Submit as batch job"</button>
                </Show>
                " " <button id="data-order" on:click=make_order>"Data order"</button>
            </p>
            {move || order.get().map(|made| match made {
                Ok(made) => {
                    let (text, json) = (made.text.clone(), serde_json::to_string_pretty(&made.order).unwrap_or_default());
                    view! {
                        <section class="data-order" id="order" aria-labelledby="order-title">
                            <h2 id="order-title">"Data order"</h2>
                            <p class="hint">"The datastores, variables, dates and population lines this script uses, to attach to an application for access to the full microdata. It is read from the script and the catalogue; no data."</p>
                            <pre class="text">{made.text}</pre>
                            <p class="actions">
                                <button class="download-order-text" on:click=move |_| { let _ = super::export::download_text("data-order.txt", "text/plain", &text); }>"Download as text"</button>
                                " "
                                <button class="download-order-json" on:click=move |_| { let _ = super::export::download_text("data-order.json", "application/json", &json); }>"Download as JSON"</button>
                                " "
                                <button on:click=move |_| set_order.set(None)>"Close"</button>
                            </p>
                        </section>
                    }.into_any()
                }
                Err(e) => view! { <p class="error" role="alert">{e}</p> }.into_any(),
            })}
            {move || batch_message.get().map(|m| match m {
                Ok(id) => view! {
                    <p class="notice-line" id="batch-message">{format!("Batch job {id} is queued. ")}
                        <a href="/jobs">"Follow it on the Jobs page"</a>"."</p>
                }.into_any(),
                Err(e) => view! { <p class="error" role="alert">{e}</p> }.into_any(),
            })}
            {move || progress.get().map(|p| {
                let done = !running.get();
                let label = if done {
                    format!("{} of {} commands ran (the last: {}, line {})", p.step, p.of, p.command, p.line)
                } else {
                    format!("command {} of {}: {} (line {})", p.step, p.of, p.command, p.line)
                };
                view! {
                    <p class="hint" id="run-progress">
                        <progress max=p.of value=p.step aria-label="progress of the run"></progress>
                        " " {label}
                    </p>
                }
            })}
            {move || failure.get().map(|e| view! { <p class="error" role="alert">{e}</p> })}
            <super::history::RunHistory signed_in runs session_runs set_script set_outputs />
            <Show when=move || signed_in.get()>
                <super::files::FilesPanel script set_script outputs projects />
            </Show>
            <div class="outputs" aria-live="polite">
                {move || outputs.get().into_iter().map(output_view).collect_view()}
            </div>
        </section>
    }
}

pub(crate) fn output_view(o: Output) -> impl IntoView {
    let head = format!("line {} · {}", o.line, o.command);
    let stem = format!("line{}-{}", o.line, o.command);
    let article = NodeRef::<leptos::html::Article>::new();
    let actions = output_actions(&o.body, stem, article);
    let body = match o.body {
        OutputBody::Table(t) => table_view(t).into_any(),
        OutputBody::Summary(s) => summary_view(s).into_any(),
        OutputBody::Model(m) => model_view(m).into_any(),
        OutputBody::Chart(c) => chart_view(c).into_any(),
        OutputBody::Text { markdown } => view! { <pre class="text">{markdown}</pre> }.into_any(),
        OutputBody::Notice { message } => view! { <p class="notice-line">{message}</p> }.into_any(),
        OutputBody::Error { message, column, rule } => {
            let at = column.map(|c| format!("column {c}: ")).unwrap_or_default();
            let rule = rule.map(|r| format!(" [{r}]")).unwrap_or_default();
            view! { <p class="error" role="alert">{format!("{at}{message}{rule}")}</p> }.into_any()
        }
    };
    view! {
        <article class="output" node_ref=article>
            <h2 class="output-head">{head}</h2>
            {actions}
            {body}
        </article>
    }
}

/// Downloads and copies of a table or chart, built here from the released output shown.
fn output_actions(
    body: &OutputBody,
    stem: String,
    article: NodeRef<leptos::html::Article>,
) -> Option<AnyView> {
    let report = |e: wasm_bindgen::JsValue| web_sys::console::error_1(&e);
    match body {
        OutputBody::Table(t) => {
            let (csv, tsv) = (t.to_csv(), t.to_tsv());
            let (copied, set_copied) = signal(false);
            let name = format!("{stem}.csv");
            let save = move |_| {
                if let Err(e) = super::export::download_text(&name, "text/csv", &csv) {
                    report(e);
                }
            };
            let copy = move |_| {
                super::export::copy_text(&tsv);
                set_copied.set(true);
            };
            Some(
                view! {
                    <div class="output-actions">
                        <button class="download-csv" on:click=save>"Download CSV"</button>
                        <button class="copy-table" on:click=copy>
                            {move || if copied.get() { "Copied" } else { "Copy table" }}
                        </button>
                    </div>
                }
                .into_any(),
            )
        }
        OutputBody::Chart(_) => {
            let svg_name = format!("{stem}.svg");
            let png_name = format!("{stem}.png");
            let document = move || article.get().and_then(|a| super::export::svg_document(&a));
            let save_svg = move |_| {
                if let Some((svg, _, _)) = document()
                    && let Err(e) = super::export::download_text(&svg_name, "image/svg+xml", &svg)
                {
                    report(e);
                }
            };
            let save_png = move |_| {
                if let Some((svg, w, h)) = document()
                    && let Err(e) = super::export::download_png(&png_name, &svg, w, h)
                {
                    report(e);
                }
            };
            Some(
                view! {
                    <div class="output-actions">
                        <button class="download-svg" on:click=save_svg>"Download SVG"</button>
                        <button class="download-png" on:click=save_png>"Download PNG"</button>
                    </div>
                }
                .into_any(),
            )
        }
        _ => None,
    }
}

fn cell(value: Option<f64>) -> String {
    value.map_or_else(|| "·".to_owned(), format_number)
}

fn notes(notes: Vec<String>) -> impl IntoView {
    notes.into_iter().map(|n| view! { <p class="note">{n}</p> }).collect_view()
}

fn table_view(t: Table) -> impl IntoView {
    let caption = if t.statistic.is_empty() {
        t.title.clone()
    } else {
        format!("{} ({})", t.title, t.statistic)
    };
    view! {
        <table class="result">
            <caption>{caption}</caption>
            <thead><tr>
                <th scope="col">{t.row_variable}</th>
                {t.column_labels.into_iter().map(|c| view! { <th scope="col">{c}</th> }).collect_view()}
            </tr></thead>
            <tbody>
                {t.row_labels.into_iter().zip(t.cells).map(|(label, cells)| view! {
                    <tr>
                        <th scope="row">{label}</th>
                        {cells.into_iter().map(|c| view! { <td>{cell(c)}</td> }).collect_view()}
                    </tr>
                }).collect_view()}
            </tbody>
        </table>
        {notes(t.notes)}
    }
}

fn summary_view(s: Summary) -> impl IntoView {
    let labels: Vec<String> = s
        .rows
        .first()
        .map(|r| r.percentiles.iter().chain(&r.extra).map(|(p, _)| p.clone()).collect())
        .unwrap_or_default();
    view! {
        <table class="result">
            <thead><tr>
                <th scope="col">"variable"</th><th scope="col">"N"</th>
                <th scope="col">"mean"</th><th scope="col">"sd"</th>
                {labels.into_iter().map(|l| view! { <th scope="col">{l}</th> }).collect_view()}
            </tr></thead>
            <tbody>
                {s.rows.into_iter().map(|r| view! {
                    <tr>
                        <th scope="row">{r.variable}</th>
                        <td>{cell(r.n)}</td><td>{cell(r.mean)}</td><td>{cell(r.sd)}</td>
                        {r.percentiles.into_iter().chain(r.extra).map(|(_, v)| view! { <td>{cell(v)}</td> }).collect_view()}
                    </tr>
                }).collect_view()}
            </tbody>
        </table>
        {notes(s.notes)}
    }
}

fn model_view(m: Model) -> impl IntoView {
    let stats: Vec<String> =
        m.statistics.iter().map(|(k, v)| format!("{k} = {}", format_number(*v))).collect();
    view! {
        <table class="result">
            <caption>{m.title}</caption>
            <thead><tr>
                <th scope="col">{m.dependent}</th><th scope="col">{m.estimate_label.clone()}</th><th scope="col">"std err"</th>
                <th scope="col">{m.test_label.clone()}</th><th scope="col">{format!("P>|{}|", m.test_label)}</th><th scope="col">"CI low"</th><th scope="col">"CI high"</th>
            </tr></thead>
            <tbody>
                {m.coefficients.into_iter().map(|c| view! {
                    <tr>
                        <th scope="row">{c.term}</th>
                        <td>{format_number(c.estimate)}</td><td>{format_number(c.std_error)}</td>
                        <td>{format!("{:.2}", c.statistic)}</td><td>{format!("{:.3}", c.p_value)}</td>
                        <td>{format_number(c.ci_low)}</td><td>{format_number(c.ci_high)}</td>
                    </tr>
                }).collect_view()}
            </tbody>
        </table>
        <p class="fit">{stats.join(" · ")}</p>
        {notes(m.notes)}
    }
}

/// Hexagons as SVG, shaded by count. Withheld cells are simply not there.
fn hexbin_view(c: Chart, grid: shared::output::HexGrid) -> impl IntoView {
    const WIDTH: f64 = 640.0;
    const HEIGHT: f64 = 320.0;
    const PAD: f64 = 30.0;
    let bounds = |f: fn(&shared::output::Hex) -> f64, step: f64| {
        let (lo, hi) = grid
            .cells
            .iter()
            .map(f)
            .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| (lo.min(v), hi.max(v)));
        if lo.is_finite() { (lo - step, hi + step) } else { (0.0, 1.0) }
    };
    let (x_lo, x_hi) = bounds(|h| h.x, grid.width);
    let (y_lo, y_hi) = bounds(|h| h.y, grid.height);
    let sx = (WIDTH - 2.0 * PAD) / (x_hi - x_lo).max(f64::MIN_POSITIVE);
    let sy = (HEIGHT - 2.0 * PAD) / (y_hi - y_lo).max(f64::MIN_POSITIVE);
    let max = grid.cells.iter().map(|h| h.count).fold(1.0_f64, f64::max);
    // A pointy-top hexagon spans one centre spacing across and 2/3 of the row spacing up.
    let (rx, ry) = (grid.width * sx / 2.0, grid.height * sy * 2.0 / 3.0);
    let cells = grid
        .cells
        .iter()
        .map(|h| {
            let (cx, cy) = (PAD + (h.x - x_lo) * sx, HEIGHT - PAD - (h.y - y_lo) * sy);
            let points: Vec<String> = (0..6)
                .map(|k| {
                    let angle =
                        std::f64::consts::FRAC_PI_3 * k as f64 + std::f64::consts::FRAC_PI_6;
                    format!("{:.1},{:.1}", cx + rx * angle.cos(), cy + ry * angle.sin())
                })
                .collect();
            // groups(k): the shade of the cell's count class, else of its count.
            let shade = match &grid.classes {
                Some(classes) if !classes.is_empty() => {
                    let class =
                        classes.iter().position(|&top| h.count <= top).unwrap_or(classes.len() - 1);
                    (class + 1) as f64 / classes.len() as f64
                }
                _ => h.count / max,
            };
            let opacity = format!("{:.2}", 0.15 + 0.85 * shade);
            let title = format!(
                "{} {}, {} {}: {}",
                c.x_label,
                format_number(h.x),
                c.y_label,
                format_number(h.y),
                format_number(h.count)
            );
            view! {
                <polygon class="hex" points=points.join(" ") fill-opacity=opacity>
                    <title>{title}</title>
                </polygon>
            }
        })
        .collect_view();
    let legend = grid.classes.as_ref().filter(|c| !c.is_empty()).map(|classes| {
        let text = classes
            .iter()
            .map(|&top| format!("≤ {}", format_number(top.round())))
            .collect::<Vec<_>>()
            .join(" · ");
        view! { <p class="legend">{format!("count classes: {text}")}</p> }
    });
    let aria = format!("{}: {} cells", c.title, grid.cells.len());
    view! {
        <figure class="chart">
            <svg viewBox=format!("0 0 {WIDTH} {HEIGHT}") role="img" aria-label=aria>
                {cells}
                <text x=WIDTH / 2.0 y=HEIGHT - 4.0 class="tick" text-anchor="middle">{c.x_label.clone()}</text>
                <text x="4" y="14" class="tick">{c.y_label.clone()}</text>
            </svg>
            <figcaption>{c.title}</figcaption>
        </figure>
        {legend}
        {notes(c.notes)}
    }
}

/// Bars as SVG. Withheld bars are marked, never drawn with a height.
fn chart_view(mut c: Chart) -> AnyView {
    if let Some(grid) = c.hexes.take() {
        return hexbin_view(c, grid).into_any();
    }
    if let Some(boxes) = c.boxes.take() {
        return box_view(c, boxes).into_any();
    }
    if let Some(estimates) = c.estimates.take() {
        return coef_view(c, estimates).into_any();
    }
    if let Some(flows) = c.flows.take() {
        return sankey_view(c, flows).into_any();
    }
    if c.chart == "piechart" {
        return pie_view(c).into_any();
    }
    if c.horizontal || c.stacked || c.bars.iter().any(|b| b.series.is_some()) {
        return category_bar_view(c).into_any();
    }
    bar_view(c).into_any()
}

/// Slices of the released counts; a withheld slice is left out and named in the caption.
fn pie_view(c: Chart) -> impl IntoView {
    const R: f64 = 100.0;
    let total: f64 = c.bars.iter().filter_map(|b| b.height).sum::<f64>().max(1.0);
    let mut angle = -std::f64::consts::FRAC_PI_2;
    let slices = c
        .bars
        .iter()
        .filter_map(|b| Some((b.label.clone().unwrap_or_default(), b.height?)))
        .map(|(label, h)| {
            let sweep = std::f64::consts::TAU * h / total;
            let (x0, y0) = (R * angle.cos(), R * angle.sin());
            angle += sweep;
            let (x1, y1) = (R * angle.cos(), R * angle.sin());
            let large = i32::from(sweep > std::f64::consts::PI);
            let path = format!("M0,0 L{x0:.2},{y0:.2} A{R},{R} 0 {large} 1 {x1:.2},{y1:.2} Z");
            let title = format!("{label}: {} ({:.1} %)", format_number(h), 100.0 * h / total);
            view! { <path class="slice" d=path><title>{title}</title></path> }
        })
        .collect_view();
    let withheld: Vec<String> =
        c.bars.iter().filter(|b| b.height.is_none()).filter_map(|b| b.label.clone()).collect();
    let aria = format!("{}: {} slices", c.title, c.bars.len() - withheld.len());
    view! {
        <figure class="chart">
            <svg viewBox="-110 -110 220 220" role="img" aria-label=aria class="pie">{slices}</svg>
            <figcaption>
                {c.title}
                {(!withheld.is_empty()).then(|| format!(" (withheld: {})", withheld.join(", ")))}
            </figcaption>
        </figure>
        {notes(c.notes)}
    }
}

/// A sankey diagram: a column of nodes per variable, each as tall as its released units, and
/// bands between them as wide as the released flows. Withheld flows are simply absent.
fn sankey_view(c: Chart, flows: Vec<shared::output::Flow>) -> impl IntoView {
    const WIDTH: f64 = 640.0;
    const HEIGHT: f64 = 320.0;
    const PAD: f64 = 24.0;
    const NODE: f64 = 12.0;
    const GAP: f64 = 8.0;
    // Stages in order, and each stage's levels in order of first appearance.
    let mut stages: Vec<(String, Vec<String>)> = Vec::new();
    let mut place = |variable: &str, level: &str| {
        let at = match stages.iter().position(|(v, _)| v == variable) {
            Some(at) => at,
            None => {
                stages.push((variable.to_owned(), Vec::new()));
                stages.len() - 1
            }
        };
        if !stages[at].1.iter().any(|l| l == level) {
            stages[at].1.push(level.to_owned());
        }
        at
    };
    let ends: Vec<(usize, usize)> = flows
        .iter()
        .map(|f| (place(&f.from_variable, &f.from), place(&f.to_variable, &f.to)))
        .collect();
    // A node's size: the larger of what flows out of it and into it.
    let size = |stage: usize, level: &str| -> f64 {
        let out: f64 = flows
            .iter()
            .zip(&ends)
            .filter(|(f, (s, _))| *s == stage && f.from == level)
            .map(|(f, _)| f.count)
            .sum();
        let into: f64 = flows
            .iter()
            .zip(&ends)
            .filter(|(f, (_, t))| *t == stage && f.to == level)
            .map(|(f, _)| f.count)
            .sum();
        out.max(into)
    };
    let totals: Vec<f64> =
        stages.iter().enumerate().map(|(i, (_, ls))| ls.iter().map(|l| size(i, l)).sum()).collect();
    let most_levels = stages.iter().map(|(_, ls)| ls.len()).max().unwrap_or(1) as f64;
    let scale = (HEIGHT - 2.0 * PAD - GAP * (most_levels - 1.0))
        / totals.iter().copied().fold(1.0, f64::max);
    let x = |stage: usize| {
        PAD + 90.0 + stage as f64 * (WIDTH - 2.0 * PAD - 180.0) / (stages.len().max(2) - 1) as f64
    };
    // Each node's top, and how far its outgoing and incoming bands have filled it.
    let mut tops: Vec<Vec<f64>> = Vec::new();
    for (i, (_, levels)) in stages.iter().enumerate() {
        let mut y = PAD;
        tops.push(
            levels
                .iter()
                .map(|l| {
                    let top = y;
                    y += size(i, l) * scale + GAP;
                    top
                })
                .collect(),
        );
    }
    let mut out_fill: Vec<Vec<f64>> = tops.clone();
    let mut in_fill: Vec<Vec<f64>> = tops.clone();
    let bands = flows
        .iter()
        .zip(&ends)
        .map(|(f, &(s, t))| {
            let (a, b) = (
                stages[s].1.iter().position(|l| *l == f.from).unwrap_or(0),
                stages[t].1.iter().position(|l| *l == f.to).unwrap_or(0),
            );
            let w = f.count * scale;
            let (y0, y1) = (out_fill[s][a], in_fill[t][b]);
            out_fill[s][a] += w;
            in_fill[t][b] += w;
            let (x0, x1) = (x(s) + NODE, x(t));
            let mid = (x0 + x1) / 2.0;
            let d = format!(
                "M{x0:.1},{y0:.1} C{mid:.1},{y0:.1} {mid:.1},{y1:.1} {x1:.1},{y1:.1} L{x1:.1},{:.1} C{mid:.1},{:.1} {mid:.1},{:.1} {x0:.1},{:.1} Z",
                y1 + w,
                y1 + w,
                y0 + w,
                y0 + w
            );
            let title = format!(
                "{} {} → {} {}: {}",
                f.from_variable,
                f.from,
                f.to_variable,
                f.to,
                format_number(f.count)
            );
            view! { <path class="flow" d=d><title>{title}</title></path> }
        })
        .collect_view();
    let nodes = stages
        .iter()
        .enumerate()
        .flat_map(|(i, (variable, levels))| {
            let tops = tops[i].clone();
            let last = i + 1 == stages.len();
            levels
                .iter()
                .zip(tops)
                .map(|(level, top)| {
                    let h = (size(i, level) * scale).max(1.0);
                    let (tx, anchor) = if last {
                        (x(i) + NODE + 4.0, "start")
                    } else {
                        (x(i) - 4.0, "end")
                    };
                    let title = format!("{variable} {level}: {}", format_number(size(i, level)));
                    view! {
                        <g class="node">
                            <title>{title}</title>
                            <rect x=x(i) y=top width=NODE height=h></rect>
                            <text x=tx y=top + h / 2.0 + 4.0 class="tick" text-anchor=anchor>{level.clone()}</text>
                        </g>
                    }
                })
                .collect::<Vec<_>>()
        })
        .collect_view();
    let headers = stages
        .iter()
        .enumerate()
        .map(|(i, (v, _))| {
            view! { <text x=x(i) + NODE / 2.0 y=PAD - 8.0 class="tick" text-anchor="middle">{v.clone()}</text> }
        })
        .collect_view();
    let aria = format!("{}: {} flows", c.title, flows.len());
    view! {
        <figure class="chart">
            <svg viewBox=format!("0 0 {WIDTH} {HEIGHT}") role="img" aria-label=aria class="sankey">
                {headers}
                {bands}
                {nodes}
            </svg>
            <figcaption>{c.title}</figcaption>
        </figure>
        {notes(c.notes)}
    }
}

/// Boxes from P25 to P75 with the median, whiskers to P5 and P95 where released.
/// A coefficient plot: one row per term, a dot at the estimate and a line over its interval,
/// with a reference line at 0 (or at 1 for ratios).
fn coef_view(c: Chart, estimates: Vec<shared::output::Estimate>) -> impl IntoView {
    const WIDTH: f64 = 640.0;
    const ROW: f64 = 28.0;
    const LEFT: f64 = 150.0;
    const PAD: f64 = 20.0;
    let height = ROW * estimates.len().max(1) as f64 + 2.0 * PAD;
    let reference = if c.y_label == "coef" { 0.0 } else { 1.0 };
    let values: Vec<f64> = estimates
        .iter()
        .flat_map(|e| [e.ci_low, e.ci_high, e.estimate])
        .chain([reference])
        .filter(|v| v.is_finite())
        .collect();
    let lo = values.iter().copied().fold(f64::INFINITY, f64::min);
    let hi = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let (lo, hi) = if hi > lo { (lo, hi) } else { (lo - 1.0, lo + 1.0) };
    let x = move |v: f64| LEFT + (v - lo) / (hi - lo) * (WIDTH - LEFT - PAD);
    let rows = estimates
        .iter()
        .enumerate()
        .map(|(i, e)| {
            let cy = PAD + ROW * (i as f64 + 0.5);
            let title = format!(
                "{}: {} [{}, {}]",
                e.term,
                format_number(e.estimate),
                format_number(e.ci_low),
                format_number(e.ci_high)
            );
            view! {
                <g class="estimate">
                    <title>{title}</title>
                    <text x=LEFT - 8.0 y=cy + 4.0 class="tick" text-anchor="end">{e.term.clone()}</text>
                    <line class="interval" x1=x(e.ci_low) y1=cy x2=x(e.ci_high) y2=cy></line>
                    <circle class="point" cx=x(e.estimate) cy=cy r="4"></circle>
                </g>
            }
        })
        .collect_view();
    let aria = format!("{}: {} estimates", c.title, estimates.len());
    view! {
        <figure class="chart">
            <svg viewBox=format!("0 0 {WIDTH} {height}") role="img" aria-label=aria>
                <line class="reference" x1=x(reference) y1=PAD / 2.0 x2=x(reference) y2=height - PAD / 2.0></line>
                {rows}
            </svg>
            <figcaption>{c.title}</figcaption>
        </figure>
        {notes(c.notes)}
    }
}

fn box_view(c: Chart, boxes: Vec<shared::output::BoxSummary>) -> impl IntoView {
    const WIDTH: f64 = 640.0;
    const HEIGHT: f64 = 260.0;
    const PAD: f64 = 30.0;
    let values: Vec<f64> =
        boxes.iter().flat_map(|b| [b.p5, b.p25, b.p50, b.p75, b.p95]).flatten().collect();
    let lo = values.iter().copied().fold(f64::INFINITY, f64::min);
    let hi = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let (lo, hi) = if lo.is_finite() && hi > lo { (lo, hi) } else { (0.0, 1.0) };
    // Drawn upright in (across, along) coordinates; `horizontal` lays the value axis along x.
    let horizontal = c.horizontal;
    let (across_len, along_len) = if horizontal { (HEIGHT, WIDTH) } else { (WIDTH, HEIGHT) };
    let y = move |v: f64| along_len - PAD - (v - lo) / (hi - lo) * (along_len - 2.0 * PAD);
    let slot = (across_len - 2.0 * PAD) / boxes.len().max(1) as f64;
    // An SVG point from (across, along): upright as it is, horizontal mirrored onto x.
    let at = move |across: f64, along: f64| {
        if horizontal { (WIDTH - along, across) } else { (across, along) }
    };
    let drawn = boxes
        .iter()
        .enumerate()
        .map(|(i, b)| {
            let cx = PAD + slot * (i as f64 + 0.5);
            let w = (slot * 0.5).min(80.0);
            let line = move |class: &'static str, (a1, b1): (f64, f64), (a2, b2): (f64, f64)| {
                let ((x1, y1), (x2, y2)) = (at(a1, b1), at(a2, b2));
                view! { <line class=class x1=x1 y1=y1 x2=x2 y2=y2></line> }
            };
            let whisker = |a: Option<f64>, b: Option<f64>| {
                a.zip(b).map(|(a, b)| line("whisker", (cx, y(a)), (cx, y(b))))
            };
            let body = b.p25.zip(b.p75).map(|(q1, q3)| {
                let ((x1, y1), (x2, y2)) = (at(cx - w / 2.0, y(q3)), at(cx + w / 2.0, y(q1)));
                let (x, yy) = (x1.min(x2), y1.min(y2));
                view! { <rect class="box" x=x y=yy width=(x2 - x1).abs().max(1.0) height=(y2 - y1).abs().max(1.0)></rect> }
            });
            let median = b.p50.map(|m| line("median", (cx - w / 2.0, y(m)), (cx + w / 2.0, y(m))));
            let (label_x, label_y) = if horizontal { (4.0, cx + 4.0) } else { (cx, HEIGHT - 8.0) };
            let anchor = if horizontal { "start" } else { "middle" };
            let title = format!(
                "{}: P5 {}, P25 {}, P50 {}, P75 {}, P95 {}",
                b.label,
                b.p5.map_or("withheld".into(), format_number),
                b.p25.map_or("withheld".into(), format_number),
                b.p50.map_or("withheld".into(), format_number),
                b.p75.map_or("withheld".into(), format_number),
                b.p95.map_or("withheld".into(), format_number)
            );
            view! {
                <g class="boxplot">
                    <title>{title}</title>
                    {whisker(b.p5, b.p25.or(b.p50))}
                    {whisker(b.p75.or(b.p50), b.p95)}
                    {body}
                    {median}
                    <text x=label_x y=label_y class="tick" text-anchor=anchor>{b.label.clone()}</text>
                </g>
            }
        })
        .collect_view();
    let aria = format!("{}: {} boxes", c.title, boxes.len());
    view! {
        <figure class="chart">
            <svg viewBox=format!("0 0 {WIDTH} {HEIGHT}") role="img" aria-label=aria>
                {drawn}
                <text x="4" y="14" class="tick">{c.y_label.clone()}</text>
            </svg>
            <figcaption>{c.title}</figcaption>
        </figure>
        {notes(c.notes)}
    }
}

/// Bars of categories: several series side by side or stacked (`stack`), upright or laid
/// along x (`horizontal`), with a legend of the series. A withheld bar or segment is marked,
/// never drawn with a height.
fn category_bar_view(c: Chart) -> impl IntoView {
    const WIDTH: f64 = 640.0;
    const HEIGHT: f64 = 260.0;
    const PAD: f64 = 30.0;
    let mut labels: Vec<String> = Vec::new();
    let mut series: Vec<String> = Vec::new();
    for b in &c.bars {
        let label = b.label.clone().unwrap_or_default();
        if !labels.contains(&label) {
            labels.push(label);
        }
        let s = b.series.clone().unwrap_or_default();
        if !series.contains(&s) {
            series.push(s);
        }
    }
    let index = |list: &[String], v: &Option<String>| {
        list.iter().position(|x| Some(x.as_str()) == v.as_deref().or(Some(""))).unwrap_or(0)
    };
    let max = if c.stacked {
        labels
            .iter()
            .map(|l| {
                c.bars
                    .iter()
                    .filter(|b| b.label.as_ref() == Some(l))
                    .filter_map(|b| b.height)
                    .sum::<f64>()
            })
            .fold(0.0_f64, f64::max)
    } else {
        c.bars.iter().filter_map(|b| b.height).fold(0.0_f64, f64::max)
    }
    .max(f64::MIN_POSITIVE);
    let horizontal = c.horizontal;
    let (across_len, along_len) = if horizontal { (HEIGHT, WIDTH) } else { (WIDTH, HEIGHT) };
    let scale = (along_len - 2.0 * PAD) / max;
    let slot = (across_len - 2.0 * PAD) / labels.len().max(1) as f64;
    // (across, along from the base) → an SVG rectangle's x, y, width, height.
    let rect = move |a0: f64, a1: f64, from: f64, to: f64| {
        if horizontal {
            (PAD + from * scale, a0, (to - from) * scale, a1 - a0)
        } else {
            (a0, along_len - PAD - to * scale, a1 - a0, (to - from) * scale)
        }
    };
    let mut stacked_at = vec![0.0_f64; labels.len()];
    let drawn = c
        .bars
        .iter()
        .map(|b| {
            let l = index(&labels, &b.label);
            let k = index(&series, &b.series);
            let (a0, a1) = if c.stacked || series.len() == 1 {
                (PAD + slot * l as f64 + 2.0, PAD + slot * (l as f64 + 1.0) - 2.0)
            } else {
                let sub = (slot - 4.0) / series.len() as f64;
                let start = PAD + slot * l as f64 + 2.0 + sub * k as f64;
                (start, start + sub)
            };
            let name = match &b.series {
                Some(s) => format!("{}, {s}", b.label.clone().unwrap_or_default()),
                None => b.label.clone().unwrap_or_default(),
            };
            match b.height {
                Some(h) => {
                    let from = if c.stacked { stacked_at[l] } else { 0.0 };
                    stacked_at[l] = from + h;
                    let (x, y, w, hh) = rect(a0, a1, from, from + h);
                    let class = format!("bar series-{}", k % 6);
                    view! {
                        <rect class=class x=x y=y width=w.max(1.0) height=hh.max(0.0)>
                            <title>{format!("{name}: {}", format_number(h))}</title>
                        </rect>
                    }
                    .into_any()
                }
                None => {
                    let (x, y, w, hh) = rect(a0, a1, 0.0, 0.0);
                    view! {
                        <text class="withheld" x=x + w / 2.0 y=y + hh / 2.0 - 4.0 text-anchor="middle">
                            "·"<title>{format!("{name}: withheld")}</title>
                        </text>
                    }
                    .into_any()
                }
            }
        })
        .collect_view();
    let ticks = labels
        .iter()
        .enumerate()
        .map(|(l, label)| {
            let centre = PAD + slot * (l as f64 + 0.5);
            let (x, y, anchor) = if horizontal {
                (4.0, centre + 4.0, "start")
            } else {
                (centre, HEIGHT - 12.0, "middle")
            };
            view! { <text class="tick" x=x y=y text-anchor=anchor>{label.clone()}</text> }
        })
        .collect_view();
    let legend = (series.len() > 1).then(|| {
        let items = series
            .iter()
            .enumerate()
            .map(|(k, s)| view! { <li><span class=format!("swatch series-{}", k % 6)></span>{s.clone()}</li> })
            .collect_view();
        view! { <ul class="legend">{items}</ul> }
    });
    let aria = format!("{}: {} bars", c.title, c.bars.len());
    view! {
        <figure class="chart">
            <svg viewBox=format!("0 0 {WIDTH} {HEIGHT}") role="img" aria-label=aria>
                {drawn}
                {ticks}
            </svg>
            <figcaption>{c.title}</figcaption>
        </figure>
        {legend}
        {notes(c.notes)}
    }
}

fn bar_view(c: Chart) -> impl IntoView {
    const WIDTH: f64 = 640.0;
    const HEIGHT: f64 = 240.0;
    const BASE: f64 = 200.0;
    let max = c.bars.iter().filter_map(|b| b.height).fold(0.0_f64, f64::max).max(1.0);
    let n = c.bars.len().max(1) as f64;
    let slot = (WIDTH - 40.0) / n;
    let first = c.bars.first().map(|b| format_number(b.start)).unwrap_or_default();
    let last = c.bars.last().map(|b| format_number(b.end)).unwrap_or_default();
    let bars = c
        .bars
        .iter()
        .enumerate()
        .map(|(i, b)| {
            let x = 30.0 + i as f64 * slot;
            let label = b.label.clone().unwrap_or_else(|| format!("{} – {}", format_number(b.start), format_number(b.end)));
            match b.height {
                Some(h) => {
                    let height = (h / max) * (BASE - 10.0);
                    let title = format!("{label}: {}", format_number(h));
                    view! {
                        <rect class="bar" x=x y=BASE - height width=(slot - 2.0).max(1.0) height=height>
                            <title>{title}</title>
                        </rect>
                    }
                    .into_any()
                }
                None => view! {
                    <text class="withheld" x=x + slot / 2.0 y=BASE - 4.0 text-anchor="middle">
                        "·"<title>{format!("{label}: withheld")}</title>
                    </text>
                }
                .into_any(),
            }
        })
        .collect_view();
    // histogram …, normal: the normal density with the released bars' mean and SD, scaled to
    // the bars (its area equals theirs), drawn over the same axis.
    let curve = c.normal.map(|normal| {
        let (start, end) = match (c.bars.first(), c.bars.last()) {
            (Some(first), Some(last)) => (first.start, last.end),
            _ => (0.0, 1.0),
        };
        let width = c.bars.first().map_or(1.0, |b| b.end - b.start);
        let area: f64 = c.bars.iter().filter_map(|b| b.height).sum::<f64>() * width;
        let points: Vec<String> = (0..=100)
            .map(|step| {
                let v = start + (end - start) * step as f64 / 100.0;
                let z = (v - normal.mean) / normal.sd;
                let density =
                    (-0.5 * z * z).exp() / (normal.sd * (2.0 * std::f64::consts::PI).sqrt());
                let x = 30.0 + (v - start) / (end - start) * (WIDTH - 40.0);
                let y = BASE - (area * density / max) * (BASE - 10.0);
                format!("{x:.1},{y:.1}")
            })
            .collect();
        let title =
            format!("normal: mean {}, SD {}", format_number(normal.mean), format_number(normal.sd));
        view! { <polyline class="normal" points=points.join(" ")><title>{title}</title></polyline> }
    });
    let aria = format!("{}: {} bars", c.title, c.bars.len());
    view! {
        <figure class="chart">
            <svg viewBox=format!("0 0 {WIDTH} {HEIGHT}") role="img" aria-label=aria>
                <line x1="30" y1=BASE x2=WIDTH - 10.0 y2=BASE class="axis"></line>
                {bars}
                {curve}
                <text x="30" y=BASE + 18.0 class="tick">{first}</text>
                <text x=WIDTH - 10.0 y=BASE + 18.0 class="tick" text-anchor="end">{last}</text>
                <text x=WIDTH / 2.0 y=HEIGHT - 4.0 class="tick" text-anchor="middle">{c.x_label}</text>
            </svg>
            <figcaption>{c.title}</figcaption>
        </figure>
        {notes(c.notes)}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ctrl_enter_takes_the_current_line_or_the_whole_lines_of_a_selection() {
        let script = "require demo:1 as db\ncreate-dataset p\ntabulate sex\n";
        let caret = script.find("dataset p").unwrap();
        assert_eq!(selected_text(script, caret, caret), ("create-dataset p".to_owned(), 1));
        let from = script.find("dataset p").unwrap();
        let to = script.find("sex").unwrap() + 3;
        assert_eq!(
            selected_text(script, from, to),
            ("create-dataset p\ntabulate sex".to_owned(), 1)
        );
        assert_eq!(selected_text(script, 0, 0), ("require demo:1 as db".to_owned(), 0));
    }

    #[test]
    fn diagnostics_carry_line_and_column() {
        let p = problems("require demo:1 as db\ntabluate x\n");
        assert_eq!(p.len(), 1);
        assert_eq!((p[0].line, p[0].column), (2, 1));
        assert!(p[0].message.contains("did you mean tabulate"));
        assert!(problems(EXAMPLE).is_empty(), "the example script is clean");
    }
}
