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
