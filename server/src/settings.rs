//! Typed settings: defaults, then a TOML file, then `SKJOLD_*` environment variables.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// Address the HTTP server listens on (`SKJOLD_LISTEN`).
    pub listen: SocketAddr,
    /// Root folder of the published datastores (`SKJOLD_DATASTORES`).
    pub datastores: PathBuf,
    /// Folder of the built browser app, served at `/` (`SKJOLD_APP_DIR`).
    pub app_dir: PathBuf,
    /// `pretty` for people, `json` for log collectors (`SKJOLD_LOG_FORMAT`).
    pub log_format: LogFormat,
    /// The audit log of released outputs, one JSON object per line (`SKJOLD_AUDIT_LOG`).
    pub audit_log: PathBuf,
    /// Lets visitors run scripts on the `demo` datastore without signing in, in a workspace
    /// bound to a cookie (`SKJOLD_GUEST_WORKSPACE`). Production turns it off.
    pub guest_workspace: bool,
    /// Limits on one script run.
    pub limits: crate::engine::Limits,
    /// Runs per minute and outputs per hour, per user and per address (disclosure rule 11).
    pub rate_limits: crate::http::rate_limit::RateLimitSettings,
    /// Accounts, sessions, terms, the country gate (`[identity]`, `[identity.countries]`).
    pub identity: crate::identity::IdentitySettings,
    /// Batch jobs: workers and per-user limits (`[jobs]`).
    #[serde(default)]
    pub jobs: crate::jobs::JobSettings,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Pretty,
    Json,
}

impl Default for Settings {
    fn default() -> Settings {
        Settings {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            datastores: PathBuf::from(".skjold/datastores"),
            app_dir: PathBuf::from("dist"),
            log_format: LogFormat::Pretty,
            audit_log: PathBuf::from(".skjold/audit.jsonl"),
            guest_workspace: true,
            limits: crate::engine::Limits::default(),
            rate_limits: Default::default(),
            identity: Default::default(),
            jobs: Default::default(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
#[error("invalid settings: {0} (see `skjold --help` for every setting and its variable)")]
pub struct SettingsError(#[from] Box<figment::Error>);

impl Settings {
    /// Loads settings from `file` when given (it must exist), else from `skjold.toml` when
    /// present, with `SKJOLD_*` environment variables on top.
    pub fn load(file: Option<&Path>) -> Result<Settings, SettingsError> {
        let mut figment = Figment::from(Serialized::defaults(Settings::default()));
        match file {
            Some(path) => {
                if !path.exists() {
                    let message = format!("settings file {} does not exist", path.display());
                    return Err(SettingsError(Box::new(figment::Error::from(message))));
                }
                figment = figment.merge(Toml::file(path));
            }
            None => figment = figment.merge(Toml::file("skjold.toml")),
        }
        figment
            .merge(Env::prefixed("SKJOLD_").only(&[
                "listen",
                "datastores",
                "app_dir",
                "log_format",
                "audit_log",
                "guest_workspace",
            ]))
            // The two identity settings a deployment most often sets from its environment.
            .merge(
                Env::prefixed("SKJOLD_")
                    .only(&["database", "public_url"])
                    .map(|key| format!("identity.{key}").into()),
            )
            // A secret: from the environment, not a file someone may commit.
            .merge(
                Env::prefixed("SKJOLD_")
                    .only(&["smtp_password"])
                    .map(|_| "identity.mail.password".into()),
            )
            .extract()
            .map_err(|e| SettingsError(Box::new(e)))
    }
}

#[cfg(test)]
// figment's `Jail` closures return its own large error type; that is its API, not ours.
#[allow(clippy::result_large_err)]
mod tests {
    use super::*;

    #[test]
    fn file_values_override_defaults_and_environment_overrides_the_file() {
        figment::Jail::expect_with(|jail| {
            jail.create_file(
                "custom.toml",
                "listen = \"127.0.0.1:9000\"\ndatastores = \"/srv/data\"",
            )?;
            let from_file = Settings::load(Some(Path::new("custom.toml"))).expect("loads");
            assert_eq!(from_file.listen.port(), 9000);
            assert_eq!(from_file.datastores, PathBuf::from("/srv/data"));
            assert_eq!(from_file.app_dir, PathBuf::from("dist"));

            jail.set_env("SKJOLD_LISTEN", "0.0.0.0:7000");
            let overridden = Settings::load(Some(Path::new("custom.toml"))).expect("loads");
            assert_eq!(overridden.listen.to_string(), "0.0.0.0:7000");
            Ok(())
        });
    }

    #[test]
    fn a_bad_value_names_the_setting() {
        figment::Jail::expect_with(|jail| {
            jail.set_env("SKJOLD_LISTEN", "not-an-address");
            let err = Settings::load(None).unwrap_err().to_string();
            assert!(err.contains(r#"key "LISTEN" in `SKJOLD_` environment"#), "{err}");
            Ok(())
        });
    }

    #[test]
    fn a_missing_settings_file_is_an_error() {
        let err = Settings::load(Some(Path::new("/nonexistent/skjold.toml"))).unwrap_err();
        assert!(err.to_string().contains("/nonexistent/skjold.toml does not exist"), "{err}");
    }
}
