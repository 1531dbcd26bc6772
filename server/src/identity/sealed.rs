//! TOTP secrets sealed at rest. The database holds them as AES-256-GCM ciphertext under a key
//! kept in a file of its own (`identity.totp_key_file`, by default beside the database, mode
//! 0600), so a copy of the database alone (a backup, a dump, a stolen disk image of the data
//! volume) does not let anyone make a user's codes.
//!
//! A sealed value reads `sealed:v1:` and hex of nonce, ciphertext and tag. A value without
//! the prefix is a secret stored before sealing existed; it is read as it is and sealed at the
//! account's next save.

use std::path::Path;

use openssl::symm::{Cipher, decrypt_aead, encrypt_aead};

const PREFIX: &str = "sealed:v1:";
const NONCE: usize = 12;
const TAG: usize = 16;

#[derive(Clone)]
pub struct Sealer {
    key: [u8; 32],
}

impl std::fmt::Debug for Sealer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Sealer")
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) {
        return None;
    }
    (0..text.len()).step_by(2).map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok()).collect()
}

impl Sealer {
    pub fn new(key: [u8; 32]) -> Sealer {
        Sealer { key }
    }

    /// The key in `path` (64 hex digits), made with a random key when absent.
    pub fn from_key_file(path: &Path) -> std::io::Result<Sealer> {
        if !path.exists() {
            if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
                std::fs::create_dir_all(parent)?;
            }
            // When another process made it first, theirs is read below.
            crate::create_private(path, hex(&rand::random::<[u8; 32]>()).as_bytes())?;
        }
        let text = std::fs::read_to_string(path)?;
        let key = unhex(text.trim())
            .and_then(|k| <[u8; 32]>::try_from(k.as_slice()).ok())
            .ok_or_else(|| {
                std::io::Error::other(format!(
                    "{} must hold a key of 64 hex digits (setting identity.totp_key_file)",
                    path.display()
                ))
            })?;
        Ok(Sealer { key })
    }

    pub fn seal(&self, secret: &str) -> Result<String, String> {
        let nonce: [u8; NONCE] = rand::random();
        let mut tag = [0u8; TAG];
        let sealed = encrypt_aead(
            Cipher::aes_256_gcm(),
            &self.key,
            Some(&nonce),
            PREFIX.as_bytes(),
            secret.as_bytes(),
            &mut tag,
        )
        .map_err(|e| format!("cannot seal a TOTP secret: {e}"))?;
        Ok(format!("{PREFIX}{}{}{}", hex(&nonce), hex(&sealed), hex(&tag)))
    }

    pub fn open(&self, stored: &str) -> Result<String, String> {
        let Some(body) = stored.strip_prefix(PREFIX) else {
            return Ok(stored.to_owned());
        };
        let bytes = unhex(body).filter(|b| b.len() >= NONCE + TAG);
        let bytes = bytes.ok_or("a sealed TOTP secret is damaged")?;
        let (nonce, rest) = bytes.split_at(NONCE);
        let (sealed, tag) = rest.split_at(rest.len() - TAG);
        let plain = decrypt_aead(
            Cipher::aes_256_gcm(),
            &self.key,
            Some(nonce),
            PREFIX.as_bytes(),
            sealed,
            tag,
        )
        .map_err(|_| {
            "a TOTP secret does not open with this key: is identity.totp_key_file the file it was sealed with?".to_owned()
        })?;
        String::from_utf8(plain).map_err(|_| "a sealed TOTP secret is not text".to_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sealed_secret_opens_with_its_key_only_and_hides_the_secret() {
        let sealer = Sealer::new([7; 32]);
        let sealed = sealer.seal("JBSWY3DPEHPK3PXP").unwrap();
        assert!(sealed.starts_with(PREFIX) && !sealed.contains("JBSWY3DPEHPK3PXP"));
        assert_ne!(sealed, sealer.seal("JBSWY3DPEHPK3PXP").unwrap(), "a new nonce each time");
        assert_eq!(sealer.open(&sealed).unwrap(), "JBSWY3DPEHPK3PXP");
        assert!(Sealer::new([8; 32]).open(&sealed).unwrap_err().contains("does not open"));
        // One hex digit of the ciphertext changed: the tag no longer matches.
        let at = PREFIX.len() + 2 * NONCE;
        let digit = if &sealed[at..at + 1] == "0" { "1" } else { "0" };
        let mut tampered = sealed.clone();
        tampered.replace_range(at..at + 1, digit);
        assert!(sealer.open(&tampered).is_err());
        assert_eq!(sealer.open("PLAINOLD").unwrap(), "PLAINOLD", "older values are read");
    }

    #[test]
    fn the_key_file_is_made_once_private_and_then_read() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("totp.key");
        let first = Sealer::from_key_file(&path).unwrap();
        let sealed = first.seal("S").unwrap();
        assert_eq!(Sealer::from_key_file(&path).unwrap().open(&sealed).unwrap(), "S");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600);
        }
        std::fs::write(&path, "short").unwrap();
        assert!(Sealer::from_key_file(&path).unwrap_err().to_string().contains("64 hex digits"));
    }
}
