//! Sending enrolment links by e-mail, when an SMTP server is configured (lettre). Without one,
//! the steward passes the link on by hand; with one, the link still comes back to the steward,
//! so a lost mail costs nothing.

use lettre::message::Mailbox;
use lettre::transport::smtp::authentication::Credentials;
use lettre::{Message, SmtpTransport, Transport};
use serde::{Deserialize, Serialize};

/// `[identity.mail]`.
#[derive(Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct MailSettings {
    /// The SMTP server; mail is off when empty.
    pub smtp_host: String,
    /// 587 for STARTTLS, 465 for TLS, 25 without.
    pub smtp_port: Option<u16>,
    /// `starttls` (the default), `tls`, or `none` (only for a relay on the same machine).
    pub security: Option<String>,
    pub username: Option<String>,
    /// Better set through `SKJOLD_SMTP_PASSWORD` than in a file. Never logged.
    pub password: Option<String>,
    /// The sender, such as `Skjold <noreply@example.org>`.
    pub from: String,
}

impl std::fmt::Debug for MailSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MailSettings")
            .field("smtp_host", &self.smtp_host)
            .field("smtp_port", &self.smtp_port)
            .field("security", &self.security)
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "(hidden)"))
            .field("from", &self.from)
            .finish()
    }
}

pub struct Mailer {
    transport: SmtpTransport,
    from: Mailbox,
    service: String,
}

impl std::fmt::Debug for Mailer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Mailer")
    }
}

impl Mailer {
    /// `None` when mail is not configured; an error naming the setting when it is wrong.
    pub fn new(settings: &MailSettings, service: &str) -> anyhow::Result<Option<Mailer>> {
        let host = settings.smtp_host.trim();
        if host.is_empty() {
            return Ok(None);
        }
        let from: Mailbox = settings.from.parse().map_err(|e| {
            anyhow::anyhow!(
                "identity.mail.from '{}': {e} (write it as Name <address@example.org>)",
                settings.from
            )
        })?;
        let security = settings.security.as_deref().unwrap_or("starttls");
        let mut builder = match security {
            "starttls" => SmtpTransport::starttls_relay(host),
            "tls" => SmtpTransport::relay(host),
            "none" => Ok(SmtpTransport::builder_dangerous(host)),
            other => anyhow::bail!("identity.mail.security '{other}': use starttls, tls or none"),
        }
        .map_err(|e| anyhow::anyhow!("identity.mail.smtp_host '{host}': {e}"))?;
        if let Some(port) = settings.smtp_port {
            builder = builder.port(port);
        }
        if let (Some(user), Some(password)) = (&settings.username, &settings.password) {
            builder = builder.credentials(Credentials::new(user.clone(), password.clone()));
        }
        let transport = builder.timeout(Some(std::time::Duration::from_secs(20))).build();
        Ok(Some(Mailer { transport, from, service: service.to_owned() }))
    }

    /// Sends `link` to `address`; the error says what went wrong, for the steward.
    pub fn send_enrolment(
        &self,
        display_name: &str,
        address: &str,
        link: &str,
        hours: i64,
    ) -> Result<(), String> {
        let to: Mailbox = format!("{display_name} <{address}>")
            .parse()
            .or_else(|_| address.parse())
            .map_err(|e| format!("'{address}' is not an e-mail address: {e}"))?;
        let body = format!(
            "Hello {display_name},\n\n\
             an account at {service} is ready for you. Open this link within {hours} hours to \
             choose how you sign in (a passkey, or a password with an authenticator app):\n\n\
             {link}\n\n\
             The link works once. If you did not expect this message, ignore it.\n",
            service = self.service,
        );
        let message = Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(format!("Your {} account", self.service))
            .body(body)
            .map_err(|e| format!("cannot write the message: {e}"))?;
        self.transport.send(&message).map(drop).map_err(|e| format!("the mail server refused: {e}"))
    }
}
