//! `cargo xtask bench`: measurements on a release build, kept out of CI.

pub fn command(_args: &[String]) -> Result<(), String> {
    Err("not written yet".into())
}
