//! Password policy and hashing: the rules a steward can explain to a user, and argon2id.
//!
//! The policy is MONA's: at least 12 characters from at least three of lower case, upper case,
//! digits and specials, and not a common password. "Common" is judged on the password's letters
//! with the usual decorations taken off, so `Password123!` is refused with `password`.

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};

pub const MIN_LENGTH: usize = 12;
/// NIST SP 800-63B's length for a password: length, not composition, is what makes one hard
/// to guess.
pub const NIST_MIN_LENGTH: usize = 15;

/// Which rules a new password must meet (setting `identity.password_policy`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PasswordPolicy {
    /// MONA's: 12 characters from three kinds, not common, changed every
    /// `max_password_age_days`.
    #[default]
    Mona,
    /// NIST SP 800-63B: 15 characters of any kind, not common nor the user name, and no
    /// forced change (an old password is not a weak one).
    Nist,
}

impl PasswordPolicy {
    /// Whether passwords must be changed after `max_password_age_days`.
    pub fn expires(self) -> bool {
        self == PasswordPolicy::Mona
    }
}

/// Why a new password was refused; the message tells the user what to change.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PolicyError {
    #[error("the password has {0} characters; use at least {1}")]
    TooShort(usize, usize),
    #[error(
        "the password uses {0} of the four kinds of character; use at least three of lower case, \
         upper case, digits and specials (such as ! or #)"
    )]
    TooFewKinds(usize),
    #[error("the password is built on '{0}', one of the most common passwords; choose another")]
    Common(String),
    #[error("the password contains your user name; choose another")]
    ContainsUserName,
}

/// The most used passwords and password stems (from published breach-frequency lists), lower
/// case. A password is refused when its letters, decorations removed, are one of these.
const COMMON: &str = include_str!("common-passwords.txt");

/// Checks a new password against MONA's policy.
pub fn check_policy(password: &str, user_name: &str) -> Result<(), PolicyError> {
    check_policy_of(PasswordPolicy::Mona, password, user_name)
}

/// Checks a new password against `policy`.
pub fn check_policy_of(
    policy: PasswordPolicy,
    password: &str,
    user_name: &str,
) -> Result<(), PolicyError> {
    let length = password.chars().count();
    let least = match policy {
        PasswordPolicy::Mona => MIN_LENGTH,
        PasswordPolicy::Nist => NIST_MIN_LENGTH,
    };
    if length < least {
        return Err(PolicyError::TooShort(length, least));
    }
    if policy == PasswordPolicy::Mona {
        check_kinds(password)?;
    }
    check_not_guessable(password, user_name)
}

fn check_kinds(password: &str) -> Result<(), PolicyError> {
    let kinds = [
        password.chars().any(char::is_lowercase),
        password.chars().any(char::is_uppercase),
        password.chars().any(|c| c.is_ascii_digit()),
        password.chars().any(|c| !c.is_alphanumeric()),
    ]
    .iter()
    .filter(|&&k| k)
    .count();
    if kinds < 3 {
        return Err(PolicyError::TooFewKinds(kinds));
    }
    Ok(())
}

/// Not the user name, and not one of the common passwords under its usual decorations.
fn check_not_guessable(password: &str, user_name: &str) -> Result<(), PolicyError> {
    let lower = password.to_lowercase();
    if user_name.chars().count() >= 3 && lower.contains(&user_name.to_lowercase()) {
        return Err(PolicyError::ContainsUserName);
    }
    // Undo the usual decorations: digits and signs around the word, then leetspeak inside it.
    let core = lower.trim_matches(|c: char| !c.is_alphabetic());
    let stem: String = core
        .chars()
        .map(|c| match c {
            '0' => 'o',
            '1' | '!' => 'i',
            '3' => 'e',
            '4' | '@' => 'a',
            '5' | '$' => 's',
            '7' => 't',
            c => c,
        })
        .filter(|c| c.is_alphabetic())
        .collect();
    let letters: String = lower.chars().filter(|c| c.is_alphabetic()).collect();
    for common in COMMON.lines().map(str::trim).filter(|l| !l.is_empty() && !l.starts_with('#')) {
        if lower == common || stem == common || letters == common {
            return Err(PolicyError::Common(common.to_owned()));
        }
    }
    Ok(())
}

/// argon2id with OWASP's second recommended setting (19 MiB, 2 passes, 1 lane).
fn hasher() -> Argon2<'static> {
    let params = Params::new(19 * 1024, 2, 1, None).expect("constant parameters are valid");
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

/// A PHC string (`$argon2id$v=19$m=19456,t=2,p=1$…`) with a random salt.
pub fn hash(password: &str) -> String {
    let salt =
        SaltString::encode_b64(&rand::random::<[u8; 16]>()).expect("16 bytes is a valid salt");
    hasher()
        .hash_password(password.as_bytes(), &salt)
        .expect("argon2 hashes any password with constant parameters")
        .to_string()
}

thread_local! {
    /// argon2 verifications made on this thread: lets tests check that every path through
    /// sign-in pays for exactly one, without timing anything.
    static VERIFICATIONS: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
}

/// How many verifications this thread has made.
pub fn verifications() -> u64 {
    VERIFICATIONS.with(std::cell::Cell::get)
}

/// Checks `password` against a stored PHC string; a malformed string never verifies.
pub fn verify(password: &str, phc: &str) -> bool {
    VERIFICATIONS.with(|n| n.set(n.get() + 1));
    PasswordHash::new(phc)
        .is_ok_and(|parsed| hasher().verify_password(password.as_bytes(), &parsed).is_ok())
}

/// A hash of a password nobody knows, verified against when the user does not exist, so that
/// an unknown user costs the same time as a wrong password.
pub fn decoy_hash() -> &'static str {
    static DECOY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DECOY.get_or_init(|| hash(&format!("{:032x}", rand::random::<u128>())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_policy_names_what_to_change() {
        assert_eq!(check_policy("Short1!", "ola"), Err(PolicyError::TooShort(7, 12)));
        assert_eq!(check_policy("alllowercaseletters", "ola"), Err(PolicyError::TooFewKinds(1)));
        assert_eq!(check_policy("lowerand12345678", "ola"), Err(PolicyError::TooFewKinds(2)));
        assert_eq!(
            check_policy("Password123!", "ola"),
            Err(PolicyError::Common("password".into()))
        );
        assert_eq!(
            check_policy("P@ssw0rd2024!", "ola"),
            Err(PolicyError::Common("password".into()))
        );
        assert_eq!(
            check_policy("Qwertyuiop12", "ola"),
            Err(PolicyError::Common("qwertyuiop".into()))
        );
        assert_eq!(
            check_policy("Kari.Nordmann-77", "nordmann"),
            Err(PolicyError::ContainsUserName)
        );
        assert_eq!(check_policy("Tre små Katter 9", "ola"), Ok(()));
        // NIST SP 800-63B: length instead of kinds, the same list of common passwords.
        let nist = |p: &str| check_policy_of(PasswordPolicy::Nist, p, "ola");
        assert_eq!(nist("alllowercaseletters"), Ok(()));
        assert_eq!(nist("Tre små Katter 9"), Ok(()));
        assert_eq!(nist("Short1!Short1!"), Err(PolicyError::TooShort(14, 15)));
        assert!(
            matches!(nist("passwordpassword"), Err(PolicyError::Common(_))),
            "{:?}",
            nist("passwordpassword")
        );
        assert_eq!(nist("ola-likes-long-walks"), Err(PolicyError::ContainsUserName));
        assert_eq!(check_policy("correct-HORSE-battery", "ola"), Ok(()));
    }

    #[test]
    fn hashes_are_argon2id_salted_and_verify_only_the_right_password() {
        let a = hash("Tre små Katter 9");
        let b = hash("Tre små Katter 9");
        assert!(a.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{a}");
        assert_ne!(a, b, "each hash has its own salt");
        assert!(verify("Tre små Katter 9", &a));
        assert!(!verify("Tre små Katter 8", &a));
        assert!(!verify("Tre små Katter 9", "not a phc string"));
        assert!(!verify("anything", decoy_hash()));
    }
}
