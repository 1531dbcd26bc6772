//! `skjold`: the server and its administrative commands. Parsing only; the work is in the library.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use clap::{Parser, Subcommand};
use server::datastore::{generate, input};
use server::settings::{LogFormat, Settings};
use server::{AppState, telemetry};

/// Skjold: confidential register microdata, analysed in the browser.
///
/// Settings come from a TOML file (--config, else ./skjold.toml when present) and from
/// environment variables that override it: SKJOLD_LISTEN (default 127.0.0.1:8080),
/// SKJOLD_DATASTORES (default .skjold/datastores), SKJOLD_APP_DIR (default dist),
/// SKJOLD_LOG_FORMAT (pretty or json). RUST_LOG sets the log level.
#[derive(Debug, Parser)]
#[command(name = "skjold", version, propagate_version = true)]
struct Cli {
    /// Settings file (TOML).
    #[arg(long, global = true, env = "SKJOLD_CONFIG")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Start the HTTP server: the API and the browser app.
    Serve {
        /// Address to listen on, overriding the settings (e.g. 0.0.0.0:8080).
        #[arg(long)]
        listen: Option<std::net::SocketAddr>,
        /// Root folder of the published datastores, overriding the settings.
        #[arg(long)]
        datastores: Option<PathBuf>,
        /// Folder of the built app, overriding the settings.
        #[arg(long)]
        app_dir: Option<PathBuf>,
    },
    /// Run a script file through the engine and the disclosure gate, the batch path: prints
    /// the released outputs. Exits with 1 when a command failed or was refused.
    Run {
        /// The script, in the language of the workbench.
        file: PathBuf,
        /// Datastore root folder, as written by `datastore generate --out` or `build --out`
        /// (default: the server's setting).
        #[arg(long)]
        datastore: Option<PathBuf>,
        /// text for people, json for programs: {"outputs":[{"line":N,"command":"…","kind":…}]}.
        #[arg(long, value_enum, default_value_t = OutputFormat::Text)]
        format: OutputFormat,
        /// Print to stderr how long the run took, the disclosure gate's share, and the
        /// workspace's Arrow memory.
        #[arg(long)]
        timings: bool,
    },
    /// Create, load and check register datastores.
    #[command(subcommand)]
    Datastore(DatastoreCommand),
    /// Manage accounts (the data steward's work): prints enrolment links to pass on.
    #[command(subcommand)]
    User(UserCommand),
    /// Manage projects, courses, their members and grants.
    #[command(subcommand)]
    Project(ProjectCommand),
    /// Check the audit log.
    #[command(subcommand)]
    Audit(AuditCommand),
    /// The batch client: submit scripts to a server as batch jobs, follow them and fetch their
    /// released outputs. Signs in with a personal access token made in the app.
    Batch {
        /// The server's address, e.g. https://skjold.example.org.
        #[arg(long, env = "SKJOLD_SERVER", global = true)]
        server: Option<String>,
        /// The access token (skj_…); prefer the variable, which stays out of shell history.
        #[arg(long, env = "SKJOLD_TOKEN", hide_env_values = true, global = true)]
        token: Option<String>,
        #[command(subcommand)]
        action: BatchCommand,
    },
}

#[derive(Debug, Subcommand)]
enum BatchCommand {
    /// Queue a script file as a batch job; prints its id.
    Submit {
        file: PathBuf,
        /// The project to run in, when you are in more than one.
        #[arg(long)]
        project: Option<String>,
    },
    /// One line on a job: its state, progress and error.
    Status { id: i64 },
    /// Wait until a job has finished; exits with 1 unless it is done.
    Wait {
        id: i64,
        /// Give up after this many seconds.
        #[arg(long, default_value_t = 3600)]
        timeout: u64,
    },
    /// Write a finished job's released outputs as JSON, and its tables as CSV.
    Fetch {
        id: i64,
        /// Folder to write into.
        #[arg(long, default_value = ".")]
        out: PathBuf,
    },
    /// Your jobs, newest first.
    List,
    /// Cancel a queued or running job.
    Cancel { id: i64 },
}

#[derive(Debug, Subcommand)]
enum AuditCommand {
    /// Check the hash chain of an audit log (default: the settings' audit_log): reports the
    /// first edited, missing, reordered or half-written record and exits with 1, or counts
    /// the records of a whole chain. A `.head` file beside the log also tells a log cut
    /// short at the end.
    Verify {
        file: Option<PathBuf>,
        /// The head to check the end against, instead of FILE.head: "SEQ HASH" as the head
        /// file holds it, kept elsewhere.
        #[arg(long)]
        head: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
enum UserCommand {
    /// Create an account and print its one-time enrolment link.
    Add {
        /// User name: lower-case letters, digits, '.', '-', '_'.
        name: String,
        /// The person's name, as shown in the app.
        #[arg(long = "display-name")]
        display_name: String,
        #[arg(long)]
        email: Option<String>,
        /// member, teacher or steward.
        #[arg(long, default_value = "member")]
        role: String,
    },
    /// A new enrolment link for an account (to link or switch its sign-in method).
    Enrolment { name: String },
    /// Change an account's role.
    Role { name: String, role: String },
    /// List accounts.
    List,
    /// Delete an account and everything that hangs on it.
    Delete { name: String },
    /// Issue a personal access token for an account (a batch or service account); prints it
    /// once. Users make their own in the app.
    Token {
        name: String,
        /// What the token is for.
        #[arg(long = "label", default_value = "issued by a steward")]
        label: String,
        #[arg(long, default_value_t = 30)]
        days: u32,
    },
}

#[derive(Debug, Subcommand)]
enum ProjectCommand {
    /// Create a project (or, with --course, a course with a join code).
    Add {
        name: String,
        #[arg(long)]
        owner: Option<String>,
        #[arg(long)]
        course: bool,
    },
    /// Grant a project a whole datastore, or one variable of it.
    Grant {
        project: String,
        datastore: String,
        #[arg(long)]
        variable: Option<String>,
    },
    /// Add a user to a project.
    Member { project: String, user: String },
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum OutputFormat {
    Text,
    Json,
}

#[derive(Debug, Subcommand)]
enum DatastoreCommand {
    /// Generate the synthetic population and publish it as datastore `demo` version 1.
    Generate {
        /// Number of persons in the population.
        #[arg(long, default_value_t = 200_000)]
        persons: u64,
        /// Seed: the same seed and number of persons give the same data.
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Datastore root folder to publish into.
        #[arg(long)]
        out: PathBuf,
        /// Replace an existing demo version 1.
        #[arg(long)]
        force: bool,
        /// Worker threads (default: all cores). The output does not depend on it.
        #[arg(long)]
        threads: Option<usize>,
    },
    /// Load a register from CSV + JSON input and publish it as the datastore's next version.
    Build {
        /// Input folder: datastore.json, and NAME.json + NAME.csv per variable.
        #[arg(long)]
        input: PathBuf,
        /// Datastore root folder to publish into.
        #[arg(long)]
        out: PathBuf,
    },
    /// Check a register input folder without writing anything; lists every problem.
    Validate {
        /// Input folder: datastore.json, and NAME.json + NAME.csv per variable.
        #[arg(long)]
        input: PathBuf,
    },
}

/// glibc's allocator raises its trim threshold as large blocks come and go, so the memory a
/// scan's decode buffers give back stays with the process: a workspace of 5.5 M persons × 10
/// variables peaked at 1.6× its Arrow size, against 1.4× with a fixed threshold. The threshold
/// can only be set before the allocator starts (mallopt would need unsafe code), so the process
/// starts itself once more with it in the environment. A value the operator set is kept.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn return_freed_memory_to_the_system() {
    use std::os::unix::process::CommandExt;
    const TRIM: &str = "MALLOC_TRIM_THRESHOLD_";
    if std::env::var_os(TRIM).is_some() {
        return;
    }
    let Ok(exe) = std::env::current_exe() else { return };
    // exec returns only if it failed; then the process simply runs untuned.
    let _ = std::process::Command::new(exe)
        .args(std::env::args_os().skip(1))
        .env(TRIM, (4u32 << 20).to_string())
        .exec();
}

/// Other allocators return memory by themselves.
#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn return_freed_memory_to_the_system() {}

fn main() -> ExitCode {
    return_freed_memory_to_the_system();
    let cli = Cli::parse();
    let settings = match Settings::load(cli.config.as_deref()) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    match cli.command {
        Command::Serve { listen, datastores, app_dir } => {
            let mut settings = settings;
            settings.listen = listen.unwrap_or(settings.listen);
            settings.datastores = datastores.unwrap_or(settings.datastores);
            settings.app_dir = app_dir.unwrap_or(settings.app_dir);
            serve(settings)
        }
        Command::Run { file, datastore, format, timings } => {
            let mut settings = settings;
            settings.datastores = datastore.unwrap_or(settings.datastores);
            run_script(&settings, &file, format, timings)
        }
        Command::User(command) => {
            accounts(&settings, |identity, by| user_command(identity, command, by))
        }
        Command::Project(command) => {
            accounts(&settings, |identity, by| project_command(identity, command, by))
        }
        Command::Datastore(command) => {
            telemetry::init(LogFormat::Pretty);
            datastore(command)
        }
        Command::Audit(AuditCommand::Verify { file, head }) => {
            verify_audit(&file.unwrap_or(settings.audit_log), head.as_deref())
        }
        Command::Batch { server, token, action } => batch(server, token, action),
    }
}

fn batch(server: Option<String>, token: Option<String>, action: BatchCommand) -> ExitCode {
    use server::batch_client::{Action, Client};
    let action = match action {
        BatchCommand::Submit { file, project } => Action::Submit { file, project },
        BatchCommand::Status { id } => Action::Status { id },
        BatchCommand::Wait { id, timeout } => {
            Action::Wait { id, timeout: std::time::Duration::from_secs(timeout) }
        }
        BatchCommand::Fetch { id, out } => Action::Fetch { id, out },
        BatchCommand::List => Action::List,
        BatchCommand::Cancel { id } => Action::Cancel { id },
    };
    let Some(server) = server else {
        eprintln!("error: give the server with --server URL or SKJOLD_SERVER");
        return ExitCode::from(2);
    };
    let outcome = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the async runtime: {e}"))
        .and_then(|runtime| {
            let client = Client::new(&server, token.as_deref().unwrap_or_default())?;
            runtime.block_on(client.run(action))
        });
    match outcome {
        Ok(outcome) => {
            println!("{}", outcome.text);
            if outcome.success { ExitCode::SUCCESS } else { ExitCode::FAILURE }
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

fn verify_audit(path: &std::path::Path, head: Option<&str>) -> ExitCode {
    use server::disclosure::audit;
    let file = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) => {
            eprintln!("error: cannot open the audit log {}: {e}", path.display());
            return ExitCode::from(2);
        }
    };
    let head = match head {
        Some(text) => match audit::parse_head(text) {
            Some(head) => Some(head),
            None => {
                eprintln!(
                    "error: --head is \"SEQ HASH\", as the .head file holds it, not {text:?}"
                );
                return ExitCode::from(2);
            }
        },
        None => match audit::read_head(path) {
            Ok(head) => head,
            Err(e) => {
                eprintln!("error: cannot read the head beside {}: {e}", path.display());
                return ExitCode::from(2);
            }
        },
    };
    let checked_end = head.is_some();
    match audit::verify(std::io::BufReader::new(file), head) {
        Ok(records) => {
            let end = if checked_end {
                "its end matches the head"
            } else {
                "no head to check its end against"
            };
            println!("{}: {records} records, the chain is whole; {end}", path.display());
            ExitCode::SUCCESS
        }
        Err(broken) => {
            println!("{}: {broken}", path.display());
            ExitCode::FAILURE
        }
    }
}

/// Opens the application database and the audit log, and runs one administrative command.
fn accounts(
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

fn parse_role(role: &str) -> Result<server::identity::Role, server::identity::AuthError> {
    server::identity::Role::parse(role).ok_or_else(|| {
        server::identity::AuthError::Invalid(format!(
            "unknown role '{role}': use member, teacher or steward"
        ))
    })
}

fn user_command(
    identity: &server::identity::Identity,
    command: UserCommand,
    by: &str,
) -> Result<String, server::identity::AuthError> {
    use server::identity::AuthError;
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
            let user = identity
                .store
                .user_by_name(&name)?
                .ok_or_else(|| AuthError::NotFound(format!("there is no user named '{name}'")))?;
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
            let user = identity
                .store
                .user_by_name(&name)?
                .ok_or_else(|| AuthError::NotFound(format!("there is no user named '{name}'")))?;
            let (token, record) = identity.create_token(&user, &label, days)?;
            Ok(format!(
                "{token}\n(token {} for {name}, valid {days} days: shown this once)",
                record.id
            ))
        }
    }
}

fn project_command(
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

fn serve(settings: Settings) -> ExitCode {
    telemetry::init(settings.log_format);
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result: anyhow::Result<()> = runtime.block_on(async {
        let state = AppState::load(&settings)?;
        if state.registry.datastores.is_empty() {
            tracing::warn!(
                datastores = %settings.datastores.display(),
                "no datastore found; create one with `skjold datastore generate --out {}`",
                settings.datastores.display()
            );
        }
        let listener = tokio::net::TcpListener::bind(settings.listen).await.map_err(|e| {
            anyhow::anyhow!(
                "cannot listen on {}: {e} (choose another with --listen or SKJOLD_LISTEN)",
                settings.listen
            )
        })?;
        let address = listener.local_addr()?;
        tracing::info!(
            url = %format!("http://{address}"),
            variables = state.catalog.len(),
            "skjold is listening"
        );
        server::run(listener, state, &settings, server::shutdown_signal()).await?;
        Ok(())
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run_script(
    settings: &Settings,
    file: &std::path::Path,
    format: OutputFormat,
    timings: bool,
) -> ExitCode {
    // Logs go to stderr, so stdout holds only the outputs.
    telemetry::init(settings.log_format);
    let script = match std::fs::read_to_string(file) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: cannot read the script {}: {e}", file.display());
            return ExitCode::from(2);
        }
    };
    if !settings.datastores.exists() {
        eprintln!(
            "error: no datastore folder at {}: pass --datastore, or create one with `skjold datastore generate --out {}`",
            settings.datastores.display(),
            settings.datastores.display()
        );
        return ExitCode::from(2);
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result: anyhow::Result<(String, bool)> = runtime.block_on(async {
        let state = AppState::load_for_batch(settings)?;
        let user =
            std::env::var("USER").map(|u| format!("cli:{u}")).unwrap_or_else(|_| "cli".into());
        let mut workspace = server::engine::Workspace::default();
        let (outputs, spent) =
            state.engine.run_timed(&mut workspace, &script, state.audit.as_ref(), &user).await;
        if timings {
            eprintln!(
                "timings: run {:.3} s, disclosure gate {:.3} s ({:.1} %), workspace Arrow memory {} bytes",
                spent.total.as_secs_f64(),
                spent.gate.as_secs_f64(),
                100.0 * spent.gate.as_secs_f64() / spent.total.as_secs_f64().max(1e-9),
                workspace.arrow_bytes()
            );
        }
        let failed = outputs
            .iter()
            .any(|o| matches!(o.output().body, shared::output::OutputBody::Error { .. }));
        let text = match format {
            OutputFormat::Json => {
                let mut text =
                    serde_json::to_string_pretty(&serde_json::json!({ "outputs": outputs }))?;
                text.push('\n');
                text
            }
            OutputFormat::Text => outputs.iter().map(|o| o.output().to_text() + "\n").collect(),
        };
        Ok((text, failed))
    });
    match result {
        Ok((text, failed)) => {
            print!("{text}");
            if failed { ExitCode::FAILURE } else { ExitCode::SUCCESS }
        }
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn datastore(command: DatastoreCommand) -> ExitCode {
    match command {
        DatastoreCommand::Generate { persons, seed, out, force, threads } => {
            if persons == 0 {
                eprintln!("error: --persons must be at least 1");
                return ExitCode::from(2);
            }
            let threads = threads
                .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
            let options = generate::GenerateOptions { persons, seed, out, force, threads };
            let started = Instant::now();
            let progress = |done: usize, total: usize| {
                eprintln!(
                    "generated chunk {done}/{total} ({:.1} s)",
                    started.elapsed().as_secs_f64()
                );
            };
            match generate::generate(&options, &progress) {
                Ok(report) => {
                    println!(
                        "published datastore demo version {} at {}: {} persons, {} variables, {} rows in {:.1} s",
                        report.version,
                        report.path.display(),
                        report.persons,
                        report.variables,
                        report.rows,
                        started.elapsed().as_secs_f64()
                    );
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("error: {e}");
                    ExitCode::FAILURE
                }
            }
        }
        DatastoreCommand::Build { input, out } => match input::build(&input, &out) {
            Ok(report) => {
                println!(
                    "published datastore {} version {} at {}: {} variables, {} rows",
                    report.summary.name,
                    report.version,
                    report.path.display(),
                    report.summary.variables,
                    report.summary.rows
                );
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("error: {e}");
                ExitCode::FAILURE
            }
        },
        DatastoreCommand::Validate { input } => match input::validate(&input) {
            Ok(summary) => {
                println!(
                    "{} is valid: datastore {}, {} variables, {} rows",
                    input.display(),
                    summary.name,
                    summary.variables,
                    summary.rows
                );
                ExitCode::SUCCESS
            }
            Err(problems) => {
                eprintln!("{problems}");
                ExitCode::FAILURE
            }
        },
    }
}
