//! CEL conditions over the complaint facts, and the keyword matching rules
//! share with them.
//!
//! A rule's `when` is a [CEL](https://github.com/google/cel-spec)
//! expression over [`Facts`], e.g. `group_size >= 10 || flags.litigation`.
//! It is compiled once when the policy loads ([`Condition::compile`]), and
//! refused there if it names a field the facts don't have — a typo in a
//! policy must fail `tousu policy check`, not silently never match.
//! Evaluation ([`Condition::eval`]) reads the facts in place through a
//! variable resolver: nothing is copied into a CEL activation up front,
//! only the fields an expression touches are converted.
//!
//! Keyword matching ([`keyword_matches`], [`KeywordIndex`]) is defined here
//! too, because rules' `keywords = [..]` sugar and the CEL function
//! `contains_any(text, [..])` must agree: a keyword with a Chinese (or any
//! non-ASCII-alphanumeric) first character matches as a substring of the
//! text; one starting with an ASCII letter or digit matches
//! case-insensitively at the start of a word (`injur` matches "Injured",
//! not "uninjured").

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::{Arc, OnceLock};

use cel::common::ast::{EntryExpr, Expr, IdedExpr, LiteralValue};
use cel::common::types::{self, CelBool, CelDouble, CelInt, CelList, CelMap, CelMapKey, CelString};
use cel::common::value::{CowVal, Val};
use cel::context::VariableResolver;
use cel::{Context, Env, ExecutionError, Program, Value};
use serde::{Deserialize, Serialize};
use tousu_domain::{Grade, Urgency};

/// The fields of [`Facts`] a condition may name, with their CEL type and
/// meaning. `docs/policy.md` lists the same; error messages quote the names.
pub const FIELDS: &[(&str, &str, &str)] = &[
    (
        "text",
        "string",
        "title and description, joined by a new line",
    ),
    ("title", "string", "the complaint's title (may be empty)"),
    ("description", "string", "the complaint's text as received"),
    (
        "channel",
        "string",
        "phone, email, webform, wechat, forum, walk_in, letter, …",
    ),
    ("language", "string", "zh, en, … (empty when unknown)"),
    (
        "product",
        "string",
        "product or service involved (empty when none)",
    ),
    (
        "location",
        "string",
        "place: store, site, building, district (empty when none)",
    ),
    (
        "category_hint",
        "string",
        "the channel's category hint (form drop-down, IVR branch)",
    ),
    ("demand", "string", "what the complainant wants (诉求)"),
    ("amount", "double", "amount involved in yuan, 0.0 when none"),
    (
        "customer_tier",
        "string",
        "customer tier as intake recorded it (e.g. 普通, 重要, vip)",
    ),
    ("category", "string", "category code from the classifier"),
    ("confidence", "double", "classifier confidence, 0.0–1.0"),
    ("terms", "list(string)", "terms the classifier matched"),
    (
        "group_size",
        "int",
        "number of complainants signing this complaint (1 when alone)",
    ),
    (
        "repeat_count",
        "int",
        "earlier complaints of the same person on the same issue in the window",
    ),
    (
        "handled_before",
        "bool",
        "one of those earlier complaints was already handled",
    ),
    (
        "similar_complainants",
        "int",
        "distinct complainants of near-duplicates in the window, this one included",
    ),
    (
        "follow_ups",
        "int",
        "follow-up messages (追加/跟帖) on this complaint",
    ),
    (
        "grade",
        "int",
        "grade 1–4: 4 while grading, the graded value for routing rules",
    ),
    (
        "urgency",
        "string",
        "normal, expedited or urgent: normal while grading",
    ),
    (
        "flags",
        "map(string, bool)",
        "safety, litigation, media_risk, regulator_referred, repeat, group",
    ),
    (
        "hour",
        "int",
        "hour of receipt, 0–23, in the policy's time zone",
    ),
    ("weekday", "int", "day of receipt, 1 = Monday … 7 = Sunday"),
    (
        "days_open",
        "int",
        "whole days since receipt (0 on intake; the SLA service re-grades)",
    ),
    (
        "delay_ours",
        "bool",
        "the case is late through our fault (not the complainant's or a third party's)",
    ),
    (
        "referred_by",
        "string",
        "who forwarded it: 12315, 12345, regulator, leadership, media, … (empty when nobody)",
    ),
    ("anonymous", "bool", "the complainant gave no contact"),
    (
        "vulnerable",
        "bool",
        "elderly, minor, disabled or otherwise vulnerable complainant",
    ),
];

/// Functions a condition may call besides the operators: the CEL standard
/// ones available without the `chrono` feature, and `contains_any`.
const FUNCTIONS: &[&str] = &[
    "size",
    "contains",
    "startsWith",
    "endsWith",
    "matches",
    "int",
    "uint",
    "double",
    "string",
    "bool",
    "bytes",
    "dyn",
    "type",
    "contains_any",
    "hasValue",
    "value",
    "or",
    "orValue",
];

/// A flag a grading rule can raise, also visible to conditions as
/// `flags.<name>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Flag {
    /// Harm to life, health or property (injury, fire, explosion, poisoning).
    Safety,
    /// A lawsuit filed or threatened.
    Litigation,
    /// Media exposure, or a threat of it.
    MediaRisk,
    /// Forwarded by a regulator (12315, 12345, 银保监, 卫健委…).
    RegulatorReferred,
    /// A repeat complaint of the same person on the same issue.
    Repeat,
    /// A group (集体) complaint.
    Group,
}

impl Flag {
    /// Every flag, in the order of the bits of [`Flags`].
    pub const ALL: [Flag; 6] = [
        Flag::Safety,
        Flag::Litigation,
        Flag::MediaRisk,
        Flag::RegulatorReferred,
        Flag::Repeat,
        Flag::Group,
    ];

    /// The name used in policy files and in CEL (`flags.media_risk`).
    pub fn as_str(self) -> &'static str {
        match self {
            Flag::Safety => "safety",
            Flag::Litigation => "litigation",
            Flag::MediaRisk => "media_risk",
            Flag::RegulatorReferred => "regulator_referred",
            Flag::Repeat => "repeat",
            Flag::Group => "group",
        }
    }

    /// The flag of a policy-file name.
    pub fn from_name(name: &str) -> Option<Flag> {
        Flag::ALL.into_iter().find(|f| f.as_str() == name)
    }

    fn bit(self) -> u8 {
        1 << (self as u8)
    }
}

impl fmt::Display for Flag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A set of [`Flag`]s (a bit set: copying it is free).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct Flags(u8);

impl Flags {
    /// No flag.
    pub const NONE: Flags = Flags(0);

    /// Whether `flag` is set.
    pub fn contains(self, flag: Flag) -> bool {
        self.0 & flag.bit() != 0
    }

    /// Sets `flag`.
    pub fn insert(&mut self, flag: Flag) {
        self.0 |= flag.bit();
    }

    /// Both sets together.
    pub fn union(self, other: Flags) -> Flags {
        Flags(self.0 | other.0)
    }

    /// Whether no flag is set.
    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// The flags set, in [`Flag::ALL`] order.
    pub fn iter(self) -> impl Iterator<Item = Flag> {
        Flag::ALL.into_iter().filter(move |f| self.contains(*f))
    }
}

impl FromIterator<Flag> for Flags {
    fn from_iter<I: IntoIterator<Item = Flag>>(iter: I) -> Self {
        let mut flags = Flags::NONE;
        for f in iter {
            flags.insert(f);
        }
        flags
    }
}

impl fmt::Display for Flags {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<&str> = self.iter().map(Flag::as_str).collect();
        f.write_str(&names.join(", "))
    }
}

impl Serialize for Flags {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.iter())
    }
}

/// The complaint as rules see it. Built by the caller (routing, the SLA
/// service) from the complaint record, the classifier and the similarity
/// index; every field has a neutral default so a rule never fails because
/// a channel did not carry something.
#[derive(Debug, Clone, PartialEq)]
pub struct Facts {
    title: String,
    description: String,
    text: String,
    /// `text`, lower-cased once for keyword matching.
    lower: String,
    /// phone, email, webform, wechat, forum, walk_in, letter, …
    pub channel: String,
    /// zh, en, … (empty when unknown).
    pub language: String,
    /// Product or service involved.
    pub product: String,
    /// Place: store, site, building, district.
    pub location: String,
    /// The channel's category hint (form drop-down, IVR branch).
    pub category_hint: String,
    /// What the complainant wants (诉求).
    pub demand: String,
    /// Amount involved, in yuan; 0 when none.
    pub amount: f64,
    /// Customer tier as intake recorded it.
    pub customer_tier: String,
    /// Category code from the classifier.
    pub category: String,
    /// Classifier confidence, 0–1.
    pub confidence: f64,
    /// Terms the classifier matched.
    pub terms: Vec<String>,
    /// Number of complainants signing this complaint (1 when alone).
    pub group_size: i64,
    /// Earlier complaints of the same person on the same issue in the window.
    pub repeat_count: i64,
    /// One of those earlier complaints was already handled.
    pub handled_before: bool,
    /// Distinct complainants of near-duplicates in the window, this one included.
    pub similar_complainants: i64,
    /// Follow-up messages (追加/跟帖) on this complaint.
    pub follow_ups: i64,
    /// The grade: 4 while grading; set from [`crate::schema::Grading`]
    /// before routing rules run.
    pub grade: Grade,
    /// The urgency: normal while grading; set before routing.
    pub urgency: Urgency,
    /// Flags known before grading (e.g. regulator_referred from the
    /// channel); grading adds its own.
    pub flags: Flags,
    /// Hour of receipt (0–23), local time of the policy's time zone.
    pub hour: i64,
    /// Day of receipt, 1 = Monday … 7 = Sunday.
    pub weekday: i64,
    /// Whole days since receipt.
    pub days_open: i64,
    /// The case is late through our fault.
    pub delay_ours: bool,
    /// Who forwarded it (12315, 12345, regulator, leadership, media, …).
    pub referred_by: String,
    /// The complainant gave no contact.
    pub anonymous: bool,
    /// Elderly, minor, disabled or otherwise vulnerable complainant.
    pub vulnerable: bool,
}

impl Default for Facts {
    fn default() -> Self {
        Facts::new("", "")
    }
}

impl Facts {
    /// Facts of a complaint with this title and description, every other
    /// field neutral (group of 1, grade 4, normal urgency, Monday 00h).
    pub fn new(title: &str, description: &str) -> Self {
        let mut facts = Facts {
            title: String::new(),
            description: String::new(),
            text: String::new(),
            lower: String::new(),
            channel: String::new(),
            language: String::new(),
            product: String::new(),
            location: String::new(),
            category_hint: String::new(),
            demand: String::new(),
            amount: 0.0,
            customer_tier: String::new(),
            category: String::new(),
            confidence: 0.0,
            terms: Vec::new(),
            group_size: 1,
            repeat_count: 0,
            handled_before: false,
            similar_complainants: 1,
            follow_ups: 0,
            grade: Grade::GENERAL,
            urgency: Urgency::Normal,
            flags: Flags::NONE,
            hour: 0,
            weekday: 1,
            days_open: 0,
            delay_ours: false,
            referred_by: String::new(),
            anonymous: false,
            vulnerable: false,
        };
        facts.set_text(title, description);
        facts
    }

    /// Replaces title and description (and so `text`).
    pub fn set_text(&mut self, title: &str, description: &str) {
        title.clone_into(&mut self.title);
        description.clone_into(&mut self.description);
        self.text.clear();
        let title = title.trim();
        if !title.is_empty() {
            self.text.push_str(title);
            self.text.push('\n');
        }
        self.text.push_str(description);
        self.lower = lowercase(&self.text);
    }

    /// The complaint's title.
    pub fn title(&self) -> &str {
        &self.title
    }

    /// The complaint's description.
    pub fn description(&self) -> &str {
        &self.description
    }

    /// Title and description joined by a new line (the title left out
    /// when empty).
    pub fn text(&self) -> &str {
        &self.text
    }

    /// `text` lower-cased: what keywords are matched against.
    pub fn lower_text(&self) -> &str {
        &self.lower
    }
}

/// `text.to_lowercase()`, without the case table look-up for the
/// characters most complaints are made of: ASCII, and the CJK ideographs
/// (which have no case). The same string: `str::to_lowercase` maps each
/// character on its own, except a capital sigma (final or not by its
/// neighbours), so a text with one is left to it.
fn lowercase(text: &str) -> String {
    if text.contains('Σ') {
        return text.to_lowercase();
    }
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if c.is_ascii() {
            out.push(c.to_ascii_lowercase());
        } else if matches!(c, '\u{4E00}'..='\u{9FFF}') {
            out.push(c);
        } else {
            out.extend(c.to_lowercase());
        }
    }
    out
}

/// What a condition could not do.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum CelError {
    /// The expression does not parse. `line` and `column` (1-based,
    /// characters) are within the expression.
    #[error("CEL syntax error at {line}:{column}: {message}")]
    Syntax {
        line: usize,
        column: usize,
        message: String,
    },
    /// The expression names a field the facts don't have.
    #[error("unknown field `{name}` (known fields: {known})")]
    UnknownField {
        name: String,
        /// Byte offset of the name in the expression.
        offset: usize,
        known: String,
    },
    /// `flags.<name>` with a name that is not a flag.
    #[error("unknown flag `flags.{name}` (known flags: {known})")]
    UnknownFlag {
        name: String,
        offset: usize,
        known: String,
    },
    /// A call of a function CEL does not have here.
    #[error("unknown function `{name}` (available: {known})")]
    UnknownFunction {
        name: String,
        offset: usize,
        known: String,
    },
    /// The expression failed while evaluating (a type mismatch, a
    /// division by zero…).
    #[error("CEL evaluation failed: {0}")]
    Eval(String),
    /// The expression gave something else than a bool.
    #[error("condition must give a bool, it gave {0}")]
    NotBool(String),
    /// The expression is too long or nests too deep.
    #[error("condition too complex: {0}")]
    TooComplex(String),
}

impl CelError {
    /// Where in the expression the problem is: (line, column), 1-based,
    /// columns in characters.
    pub fn position_in(&self, expr: &str) -> Option<(usize, usize)> {
        match self {
            CelError::Syntax { line, column, .. } => Some((*line, *column)),
            CelError::UnknownField { offset, .. }
            | CelError::UnknownFlag { offset, .. }
            | CelError::UnknownFunction { offset, .. } => Some(line_col(expr, *offset)),
            CelError::Eval(_) | CelError::NotBool(_) | CelError::TooComplex(_) => None,
        }
    }
}

/// 1-based line and column (in characters) of a byte offset.
fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let mut offset = offset.min(text.len());
    while !text.is_char_boundary(offset) {
        offset -= 1;
    }
    let before = &text[..offset];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    (line, before[line_start..].chars().count() + 1)
}

/// The CEL environment: the standard library plus `contains_any`.
fn env() -> &'static Arc<Env> {
    static ENV: OnceLock<Arc<Env>> = OnceLock::new();
    ENV.get_or_init(|| {
        let mut env = Env::stdlib();
        // Declared once, on a fresh environment: cannot collide.
        if env
            .add_overload(
                "contains_any",
                "contains_any_string_list",
                vec![types::DYN_TYPE, types::DYN_TYPE],
                contains_any,
            )
            .is_err()
        {
            // Unreachable with a fresh stdlib; conditions calling it would
            // then fail to evaluate with a clear "no such overload".
        }
        Arc::new(env)
    })
}

/// `contains_any(text, [kw, …])`: whether any keyword matches the text,
/// with the same rules as a rule's `keywords` (see the module doc).
fn contains_any<'b, 'v>(args: Vec<CowVal<'b, 'v>>) -> Result<CowVal<'b, 'v>, ExecutionError> {
    let [text, list] = args.as_slice() else {
        return Err(ExecutionError::invalid_argument_count(2, args.len()));
    };
    let Some(text) = text.downcast_ref::<CelString>() else {
        return Err(ExecutionError::function_error(
            "contains_any",
            "first argument must be a string",
        ));
    };
    let Ok(list) = <&[Box<dyn Val + 'v>]>::try_from(list.as_ref()) else {
        return Err(ExecutionError::function_error(
            "contains_any",
            "second argument must be a list of strings",
        ));
    };
    let lower = text.inner().to_lowercase();
    for item in list {
        let Some(kw) = item.downcast_ref::<CelString>() else {
            return Err(ExecutionError::function_error(
                "contains_any",
                "second argument must be a list of strings",
            ));
        };
        let kw = kw.inner().trim().to_lowercase();
        if !kw.is_empty() && keyword_matches(&lower, &kw) {
            return Ok(CowVal::owned(CelBool::from(true)));
        }
    }
    Ok(CowVal::owned(CelBool::from(false)))
}

/// A compiled `when` expression (cheap to clone: the program is shared).
#[derive(Clone)]
pub struct Condition {
    source: String,
    program: Arc<Program>,
    categories: Vec<(String, usize)>,
    /// The same expression for [`Fast`] evaluation, when it has one of
    /// the shapes nearly every policy condition has.
    fast: Option<Fast>,
}

impl fmt::Debug for Condition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Condition").field(&self.source).finish()
    }
}

/// Longest condition accepted, in bytes.
const MAX_SOURCE: usize = 4096;
/// Deepest expression tree accepted: evaluation recurses once per level.
const MAX_DEPTH: usize = 48;
/// Stack of the thread that parses conditions.
const COMPILE_STACK: usize = 256 << 20;

fn compile_here(expr: &str) -> Result<Condition, CelError> {
    let parsed = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| env().compile(expr)))
        .map_err(|_| CelError::Syntax {
            line: 1,
            column: 1,
            message: "the CEL parser failed on this expression".into(),
        })?;
    let program = parsed.map_err(|errors| {
        let first = errors.errors.first();
        let (line, column) = first.map_or((1, 1), |e| {
            (
                usize::try_from(e.pos.0).unwrap_or(1).max(1),
                usize::try_from(e.pos.1).unwrap_or(1).max(1),
            )
        });
        let message = first.map_or_else(|| "invalid expression".into(), |e| e.msg.clone());
        CelError::Syntax {
            line,
            column,
            message,
        }
    })?;
    let mut walk = Walk {
        program: &program,
        bound: Vec::new(),
        categories: Vec::new(),
        depth: 0,
    };
    walk.expr(program.expression())?;
    let categories = walk.categories;
    let fast = Fast::of(program.expression());
    Ok(Condition {
        source: expr.to_owned(),
        program: Arc::new(program),
        categories,
        fast,
    })
}

impl Condition {
    /// Parses `expr` and checks that every identifier it names is a field
    /// of [`Facts`] (or a variable of a comprehension such as
    /// `terms.exists(t, t == "漏水")`), every `flags.x` a known flag and
    /// every function one CEL has here.
    pub fn compile(expr: &str) -> Result<Condition, CelError> {
        if expr.len() > MAX_SOURCE {
            return Err(CelError::TooComplex(format!(
                "the expression is {} bytes long, more than {MAX_SOURCE}",
                expr.len()
            )));
        }
        // The parser recurses on nesting: run it on a thread with a stack
        // large enough for any expression of MAX_SOURCE bytes, and keep
        // only programs shallow enough to evaluate on any thread.
        let owned = expr.to_owned();
        let compiled = std::thread::Builder::new()
            .name("cel-compile".into())
            .stack_size(COMPILE_STACK)
            .spawn(move || compile_here(&owned));
        match compiled {
            Ok(handle) => handle.join().unwrap_or_else(|_| {
                Err(CelError::Syntax {
                    line: 1,
                    column: 1,
                    message: "the CEL parser failed on this expression".into(),
                })
            }),
            Err(_) => compile_here(expr),
        }
    }

    /// The expression as written.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// Category codes the expression compares `category` with (in
    /// `category == "x"`, `"x" == category`, `category != "x"` and
    /// `category in ["x", …]`), with their byte offsets: the policy checks
    /// they exist.
    pub fn categories(&self) -> &[(String, usize)] {
        &self.categories
    }

    /// Whether the expression is the literal `true` (a rule with it matches
    /// every complaint).
    pub fn is_literal_true(&self) -> bool {
        matches!(
            &self.program.expression().expr,
            Expr::Literal(LiteralValue::Boolean(b)) if *b.inner()
        )
    }

    /// Evaluates the condition over `facts`. A result that is not a bool is
    /// an error, not `false`: a rule that can never fire should be noticed.
    pub fn eval(&self, facts: &Facts) -> Result<bool, CelError> {
        if let Some(result) = self.fast.as_ref().and_then(|fast| fast.eval(facts)) {
            return Ok(result);
        }
        self.eval_cel(facts)
    }

    /// [`Condition::eval`] by the CEL interpreter, always.
    fn eval_cel(&self, facts: &Facts) -> Result<bool, CelError> {
        let resolver = Resolver(facts);
        let mut ctx = Context::with_env(Arc::clone(env()));
        ctx.set_variable_resolver(&resolver);
        match self.program.execute(&ctx) {
            Ok(Value::Bool(b)) => Ok(b),
            Ok(other) => Err(CelError::NotBool(format!(
                "{} ({other:?})",
                other.type_of()
            ))),
            Err(e) => Err(CelError::Eval(e.to_string())),
        }
    }
}

/// A condition evaluated natively instead of by the CEL interpreter,
/// which spends about half a microsecond on even `group_size >= 10` (a
/// context, a resolver call per name, boxed values): a dozen rules per
/// complaint made it a tenth of a routing decision.
///
/// Only shapes whose CEL result is plain to see are translated, and each
/// to exactly what CEL computes: bool fields and flags; an int field
/// compared with an int literal, a double field with a double literal
/// (IEEE comparisons, as CEL's); a string field `==`/`!=` a string
/// literal or `in` a list of string literals; `contains_any(field,
/// [literals])`; `!`, `&&` and `||` of these. Every field has its type,
/// so only a NaN can make one fail in CEL (doubles have no order then):
/// the native evaluation then gives up and CEL evaluates the whole
/// condition, error message and all. Otherwise `&&` and `||`
/// short-circuit exactly as CEL's error-absorbing ones do. Anything else
/// (arithmetic, `terms`, comprehensions, mixed int/double comparisons, …)
/// is left to CEL; a test checks both agree.
#[derive(Debug, Clone)]
enum Fast {
    Literal(bool),
    Bool(fn(&Facts) -> bool),
    Flag(Flag),
    Not(Box<Fast>),
    And(Box<Fast>, Box<Fast>),
    Or(Box<Fast>, Box<Fast>),
    Int(fn(&Facts) -> i64, Cmp, i64),
    Double(fn(&Facts) -> f64, Cmp, f64),
    Str(for<'f> fn(&'f Facts) -> &'f str, bool, String),
    In(for<'f> fn(&'f Facts) -> &'f str, Vec<String>),
    /// Keywords already trimmed, lower-cased and non-empty.
    ContainsAny(for<'f> fn(&'f Facts) -> &'f str, Vec<String>),
}

/// A comparison operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Cmp {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

impl Cmp {
    fn of(func: &str) -> Option<Cmp> {
        Some(match func {
            "_==_" => Cmp::Eq,
            "_!=_" => Cmp::Ne,
            "_<_" => Cmp::Lt,
            "_<=_" => Cmp::Le,
            "_>_" => Cmp::Gt,
            "_>=_" => Cmp::Ge,
            _ => return None,
        })
    }

    /// `b op a` as `a op' b`.
    fn flipped(self) -> Cmp {
        match self {
            Cmp::Lt => Cmp::Gt,
            Cmp::Le => Cmp::Ge,
            Cmp::Gt => Cmp::Lt,
            Cmp::Ge => Cmp::Le,
            other => other,
        }
    }

    fn test<T: PartialOrd>(self, a: T, b: T) -> bool {
        match self {
            Cmp::Eq => a == b,
            Cmp::Ne => a != b,
            Cmp::Lt => a < b,
            Cmp::Le => a <= b,
            Cmp::Gt => a > b,
            Cmp::Ge => a >= b,
        }
    }
}

fn bool_field(name: &str) -> Option<fn(&Facts) -> bool> {
    Some(match name {
        "handled_before" => |f| f.handled_before,
        "delay_ours" => |f| f.delay_ours,
        "anonymous" => |f| f.anonymous,
        "vulnerable" => |f| f.vulnerable,
        _ => return None,
    })
}

fn int_field(name: &str) -> Option<fn(&Facts) -> i64> {
    Some(match name {
        "group_size" => |f| f.group_size,
        "repeat_count" => |f| f.repeat_count,
        "similar_complainants" => |f| f.similar_complainants,
        "follow_ups" => |f| f.follow_ups,
        "grade" => |f| i64::from(f.grade.get()),
        "hour" => |f| f.hour,
        "weekday" => |f| f.weekday,
        "days_open" => |f| f.days_open,
        _ => return None,
    })
}

fn double_field(name: &str) -> Option<fn(&Facts) -> f64> {
    Some(match name {
        "amount" => |f| f.amount,
        "confidence" => |f| f.confidence,
        _ => return None,
    })
}

fn str_field(name: &str) -> Option<for<'f> fn(&'f Facts) -> &'f str> {
    Some(match name {
        "text" => |f| &f.text,
        "title" => |f| &f.title,
        "description" => |f| &f.description,
        "channel" => |f| &f.channel,
        "language" => |f| &f.language,
        "product" => |f| &f.product,
        "location" => |f| &f.location,
        "category_hint" => |f| &f.category_hint,
        "demand" => |f| &f.demand,
        "customer_tier" => |f| &f.customer_tier,
        "category" => |f| &f.category,
        "urgency" => |f| f.urgency.as_str(),
        "referred_by" => |f| &f.referred_by,
        _ => return None,
    })
}

impl Fast {
    /// The native form of a top-level expression, if it has one.
    fn of(e: &IdedExpr) -> Option<Fast> {
        match &e.expr {
            Expr::Literal(LiteralValue::Boolean(b)) => Some(Fast::Literal(*b.inner())),
            Expr::Ident(name) => bool_field(name).map(Fast::Bool),
            Expr::Select(sel) if !sel.test => match &sel.operand.expr {
                Expr::Ident(root) if root == "flags" => Flag::from_name(&sel.field).map(Fast::Flag),
                _ => None,
            },
            Expr::Call(call) if call.target.is_none() => {
                let args = call.args.as_slice();
                match (call.func_name.as_str(), args) {
                    ("!_", [a]) => Some(Fast::Not(Box::new(Fast::of(a)?))),
                    ("_&&_", [a, b]) => {
                        Some(Fast::And(Box::new(Fast::of(a)?), Box::new(Fast::of(b)?)))
                    }
                    ("_||_", [a, b]) => {
                        Some(Fast::Or(Box::new(Fast::of(a)?), Box::new(Fast::of(b)?)))
                    }
                    ("@in", [a, list]) => {
                        let field = str_field(ident(a)?)?;
                        Some(Fast::In(field, string_list(list)?))
                    }
                    ("contains_any", [a, list]) => {
                        let field = str_field(ident(a)?)?;
                        let keywords = string_list(list)?
                            .iter()
                            .map(|k| k.trim().to_lowercase())
                            .filter(|k| !k.is_empty())
                            .collect();
                        Some(Fast::ContainsAny(field, keywords))
                    }
                    (func, [a, b]) => {
                        let cmp = Cmp::of(func)?;
                        Fast::compare(a, cmp, b).or_else(|| Fast::compare(b, cmp.flipped(), a))
                    }
                    _ => None,
                }
            }
            _ => None,
        }
    }

    /// `field op literal`.
    fn compare(field: &IdedExpr, cmp: Cmp, literal: &IdedExpr) -> Option<Fast> {
        let name = ident(field)?;
        match &literal.expr {
            Expr::Literal(LiteralValue::Int(n)) => {
                Some(Fast::Int(int_field(name)?, cmp, *n.inner()))
            }
            Expr::Literal(LiteralValue::Double(x)) => {
                Some(Fast::Double(double_field(name)?, cmp, *x.inner()))
            }
            Expr::Literal(LiteralValue::String(s)) => match cmp {
                Cmp::Eq | Cmp::Ne => Some(Fast::Str(
                    str_field(name)?,
                    cmp == Cmp::Eq,
                    s.inner().to_owned(),
                )),
                _ => None,
            },
            _ => None,
        }
    }

    /// The condition's value; `None` where CEL would fail (a NaN), to
    /// be left to CEL.
    fn eval(&self, facts: &Facts) -> Option<bool> {
        Some(match self {
            Fast::Literal(b) => *b,
            Fast::Bool(field) => field(facts),
            Fast::Flag(flag) => facts.flags.contains(*flag),
            Fast::Not(a) => !a.eval(facts)?,
            Fast::And(a, b) => a.eval(facts)? && b.eval(facts)?,
            Fast::Or(a, b) => a.eval(facts)? || b.eval(facts)?,
            Fast::Int(field, cmp, n) => cmp.test(field(facts), *n),
            Fast::Double(field, cmp, x) => {
                let value = field(facts);
                if value.is_nan() || x.is_nan() {
                    return None;
                }
                cmp.test(value, *x)
            }
            Fast::Str(field, equal, s) => (field(facts) == s.as_str()) == *equal,
            Fast::In(field, list) => {
                let value = field(facts);
                list.iter().any(|s| s == value)
            }
            Fast::ContainsAny(field, keywords) => {
                let value = field(facts);
                if value.is_empty() {
                    return Some(false);
                }
                let lower = value.to_lowercase();
                keywords.iter().any(|k| keyword_matches(&lower, k))
            }
        })
    }
}

/// The name of an identifier expression.
fn ident(e: &IdedExpr) -> Option<&str> {
    match &e.expr {
        Expr::Ident(name) => Some(name),
        _ => None,
    }
}

/// The strings of a list literal made only of string literals.
fn string_list(e: &IdedExpr) -> Option<Vec<String>> {
    let Expr::List(list) = &e.expr else {
        return None;
    };
    if !list.optional_indices.is_empty() {
        return None;
    }
    list.elements
        .iter()
        .map(|x| match &x.expr {
            Expr::Literal(LiteralValue::String(s)) => Some(s.inner().to_owned()),
            _ => None,
        })
        .collect()
}

/// Walks a parsed expression, checking names.
struct Walk<'p> {
    program: &'p Program,
    /// Variables bound by enclosing comprehensions.
    bound: Vec<String>,
    categories: Vec<(String, usize)>,
    depth: usize,
}

impl Walk<'_> {
    fn offset(&self, e: &IdedExpr) -> usize {
        self.program
            .source_info()
            .offset_for(e.id)
            .map_or(0, |(start, _)| start as usize)
    }

    fn expr(&mut self, e: &IdedExpr) -> Result<(), CelError> {
        if self.depth >= MAX_DEPTH {
            return Err(CelError::TooComplex(format!(
                "the expression nests deeper than {MAX_DEPTH} levels"
            )));
        }
        self.depth += 1;
        let r = self.node(e);
        self.depth -= 1;
        r
    }

    fn node(&mut self, e: &IdedExpr) -> Result<(), CelError> {
        match &e.expr {
            Expr::Unspecified | Expr::Literal(_) => Ok(()),
            Expr::Ident(name) => self.ident(name, e),
            Expr::Select(sel) => {
                if let Expr::Ident(root) = &sel.operand.expr
                    && root == "flags"
                    && !self.bound.iter().any(|b| b == "flags")
                {
                    if Flag::from_name(&sel.field).is_none() {
                        return Err(CelError::UnknownFlag {
                            name: sel.field.clone(),
                            offset: self.offset(&sel.operand),
                            known: Flag::ALL.map(Flag::as_str).join(", "),
                        });
                    }
                    return Ok(());
                }
                self.expr(&sel.operand)
            }
            Expr::Call(call) => {
                let name = call.func_name.as_str();
                let operator = name.starts_with(['_', '@', '!', '-']);
                if !operator && !name.starts_with("optional.") && !FUNCTIONS.contains(&name) {
                    // The call's offset is its `(`: point at the name.
                    let at = self.offset(e);
                    let source = &self.program.source_info().source;
                    let offset = match at.checked_sub(name.len()) {
                        Some(start) if source.get(start..at) == Some(name) => start,
                        _ => at,
                    };
                    return Err(CelError::UnknownFunction {
                        name: name.to_owned(),
                        offset,
                        known: FUNCTIONS.join(", "),
                    });
                }
                self.note_category(name, call.target.as_deref(), &call.args);
                if let Some(target) = &call.target {
                    self.expr(target)?;
                }
                call.args.iter().try_for_each(|a| self.expr(a))
            }
            Expr::Comprehension(comp) => {
                self.expr(&comp.iter_range)?;
                self.expr(&comp.accu_init)?;
                let depth = self.bound.len();
                self.bound.push(comp.iter_var.clone());
                if let Some(v) = &comp.iter_var2 {
                    self.bound.push(v.clone());
                }
                self.bound.push(comp.accu_var.clone());
                let r = self
                    .expr(&comp.loop_cond)
                    .and_then(|()| self.expr(&comp.loop_step))
                    .and_then(|()| self.expr(&comp.result));
                self.bound.truncate(depth);
                r
            }
            Expr::List(list) => list.elements.iter().try_for_each(|x| self.expr(x)),
            Expr::Map(map) => map.entries.iter().try_for_each(|entry| match &entry.expr {
                EntryExpr::MapEntry(m) => self.expr(&m.key).and_then(|()| self.expr(&m.value)),
                EntryExpr::StructField(f) => self.expr(&f.value),
            }),
            Expr::Struct(s) => s.entries.iter().try_for_each(|entry| match &entry.expr {
                EntryExpr::MapEntry(m) => self.expr(&m.key).and_then(|()| self.expr(&m.value)),
                EntryExpr::StructField(f) => self.expr(&f.value),
            }),
        }
    }

    fn ident(&self, name: &str, e: &IdedExpr) -> Result<(), CelError> {
        if name.starts_with('@')
            || self.bound.iter().any(|b| b == name)
            || FIELDS.iter().any(|(f, _, _)| *f == name)
        {
            return Ok(());
        }
        Err(CelError::UnknownField {
            name: name.to_owned(),
            offset: self.offset(e),
            known: FIELDS
                .iter()
                .map(|(f, _, _)| *f)
                .collect::<Vec<_>>()
                .join(", "),
        })
    }

    /// Records the string literals `category` is compared with.
    fn note_category(&mut self, func: &str, target: Option<&IdedExpr>, args: &[IdedExpr]) {
        if target.is_some() || args.len() != 2 {
            return;
        }
        let is_category = |e: &IdedExpr| {
            matches!(&e.expr, Expr::Ident(n) if n == "category")
                && !self.bound.iter().any(|b| b == "category")
        };
        let literal = |e: &IdedExpr| match &e.expr {
            Expr::Literal(LiteralValue::String(s)) => Some(s.inner().to_owned()),
            _ => None,
        };
        match func {
            "_==_" | "_!=_" => {
                for (a, b) in [(&args[0], &args[1]), (&args[1], &args[0])] {
                    if is_category(a)
                        && let Some(code) = literal(b)
                    {
                        let at = self.offset(b);
                        self.categories.push((code, at));
                    }
                }
            }
            "@in" => {
                if is_category(&args[0])
                    && let Expr::List(list) = &args[1].expr
                {
                    let found: Vec<(String, usize)> = list
                        .elements
                        .iter()
                        .filter_map(|x| literal(x).map(|code| (code, self.offset(x))))
                        .collect();
                    self.categories.extend(found);
                }
            }
            _ => {}
        }
    }
}

/// Serves the facts to CEL by name, converting only what is read.
struct Resolver<'f>(&'f Facts);

fn string<'b>(s: &'b str) -> Option<CowVal<'b, 'b>> {
    Some(CowVal::owned(CelString::from(s)))
}

impl VariableResolver for Resolver<'_> {
    fn resolve<'b>(&'b self, variable: &str) -> Option<CowVal<'b, 'b>> {
        let f = self.0;
        let int = |n: i64| Some(CowVal::owned(CelInt::from(n)));
        let boolean = |b: bool| Some(CowVal::owned(CelBool::from(b)));
        match variable {
            "text" => string(&f.text),
            "title" => string(&f.title),
            "description" => string(&f.description),
            "channel" => string(&f.channel),
            "language" => string(&f.language),
            "product" => string(&f.product),
            "location" => string(&f.location),
            "category_hint" => string(&f.category_hint),
            "demand" => string(&f.demand),
            "amount" => Some(CowVal::owned(CelDouble::from(f.amount))),
            "customer_tier" => string(&f.customer_tier),
            "category" => string(&f.category),
            "confidence" => Some(CowVal::owned(CelDouble::from(f.confidence))),
            "terms" => {
                let items: Vec<Box<dyn Val + 'b>> = f
                    .terms
                    .iter()
                    .map(|t| Box::new(CelString::from(t.as_str())) as Box<dyn Val + 'b>)
                    .collect();
                Some(CowVal::owned(CelList::from(items)))
            }
            "group_size" => int(f.group_size),
            "repeat_count" => int(f.repeat_count),
            "handled_before" => boolean(f.handled_before),
            "similar_complainants" => int(f.similar_complainants),
            "follow_ups" => int(f.follow_ups),
            "grade" => int(i64::from(f.grade.get())),
            "urgency" => string(f.urgency.as_str()),
            "flags" => {
                let map: HashMap<CelMapKey<'b>, Box<dyn Val + 'b>> = Flag::ALL
                    .into_iter()
                    .map(|flag| {
                        (
                            CelMapKey::from(flag.as_str()),
                            Box::new(CelBool::from(f.flags.contains(flag))) as Box<dyn Val + 'b>,
                        )
                    })
                    .collect();
                Some(CowVal::owned(CelMap::from(map)))
            }
            "hour" => int(f.hour),
            "weekday" => int(f.weekday),
            "days_open" => int(f.days_open),
            "delay_ours" => boolean(f.delay_ours),
            "referred_by" => string(&f.referred_by),
            "anonymous" => boolean(f.anonymous),
            "vulnerable" => boolean(f.vulnerable),
            _ => None,
        }
    }
}

/// Whether keyword `kw` (already lower-cased and trimmed) matches `lower`
/// (lower-cased text): a substring when `kw` starts with anything but an
/// ASCII letter or digit, else a substring that starts a word (the
/// character before it is not an ASCII letter or digit).
pub fn keyword_matches(lower: &str, kw: &str) -> bool {
    if kw.is_empty() {
        return false;
    }
    if !starts_ascii_word(kw) {
        return lower.contains(kw);
    }
    lower.match_indices(kw).any(|(at, _)| word_start(lower, at))
}

fn starts_ascii_word(kw: &str) -> bool {
    kw.as_bytes().first().is_some_and(u8::is_ascii_alphanumeric)
}

fn word_start(lower: &str, at: usize) -> bool {
    at == 0 || !lower.as_bytes()[at - 1].is_ascii_alphanumeric()
}

/// Many keywords matched against one text in a single pass: keywords are
/// bucketed by their first character, and the text is walked once.
/// Built once per policy (every keyword of every rule); scanning a
/// complaint costs about one hash look-up per character.
#[derive(Debug, Clone, Default)]
pub struct KeywordIndex {
    keywords: Vec<String>,
    ids: BTreeMap<String, u32>,
    ascii: Vec<Vec<u32>>,
    /// Keyed by the policy's characters, looked up once per character of
    /// every complaint: hashed by one multiplication (SipHash, against
    /// keys chosen to collide, would guard nothing here and cost more
    /// than the rest of the scan).
    other: HashMap<char, Vec<u32>, BuildHasherDefault<CharHasher>>,
}

/// Hasher of [`KeywordIndex`]'s characters: Fibonacci hashing of the
/// code point.
#[derive(Debug, Default, Clone, Copy)]
struct CharHasher(u64);

impl Hasher for CharHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0.rotate_left(8) ^ u64::from(b)).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        }
    }

    fn write_u32(&mut self, n: u32) {
        self.0 = (self.0 ^ u64::from(n)).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    }
}

impl KeywordIndex {
    /// An empty index.
    pub fn new() -> Self {
        KeywordIndex {
            ascii: vec![Vec::new(); 128],
            ..KeywordIndex::default()
        }
    }

    /// Adds a keyword (trimmed and lower-cased here) and returns its id;
    /// the same keyword twice gets the same id. `None` for an empty one.
    pub fn add(&mut self, keyword: &str) -> Option<u32> {
        let kw = keyword.trim().to_lowercase();
        let first = kw.chars().next()?;
        if let Some(id) = self.ids.get(&kw) {
            return Some(*id);
        }
        let id = u32::try_from(self.keywords.len()).ok()?;
        if self.ascii.is_empty() {
            self.ascii = vec![Vec::new(); 128];
        }
        match u8::try_from(first) {
            Ok(b) if b.is_ascii() => self.ascii[usize::from(b)].push(id),
            _ => self.other.entry(first).or_default().push(id),
        }
        self.ids.insert(kw.clone(), id);
        self.keywords.push(kw);
        Some(id)
    }

    /// The keyword of an id.
    pub fn keyword(&self, id: u32) -> &str {
        self.keywords.get(id as usize).map_or("", String::as_str)
    }

    /// Number of distinct keywords.
    pub fn len(&self) -> usize {
        self.keywords.len()
    }

    /// Whether the index holds no keyword.
    pub fn is_empty(&self) -> bool {
        self.keywords.is_empty()
    }

    /// Which keywords occur in `lower` (a lower-cased text), by id.
    pub fn scan(&self, lower: &str) -> Matched {
        let mut bits = vec![0u64; self.keywords.len().div_ceil(64)];
        if self.keywords.is_empty() {
            return Matched(bits);
        }
        for (at, ch) in lower.char_indices() {
            let bucket = match u8::try_from(ch) {
                // A keyword starting with an ASCII letter or digit matches
                // only at the start of a word: inside a word, none of
                // this character's keywords can.
                Ok(b) if b.is_ascii_alphanumeric() && !word_start(lower, at) => continue,
                Ok(b) if b.is_ascii() => self.ascii.get(usize::from(b)),
                _ => self.other.get(&ch),
            };
            let Some(bucket) = bucket else { continue };
            for &id in bucket {
                if bits[(id / 64) as usize] & (1 << (id % 64)) != 0 {
                    continue;
                }
                let kw = &self.keywords[id as usize];
                if lower[at..].starts_with(kw.as_str())
                    && (!starts_ascii_word(kw) || word_start(lower, at))
                {
                    bits[(id / 64) as usize] |= 1 << (id % 64);
                }
            }
        }
        Matched(bits)
    }
}

/// The keywords of a [`KeywordIndex`] found in one text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Matched(Vec<u64>);

impl Matched {
    /// Whether keyword `id` was found.
    pub fn contains(&self, id: u32) -> bool {
        self.0
            .get((id / 64) as usize)
            .is_some_and(|w| w & (1 << (id % 64)) != 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keywords_match_chinese_substrings_and_english_word_starts() {
        let lower = "我的手机电池爆炸了, the battery exploded and i was injured.";
        assert!(keyword_matches(lower, "爆炸"));
        assert!(keyword_matches(lower, "电池"));
        assert!(keyword_matches(lower, "explod"));
        assert!(keyword_matches(lower, "injur"));
        assert!(!keyword_matches(lower, "jured"));
        assert!(!keyword_matches(lower, "起火"));
        assert!(!keyword_matches(lower, ""));
        // A word start right after Chinese text.
        assert!(keyword_matches("我已经拨打12315投诉", "12315"));
        assert!(keyword_matches("找了lawyer", "lawyer"));
        assert!(!keyword_matches("uninjured", "injur"));
    }

    #[test]
    fn index_agrees_with_single_matching() {
        let mut index = KeywordIndex::new();
        let words = [
            "爆炸", "Explod", "injur", "jured", "起火", "12315", "lawyer",
        ];
        let ids: Vec<u32> = words.iter().map(|w| index.add(w).unwrap()).collect();
        assert_eq!(index.add(" explod "), Some(ids[1]));
        assert_eq!(index.add("   "), None);
        let lower = "我的手机电池爆炸了, the battery exploded and i was injured. 12315";
        let m = index.scan(lower);
        for (w, id) in words.iter().zip(&ids) {
            assert_eq!(
                m.contains(*id),
                keyword_matches(lower, &w.to_lowercase()),
                "{w}"
            );
        }
        assert!(!m.contains(999));
    }

    #[test]
    fn flags_set_and_print() {
        let mut f = Flags::NONE;
        assert!(f.is_empty());
        f.insert(Flag::Group);
        f.insert(Flag::Safety);
        assert!(f.contains(Flag::Group) && !f.contains(Flag::Litigation));
        assert_eq!(f.to_string(), "safety, group");
        assert_eq!(Flag::from_name("media_risk"), Some(Flag::MediaRisk));
        assert_eq!(Flag::from_name("press"), None);
    }

    #[test]
    fn line_col_counts_characters() {
        assert_eq!(line_col("ab\n电话 x", 10), (2, 4));
        assert_eq!(line_col("abc", 99), (1, 4));
    }

    fn facts() -> Facts {
        let mut f = Facts::new(
            "电池爆炸",
            "我的充电宝充电时爆炸了，手被烫伤，我要找律师起诉。",
        );
        f.category = "product_quality".into();
        f.group_size = 3;
        f.amount = 12000.0;
        f.terms = vec!["电池".into(), "爆炸".into()];
        f.flags.insert(Flag::Litigation);
        f
    }

    #[test]
    fn conditions_evaluate_over_facts() {
        let f = facts();
        for (expr, want) in [
            ("group_size >= 3", true),
            ("group_size >= 10", false),
            ("amount >= 10000.0", true),
            ("category == \"product_quality\" && flags.litigation", true),
            ("category in [\"logistics\", \"price_billing\"]", false),
            ("terms.exists(t, t == \"爆炸\")", true),
            ("contains_any(text, [\"LAWYER\", \"律师\"])", true),
            ("contains_any(description, [\"fire\"])", false),
            (
                "text.contains(\"烫伤\") && urgency == \"normal\" && grade == 4",
                true,
            ),
            ("!flags.safety && weekday == 1 && hour < 8", true),
            ("true", true),
        ] {
            let c = Condition::compile(expr).unwrap_or_else(|e| panic!("{expr}: {e}"));
            assert_eq!(c.eval(&f), Ok(want), "{expr}");
        }
        assert!(Condition::compile("true").unwrap().is_literal_true());
        assert!(!Condition::compile("1 == 1").unwrap().is_literal_true());
    }

    #[test]
    fn int_and_double_compare_as_cel_does() {
        let f = facts();
        for (expr, want) in [
            ("amount >= 10000", true),
            ("amount > 12000", false),
            ("group_size == 3.0", true),
            ("confidence < 1", true),
        ] {
            assert_eq!(
                Condition::compile(expr).unwrap().eval(&f),
                Ok(want),
                "{expr}"
            );
        }
    }

    #[test]
    fn unknown_names_are_refused_with_the_known_ones() {
        match Condition::compile("group_sise >= 3") {
            Err(CelError::UnknownField {
                name,
                offset,
                known,
            }) => {
                assert_eq!(name, "group_sise");
                assert_eq!(offset, 0);
                assert!(known.contains("group_size") && known.contains("similar_complainants"));
            }
            other => panic!("{other:?}"),
        }
        let e = Condition::compile("flags.safety || flags.press").unwrap_err();
        assert!(
            matches!(&e, CelError::UnknownFlag { name, offset: 16, .. } if name == "press"),
            "{e:?}"
        );
        let e = Condition::compile("lower(text) == \"x\"").unwrap_err();
        assert!(
            matches!(&e, CelError::UnknownFunction { name, .. } if name == "lower"),
            "{e:?}"
        );
        // Comprehension variables are in scope only inside.
        assert!(Condition::compile("terms.all(t, size(t) > 1)").is_ok());
        let e = Condition::compile("terms.all(t, size(t) > 1) && t == \"x\"").unwrap_err();
        assert!(
            matches!(&e, CelError::UnknownField { name, .. } if name == "t"),
            "{e:?}"
        );
    }

    #[test]
    fn syntax_errors_have_positions() {
        // The end of input is where something is missing.
        let e = Condition::compile("group_size >= ").unwrap_err();
        assert!(
            matches!(
                e,
                CelError::Syntax {
                    line: 1,
                    column: 15,
                    ..
                }
            ),
            "{e:?}"
        );
        let e = Condition::compile("grade == 1 &&\n (").unwrap_err();
        assert!(
            matches!(
                e,
                CelError::Syntax {
                    line: 2,
                    column: 3,
                    ..
                }
            ),
            "{e:?}"
        );
        let e = Condition::compile("grade == = 1").unwrap_err();
        assert!(
            matches!(
                e,
                CelError::Syntax {
                    line: 1,
                    column: 10,
                    ..
                }
            ),
            "{e:?}"
        );
    }

    #[test]
    fn non_bool_results_and_runtime_failures_are_errors() {
        let f = facts();
        let c = Condition::compile("group_size + 1").unwrap();
        assert!(matches!(c.eval(&f), Err(CelError::NotBool(t)) if t.starts_with("int")));
        let c = Condition::compile("group_size / 0 > 1").unwrap();
        assert!(matches!(c.eval(&f), Err(CelError::Eval(_))));
        let c = Condition::compile("text > 3").unwrap();
        assert!(matches!(c.eval(&f), Err(CelError::Eval(_))));
        let c = Condition::compile("contains_any(text, '律师')").unwrap();
        assert!(
            matches!(c.eval(&f), Err(CelError::Eval(m)) if m.contains("list of strings")),
            "{:?}",
            c.eval(&f)
        );
        let c = Condition::compile("contains_any(text, ['没有的词', 3])").unwrap();
        assert!(matches!(c.eval(&f), Err(CelError::Eval(_))));
        let c = Condition::compile("contains_any(group_size, ['x'])").unwrap();
        assert!(matches!(c.eval(&f), Err(CelError::Eval(_))));
    }

    #[test]
    fn categories_compared_are_collected() {
        let c = Condition::compile(
            "category == \"logistics\" || \"refund\" == category || category in [\"a\", \"b\"]",
        )
        .unwrap();
        let codes: Vec<&str> = c.categories().iter().map(|(c, _)| c.as_str()).collect();
        assert_eq!(codes, ["logistics", "refund", "a", "b"]);
        assert_eq!(c.categories()[0].1, 12);
    }

    #[test]
    fn the_native_evaluator_agrees_with_cel_on_every_shape_it_takes() {
        // Every shape the policies use, and the edges of each: literal on
        // either side, every operator, negation, nesting, NaN, case and
        // spacing of keywords, empty strings.
        let native = [
            "group_size >= 10",
            "10 <= group_size",
            "similar_complainants > 2 && !handled_before",
            "repeat_count >= 1 && handled_before || vulnerable",
            "days_open >= 7 && delay_ours",
            "grade == 1 || grade != 4 && hour < 9",
            "weekday > 5 || hour >= 22 || hour <= 6",
            "follow_ups != 0",
            "amount >= 500000.0",
            "0.5 > confidence",
            "flags.safety && urgency == 'urgent'",
            "flags.litigation || flags.media_risk",
            "!flags.repeat",
            "language == 'en'",
            "'en' != language",
            "category == 'logistics'",
            "referred_by in ['regulator', 'leadership', '12315', '12345']",
            "customer_tier in ['重要', 'VIP', 'vip', 'important']",
            "channel in []",
            "contains_any(demand, ['赔偿', ' Compensation ', '', 'damages'])",
            "contains_any(text, ['噪音', 'noisy', 'LAWYER'])",
            "contains_any(title, [])",
            "anonymous",
            "true",
            "false || !(group_size < 3)",
        ];
        let cel_only = [
            "group_size >= 10.0",
            "amount >= 1000",
            "group_size + 1 > 3",
            "terms.exists(t, t == '漏水')",
            "'漏水' in terms",
            "contains_any(text, ['a', 3])",
            "group_size",
            "has(flags.safety)",
            "text.contains('快递')",
            "category < 'z'",
        ];
        let mut grid = Vec::new();
        for (i, (title, description)) in [
            ("", ""),
            ("楼上噪音", "晚上很吵，我要找律师，要求赔偿"),
            ("Noisy neighbours", "My LAWYER says compensation is due"),
        ]
        .into_iter()
        .enumerate()
        {
            for n in [0i64, 1, 2, 3, 9, 10, 11] {
                let mut f = Facts::new(title, description);
                f.group_size = n;
                f.similar_complainants = n;
                f.repeat_count = n % 3;
                f.handled_before = n % 2 == 0;
                f.vulnerable = n == 9;
                f.anonymous = n == 1;
                f.days_open = n;
                f.delay_ours = n > 2;
                f.follow_ups = n % 2;
                f.grade = Grade::try_from((n % 4) as u8 + 1).unwrap_or(Grade::GENERAL);
                f.hour = n * 2;
                f.weekday = n % 7 + 1;
                f.amount = match n {
                    0 => f64::NAN,
                    1 => 500_000.0,
                    _ => n as f64 * 1000.0,
                };
                f.confidence = n as f64 / 10.0;
                f.language = ["en", "zh", ""][i].to_owned();
                f.category = ["logistics", "other", ""][i].to_owned();
                f.referred_by = ["12315", "", "media"][n as usize % 3].to_owned();
                f.customer_tier = ["vip", "普通", "重要"][n as usize % 3].to_owned();
                f.demand = ["", "要求赔偿", "DAMAGES please"][i].to_owned();
                f.urgency = [Urgency::Normal, Urgency::Urgent][n as usize % 2];
                f.flags = Flags::NONE;
                if n % 2 == 1 {
                    f.flags.insert(Flag::Safety);
                }
                if n > 9 {
                    f.flags.insert(Flag::Litigation);
                }
                if n == 3 {
                    f.flags.insert(Flag::Repeat);
                }
                grid.push(f);
            }
        }
        for expr in native {
            let c = Condition::compile(expr).unwrap();
            assert!(c.fast.is_some(), "{expr} should be evaluated natively");
            let mut outcomes = std::collections::BTreeSet::new();
            for f in &grid {
                let cel = c.eval_cel(f);
                assert_eq!(c.eval(f), cel, "{expr} on {f:?}");
                outcomes.insert(cel.unwrap_or(false));
            }
            if !expr.contains("[]") && expr != "true" {
                assert_eq!(
                    outcomes.len(),
                    2,
                    "{expr}: the grid should make it both true and false"
                );
            }
        }
        for expr in cel_only {
            let c = Condition::compile(expr).unwrap();
            assert!(c.fast.is_none(), "{expr} must be left to CEL");
        }
    }

    #[test]
    fn lower_text_is_exactly_to_lowercase() {
        for text in [
            "快递延误，APP 闪退！Ｗｉ-Ｆｉ",
            "ΟΔΥΣΣΕΥΣ and ΣΑΣ: final sigma",
            "İstanbul ǅemal Ωmega ẞ straße",
            "",
            "全角ＡＢＣ　半角abc 〇 㐀 𠀀",
        ] {
            assert_eq!(lowercase(text), text.to_lowercase(), "{text}");
            let f = Facts::new("", text);
            assert_eq!(f.lower_text(), text.to_lowercase());
        }
    }
}
