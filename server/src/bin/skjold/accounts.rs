//! `skjold user` and `skjold project`: the data steward's account work, on the same
//! application database and audit log as the server.

use std::process::ExitCode;

use server::settings::Settings;

use crate::args::{ProjectCommand, UserCommand};

/// Opens the application database and the audit log, and runs one administrative command.
pub(crate) fn accounts(
    settings: &Settings,
    command: impl FnOnce(
        &server::identity::Identity,
        &str,
    ) -> Result<String, server::identity::AuthError>,
) -> ExitCode {
    use std::sync::Arc;
    let opened = (|| -> anyhow::Result<server::identity::Identity> {
        let store = settings.identity.open_store()?;
        let audit =
            server::disclosure::audit::JsonLinesAudit::open(&settings.audit_log).map_err(|e| {
                anyhow::anyhow!("cannot open the audit log {}: {e}", settings.audit_log.display())
            })?;
        server::identity::Identity::new(
            Arc::new(store),
            Arc::new(server::identity::SystemClock),
            settings.identity.clone(),
            Arc::new(audit),
        )
    })();
    let identity = match opened {
        Ok(i) => i,
        Err(e) => {
            eprintln!("error: {e:#}");
            return ExitCode::FAILURE;
        }
    };
    let by = std::env::var("USER").map(|u| format!("cli:{u}")).unwrap_or_else(|_| "cli".into());
    match command(&identity, &by) {
        Ok(text) => {
            println!("{text}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

fn user_named(
    identity: &server::identity::Identity,
    name: &str,
) -> Result<server::identity::User, server::identity::AuthError> {
    identity.store.user_by_name(name)?.ok_or_else(|| {
        server::identity::AuthError::NotFound(format!("there is no user named '{name}'"))
    })
}

fn parse_role(role: &str) -> Result<server::identity::Role, server::identity::AuthError> {
    server::identity::Role::parse(role).ok_or_else(|| {
        server::identity::AuthError::Invalid(format!(
            "unknown role '{role}': use member, teacher or steward"
        ))
    })
}

pub(crate) fn user_command(
    identity: &server::identity::Identity,
    command: UserCommand,
    by: &str,
) -> Result<String, server::identity::AuthError> {
    match command {
        UserCommand::Add { name, display_name, email, role } => {
            let role = parse_role(&role)?;
            let (user, link) =
                identity.add_user(&name, &display_name, email.as_deref(), role, by)?;
            let mailed = identity
                .mail_enrolment(&user, &link)
                .map(|m| format!("the link was e-mailed: {m}\n"))
                .unwrap_or_default();
            Ok(format!(
                "created {name} ({}); {mailed}pass on this one-time enrolment link (valid {} hours):\n{link}",
                role.as_str(),
                identity.settings.enrolment_hours
            ))
        }
        UserCommand::Enrolment { name } => {
            let user = user_named(identity, &name)?;
            let link = identity.enrolment_link(&user)?;
            Ok(match identity.mail_enrolment(&user, &link) {
                Some(m) => format!("the link was e-mailed: {m}\n{link}"),
                None => link,
            })
        }
        UserCommand::Role { name, role } => {
            let role = parse_role(&role)?;
            identity.set_role(&name, role, by)?;
            Ok(format!("{name} is now {}", role.as_str()))
        }
        UserCommand::List => Ok(identity
            .store
            .users()?
            .iter()
            .map(|u| {
                format!(
                    "{}\t{}\t{}\t{}",
                    u.name,
                    u.role.as_str(),
                    u.method.as_str(),
                    u.display_name
                )
            })
            .collect::<Vec<_>>()
            .join("\n")),
        UserCommand::Delete { name } => {
            identity.delete_user(&name, by)?;
            Ok(format!("deleted {name}"))
        }
        UserCommand::Token { name, label, days } => {
            let user = user_named(identity, &name)?;
            let (token, record) = identity.create_token(&user, &label, days)?;
            Ok(format!(
                "{token}\n(token {} for {name}, valid {days} days: shown this once)",
                record.id
            ))
        }
    }
}

pub(crate) fn project_command(
    identity: &server::identity::Identity,
    command: ProjectCommand,
    by: &str,
) -> Result<String, server::identity::AuthError> {
    use server::identity::ProjectKind;
    match command {
        ProjectCommand::Add { name, owner, course } => {
            let kind = if course { ProjectKind::Course } else { ProjectKind::Project };
            let project = identity.create_project(&name, kind, owner.as_deref(), by)?;
            Ok(match project.join_code {
                Some(code) => format!("created course '{name}'; students join with code {code}"),
                None => format!("created project '{name}'"),
            })
        }
        ProjectCommand::Grant { project, datastore, variable } => {
            identity.grant(&project, &datastore, variable.as_deref(), by)?;
            Ok(format!(
                "granted {datastore}{} to '{project}'",
                variable.map(|v| format!("/{v}")).unwrap_or_default()
            ))
        }
        ProjectCommand::Member { project, user } => {
            identity.add_member(&project, &user, by)?;
            Ok(format!("added {user} to '{project}'"))
        }
    }
}
