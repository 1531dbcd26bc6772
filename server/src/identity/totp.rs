//! TOTP (RFC 6238) through totp-rs: SHA-1, 6 digits, 30-second steps, ±1 step of skew — what
//! every common authenticator app reads from an `otpauth://` QR code.

use totp_rs::{Algorithm, Secret, Totp};

const ISSUER: &str = "Skjold";

fn totp(secret_base32: &str, account: &str) -> Result<Totp, String> {
    let secret =
        Secret::try_from_base32(secret_base32).map_err(|e| format!("bad TOTP secret: {e}"))?;
    totp_rs::Builder::new()
        .with_algorithm(Algorithm::SHA1)
        .with_digits(6)
        .with_skew(1)
        .with_step_duration(30)
        .with_secret(secret)
        .with_issuer(Some(ISSUER))
        .with_account_name(account)
        .build()
        .map_err(|e| format!("cannot make a TOTP: {e}"))
}

/// A new 160-bit secret, base32 (as RFC 4226 recommends).
pub fn new_secret() -> String {
    Secret::new_stack(rand::random::<[u8; 20]>()).to_base32()
}

/// The step of `code` if it is valid at `now` (±1 step) and newer than `last_step`.
pub fn verify(secret_base32: &str, code: &str, now: i64, last_step: Option<i64>) -> Option<i64> {
    let code: String = code.chars().filter(|c| !c.is_whitespace()).collect();
    if code.len() != 6 || !code.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let totp = totp(secret_base32, "-").ok()?;
    let step = totp.check(&code, u64::try_from(now).ok()?)? as i64;
    // A code is good once: the same step (or an earlier one) again is a replay.
    (last_step.is_none_or(|last| step > last)).then_some(step)
}

/// The code at `now`, for tests and for the e2e helper.
pub fn code_at(secret_base32: &str, now: i64) -> Option<String> {
    let totp = totp(secret_base32, "-").ok()?;
    Some(totp.generate(u64::try_from(now).ok()?).to_string())
}

/// What an authenticator app needs: the otpauth URI, the secret for typing, the QR code.
pub fn enrolment(secret_base32: &str, account: &str) -> Result<super::TotpEnrolment, String> {
    let uri = totp(secret_base32, account)?.to_url().map_err(|e| e.to_string())?;
    let qr = qrcodegen::QrCode::encode_text(&uri, qrcodegen::QrCodeEcc::Medium)
        .map_err(|e| format!("cannot draw the QR code: {e:?}"))?;
    Ok(super::TotpEnrolment {
        otpauth_uri: uri,
        secret: secret_base32.to_owned(),
        qr_svg: qr_svg(&qr),
    })
}

/// The QR code as SVG, one path, with the four-module quiet zone scanners need.
fn qr_svg(qr: &qrcodegen::QrCode) -> String {
    let border = 4;
    let size = qr.size() + 2 * border;
    let mut path = String::new();
    for y in 0..qr.size() {
        for x in 0..qr.size() {
            if qr.get_module(x, y) {
                path.push_str(&format!("M{},{}h1v1h-1z", x + border, y + border));
            }
        }
    }
    format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 {size} {size}\" \
         shape-rendering=\"crispEdges\" role=\"img\" aria-label=\"QR code for your authenticator app\">\
         <rect width=\"100%\" height=\"100%\" fill=\"#fff\"/><path d=\"{path}\" fill=\"#000\"/></svg>"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 6238 appendix B: the SHA-1 secret "12345678901234567890", 8-digit codes; the last
    /// six digits are the 6-digit codes.
    #[test]
    fn codes_match_the_rfc_6238_test_vectors() {
        let secret = Secret::new_stack(*b"12345678901234567890").to_base32();
        for (time, eight) in [
            (59, "94287082"),
            (1_111_111_109, "07081804"),
            (1_234_567_890, "89005924"),
            (2_000_000_000, "69279037"),
        ] {
            assert_eq!(code_at(&secret, time).as_deref(), Some(&eight[2..]), "t = {time}");
        }
    }

    #[test]
    fn one_step_of_skew_is_allowed_and_a_code_is_good_once() {
        let secret = new_secret();
        let now = 1_800_000_015;
        let code = code_at(&secret, now).unwrap();
        let step = now / 30;
        assert_eq!(verify(&secret, &code, now, None), Some(step));
        assert_eq!(verify(&secret, &code, now + 30, None), Some(step), "one step late");
        assert_eq!(verify(&secret, &code, now - 30, None), Some(step), "one step early");
        assert_eq!(verify(&secret, &code, now + 60, None), None, "two steps late");
        assert_eq!(verify(&secret, &code, now, Some(step)), None, "replayed");
        let next = code_at(&secret, now + 30).unwrap();
        assert_eq!(verify(&secret, &next, now + 30, Some(step)), Some(step + 1));
        assert_eq!(verify(&secret, "12345", now, None), None);
        assert_eq!(verify(&secret, "abcdef", now, None), None);
    }

    #[test]
    fn the_enrolment_has_an_otpauth_uri_and_a_qr_code() {
        let secret = new_secret();
        let e = enrolment(&secret, "kari").unwrap();
        assert!(e.otpauth_uri.starts_with("otpauth://totp/Skjold:kari?"), "{}", e.otpauth_uri);
        assert!(e.otpauth_uri.contains(&format!("secret={secret}")));
        assert!(e.otpauth_uri.contains("issuer=Skjold"));
        assert!(e.qr_svg.starts_with("<svg") && e.qr_svg.contains("h1v1h-1z"));
    }
}
