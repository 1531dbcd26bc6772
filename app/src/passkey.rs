//! Passkeys through `public/passkey.js`, which speaks WebAuthn's JSON forms: the app hands it
//! the server's options as text and gets the credential back as text.

use wasm_bindgen::prelude::*;

#[wasm_bindgen]
extern "C" {
    #[wasm_bindgen(js_namespace = skjoldPasskey, js_name = supported)]
    fn js_supported() -> bool;
    #[wasm_bindgen(catch, js_namespace = skjoldPasskey, js_name = create)]
    async fn js_create(options: String) -> Result<JsValue, JsValue>;
    #[wasm_bindgen(catch, js_namespace = skjoldPasskey, js_name = get)]
    async fn js_get(options: String) -> Result<JsValue, JsValue>;
}

/// Whether this browser can use passkeys (and the helper script loaded).
pub fn supported() -> bool {
    let loaded = js_sys::Reflect::get(&js_sys::global(), &"skjoldPasskey".into())
        .is_ok_and(|v| !v.is_undefined());
    loaded && js_supported()
}

fn message(error: JsValue) -> String {
    let text = js_sys::Reflect::get(&error, &"message".into())
        .ok()
        .and_then(|m| m.as_string())
        .unwrap_or_else(|| format!("{error:?}"));
    format!("the passkey was not created or used ({text}); try again, or use another device")
}

async fn call(
    options: &serde_json::Value,
    f: impl AsyncFnOnce(String) -> Result<JsValue, JsValue>,
) -> Result<serde_json::Value, String> {
    let answer = f(options.to_string()).await.map_err(message)?;
    let text = answer.as_string().ok_or("the browser gave no credential")?;
    serde_json::from_str(&text).map_err(|e| format!("the browser's credential is not JSON: {e}"))
}

/// `navigator.credentials.create` with the server's registration options.
pub async fn create(options: &serde_json::Value) -> Result<serde_json::Value, String> {
    call(options, js_create).await
}

/// `navigator.credentials.get` with the server's sign-in options.
pub async fn get(options: &serde_json::Value) -> Result<serde_json::Value, String> {
    call(options, js_get).await
}
