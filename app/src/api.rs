//! Talking to the server: URLs (plain functions, unit-tested on the host) and fetching.

use serde::de::DeserializeOwned;
use shared::api::ApiError;

/// What the catalog page shows; lives in the page's URL so links and the back button work.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CatalogQuery {
    pub text: String,
    pub unit_type: String,
    pub temporality: String,
    pub subject: String,
    pub page: usize,
}

impl CatalogQuery {
    /// Reads the page's own query string values (missing ones are empty).
    pub fn from_pairs<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> CatalogQuery {
        let mut q = CatalogQuery { page: 1, ..CatalogQuery::default() };
        for (key, value) in pairs {
            match key {
                "q" => q.text = value.to_owned(),
                "unit_type" => q.unit_type = value.to_owned(),
                "temporality" => q.temporality = value.to_owned(),
                "subject" => q.subject = value.to_owned(),
                "page" => q.page = value.parse().unwrap_or(1).max(1),
                _ => {}
            }
        }
        q
    }

    fn pairs(&self) -> Vec<(&'static str, String)> {
        let mut pairs = vec![];
        for (key, value) in [
            ("q", &self.text),
            ("unit_type", &self.unit_type),
            ("temporality", &self.temporality),
            ("subject", &self.subject),
        ] {
            if !value.is_empty() {
                pairs.push((key, value.clone()));
            }
        }
        if self.page > 1 {
            pairs.push(("page", self.page.to_string()));
        }
        pairs
    }

    /// The value of one filter (`unit_type`, `temporality` or `subject`); empty when unset.
    pub fn filter(&self, key: &str) -> &str {
        match key {
            "unit_type" => &self.unit_type,
            "temporality" => &self.temporality,
            "subject" => &self.subject,
            _ => "",
        }
    }

    /// The same query with one filter changed, back on the first page.
    pub fn with_filter(&self, key: &str, value: String) -> CatalogQuery {
        let mut q = CatalogQuery { page: 1, ..self.clone() };
        match key {
            "unit_type" => q.unit_type = value,
            "temporality" => q.temporality = value,
            "subject" => q.subject = value,
            _ => {}
        }
        q
    }

    /// The app's own address for this query, e.g. `/?q=inntekt`.
    pub fn page_url(&self) -> String {
        format!("/{}", query_string(&self.pairs()))
    }

    /// The API address that answers this query.
    pub fn api_url(&self) -> String {
        format!("/api/catalog/variables{}", query_string(&self.pairs()))
    }
}

/// The API address of one variable's metadata.
pub fn variable_url(name: &str, datastore: Option<&str>) -> String {
    let mut url = format!("/api/catalog/variables/{}", encode(name));
    if let Some(d) = datastore {
        url.push_str(&format!("?datastore={}", encode(d)));
    }
    url
}

fn query_string(pairs: &[(&str, String)]) -> String {
    if pairs.is_empty() {
        return String::new();
    }
    let joined: Vec<String> = pairs.iter().map(|(k, v)| format!("{k}={}", encode(v))).collect();
    format!("?{}", joined.join("&"))
}

/// Percent-encodes everything but unreserved characters (RFC 3986).
pub fn encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(byte as char)
            }
            _ => out.push_str(&format!("%{byte:02X}")),
        }
    }
    out
}

fn unreachable(e: gloo_net::Error) -> ApiError {
    ApiError {
        error: format!(
            "the server could not be reached ({e}); check your connection and try again"
        ),
        did_you_mean: Vec::new(),
        code: None,
    }
}

/// The body of a successful response, or the server's message.
async fn read<T: DeserializeOwned>(response: gloo_net::http::Response) -> Result<T, ApiError> {
    if response.ok() {
        response.json::<T>().await.map_err(unreachable)
    } else {
        Err(response.json::<ApiError>().await.unwrap_or_else(|_| ApiError {
            error: format!("the server answered {}", response.status()),
            did_you_mean: Vec::new(),
            code: None,
        }))
    }
}

/// GETs JSON; a failed request becomes the server's message (or a plain one when unreachable).
pub async fn get_json<T: DeserializeOwned>(url: &str) -> Result<T, ApiError> {
    read(gloo_net::http::Request::get(url).send().await.map_err(unreachable)?).await
}

thread_local! {
    /// The session's CSRF token, from the last `SessionInfo` the server sent.
    static CSRF: std::cell::RefCell<Option<String>> = const { std::cell::RefCell::new(None) };
}

/// Remembers the CSRF token that every state-changing request must carry.
pub fn set_csrf(token: Option<String>) {
    CSRF.with(|c| *c.borrow_mut() = token);
}

/// A state-changing request carries the session's `X-CSRF-Token`.
fn with_csrf(builder: gloo_net::http::RequestBuilder) -> gloo_net::http::RequestBuilder {
    match CSRF.with(|c| c.borrow().clone()) {
        Some(token) => builder.header("X-CSRF-Token", &token),
        None => builder,
    }
}

async fn send_json<B: serde::Serialize, T: DeserializeOwned>(
    builder: gloo_net::http::RequestBuilder,
    body: &B,
) -> Result<T, ApiError> {
    let request = with_csrf(builder).json(body).map_err(unreachable)?;
    read(request.send().await.map_err(unreachable)?).await
}

/// A command the server is about to run, from a streamed run.
#[derive(Clone, Debug, PartialEq, serde::Deserialize)]
pub struct RunProgress {
    pub step: u32,
    pub of: u32,
    pub line: u32,
    pub command: String,
}

/// One line of a streamed run's answer.
enum RunLine {
    Progress(RunProgress),
    Done(shared::output::RunResponse),
    Failed(String),
}

fn run_line(line: &[u8]) -> Option<RunLine> {
    let value: serde_json::Value = serde_json::from_slice(line).ok()?;
    if let Some(progress) = value.get("progress") {
        return serde_json::from_value(progress.clone()).ok().map(RunLine::Progress);
    }
    if let Some(error) = value.get("error").and_then(|e| e.as_str()) {
        return Some(RunLine::Failed(error.to_owned()));
    }
    serde_json::from_value(value).ok().map(RunLine::Done)
}

fn plain(error: String) -> ApiError {
    ApiError { error, did_you_mean: Vec::new(), code: None }
}

/// Reads an NDJSON answer line by line until `on_line` has the result (`Some`); `what` names
/// the answer in the errors.
async fn read_lines<T: DeserializeOwned>(
    response: gloo_net::http::Response,
    what: &str,
    mut on_line: impl FnMut(&[u8]) -> Option<Result<T, ApiError>>,
) -> Result<T, ApiError> {
    use wasm_bindgen::JsCast;
    if !response.ok() {
        return read(response).await;
    }
    let Some(body) = response.body() else {
        return Err(plain(format!("{what} was empty: try again")));
    };
    let reader: web_sys::ReadableStreamDefaultReader = body.get_reader().unchecked_into();
    let mut pending = Vec::new();
    loop {
        let chunk = wasm_bindgen_futures::JsFuture::from(reader.read())
            .await
            .map_err(|e| plain(format!("{what} broke off ({e:?}): try again")))?;
        let chunk: web_sys::ReadableStreamReadResult = chunk.unchecked_into();
        if chunk.get_done().unwrap_or(false) {
            return Err(plain(format!("{what} ended early: try again")));
        }
        pending.extend(js_sys::Uint8Array::new(&chunk.get_value()).to_vec());
        while let Some(end) = pending.iter().position(|&b| b == b'\n') {
            let line: Vec<u8> = pending.drain(..=end).collect();
            if let Some(result) = on_line(&line[..end]) {
                return result;
            }
        }
    }
}

/// Runs a script with its progress streamed (`Accept: application/x-ndjson`): `progress` is
/// told as each command starts, and the answer is the run's released outputs.
pub async fn run_streamed(
    request: &shared::api::RunRequest,
    progress: impl Fn(RunProgress),
) -> Result<shared::output::RunResponse, ApiError> {
    let response = with_csrf(gloo_net::http::Request::post("/api/run"))
        .header("Accept", "application/x-ndjson")
        .json(request)
        .map_err(unreachable)?
        .send()
        .await
        .map_err(unreachable)?;
    read_lines(response, "the run's answer", |line| match run_line(line)? {
        RunLine::Progress(p) => {
            progress(p);
            None
        }
        RunLine::Done(response) => Some(Ok(response)),
        RunLine::Failed(error) => Some(Err(plain(error))),
    })
    .await
}

/// Follows job `id` through `GET /api/jobs/{id}/progress`: `changed` is told each state and
/// step as the server streams it. Ends with the job's last summary: finished, or as far as it
/// had come when the server ended the stream (the caller follows it again).
pub async fn follow_job(
    id: i64,
    abort: &web_sys::AbortSignal,
    changed: impl Fn(&shared::api::JobSummary),
) -> Result<shared::api::JobSummary, ApiError> {
    #[derive(serde::Deserialize)]
    struct Line {
        job: shared::api::JobSummary,
    }
    let response = gloo_net::http::Request::get(&format!("/api/jobs/{id}/progress"))
        .header("Accept", "application/x-ndjson")
        .abort_signal(Some(abort))
        .send()
        .await
        .map_err(unreachable)?;
    let last = std::cell::RefCell::new(None::<shared::api::JobSummary>);
    let result = read_lines(response, "the job's progress", |line| {
        let job = serde_json::from_slice::<Line>(line).ok()?.job;
        changed(&job);
        let finished = job.state.is_finished();
        *last.borrow_mut() = Some(job.clone());
        finished.then_some(Ok(job))
    })
    .await;
    match (result, last.into_inner()) {
        (Ok(job), _) => Ok(job),
        // The server ends a long stream before the job: not an error.
        (Err(_), Some(job)) => Ok(job),
        (Err(e), None) => Err(e),
    }
}

/// POSTs JSON and reads JSON back; errors as in [`get_json`].
pub async fn post_json<B: serde::Serialize, T: DeserializeOwned>(
    url: &str,
    body: &B,
) -> Result<T, ApiError> {
    send_json(gloo_net::http::Request::post(url), body).await
}

/// PUTs JSON and reads JSON back.
pub async fn put_json<B: serde::Serialize, T: DeserializeOwned>(
    url: &str,
    body: &B,
) -> Result<T, ApiError> {
    send_json(gloo_net::http::Request::put(url), body).await
}

/// DELETEs and reads JSON back.
pub async fn delete_json<T: DeserializeOwned>(url: &str) -> Result<T, ApiError> {
    let request = with_csrf(gloo_net::http::Request::delete(url));
    read(request.send().await.map_err(unreachable)?).await
}

/// The API address of an area's files (`project` None: the personal area), or of one file.
pub fn area_url(project: Option<&str>, file: Option<&str>) -> String {
    let mut url = match project {
        None => "/api/areas/personal/files".to_owned(),
        Some(p) => format!("/api/areas/projects/{}/files", encode(p)),
    };
    if let Some(f) = file {
        url.push('/');
        url.push_str(&encode(f));
    }
    url
}

/// A byte count for people: 1.2 kB, 250 MB.
pub fn size_text(bytes: u64) -> String {
    match bytes {
        0..1_000 => format!("{bytes} B"),
        1_000..1_000_000 => format!("{:.1} kB", bytes as f64 / 1e3),
        1_000_000..1_000_000_000 => format!("{:.1} MB", bytes as f64 / 1e6),
        _ => format!("{:.1} GB", bytes as f64 / 1e9),
    }
}

/// The empty JSON object, for POSTs whose path says it all.
#[derive(serde::Serialize)]
pub struct Empty {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_query_round_trips_through_the_page_url() {
        let q = CatalogQuery {
            text: "inntekt lønn".into(),
            unit_type: "PERSON".into(),
            temporality: String::new(),
            subject: "Inntekt og formue".into(),
            page: 2,
        };
        assert_eq!(
            q.page_url(),
            "/?q=inntekt%20l%C3%B8nn&unit_type=PERSON&subject=Inntekt%20og%20formue&page=2"
        );
        let back = CatalogQuery::from_pairs([
            ("q", "inntekt lønn"),
            ("unit_type", "PERSON"),
            ("subject", "Inntekt og formue"),
            ("page", "2"),
        ]);
        assert_eq!(back, q);
    }

    #[test]
    fn empty_fields_and_the_first_page_are_left_out_of_urls() {
        let q = CatalogQuery { text: "kjønn".into(), page: 1, ..CatalogQuery::default() };
        assert_eq!(q.api_url(), "/api/catalog/variables?q=kj%C3%B8nn");
        assert_eq!(
            CatalogQuery { page: 1, ..CatalogQuery::default() }.api_url(),
            "/api/catalog/variables"
        );
    }

    #[test]
    fn changing_a_filter_keeps_the_rest_and_returns_to_page_one() {
        let q = CatalogQuery {
            text: "lønn".into(),
            unit_type: "JOB".into(),
            page: 3,
            ..CatalogQuery::default()
        };
        let changed = q.with_filter("temporality", "EVENT".into());
        assert_eq!(changed.filter("temporality"), "EVENT");
        assert_eq!(changed.filter("unit_type"), "JOB");
        assert_eq!(changed.text, "lønn");
        assert_eq!(changed.page, 1);
        assert_eq!(q.with_filter("unit_type", String::new()).filter("unit_type"), "");
        assert_eq!(q.with_filter("nonsense", "x".into()), CatalogQuery { page: 1, ..q.clone() });
    }

    #[test]
    fn a_bad_page_number_falls_back_to_the_first_page() {
        assert_eq!(CatalogQuery::from_pairs([("page", "x")]).page, 1);
        assert_eq!(CatalogQuery::from_pairs([("page", "0")]).page, 1);
    }

    #[test]
    fn area_urls_encode_project_and_file_names() {
        assert_eq!(area_url(None, None), "/api/areas/personal/files");
        assert_eq!(
            area_url(Some("Lønn"), Some("a b.mds")),
            "/api/areas/projects/L%C3%B8nn/files/a%20b.mds"
        );
        assert_eq!(size_text(999), "999 B");
        assert_eq!(size_text(1_250), "1.2 kB");
        assert_eq!(size_text(250_000_000), "250.0 MB");
    }

    #[test]
    fn variable_urls_encode_their_parts() {
        assert_eq!(variable_url("INNTEKT_WLONN", None), "/api/catalog/variables/INNTEKT_WLONN");
        assert_eq!(
            variable_url("A B", Some("no.ssb")),
            "/api/catalog/variables/A%20B?datastore=no.ssb"
        );
    }
}
