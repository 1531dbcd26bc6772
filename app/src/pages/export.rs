//! Downloads and copies from the results panel. They are built in the browser from the outputs
//! the page shows, which are the released outputs the server sent: nothing else ever reaches
//! the page, so nothing else can leave through here.

use wasm_bindgen::JsCast;
use wasm_bindgen::prelude::*;
use web_sys::{Element, HtmlAnchorElement, HtmlCanvasElement, HtmlImageElement};

/// Saves `text` as a file called `name`, of the media type `mime`.
pub fn download_text(name: &str, mime: &str, text: &str) -> Result<(), JsValue> {
    let parts = js_sys::Array::of1(&JsValue::from_str(text));
    let options = web_sys::BlobPropertyBag::new();
    options.set_type(mime);
    let blob = web_sys::Blob::new_with_str_sequence_and_options(&parts, &options)?;
    let url = web_sys::Url::create_object_url_with_blob(&blob)?;
    let saved = download_url(name, &url);
    web_sys::Url::revoke_object_url(&url)?;
    saved
}

/// Saves what `url` points to as a file called `name`, through a link clicked for the user.
fn download_url(name: &str, url: &str) -> Result<(), JsValue> {
    let document = web_sys::window().and_then(|w| w.document()).ok_or("no document")?;
    let link: HtmlAnchorElement = document.create_element("a")?.dyn_into()?;
    link.set_href(url);
    link.set_download(name);
    link.click();
    Ok(())
}

/// Copies `text` to the clipboard.
pub fn copy_text(text: &str) {
    if let Some(window) = web_sys::window() {
        let _ = window.navigator().clipboard().write_text(text);
    }
}

/// The styles a chart's look depends on: copied from the page onto each element of the copy,
/// since the saved file has no style sheet.
const STYLED: &[&str] = &[
    "fill",
    "fill-opacity",
    "stroke",
    "stroke-width",
    "stroke-opacity",
    "opacity",
    "font-size",
    "font-family",
    "text-anchor",
    "dominant-baseline",
];

/// The chart's `<svg>` in `figure` as a standalone SVG document, its computed styles inlined.
pub fn svg_document(figure: &Element) -> Option<(String, f64, f64)> {
    let window = web_sys::window()?;
    let svg = figure.query_selector("svg").ok()??;
    let copy: Element = svg.clone_node_with_deep(true).ok()?.dyn_into().ok()?;
    let (originals, copies) =
        (svg.query_selector_all("*").ok()?, copy.query_selector_all("*").ok()?);
    let style_onto = |from: &Element, onto: &Element| {
        let Ok(Some(computed)) = window.get_computed_style(from) else { return };
        let inline: String = STYLED
            .iter()
            .filter_map(|p| computed.get_property_value(p).ok().map(|v| format!("{p}:{v};")))
            .collect();
        let _ = onto.set_attribute("style", &inline);
    };
    style_onto(&svg, &copy);
    for i in 0..originals.length() {
        let (Some(from), Some(onto)) = (originals.item(i), copies.item(i)) else { continue };
        if let (Ok(from), Ok(onto)) = (from.dyn_into::<Element>(), onto.dyn_into::<Element>()) {
            style_onto(&from, &onto);
        }
    }
    let _ = copy.set_attribute("xmlns", "http://www.w3.org/2000/svg");
    // The drawn size: the viewBox's, or the shown one.
    let rect = svg.get_bounding_client_rect();
    let (width, height) = copy
        .get_attribute("viewBox")
        .and_then(|v| {
            let n: Vec<f64> = v.split_whitespace().filter_map(|x| x.parse().ok()).collect();
            (n.len() == 4).then(|| (n[2], n[3]))
        })
        .unwrap_or((rect.width(), rect.height()));
    let _ = copy.set_attribute("width", &width.to_string());
    let _ = copy.set_attribute("height", &height.to_string());
    Some((
        format!("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n{}", copy.outer_html()),
        width,
        height,
    ))
}

/// Saves the SVG document `svg` (`width` × `height`) as a PNG at twice that size, drawn by
/// the browser on a canvas.
pub fn download_png(name: &str, svg: &str, width: f64, height: f64) -> Result<(), JsValue> {
    let document = web_sys::window().and_then(|w| w.document()).ok_or("no document")?;
    let image = HtmlImageElement::new()?;
    let source = format!(
        "data:image/svg+xml;charset=utf-8,{}",
        js_sys::encode_uri_component(svg).as_string().unwrap_or_default()
    );
    let canvas: HtmlCanvasElement = document.create_element("canvas")?.dyn_into()?;
    let (w, h) = ((width * 2.0).round().max(1.0) as u32, (height * 2.0).round().max(1.0) as u32);
    canvas.set_width(w);
    canvas.set_height(h);
    let name = name.to_owned();
    let drawn = image.clone();
    let onload = Closure::once_into_js(move || {
        let draw = || -> Result<(), JsValue> {
            let context: web_sys::CanvasRenderingContext2d =
                canvas.get_context("2d")?.ok_or("no 2d context")?.dyn_into()?;
            context.set_fill_style_str("#ffffff");
            context.fill_rect(0.0, 0.0, f64::from(w), f64::from(h));
            context.draw_image_with_html_image_element_and_dw_and_dh(
                &drawn,
                0.0,
                0.0,
                f64::from(w),
                f64::from(h),
            )?;
            download_url(&name, &canvas.to_data_url_with_type("image/png")?)
        };
        if let Err(e) = draw() {
            web_sys::console::error_1(&e);
        }
    });
    image.set_onload(Some(onload.unchecked_ref()));
    image.set_src(&source);
    Ok(())
}
