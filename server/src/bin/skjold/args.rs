//! The command line: every subcommand and its options, as clap parses them.

use std::path::PathBuf;

use clap::{Parser, Subcommand};

/// Skjold: confidential register microdata, analysed in the browser.
///
/// Settings come from a TOML file (--config, else ./skjold.toml when present) and from
/// environment variables that override it: SKJOLD_LISTEN (default 127.0.0.1:8080),
/// SKJOLD_DATASTORES (default .skjold/datastores), SKJOLD_APP_DIR (default dist),
/// SKJOLD_LOG_FORMAT (pretty or json). RUST_LOG sets the log level.
#[derive(Debug, Parser)]
#[command(name = "skjold", version, propagate_version = true)]
pub(crate) struct Cli {
    /// Settings file (TOML).
    #[arg(long, global = true, env = "SKJOLD_CONFIG")]
    pub(crate) config: Option<PathBuf>,
    #[command(subcommand)]
    pub(crate) command: Command,
}

#[derive(Debug, Subcommand)]
pub(crate) enum Command {
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
    /// The data order of a script: the datastores, variables, dates and population lines it
    /// uses, for an application for access to the full microdata. Reads no data.
    Order {
        /// The script, in the language of the workbench.
        file: PathBuf,
        /// Datastore root folder (default: the server's setting), for versions and labels.
        #[arg(long)]
        datastore: Option<PathBuf>,
        /// text for people, json for programs.
        #[arg(long, value_enum, default_value_t = OutputFormat::Text)]
        format: OutputFormat,
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
pub(crate) enum BatchCommand {
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
pub(crate) enum AuditCommand {
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
pub(crate) enum UserCommand {
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
pub(crate) enum ProjectCommand {
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
pub(crate) enum OutputFormat {
    Text,
    Json,
}

#[derive(Debug, Subcommand)]
pub(crate) enum DatastoreCommand {
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
