//! The command catalogue: every command of the language with its syntax, options, help and an
//! example. One source of truth for the editor (diagnostics and completion), `help`, and the
//! server (which options a command takes).

/// What an option takes between its parentheses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OptionArg {
    /// A flag: `robust`.
    Flag,
    /// One variable: `cluster(famnr)`.
    Variable,
    /// One or more variables: `by(sex region)`.
    Variables,
    /// A number: `level(95)`, `width(10000)`.
    Number,
    /// Text: `ignore(' ')`, `prefix(new_)`.
    Text,
    /// A term list or anything else the command reads itself: `mfx(dydx)`.
    Any,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OptionSpec {
    pub name: &'static str,
    pub arg: OptionArg,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Family {
    Control,
    Datasets,
    Preparing,
    Describing,
    Models,
    Charts,
    Help,
}

impl Family {
    pub fn label(self) -> &'static str {
        match self {
            Family::Control => "Bindings and control",
            Family::Datasets => "Datasets",
            Family::Preparing => "Preparing data",
            Family::Describing => "Describing and analysing",
            Family::Models => "Models",
            Family::Charts => "Charts",
            Family::Help => "Help",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CommandSpec {
    pub name: &'static str,
    pub verb: Verb,
    pub family: Family,
    pub syntax: &'static str,
    pub help: &'static str,
    pub example: &'static str,
    pub options: &'static [OptionSpec],
}

impl CommandSpec {
    pub fn option(&self, name: &str) -> Option<&'static OptionSpec> {
        self.options.iter().find(|o| o.name == name)
    }
}

/// The command called `name`, if the language has one.
pub fn command(name: &str) -> Option<&'static CommandSpec> {
    Verb::named(name).map(Verb::spec)
}

/// The command written on the line at byte `caret` of `script` (a caret inside a multi-byte
/// character or past the end still finds its line). `None` on a blank line, a comment or a
/// word that is no command.
pub fn command_at(script: &str, caret: usize) -> Option<&'static CommandSpec> {
    let caret = (0..=caret.min(script.len())).rev().find(|&i| script.is_char_boundary(i))?;
    let start = script[..caret].rfind('\n').map_or(0, |i| i + 1);
    let end = script[caret..].find('\n').map_or(script.len(), |i| caret + i);
    let line = script[start..end].trim_start();
    let name: String =
        line.chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_').collect();
    command(&name)
}

/// The signature line of the command on the caret's line: its syntax and options, for the
/// editor to show while the command is typed.
pub fn signature_at(script: &str, caret: usize) -> Option<String> {
    let spec = command_at(script, caret)?;
    Some(if spec.options.is_empty() {
        spec.syntax.to_owned()
    } else {
        let options: Vec<&str> = spec.options.iter().map(|o| o.name).collect();
        format!("{} · options: {}", spec.syntax, options.join(", "))
    })
}

/// The published disclosure rules (`../shared/reference/disclosure.md`, the rules page), by
/// number, in a few words; the rules page gives each in full with the datastore's settings.
pub const RULES: [(u8, &str); 13] = [
    (1, "one gate, every output audited"),
    (2, "no rows, no minimum or maximum"),
    (3, "population floor"),
    (4, "minimum change"),
    (5, "counts perturbed"),
    (6, "sparse tables"),
    (7, "magnitudes coded and perturbed"),
    (8, "percentiles"),
    (9, "models"),
    (10, "charts from protected counts"),
    (11, "no differencing of near populations"),
    (12, "copies count once"),
    (13, "errors tell nothing about a few units"),
];

impl CommandSpec {
    /// The disclosure rules that decide what this command may do or release, besides rule 1,
    /// which every output passes: what the editor's help shows beside the syntax.
    pub fn disclosure_rules(&self) -> &'static [u8] {
        use Verb::*;
        match self.verb {
            Require | Let | For | Textblock | CreateDataset | Use | DeleteDataset
            | CloneDataset | RenameDataset | CloneUnits | Clear | ReshapeToPanel
            | ReshapeFromPanel | Rename | CloneVariables | Destring | DefineLabels
            | AssignLabels | DropLabels | ListLabels | Help | HelpFunction | Variables
            | History => &[],
            Import | ImportEvent | ImportPanel => &[2],
            Generate | Replace | Recode => &[4, 12],
            Keep | Drop => &[3, 4],
            Aggregate | Collapse | Merge => &[2, 3, 12],
            Sample => &[3, 13],
            Summarize | SummarizePanel => &[2, 3, 7, 8, 11, 12],
            Tabulate | TabulatePanel | TransitionsPanel => &[3, 5, 6, 7, 11, 12],
            Correlate | Ci | Normaltest => &[3, 7, 11],
            Anova => &[3, 9, 11, 13],
            Regress | Logit | Probit | Mlogit | Poisson | NegativeBinomial | Ivregress
            | RegressPanel | Hausman | Cox | RegressMml | Oaxaca | Rdd | Weibull => {
                &[9, 11, 12, 13]
            }
            RegressPredict | LogitPredict | ProbitPredict | PoissonPredict => &[9, 11, 12],
            KaplanMeier => &[5, 10, 11, 13],
            Histogram | Barchart | Hexbin | Piechart | Sankey => &[5, 6, 7, 10, 11],
            Boxplot => &[8, 10, 11],
            Coefplot => &[9, 10],
        }
    }
}

/// A command's help for the editor: what it does, how it is written, and the disclosure rules
/// that apply to it, each as (number, a few words).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CommandHelp {
    pub name: &'static str,
    pub syntax: &'static str,
    pub help: &'static str,
    pub rules: Vec<(u8, &'static str)>,
}

/// The help of the command on the caret's line.
pub fn help_at(script: &str, caret: usize) -> Option<CommandHelp> {
    let spec = command_at(script, caret)?;
    let rules = spec
        .disclosure_rules()
        .iter()
        .filter_map(|n| RULES.iter().find(|(r, _)| r == n).copied())
        .collect();
    Some(CommandHelp { name: spec.name, syntax: spec.syntax, help: spec.help, rules })
}

/// Every command, in the order of the language reference.
pub fn commands() -> &'static [CommandSpec] {
    COMMANDS
}

/// The nearest name among `candidates`, when it is close enough to be a likely typo.
/// Every function of the language.
pub fn functions() -> impl Iterator<Item = &'static str> {
    FUNCTION_GROUPS.iter().flat_map(|(_, functions, _)| functions.iter().copied())
}

/// The functions of expressions, by group, with how to call them: the one list the engine,
/// `help-function` and the editor use.
pub const FUNCTION_GROUPS: &[(&str, &[&str], &str)] = &[
    (
        "Dates",
        &[
            "date",
            "isoformatdate",
            "year",
            "month",
            "day",
            "week",
            "halfyear",
            "quarter",
            "dow",
            "doy",
        ],
        "Dates are days since 1970-01-01. date(y, m, d) makes one; year(d), month(d), … take one apart; isoformatdate(d) gives 'YYYY-MM-DD'.",
    ),
    (
        "Maths",
        &[
            "abs",
            "ceil",
            "floor",
            "int",
            "round",
            "sqrt",
            "exp",
            "ln",
            "log10",
            "logit",
            "lnfactorial",
            "comb",
            "pi",
            "sin",
            "cos",
            "tan",
            "asin",
            "acos",
            "atan",
        ],
        "round(x) to a whole number, round(x, unit) to a multiple of unit; int(x) truncates toward zero; comb(n, k) counts combinations.",
    ),
    (
        "Distributions",
        &[
            "normal",
            "normalden",
            "t",
            "ttail",
            "invt",
            "invttail",
            "F",
            "Ftail",
            "invF",
            "chi2",
            "chi2tail",
            "invchi2",
            "binomial",
            "binomialp",
            "binomialtail",
        ],
        "normal(z) is the standard normal CDF; t(df, x), F(df1, df2, x) and chi2(df, x) are CDFs, the *tail forms their upper tails, inv* their inverses; binomialp(n, k, p) is P(X = k).",
    ),
    (
        "Quantile groups",
        &["quantile"],
        "quantile(x, n) numbers x's quantile group from 0 to n − 1.",
    ),
    (
        "Rows",
        &[
            "rowmax",
            "rowmin",
            "rowmean",
            "rowmedian",
            "rowtotal",
            "rowstd",
            "rowmissing",
            "rowvalid",
            "rowconcat",
        ],
        "Across the variables given, for each unit: rowmean(a, b, c), rowmissing(a, b) counts missing values, rowconcat(a, '-', b) joins them as text.",
    ),
    (
        "Text",
        &[
            "length",
            "string",
            "lower",
            "upper",
            "substr",
            "trim",
            "ltrim",
            "rtrim",
            "startswith",
            "endswith",
        ],
        "substr(s, position, length) counts from 1; string(x) turns a number into text.",
    ),
    (
        "Logic",
        &["inlist", "inrange", "sysmiss"],
        "inlist(x, a, b, …), inrange(x, low, high) (inclusive), sysmiss(x) is true for missing values.",
    ),
    (
        "Labels",
        &["label_to_code", "inlabels", "labelcontains"],
        "label_to_code(var, 'label') gives the code with that label; inlabels(var, 'a', …) and labelcontains(var, 'text') test labels.",
    ),
];

pub fn nearest<'a>(name: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    let name = name.to_lowercase();
    let limit = (name.chars().count() / 3).clamp(1, 3);
    candidates
        .into_iter()
        .map(|c| (edit_distance(&name, &c.to_lowercase()), c))
        .filter(|(d, _)| *d <= limit)
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

/// Levenshtein distance over characters.
pub fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut previous: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut current = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            let substitute = previous[j] + usize::from(ca != *cb);
            current[j + 1] = substitute.min(previous[j + 1] + 1).min(current[j] + 1);
        }
        previous = current;
    }
    previous[b.len()]
}

use Family::*;
use OptionArg::*;

const fn opt(name: &'static str, arg: OptionArg) -> OptionSpec {
    OptionSpec { name, arg }
}

const NONE: &[OptionSpec] = &[];
const MODEL_OPTIONS: &[OptionSpec] =
    &[opt("noconstant", Flag), opt("level", Number), opt("robust", Flag), opt("cluster", Variable)];
const BINARY_MODEL_OPTIONS: &[OptionSpec] = &[
    opt("noconstant", Flag),
    opt("level", Number),
    opt("robust", Flag),
    opt("cluster", Variable),
    opt("or", Flag),
    opt("mfx", Any),
];
const PREDICT_OPTIONS: &[OptionSpec] = &[
    opt("noconstant", Flag),
    opt("level", Number),
    opt("robust", Flag),
    opt("cluster", Variable),
    opt("predicted", Text),
    opt("residuals", Text),
];
const PREDICT_COUNT_OPTIONS: &[OptionSpec] = &[
    opt("noconstant", Flag),
    opt("level", Number),
    opt("robust", Flag),
    opt("cluster", Variable),
    opt("irr", Flag),
    opt("exposure", Variable),
    opt("predicted", Text),
    opt("residuals", Text),
];
const COUNT_MODEL_OPTIONS: &[OptionSpec] = &[
    opt("noconstant", Flag),
    opt("level", Number),
    opt("robust", Flag),
    opt("cluster", Variable),
    opt("irr", Flag),
    opt("exposure", Variable),
];
const TABULATE_OPTIONS: &[OptionSpec] = &[
    opt("missing", Flag),
    opt("nolabels", Flag),
    opt("freq", Flag),
    opt("rowpct", Flag),
    opt("colpct", Flag),
    opt("cellpct", Flag),
    opt("chi2", Flag),
    opt("flatten", Flag),
    opt("rowsort", Any),
    opt("colsort", Any),
    opt("top", Number),
    opt("bottom", Number),
    opt("summarize", Variable),
    opt("mean", Flag),
    opt("std", Flag),
    opt("sum", Flag),
    opt("p25", Flag),
    opt("p50", Flag),
    opt("p75", Flag),
    opt("gini", Flag),
    opt("iqr", Flag),
];

/// Declares [`Verb`] with one variant per command of the catalogue, in its order.
macro_rules! verbs {
    ($($variant:ident = $name:literal,)*) => {
        /// Which command a line runs: the typed form of its name, parsed once. Matching on it
        /// is exhaustive, so a command added to the catalogue does not compile until the engine
        /// and the semantic check say what it does.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum Verb {
            $($variant,)*
        }

        impl Verb {
            /// Every verb, in the catalogue's order.
            pub const ALL: &'static [Verb] = &[$(Verb::$variant,)*];

            /// The verb written `name`, if the language has one.
            pub fn named(name: &str) -> Option<Verb> {
                match name {
                    $($name => Some(Verb::$variant),)*
                    _ => None,
                }
            }

            /// The command's name as scripts write it.
            pub const fn name(self) -> &'static str {
                match self {
                    $(Verb::$variant => $name,)*
                }
            }
        }
    };
}

verbs! {
    Require = "require",
    Let = "let",
    For = "for",
    Textblock = "textblock",
    CreateDataset = "create-dataset",
    Use = "use",
    DeleteDataset = "delete-dataset",
    CloneDataset = "clone-dataset",
    RenameDataset = "rename-dataset",
    CloneUnits = "clone-units",
    Clear = "clear",
    ReshapeToPanel = "reshape-to-panel",
    ReshapeFromPanel = "reshape-from-panel",
    Import = "import",
    ImportEvent = "import-event",
    ImportPanel = "import-panel",
    Generate = "generate",
    Replace = "replace",
    Rename = "rename",
    CloneVariables = "clone-variables",
    Keep = "keep",
    Drop = "drop",
    Recode = "recode",
    Destring = "destring",
    Aggregate = "aggregate",
    Collapse = "collapse",
    Merge = "merge",
    DefineLabels = "define-labels",
    AssignLabels = "assign-labels",
    DropLabels = "drop-labels",
    ListLabels = "list-labels",
    Sample = "sample",
    Summarize = "summarize",
    SummarizePanel = "summarize-panel",
    Tabulate = "tabulate",
    TabulatePanel = "tabulate-panel",
    TransitionsPanel = "transitions-panel",
    Correlate = "correlate",
    Ci = "ci",
    Normaltest = "normaltest",
    Anova = "anova",
    Regress = "regress",
    Logit = "logit",
    Probit = "probit",
    Mlogit = "mlogit",
    Poisson = "poisson",
    NegativeBinomial = "negative-binomial",
    Ivregress = "ivregress",
    RegressPanel = "regress-panel",
    Hausman = "hausman",
    Cox = "cox",
    KaplanMeier = "kaplan-meier",
    RegressPredict = "regress-predict",
    LogitPredict = "logit-predict",
    ProbitPredict = "probit-predict",
    PoissonPredict = "poisson-predict",
    RegressMml = "regress-mml",
    Oaxaca = "oaxaca",
    Rdd = "rdd",
    Weibull = "weibull",
    Histogram = "histogram",
    Barchart = "barchart",
    Boxplot = "boxplot",
    Hexbin = "hexbin",
    Piechart = "piechart",
    Sankey = "sankey",
    Coefplot = "coefplot",
    Help = "help",
    HelpFunction = "help-function",
    Variables = "variables",
    History = "history",
}

impl Verb {
    /// The catalogue entry: syntax, help and the options the command takes.
    pub const fn spec(self) -> &'static CommandSpec {
        &COMMANDS[self as usize]
    }
}

// The catalogue lists the commands in the verbs' order, so `Verb::spec` is an index; checked
// when the crate compiles.
const _: () = {
    assert!(COMMANDS.len() == Verb::ALL.len());
    let mut i = 0;
    while i < COMMANDS.len() {
        assert!(COMMANDS[i].verb as usize == i);
        i += 1;
    }
};

const COMMANDS: &[CommandSpec] = &[
    // Bindings and control.
    CommandSpec {
        name: "require",
        verb: Verb::Require,
        family: Control,
        syntax: "require <datastore>:<version> as <alias>",
        help: "Binds a versioned datastore to an alias. Imports then name variables as alias/VARIABLE. Several require lines may bind several datastores.",
        example: "require demo:1 as db",
        options: NONE,
    },
    CommandSpec {
        name: "let",
        verb: Verb::Let,
        family: Control,
        syntax: "let <name> = <expression>",
        help: "Defines a script-level constant, used later as $name. ++ joins values into a name or text; date_fmt, to_int, to_str, to_symbol and bind work inside let and as an import's dates: date_fmt(y, m, d) makes a date, bind(a, b, …) joins values into one.",
        example: "let year = 2021",
        options: NONE,
    },
    CommandSpec {
        name: "for",
        verb: Verb::For,
        family: Control,
        syntax: "for <name> in <a> <b> … | <from> : <to> [; <name> in …] … end",
        help: "Repeats the lines up to the matching end once per value, with $name bound to the value. Values are separated by spaces or commas. Several names zip one list each, the lists separated by commas (for year, name in 2019 2020, a b); a semicolon nests loops.",
        example: "for year in 2019 : 2021\n  tabulate sex\nend",
        options: NONE,
    },
    CommandSpec {
        name: "textblock",
        verb: Verb::Textblock,
        family: Control,
        syntax: "textblock … endblock",
        help: "Markdown between textblock and endblock is shown in the output as written; it is not run.",
        example: "textblock\n## Wages by sex\nendblock",
        options: NONE,
    },
    // Datasets.
    CommandSpec {
        name: "create-dataset",
        verb: Verb::CreateDataset,
        family: Datasets,
        syntax: "create-dataset <name>",
        help: "Creates an empty dataset and makes it the current one. The first import into it sets its population and unit type.",
        example: "create-dataset persons",
        options: NONE,
    },
    CommandSpec {
        name: "use",
        verb: Verb::Use,
        family: Datasets,
        syntax: "use <dataset>",
        help: "Makes a dataset the current one; later commands work on it.",
        example: "use persons",
        options: NONE,
    },
    CommandSpec {
        name: "delete-dataset",
        verb: Verb::DeleteDataset,
        family: Datasets,
        syntax: "delete-dataset <dataset>",
        help: "Deletes a dataset from the workspace.",
        example: "delete-dataset scratch",
        options: NONE,
    },
    CommandSpec {
        name: "clone-dataset",
        verb: Verb::CloneDataset,
        family: Datasets,
        syntax: "clone-dataset <dataset> <new-name>",
        help: "Copies a dataset, population and variables, under a new name.",
        example: "clone-dataset persons persons_backup",
        options: NONE,
    },
    CommandSpec {
        name: "rename-dataset",
        verb: Verb::RenameDataset,
        family: Datasets,
        syntax: "rename-dataset <dataset> <new-name>",
        help: "Gives a dataset a new name.",
        example: "rename-dataset persons people",
        options: NONE,
    },
    CommandSpec {
        name: "clone-units",
        verb: Verb::CloneUnits,
        family: Datasets,
        syntax: "clone-units <dataset> <new-name>",
        help: "Creates a dataset with the same population as another, and no variables.",
        example: "clone-units persons persons2",
        options: NONE,
    },
    CommandSpec {
        name: "clear",
        verb: Verb::Clear,
        family: Datasets,
        syntax: "clear",
        help: "Deletes every dataset in the workspace.",
        example: "clear",
        options: NONE,
    },
    CommandSpec {
        name: "reshape-to-panel",
        verb: Verb::ReshapeToPanel,
        family: Datasets,
        syntax: "reshape-to-panel <prefix>…",
        help: "Turns wide variables named by a prefix and a date (wage_2019 for 1 January, or wage_20190630) into a panel: one variable per prefix (wage) on a row per unit and date; the other variables repeat on each of a unit's rows.",
        example: "reshape-to-panel wage_",
        options: NONE,
    },
    CommandSpec {
        name: "reshape-from-panel",
        verb: Verb::ReshapeFromPanel,
        family: Datasets,
        syntax: "reshape-from-panel",
        help: "Turns a panel back into a row per unit: a variable that changes over the dates becomes one per date (wage_2019, …); one that never changes stays one variable.",
        example: "reshape-from-panel",
        options: NONE,
    },
    // Preparing data.
    CommandSpec {
        name: "import",
        verb: Verb::Import,
        family: Preparing,
        syntax: "import <alias>/<VARIABLE> [<date>] [as <name>] [, outer_join]",
        help: "Imports a register variable into the current dataset. FIXED variables take no date; STATUS, ACCUMULATED and EVENT variables take the date whose value (or period, or spell) to use. The first import sets the population; later imports join on the unit id, keeping the population (outer_join adds units that only the new variable has).",
        example: "import db/INNTEKT_WLONN 2021-12-31 as wage",
        options: &[opt("outer_join", Flag)],
    },
    CommandSpec {
        name: "import-event",
        verb: Verb::ImportEvent,
        family: Preparing,
        syntax: "import-event <alias>/<VARIABLE> <date> to <date> [as <name>]",
        help: "Imports every spell of an EVENT variable that overlaps the period, one row per spell: its value as <name>, its start and stop (days since 1970-01-01; the stop missing while it goes on) as <name>_start and <name>_stop. Only into an empty dataset, one event variable per dataset; import then gives each spell its unit's value of a person variable. The gate counts a unit once per spell.",
        example: "import-event db/ARBSOKFDT_ARBSOKSTATUS 2020-01-01 to 2020-12-31 as spell",
        options: NONE,
    },
    CommandSpec {
        name: "import-panel",
        verb: Verb::ImportPanel,
        family: Preparing,
        syntax: "import-panel <alias>/<VARIABLE>… <date>…",
        help: "Imports variables at several dates into an empty dataset in long form: a row per unit and date where the unit has any of them. Into a dataset of units only (from clone-units), the panel is of those units. The -panel commands describe it date by date and regress-panel models it; commands that need a row per unit (import, merge, collapse) refuse a panel.",
        example: "import-panel db/INNTEKT_WLONN db/SIVSTANDFDT_SIVSTAND 2019-01-01 2020-01-01",
        options: NONE,
    },
    CommandSpec {
        name: "generate",
        verb: Verb::Generate,
        family: Preparing,
        syntax: "generate <name> = <expression> [if <condition>]",
        help: "Creates a variable from an expression. Rows where the condition is false get the missing value. Refused when it would single out 1–9 units (minimum-change rule).",
        example: "generate age = 2021 - int(birth / 100)",
        options: NONE,
    },
    CommandSpec {
        name: "replace",
        verb: Verb::Replace,
        family: Preparing,
        syntax: "replace <variable> = <expression> [if <condition>]",
        help: "Changes the values of a variable where the condition holds. Refused when it would change, or leave unchanged, 1–9 units (minimum-change rule).",
        example: "replace married = 1 if marital == '2'",
        options: NONE,
    },
    CommandSpec {
        name: "rename",
        verb: Verb::Rename,
        family: Preparing,
        syntax: "rename <old> <new>",
        help: "Gives a variable a new name.",
        example: "rename INNTEKT_WLONN wage",
        options: NONE,
    },
    CommandSpec {
        name: "clone-variables",
        verb: Verb::CloneVariables,
        family: Preparing,
        syntax: "clone-variables <variable> [-> <new>] … [, prefix() suffix()]",
        help: "Copies variables under new names, given one by one with -> or by a prefix or suffix.",
        example: "clone-variables wage -> wage_2021",
        options: &[opt("prefix", Text), opt("suffix", Text)],
    },
    CommandSpec {
        name: "keep",
        verb: Verb::Keep,
        family: Preparing,
        syntax: "keep <variable>… | keep if <condition>",
        help: "Keeps the named variables, or the units where the condition holds. A dataset may not shrink below the population floor.",
        example: "keep if age >= 25 & age <= 66",
        options: NONE,
    },
    CommandSpec {
        name: "drop",
        verb: Verb::Drop,
        family: Preparing,
        syntax: "drop <variable>… | drop if <condition>",
        help: "Drops the named variables, or the units where the condition holds. A dataset may not shrink below the population floor.",
        example: "drop if sysmiss(wage)",
        options: NONE,
    },
    CommandSpec {
        name: "recode",
        verb: Verb::Recode,
        family: Preparing,
        syntax: "recode <variable>… (<rule>) … [if <condition>] [, prefix() generate()]",
        help: "Recodes values by rules applied in order; a value is recoded at most once. Rules: (1 2 3 = 0), (1/7 = 0), (min/5 = 0), (10/max = 99), (nonmissing = 1), (missing = 99), (* = 99), ('3' '5' = '0').",
        example: "recode age (0/17 = 0) (18/66 = 1) (67/max = 2), generate(agegroup)",
        options: &[opt("prefix", Text), opt("generate", Variables)],
    },
    CommandSpec {
        name: "destring",
        verb: Verb::Destring,
        family: Preparing,
        syntax: "destring <variable>… [, prefix() ignore('…') force dpcomma]",
        help: "Turns text values into numbers. ignore removes characters first; force makes values that are not numbers missing; dpcomma reads a comma as the decimal point.",
        example: "destring municipality, force",
        options: &[
            opt("prefix", Text),
            opt("ignore", Text),
            opt("force", Flag),
            opt("dpcomma", Flag),
        ],
    },
    CommandSpec {
        name: "aggregate",
        verb: Verb::Aggregate,
        family: Preparing,
        syntax: "aggregate (<stat>) <variable> [-> <new>] …, by(<group>)",
        help: "Adds group statistics to every row of the group. Statistics as for collapse.",
        example: "aggregate (mean) wage -> family_mean_wage, by(famnr)",
        options: &[opt("by", Variables)],
    },
    CommandSpec {
        name: "collapse",
        verb: Verb::Collapse,
        family: Preparing,
        syntax: "collapse (<stat>) <variable> [-> <new>] …, by(<group>)",
        help: "Makes one row per group; the group becomes the unit. Statistics: mean min max median count sum semean sebinomial sd percent iqr gini p25 p75.",
        example: "collapse (sum) wage -> family_wage, by(famnr)",
        options: &[opt("by", Variables)],
    },
    CommandSpec {
        name: "merge",
        verb: Verb::Merge,
        family: Preparing,
        syntax: "merge <variable>… into <dataset> [on <key>]",
        help: "Copies variables into another dataset, matched on the unit id or on a key variable of the target that holds this dataset's unit ids.",
        example: "merge family_wage into persons on famnr",
        options: NONE,
    },
    CommandSpec {
        name: "define-labels",
        verb: Verb::DefineLabels,
        family: Preparing,
        syntax: "define-labels <name> <code> <label> …",
        help: "Defines a set of value labels.",
        example: "define-labels yesno 0 'no' 1 'yes'",
        options: NONE,
    },
    CommandSpec {
        name: "assign-labels",
        verb: Verb::AssignLabels,
        family: Preparing,
        syntax: "assign-labels <variable> <labels>",
        help: "Attaches a set of value labels to a variable; tables then show labels.",
        example: "assign-labels married yesno",
        options: NONE,
    },
    CommandSpec {
        name: "drop-labels",
        verb: Verb::DropLabels,
        family: Preparing,
        syntax: "drop-labels <labels>…",
        help: "Deletes sets of value labels.",
        example: "drop-labels yesno",
        options: NONE,
    },
    CommandSpec {
        name: "list-labels",
        verb: Verb::ListLabels,
        family: Preparing,
        syntax: "list-labels <labels> | <alias>/<VARIABLE> [<date>]",
        help: "Shows a set of value labels, or a register variable's code list (valid on the date).",
        example: "list-labels db/BEFOLKNING_KJOENN",
        options: NONE,
    },
    CommandSpec {
        name: "sample",
        verb: Verb::Sample,
        family: Preparing,
        syntax: "sample <n> | <fraction> <seed>",
        help: "Keeps a random sample of units: about n of them (n above 1000, drawn as a share of the dataset's perturbed size, so the sample's exact size is not n) or a fraction in (0, 1). The same seed gives the same sample.",
        example: "sample 0.1 2021",
        options: NONE,
    },
    // Describing.
    CommandSpec {
        name: "summarize",
        verb: Verb::Summarize,
        family: Describing,
        syntax: "summarize <variable>… [if <condition>] [, gini iqr]",
        help: "N, mean, standard deviation and the percentiles P1, P5, P25, P50, P75, P95 and P99, each where the disclosure rules allow. Never min or max.",
        example: "summarize wage age",
        options: &[opt("gini", Flag), opt("iqr", Flag)],
    },
    CommandSpec {
        name: "summarize-panel",
        verb: Verb::SummarizePanel,
        family: Describing,
        syntax: "summarize-panel <variable>… [, gini iqr]",
        help: "summarize on each date of a panel: a row per variable and date, under the same rules as summarize.",
        example: "summarize-panel wage",
        options: &[opt("gini", Flag), opt("iqr", Flag)],
    },
    CommandSpec {
        name: "tabulate",
        verb: Verb::Tabulate,
        family: Describing,
        syntax: "tabulate <variable> [<variable>…] [if <condition>] [, options]",
        help: "A frequency table of one or two variables (more with flatten), with totals. Counts are perturbed; small cells are suppressed. summarize(var) fills the cells with the mean (or std, sum, p25, p50, p75, gini, iqr) of var instead.",
        example: "tabulate sex region, rowpct",
        options: TABULATE_OPTIONS,
    },
    CommandSpec {
        name: "tabulate-panel",
        verb: Verb::TabulatePanel,
        family: Describing,
        syntax: "tabulate-panel <variable>… [, options]",
        help: "A table of a variable (rows) against the dates of a panel (columns), with tabulate's options. A unit counts once per date, so the margins count it once for each date it has, and the small-cell threshold is multiplied by the number of dates.",
        example: "tabulate-panel marital",
        options: TABULATE_OPTIONS,
    },
    CommandSpec {
        name: "transitions-panel",
        verb: Verb::TransitionsPanel,
        family: Describing,
        syntax: "transitions-panel <variable>…",
        help: "A table of transitions: units by their value on one date of the panel (rows) and on the next (columns), over every pair of consecutive dates. rowpct gives the share moving from each value to each other.",
        example: "transitions-panel marital",
        options: &[opt("freq", Flag), opt("rowpct", Flag)],
    },
    CommandSpec {
        name: "correlate",
        verb: Verb::Correlate,
        family: Describing,
        syntax: "correlate <variable>… [if <condition>] [, covariance pairwise obs sig]",
        help: "Pearson correlations (or covariances) between variables, over the units with every value, or with pairwise over each pair's units; sig adds p-values and obs the (perturbed) number of units of each pair. A pair with too few units is withheld.",
        example: "correlate wage age",
        options: &[
            opt("covariance", Flag),
            opt("pairwise", Flag),
            opt("obs", Flag),
            opt("sig", Flag),
        ],
    },
    CommandSpec {
        name: "ci",
        verb: Verb::Ci,
        family: Describing,
        syntax: "ci <variable>… [if <condition>] [, level()]",
        help: "Confidence intervals for means.",
        example: "ci wage, level(99)",
        options: &[opt("level", Number)],
    },
    CommandSpec {
        name: "normaltest",
        verb: Verb::Normaltest,
        family: Describing,
        syntax: "normaltest <variable>…",
        help: "Tests of normality (skewness and kurtosis).",
        example: "normaltest wage",
        options: NONE,
    },
    CommandSpec {
        name: "anova",
        verb: Verb::Anova,
        family: Describing,
        syntax: "anova <dependent> <factor>… [, noconstant posthoc]",
        help: "Analysis of variance of a variable by one or more factors (main effects; with several, each factor's sum of squares is partial, as Stata's anova). Residual and total df follow the released N. noconstant fits the cell means without a constant (sums of squares about zero); posthoc adds every pair of one factor's group means, compared with the pooled residual variance and Bonferroni-adjusted p.",
        example: "anova wage region",
        options: &[opt("noconstant", Flag), opt("posthoc", Flag)],
    },
    // Models.
    CommandSpec {
        name: "regress",
        verb: Verb::Regress,
        family: Models,
        syntax: "regress <dependent> <term>… [if <condition>] [, options]",
        help: "Linear regression by ordinary least squares. Terms: var, i.var (a dummy per level), c.var, a#b, a##b. robust gives heteroskedasticity-robust (HC1) standard errors; cluster(v) clusters them.",
        example: "regress wage age i.sex, robust",
        options: &[
            opt("noconstant", Flag),
            opt("level", Number),
            opt("robust", Flag),
            opt("cluster", Variable),
            opt("vif", Flag),
            opt("standardize", Flag),
        ],
    },
    CommandSpec {
        name: "logit",
        verb: Verb::Logit,
        family: Models,
        syntax: "logit <dependent> <term>… [if <condition>] [, or mfx() …]",
        help: "Logistic regression of a 0/1 outcome. or shows odds ratios.",
        example: "logit employed age i.sex, or",
        options: BINARY_MODEL_OPTIONS,
    },
    CommandSpec {
        name: "probit",
        verb: Verb::Probit,
        family: Models,
        syntax: "probit <dependent> <term>… [if <condition>] [, mfx() …]",
        help: "Probit regression of a 0/1 outcome.",
        example: "probit employed age i.sex",
        options: BINARY_MODEL_OPTIONS,
    },
    CommandSpec {
        name: "mlogit",
        verb: Verb::Mlogit,
        family: Models,
        syntax: "mlogit <dependent> <term>… [if <condition>]",
        help: "Multinomial logistic regression.",
        example: "mlogit marital age i.sex",
        options: MODEL_OPTIONS,
    },
    CommandSpec {
        name: "poisson",
        verb: Verb::Poisson,
        family: Models,
        syntax: "poisson <dependent> <term>… [, irr exposure()]",
        help: "Poisson regression of a count. Rows with a negative count, or an exposure() of 0 or less, leave the sample as missing values do; only many such rows stop the command with an error.",
        example: "poisson children age, irr",
        options: COUNT_MODEL_OPTIONS,
    },
    CommandSpec {
        name: "negative-binomial",
        verb: Verb::NegativeBinomial,
        family: Models,
        syntax: "negative-binomial <dependent> <term>… [, irr exposure()]",
        help: "Negative binomial regression of an overdispersed count. Rows with a negative count, or an exposure() of 0 or less, leave the sample as missing values do; only many such rows stop the command with an error.",
        example: "negative-binomial children age",
        options: COUNT_MODEL_OPTIONS,
    },
    CommandSpec {
        name: "ivregress",
        verb: Verb::Ivregress,
        family: Models,
        syntax: "ivregress <dependent> <exogenous>… (<endogenous> = <instrument>…) [, tsls liml gmm firststage]",
        help: "Instrumental-variables regression.",
        example: "ivregress wage age (education = distance)",
        options: &[
            opt("tsls", Flag),
            opt("liml", Flag),
            opt("gmm", Flag),
            opt("firststage", Flag),
            opt("level", Number),
        ],
    },
    CommandSpec {
        name: "regress-panel",
        verb: Verb::RegressPanel,
        family: Models,
        syntax: "regress-panel <dependent> <term>… [, fe re be pooled]",
        help: "Panel regression on a panel dataset: fixed effects (fe, the default: within units, with the constant of the grand means), random effects (re: GLS with Swamy–Arora variances), between effects (be: OLS on the units' means) or pooled OLS, as Stata's xtreg and Python's linearmodels compute them.",
        example: "regress-panel wage married, fe",
        options: &[
            opt("fe", Flag),
            opt("re", Flag),
            opt("be", Flag),
            opt("pooled", Flag),
            opt("level", Number),
        ],
    },
    CommandSpec {
        name: "hausman",
        verb: Verb::Hausman,
        family: Models,
        syntax: "hausman <dependent> <term>…",
        help: "Hausman test of fixed against random effects on a panel dataset: both models, then χ² of their difference in the coefficients that vary within units. A small p-value favours fixed effects.",
        example: "hausman wage married",
        options: NONE,
    },
    CommandSpec {
        name: "cox",
        verb: Verb::Cox,
        family: Models,
        syntax: "cox <duration> <event> <term>…",
        help: "Cox proportional hazards regression. The event is non-zero where it happened and 0 where the unit was censored. Rows with a negative duration leave the sample as missing values do; only many such rows stop the command with an error.",
        example: "cox days died age i.sex",
        options: &[opt("level", Number)],
    },
    CommandSpec {
        name: "kaplan-meier",
        verb: Verb::KaplanMeier,
        family: Models,
        syntax: "kaplan-meier <duration> <event> [, by()]",
        help: "Survival as a life table at grouped times: units at risk, events and censorings in ten intervals of the coded duration, perturbed and merged until no cell is small, and the survival computed from those counts. The event is 1 where it happened and 0 where the unit was censored. Rows whose values cannot be used (a negative duration, an event other than 0/1) leave the sample as missing values do; only many such rows stop the command with an error.",
        example: "kaplan-meier days died, by(sex)",
        options: &[opt("by", Variable)],
    },
    CommandSpec {
        name: "regress-predict",
        verb: Verb::RegressPredict,
        family: Models,
        syntax: "regress-predict <dependent> <term>… [if <condition>], predicted(<name>) residuals(<name>)",
        help: "regress, then the fitted values and residuals as new variables (either or both). The values are never shown; describe them with the other commands.",
        example: "regress-predict wage age i.sex, predicted(wage_hat) residuals(wage_res)",
        options: PREDICT_OPTIONS,
    },
    CommandSpec {
        name: "logit-predict",
        verb: Verb::LogitPredict,
        family: Models,
        syntax: "logit-predict <dependent> <term>… [if <condition>], predicted(<name>) residuals(<name>)",
        help: "logit, then each unit's predicted probability and its residual (outcome less probability) as new variables.",
        example: "logit-predict employed age i.sex, predicted(p_employed)",
        options: PREDICT_OPTIONS,
    },
    CommandSpec {
        name: "probit-predict",
        verb: Verb::ProbitPredict,
        family: Models,
        syntax: "probit-predict <dependent> <term>… [if <condition>], predicted(<name>) residuals(<name>)",
        help: "probit, then each unit's predicted probability and its residual as new variables.",
        example: "probit-predict employed age i.sex, predicted(p_employed)",
        options: PREDICT_OPTIONS,
    },
    CommandSpec {
        name: "poisson-predict",
        verb: Verb::PoissonPredict,
        family: Models,
        syntax: "poisson-predict <dependent> <term>… [, exposure()], predicted(<name>) residuals(<name>)",
        help: "poisson, then each unit's predicted count (times its exposure) and its residual as new variables.",
        example: "poisson-predict children age, predicted(expected_children)",
        options: PREDICT_COUNT_OPTIONS,
    },
    CommandSpec {
        name: "regress-mml",
        verb: Verb::RegressMml,
        family: Models,
        syntax: "regress-mml <dependent> <term>… by <group>",
        help: "A multilevel (mixed) linear model with a random intercept per group, by restricted maximum likelihood (REML) as statsmodels' MixedLM and Stata's mixed, reml: the fixed effects with z tests, the standard deviations of the group intercepts and of the residual, and the intraclass correlation.",
        example: "regress-mml wage age i.sex by kommune",
        options: &[opt("level", Number)],
    },
    CommandSpec {
        name: "oaxaca",
        verb: Verb::Oaxaca,
        family: Models,
        syntax: "oaxaca <dependent> <term>…, by(<group>)",
        help: "Blinder–Oaxaca decomposition of the difference in mean between two groups: a regression in each group, then the difference split threefold into endowments (the groups' regressors valued at the second group's coefficients), coefficients and their interaction, with delta-method standard errors as Jann's oaxaca. by() needs exactly two levels; the first is group 1.",
        example: "oaxaca wage age edu, by(sex)",
        options: &[opt("by", Variable), opt("level", Number)],
    },
    CommandSpec {
        name: "rdd",
        verb: Verb::Rdd,
        family: Models,
        syntax: "rdd <dependent> <running variable> [, threshold() bandwidth() fuzzy() level()]",
        help: "A regression discontinuity: the jump in the mean of the dependent variable where the running variable reaches threshold() (0 if not given), as the rdrobust package estimates it by default: local linear fits on each side with a triangular kernel, its MSE-optimal bandwidth unless bandwidth() gives one, nearest-neighbour robust errors, and three rows — conventional, bias-corrected, and bias-corrected with robust errors. fuzzy(t) takes a treatment dummy whose probability jumps at the threshold, and divides the outcome's jump by the treatment's. Rows whose treatment is not 0/1 leave the sample; only many such rows stop the command with an error. Only units within the bandwidth count, and each side must pass the model rules.",
        example: "rdd wage age, threshold(40)",
        options: &[
            opt("threshold", Number),
            opt("bandwidth", Number),
            opt("fuzzy", Variable),
            opt("level", Number),
        ],
    },
    CommandSpec {
        name: "weibull",
        verb: Verb::Weibull,
        family: Models,
        syntax: "weibull <duration> <event> <term>…",
        help: "Weibull regression of a positive duration with right censoring (proportional hazards, as Stata's streg, distribution(weibull)): hazard ratios, the constant as the baseline hazard's scale, and the shape p (above 1: a hazard that rises with time). The event is 1 where it happened and 0 where the unit was censored. Rows whose values cannot be used (a duration of 0 or less, an event other than 0/1) leave the sample as missing values do; only many such rows stop the command with an error.",
        example: "weibull days died age i.sex",
        options: &[opt("level", Number)],
    },
    // Charts.
    CommandSpec {
        name: "histogram",
        verb: Verb::Histogram,
        family: Charts,
        syntax: "histogram <variable> [, by() density freq fraction percent bin() width() normal discrete]",
        help: "A histogram drawn from perturbed bin counts; bins under the threshold are withheld.",
        example: "histogram wage, bin(20)",
        options: &[
            opt("by", Variable),
            opt("density", Flag),
            opt("freq", Flag),
            opt("fraction", Flag),
            opt("percent", Flag),
            opt("bin", Number),
            opt("width", Number),
            opt("normal", Flag),
            opt("discrete", Flag),
        ],
    },
    CommandSpec {
        name: "barchart",
        verb: Verb::Barchart,
        family: Charts,
        syntax: "barchart (count|percent|mean|median|sum|sd) <variable>… [, over() by() stack horizontal]",
        help: "A bar chart of a statistic. (count) and (percent) draw one variable's levels, with over(g) as bars within each group of g (percent within the group). (mean), (median), (sum) and (sd) need over(g) and take several variables, a bar each per group. stack piles a group's bars on each other; horizontal lays them along x; by(v) draws a chart per level of v.",
        example: "barchart (mean) wage, over(sex)",
        options: &[
            opt("over", Variable),
            opt("by", Variable),
            opt("stack", Flag),
            opt("horizontal", Flag),
        ],
    },
    CommandSpec {
        name: "boxplot",
        verb: Verb::Boxplot,
        family: Charts,
        syntax: "boxplot <variable>… [, over() horizontal]",
        help: "Box plots from protected quartiles, without outlier markers; horizontal lays the boxes along x.",
        example: "boxplot wage, over(sex)",
        options: &[opt("over", Variable), opt("horizontal", Flag)],
    },
    CommandSpec {
        name: "hexbin",
        verb: Verb::Hexbin,
        family: Charts,
        syntax: "hexbin <y> <x> [, gridsize() groups()]",
        help: "A two-variable density drawn as hexagonal cells (grid at most 25); small cells are withheld. groups(k) shades the cells in k count classes of equal width (k at most 10).",
        example: "hexbin wage age, gridsize(20)",
        options: &[opt("gridsize", Number), opt("groups", Number)],
    },
    CommandSpec {
        name: "piechart",
        verb: Verb::Piechart,
        family: Charts,
        syntax: "piechart <variable>",
        help: "A pie chart of perturbed category counts.",
        example: "piechart sex",
        options: NONE,
    },
    CommandSpec {
        name: "sankey",
        verb: Verb::Sankey,
        family: Charts,
        syntax: "sankey <variable>…",
        help: "Flows of units between the levels of two to six variables (such as a status on several dates), drawn as bands between columns of levels. Each pair of neighbouring variables is a table under the table rules; withheld flows are left out.",
        example: "sankey marital_2019 marital_2021",
        options: NONE,
    },
    CommandSpec {
        name: "coefplot",
        verb: Verb::Coefplot,
        family: Charts,
        syntax: "coefplot <model command>",
        help: "Plots the coefficients and confidence intervals of a model.",
        example: "coefplot regress wage age i.sex",
        options: NONE,
    },
    // Help.
    CommandSpec {
        name: "help",
        verb: Verb::Help,
        family: Help,
        syntax: "help [<command>]",
        help: "Lists the commands, or shows the syntax, help and an example of one.",
        example: "help tabulate",
        options: NONE,
    },
    CommandSpec {
        name: "help-function",
        verb: Verb::HelpFunction,
        family: Help,
        syntax: "help-function [<function>]",
        help: "Lists the functions usable in expressions, or describes one.",
        example: "help-function quantile",
        options: NONE,
    },
    CommandSpec {
        name: "variables",
        verb: Verb::Variables,
        family: Help,
        syntax: "variables [<alias>/<VARIABLE>…]",
        help: "Lists the variables of the current dataset with their types, or shows register variables' metadata.",
        example: "variables db/INNTEKT_WLONN",
        options: NONE,
    },
    CommandSpec {
        name: "history",
        verb: Verb::History,
        family: Help,
        syntax: "history",
        help: "Shows the commands run in this workspace.",
        example: "history",
        options: NONE,
    },
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_signature_line_is_of_the_command_on_the_caret_line() {
        let script = "require demo:1 as db\n  regress wage age, ro\n\n// a note\nimport-event db/X";
        let at = |text: &str| script.find(text).unwrap() + text.len();
        let regress = signature_at(script, at("ro")).unwrap();
        assert!(regress.starts_with("regress <dependent> <term>…"), "{regress}");
        assert!(regress.ends_with("options: noconstant, level, robust, cluster, vif, standardize"));
        assert_eq!(signature_at(script, at("as")).unwrap(), command("require").unwrap().syntax);
        assert_eq!(signature_at(script, at("ro\n") + 1), None, "a blank line");
        assert_eq!(signature_at(script, at("a note")), None, "a comment");
        assert!(signature_at(script, script.len()).unwrap().starts_with("import-event "));
        // A caret inside a multi-byte character, or past the end, still finds its line.
        assert!(signature_at("tabulate kjønn", 12).unwrap().starts_with("tabulate"));
        assert!(signature_at("help", 99).is_some());
    }

    #[test]
    fn the_help_of_a_line_names_the_rules_that_decide_its_output() {
        let script = "require demo:1 as db\nsummarize wage\nrename a b\n  regress y x";
        let at = |text: &str| script.find(text).unwrap();
        let summarize = help_at(script, at("wage")).unwrap();
        assert_eq!(summarize.name, "summarize");
        assert_eq!(summarize.help, command("summarize").unwrap().help);
        let numbers: Vec<u8> = summarize.rules.iter().map(|r| r.0).collect();
        assert_eq!(numbers, [2, 3, 7, 8, 11, 12]);
        assert_eq!(summarize.rules[3], (8, "percentiles"));
        assert!(help_at(script, at("rename")).unwrap().rules.is_empty(), "releases no data");
        assert!(help_at(script, script.len()).unwrap().rules.contains(&(9, "models")));
        assert_eq!(help_at("// summarize", 3), None);
        // Every rule a command names is a published one.
        for c in COMMANDS {
            for n in c.disclosure_rules() {
                assert!(RULES.iter().any(|(r, _)| r == n), "{}: rule {n}", c.name);
            }
        }
    }

    #[test]
    fn names_are_unique_and_examples_name_their_command() {
        let mut names: Vec<&str> = COMMANDS.iter().map(|c| c.name).collect();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), COMMANDS.len());
        for c in COMMANDS {
            assert!(c.syntax.starts_with(c.name), "{}: syntax {}", c.name, c.syntax);
            let first = c.example.split_whitespace().next().unwrap();
            assert_eq!(first, c.name, "{}: example {}", c.name, c.example);
        }
    }

    #[test]
    fn examples_parse_without_diagnostics() {
        for c in COMMANDS {
            let script = crate::script::parse(c.example);
            assert!(script.diagnostics.is_empty(), "{}: {:?}", c.name, script.diagnostics);
        }
    }

    #[test]
    fn nearest_finds_typos_and_rejects_strangers() {
        let names = || COMMANDS.iter().map(|c| c.name);
        assert_eq!(nearest("tabluate", names()), Some("tabulate"));
        assert_eq!(nearest("regres", names()), Some("regress"));
        assert_eq!(nearest("Summarize", names()), Some("summarize"));
        assert_eq!(nearest("xyzzy", names()), None);
        assert_eq!(edit_distance("kitten", "sitting"), 3);
    }
}
