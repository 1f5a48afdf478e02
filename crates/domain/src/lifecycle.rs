//! The case lifecycle (domain.md §6) as a pure state machine: which action
//! may be taken from which status, what status results, and the rules that
//! go with it (no return after arbitration, one reopen, two extensions …).
//!
//! [`apply`] takes the case as desk holds it ([`CaseState`]) and one
//! [`Action`] with its data, and answers the [`Transition`] (the new state)
//! or a typed [`Refusal`] whose message names the action and the current
//! status. Values are parsed at the edge ([`Satisfaction`], [`ApproverRole`],
//! [`Duration`](crate::calendar::Duration)); the rules that need the policy
//! or the clock (known pause reasons and departments, the return window)
//! are the caller's, since they are data, not lifecycle.
//!
//! ```
//! use tousu_domain::lifecycle::{Action, CaseState, Status, apply};
//!
//! let assigned = CaseState::new(Status::Assigned, Some("logistics"));
//! let t = apply(&assigned, &Action::SignFor { handler: "xu.fang".into() }).unwrap();
//! assert_eq!(t.to, Status::SignedFor);
//! assert_eq!(t.action.event(), "signed_for");
//!
//! let refused = apply(&assigned, &Action::Resolve { resolution: "refunded".into() }).unwrap_err();
//! assert_eq!(
//!     refused.to_string(),
//!     "cannot resolve a complaint in status assigned: it has not been signed for yet"
//! );
//! ```

use std::fmt;
use std::str::FromStr;

use crate::ComplaintId;
use crate::calendar::Duration;

/// Where a case is in its lifecycle. The numbers are those of
/// `tousu.v1.Status` (proto/tousu/v1/complaint.proto), so a stored status
/// means the same in both; 0 (unspecified) is not a status a case can be
/// acted on in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Status {
    Received = 1,
    Acknowledged = 2,
    Classified = 3,
    Assigned = 4,
    SignedFor = 5,
    Investigating = 6,
    SolutionProposed = 7,
    SolutionExecuted = 8,
    Resolved = 9,
    ReturnVisit = 10,
    Closed = 11,
    /// 退单: the department returned it; routing re-routes it.
    Returned = 12,
    /// 转办 or arbitrated: waiting for routing's new assignment.
    Transferred = 13,
    /// The clock is stopped for a listed reason.
    Paused = 14,
    /// Re-handled after a dissatisfied return visit (once).
    Reopened = 15,
    Withdrawn = 16,
    Merged = 17,
    Rejected = 18,
}

impl Status {
    pub const ALL: [Status; 18] = [
        Status::Received,
        Status::Acknowledged,
        Status::Classified,
        Status::Assigned,
        Status::SignedFor,
        Status::Investigating,
        Status::SolutionProposed,
        Status::SolutionExecuted,
        Status::Resolved,
        Status::ReturnVisit,
        Status::Closed,
        Status::Returned,
        Status::Transferred,
        Status::Paused,
        Status::Reopened,
        Status::Withdrawn,
        Status::Merged,
        Status::Rejected,
    ];

    /// The `tousu.v1.Status` number.
    pub fn number(self) -> i16 {
        self as i16
    }

    /// The status of a `tousu.v1.Status` number; `None` for 0
    /// (unspecified) and numbers outside the enum.
    pub fn from_number(n: i32) -> Option<Status> {
        Status::ALL.into_iter().find(|s| i32::from(s.number()) == n)
    }

    /// The lower-case name (`signed_for`), as in the HTTP API and the proto
    /// enum without its `STATUS_` prefix.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Received => "received",
            Status::Acknowledged => "acknowledged",
            Status::Classified => "classified",
            Status::Assigned => "assigned",
            Status::SignedFor => "signed_for",
            Status::Investigating => "investigating",
            Status::SolutionProposed => "solution_proposed",
            Status::SolutionExecuted => "solution_executed",
            Status::Resolved => "resolved",
            Status::ReturnVisit => "return_visit",
            Status::Closed => "closed",
            Status::Returned => "returned",
            Status::Transferred => "transferred",
            Status::Paused => "paused",
            Status::Reopened => "reopened",
            Status::Withdrawn => "withdrawn",
            Status::Merged => "merged",
            Status::Rejected => "rejected",
        }
    }

    /// Final: nothing happens to the case any more, except that a closed
    /// case may be reopened once after dissatisfaction.
    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            Status::Closed | Status::Withdrawn | Status::Merged | Status::Rejected
        )
    }

    /// A department has signed for the case and is working on it.
    pub fn is_handling(self) -> bool {
        HANDLING.contains(&self)
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Status {
    type Err = crate::InvalidValue;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Status::ALL
            .into_iter()
            .find(|st| st.as_str() == s)
            .ok_or_else(|| crate::InvalidValue::new("status", format!("{s:?} is not a status")))
    }
}

/// Signed for and being handled (the re-handling after a reopen included).
const HANDLING: [Status; 5] = [
    Status::SignedFor,
    Status::Investigating,
    Status::SolutionProposed,
    Status::SolutionExecuted,
    Status::Reopened,
];

/// What can be done to a case, without its data (names, events, tables).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ActionKind {
    SignFor,
    Return,
    Transfer,
    Arbitrate,
    Contact,
    Pause,
    Resume,
    Extend,
    Resolve,
    ReturnVisit,
    Close,
    Reopen,
    Withdraw,
    Reject,
    Merge,
    Feedback,
}

impl ActionKind {
    pub const ALL: [ActionKind; 16] = [
        ActionKind::SignFor,
        ActionKind::Return,
        ActionKind::Transfer,
        ActionKind::Arbitrate,
        ActionKind::Contact,
        ActionKind::Pause,
        ActionKind::Resume,
        ActionKind::Extend,
        ActionKind::Resolve,
        ActionKind::ReturnVisit,
        ActionKind::Close,
        ActionKind::Reopen,
        ActionKind::Withdraw,
        ActionKind::Reject,
        ActionKind::Merge,
        ActionKind::Feedback,
    ];

    /// `sign_for`, `return_visit`, `return` …
    pub fn as_str(self) -> &'static str {
        match self {
            ActionKind::SignFor => "sign_for",
            ActionKind::Return => "return",
            ActionKind::Transfer => "transfer",
            ActionKind::Arbitrate => "arbitrate",
            ActionKind::Contact => "contact",
            ActionKind::Pause => "pause",
            ActionKind::Resume => "resume",
            ActionKind::Extend => "extend",
            ActionKind::Resolve => "resolve",
            ActionKind::ReturnVisit => "return_visit",
            ActionKind::Close => "close",
            ActionKind::Reopen => "reopen",
            ActionKind::Withdraw => "withdraw",
            ActionKind::Reject => "reject",
            ActionKind::Merge => "merge",
            ActionKind::Feedback => "feedback",
        }
    }

    /// The lifecycle event it publishes: the `action` of
    /// `ComplaintLifecycle` and the subject token of
    /// `complaint.<event>.<dept>`.
    pub fn event(self) -> &'static str {
        match self {
            ActionKind::SignFor => "signed_for",
            ActionKind::Return => "returned",
            ActionKind::Transfer => "transferred",
            ActionKind::Arbitrate => "arbitrated",
            ActionKind::Contact => "contacted",
            ActionKind::Pause => "paused",
            ActionKind::Resume => "resumed",
            ActionKind::Extend => "extended",
            ActionKind::Resolve => "resolved",
            ActionKind::ReturnVisit => "return_visited",
            ActionKind::Close => "closed",
            ActionKind::Reopen => "reopened",
            ActionKind::Withdraw => "withdrawn",
            ActionKind::Reject => "rejected",
            ActionKind::Merge => "merged",
            ActionKind::Feedback => "feedback",
        }
    }

    /// The verb phrase of refusals: "cannot {verb} a complaint …".
    pub fn verb(self) -> &'static str {
        match self {
            ActionKind::SignFor => "sign for",
            ActionKind::Return => "return",
            ActionKind::Transfer => "transfer",
            ActionKind::Arbitrate => "arbitrate",
            ActionKind::Contact => "record a contact on",
            ActionKind::Pause => "pause",
            ActionKind::Resume => "resume",
            ActionKind::Extend => "extend",
            ActionKind::Resolve => "resolve",
            ActionKind::ReturnVisit => "record a return visit on",
            ActionKind::Close => "close",
            ActionKind::Reopen => "reopen",
            ActionKind::Withdraw => "withdraw",
            ActionKind::Reject => "reject",
            ActionKind::Merge => "merge",
            ActionKind::Feedback => "record feedback on",
        }
    }
}

impl fmt::Display for ActionKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Who approved an extension (延期): the first may be approved by the
/// department head or a senior leader, a second only by a senior leader.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ApproverRole {
    DepartmentHead,
    SeniorLeader,
}

impl ApproverRole {
    pub fn as_str(self) -> &'static str {
        match self {
            ApproverRole::DepartmentHead => "department_head",
            ApproverRole::SeniorLeader => "senior_leader",
        }
    }
}

impl fmt::Display for ApproverRole {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for ApproverRole {
    type Err = crate::InvalidValue;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "department_head" => Ok(ApproverRole::DepartmentHead),
            "senior_leader" => Ok(ApproverRole::SeniorLeader),
            _ => Err(crate::InvalidValue::new(
                "approver role",
                format!("{s:?}: expected department_head or senior_leader"),
            )),
        }
    }
}

/// A satisfaction result, 1 (very dissatisfied) to 5 (very satisfied).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Satisfaction(u8);

impl Satisfaction {
    pub fn get(self) -> u8 {
        self.0
    }

    /// 1 or 2: the complainant is dissatisfied, and the case may be
    /// reopened (once). 3 is neutral.
    pub fn is_dissatisfied(self) -> bool {
        self.0 <= 2
    }
}

impl TryFrom<u32> for Satisfaction {
    type Error = crate::InvalidValue;

    fn try_from(n: u32) -> Result<Self, Self::Error> {
        match u8::try_from(n) {
            Ok(n @ 1..=5) => Ok(Satisfaction(n)),
            _ => Err(crate::InvalidValue::new(
                "satisfaction",
                format!("{n}: expected 1 (very dissatisfied) to 5 (very satisfied)"),
            )),
        }
    }
}

impl fmt::Display for Satisfaction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// An action with its data. Free-text fields that a rule requires (a
/// reason, a resolution) are checked by [`apply`]; the others are parsed
/// values already.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// 签收: the department takes the case; `handler` is the person.
    SignFor {
        handler: String,
    },
    /// 退单: not this department's; routing re-routes it.
    Return {
        reason: String,
    },
    /// 转办: to another department; clocks keep running.
    Transfer {
        to_department: String,
        reason: String,
    },
    /// The complaint centre decides the department; no return afterwards.
    Arbitrate {
        to_department: String,
        reason: String,
    },
    /// A contact with the complainant (the first one starts investigating).
    Contact {
        note: String,
    },
    /// Stop the clock; `reason` is a pause reason code of the policy.
    Pause {
        reason: String,
        note: String,
    },
    Resume,
    /// 延期 of the resolution deadline.
    Extend {
        duration: Duration,
        approver_role: ApproverRole,
        reason: String,
    },
    Resolve {
        resolution: String,
    },
    /// 回访 after the resolution.
    ReturnVisit {
        satisfaction: Satisfaction,
        note: String,
    },
    Close {
        reason: String,
    },
    /// Re-handle after dissatisfaction (once).
    Reopen {
        reason: String,
    },
    /// The complainant withdrew it.
    Withdraw {
        reason: String,
    },
    /// Invalid complaint.
    Reject {
        reason: String,
    },
    /// A duplicate of `into`.
    Merge {
        into: ComplaintId,
        reason: String,
    },
    /// The complainant's own satisfaction rating after the resolution.
    Feedback {
        satisfaction: Satisfaction,
        note: String,
    },
}

impl Action {
    pub fn kind(&self) -> ActionKind {
        match self {
            Action::SignFor { .. } => ActionKind::SignFor,
            Action::Return { .. } => ActionKind::Return,
            Action::Transfer { .. } => ActionKind::Transfer,
            Action::Arbitrate { .. } => ActionKind::Arbitrate,
            Action::Contact { .. } => ActionKind::Contact,
            Action::Pause { .. } => ActionKind::Pause,
            Action::Resume => ActionKind::Resume,
            Action::Extend { .. } => ActionKind::Extend,
            Action::Resolve { .. } => ActionKind::Resolve,
            Action::ReturnVisit { .. } => ActionKind::ReturnVisit,
            Action::Close { .. } => ActionKind::Close,
            Action::Reopen { .. } => ActionKind::Reopen,
            Action::Withdraw { .. } => ActionKind::Withdraw,
            Action::Reject { .. } => ActionKind::Reject,
            Action::Merge { .. } => ActionKind::Merge,
            Action::Feedback { .. } => ActionKind::Feedback,
        }
    }
}

/// The case as the lifecycle sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CaseState {
    pub status: Status,
    /// The responsible department; `None` before the first assignment.
    pub department: Option<String>,
    /// The person who signed for it.
    pub handler: Option<String>,
    /// The complaint centre decided the department: no return any more.
    /// It stays set for the life of the case.
    pub arbitrated: bool,
    /// While paused: the status to resume to.
    pub paused_from: Option<Status>,
    /// Extensions granted so far (at most 2).
    pub extensions: u32,
    /// Departments that returned the case.
    pub returned_by: Vec<String>,
    /// The resolution recorded by `resolve` (cleared by a reopen).
    pub resolution: Option<String>,
    /// A return visit was done since the last resolution.
    pub return_visited: bool,
    /// The latest satisfaction result (return visit or feedback).
    pub satisfaction: Option<Satisfaction>,
    /// No return visit is needed to close: anonymous and confidential
    /// (sensitive) cases (domain.md §6).
    pub return_visit_waived: bool,
    /// Times the case was reopened (at most 1).
    pub reopens: u32,
    /// The case it was merged into.
    pub merged_into: Option<ComplaintId>,
}

impl CaseState {
    /// A case in `status` with `department`, nothing else recorded.
    pub fn new(status: Status, department: Option<&str>) -> Self {
        CaseState {
            status,
            department: department.map(str::to_owned),
            handler: None,
            arbitrated: false,
            paused_from: None,
            extensions: 0,
            returned_by: Vec::new(),
            resolution: None,
            return_visited: false,
            satisfaction: None,
            return_visit_waived: false,
            reopens: 0,
            merged_into: None,
        }
    }
}

/// An allowed action: the status before and after, and the new state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transition {
    pub action: ActionKind,
    pub from: Status,
    pub to: Status,
    pub state: CaseState,
}

/// Why an action was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reason {
    /// The action is never allowed from this status; `allowed` lists where
    /// it is.
    NotFrom {
        allowed: Vec<Status>,
    },
    /// A final status (closed, withdrawn, merged, rejected).
    Final,
    /// A required field is empty.
    Required {
        field: &'static str,
    },
    /// Transfer or arbitration to the department that has the case.
    SameDepartment {
        department: String,
    },
    /// Return after the complaint centre arbitrated.
    Arbitrated,
    /// Return after sign-for: the department owns the case (首问负责制)
    /// and can only ask for a transfer.
    SignedForAlready,
    /// Sign-for of a case that is already signed for.
    AlreadySignedFor,
    /// Handling before sign-for.
    NotSignedFor,
    /// Waiting for routing's new assignment after a return or transfer.
    AwaitingAssignment,
    AlreadyPaused,
    NotPaused,
    /// Resolve, transfer … while paused: resume first.
    Paused,
    /// A second extension approved by a department head.
    SecondExtensionNeedsSeniorLeader,
    /// Two extensions were granted; there is no third.
    NoThirdExtension,
    AlreadyResolved,
    NoResolution,
    /// Close of a case that needs a return visit and had none.
    NoReturnVisit,
    AlreadyVisited,
    /// Reopen without a dissatisfied return visit or feedback.
    NotDissatisfied,
    /// Reopen of a case reopened once already: 督办 (supervision) instead.
    ReopenedOnce,
    /// Reject or merge after the resolution.
    Resolved,
}

/// How a caller should answer a refusal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefusalKind {
    /// Not allowed in the case's current state (HTTP 409,
    /// FAILED_PRECONDITION).
    Conflict,
    /// A field of the request is missing or wrong (HTTP 422,
    /// INVALID_ARGUMENT); the field is named.
    Invalid { field: &'static str },
}

/// An action refused, naming the action and the current status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub action: ActionKind,
    pub status: Status,
    pub reason: Reason,
}

impl Refusal {
    pub fn kind(&self) -> RefusalKind {
        match self.reason {
            Reason::Required { field } => RefusalKind::Invalid { field },
            Reason::SameDepartment { .. } => RefusalKind::Invalid {
                field: "to_department",
            },
            _ => RefusalKind::Conflict,
        }
    }

    /// Why, without the "cannot … in status …" head.
    pub fn why(&self) -> String {
        match &self.reason {
            Reason::NotFrom { allowed } => {
                let names: Vec<&str> = allowed.iter().map(|s| s.as_str()).collect();
                format!("only allowed in status {}", names.join(", "))
            }
            Reason::Final => format!("{} is a final status", self.status),
            Reason::Required { field } => format!("{field} is required"),
            Reason::SameDepartment { department } => {
                format!("the complaint is already with {department}; name another department")
            }
            Reason::Arbitrated => {
                "the complaint centre arbitrated the department; it can no longer be returned"
                    .into()
            }
            Reason::SignedForAlready => {
                "it was signed for; a department that signed for a complaint owns it (首问负责制) and can only ask for a transfer".into()
            }
            Reason::AlreadySignedFor => "it is already signed for".into(),
            Reason::NotSignedFor => "it has not been signed for yet".into(),
            Reason::AwaitingAssignment => {
                "it is waiting for routing's new assignment; act on it once it is assigned, or arbitrate".into()
            }
            Reason::AlreadyPaused => "it is already paused".into(),
            Reason::NotPaused => "it is not paused".into(),
            Reason::Paused => "it is paused; resume it first".into(),
            Reason::SecondExtensionNeedsSeniorLeader => {
                "it was extended once; a second extension needs a senior_leader's approval".into()
            }
            Reason::NoThirdExtension => "it was extended twice; there is no third extension".into(),
            Reason::AlreadyResolved => "it is resolved already".into(),
            Reason::NoResolution => "no resolution is recorded".into(),
            Reason::NoReturnVisit => {
                "no return visit was done (only anonymous and confidential complaints close without one)".into()
            }
            Reason::AlreadyVisited => "the return visit was recorded already".into(),
            Reason::NotDissatisfied => {
                "the complainant was not dissatisfied (a reopen needs a return visit or feedback of 1 or 2)".into()
            }
            Reason::ReopenedOnce => {
                "it was reopened once already; a second dissatisfaction goes to supervision (督办), not another reopen".into()
            }
            Reason::Resolved => "it was resolved; only a reopen, close or withdrawal applies".into(),
        }
    }
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "cannot {} a complaint in status {}: {}",
            self.action.verb(),
            self.status,
            self.why()
        )
    }
}

impl std::error::Error for Refusal {}

/// Applies `action` to the case: the transition, or why not.
///
/// Checks, in order: the fields the action requires (a reason …), whether
/// the current status allows the action, then the rules that depend on
/// the case (arbitration, extensions, return visit, reopen count).
pub fn apply(state: &CaseState, action: &Action) -> Result<Transition, Refusal> {
    let kind = action.kind();
    let status = state.status;
    let refuse = |reason: Reason| Refusal {
        action: kind,
        status,
        reason,
    };
    let require = |field: &'static str, value: &str| {
        if value.trim().is_empty() {
            Err(refuse(Reason::Required { field }))
        } else {
            Ok(())
        }
    };
    // The generic refusal: final, or where the action is allowed.
    let not_from = |allowed: &[Status]| {
        if status.is_terminal() {
            refuse(Reason::Final)
        } else {
            refuse(Reason::NotFrom {
                allowed: allowed.to_vec(),
            })
        }
    };
    let only = |allowed: &[Status]| {
        if allowed.contains(&status) {
            Ok(())
        } else {
            Err(not_from(allowed))
        }
    };
    let mut next = state.clone();
    let to = match action {
        Action::SignFor { handler } => {
            require("handler", handler)?;
            match status {
                Status::Assigned => {}
                s if s.is_handling() || s == Status::Paused => {
                    return Err(refuse(Reason::AlreadySignedFor));
                }
                Status::Returned | Status::Transferred => {
                    return Err(refuse(Reason::AwaitingAssignment));
                }
                _ => return Err(not_from(&[Status::Assigned])),
            }
            next.handler = Some(handler.trim().to_owned());
            Status::SignedFor
        }
        Action::Return { reason } => {
            require("reason", reason)?;
            if status.is_terminal() {
                return Err(refuse(Reason::Final));
            }
            // Arbitration is the stronger reason: say it whatever the status.
            if state.arbitrated {
                return Err(refuse(Reason::Arbitrated));
            }
            match status {
                Status::Assigned => {}
                s if s.is_handling() || s == Status::Paused => {
                    return Err(refuse(Reason::SignedForAlready));
                }
                Status::Returned | Status::Transferred => {
                    return Err(refuse(Reason::AwaitingAssignment));
                }
                _ => return Err(not_from(&[Status::Assigned])),
            }
            if let Some(d) = &state.department
                && !next.returned_by.contains(d)
            {
                next.returned_by.push(d.clone());
            }
            next.handler = None;
            Status::Returned
        }
        Action::Transfer {
            to_department,
            reason,
        } => {
            require("to_department", to_department)?;
            require("reason", reason)?;
            match status {
                s if s == Status::Assigned || s.is_handling() => {}
                Status::Paused => return Err(refuse(Reason::Paused)),
                Status::Returned | Status::Transferred => {
                    return Err(refuse(Reason::AwaitingAssignment));
                }
                _ => return Err(not_from(&with(&[Status::Assigned], &HANDLING))),
            }
            same_department(state, to_department).map_err(refuse)?;
            next.handler = None;
            Status::Transferred
        }
        Action::Arbitrate {
            to_department,
            reason,
        } => {
            require("to_department", to_department)?;
            require("reason", reason)?;
            if status == Status::Paused {
                return Err(refuse(Reason::Paused));
            }
            only(&with(
                &[Status::Assigned, Status::Returned, Status::Transferred],
                &HANDLING,
            ))?;
            same_department(state, to_department).map_err(refuse)?;
            next.handler = None;
            next.arbitrated = true;
            Status::Transferred
        }
        Action::Contact { .. } => match status {
            Status::SignedFor | Status::Reopened => Status::Investigating,
            Status::Investigating
            | Status::SolutionProposed
            | Status::SolutionExecuted
            | Status::Resolved
            | Status::ReturnVisit => status,
            Status::Paused => {
                // Contact while waiting for the complainant: the case
                // resumes to investigating, as it would have gone.
                if matches!(
                    state.paused_from,
                    Some(Status::SignedFor | Status::Reopened) | None
                ) {
                    next.paused_from = Some(Status::Investigating);
                }
                Status::Paused
            }
            Status::Assigned => return Err(refuse(Reason::NotSignedFor)),
            _ => {
                return Err(not_from(&with(
                    &HANDLING,
                    &[Status::Paused, Status::Resolved, Status::ReturnVisit],
                )));
            }
        },
        Action::Pause { reason, .. } => {
            require("reason", reason)?;
            match status {
                s if s.is_handling() => {}
                Status::Paused => return Err(refuse(Reason::AlreadyPaused)),
                Status::Assigned => return Err(refuse(Reason::NotSignedFor)),
                _ => return Err(not_from(&HANDLING)),
            }
            next.paused_from = Some(status);
            Status::Paused
        }
        Action::Resume => {
            if status != Status::Paused {
                if status.is_terminal() {
                    return Err(refuse(Reason::Final));
                }
                return Err(refuse(Reason::NotPaused));
            }
            next.paused_from = None;
            // A pause is only ever entered from a handling status; one
            // recorded without its origin resumes to where handling starts.
            state.paused_from.unwrap_or(Status::SignedFor)
        }
        Action::Extend {
            approver_role,
            reason,
            ..
        } => {
            require("reason", reason)?;
            match status {
                s if s.is_handling() || s == Status::Paused => {}
                Status::Assigned => return Err(refuse(Reason::NotSignedFor)),
                _ => return Err(not_from(&with(&HANDLING, &[Status::Paused]))),
            }
            match (state.extensions, approver_role) {
                (0, _) | (1, ApproverRole::SeniorLeader) => {}
                (1, ApproverRole::DepartmentHead) => {
                    return Err(refuse(Reason::SecondExtensionNeedsSeniorLeader));
                }
                _ => return Err(refuse(Reason::NoThirdExtension)),
            }
            next.extensions += 1;
            status
        }
        Action::Resolve { resolution } => {
            require("resolution", resolution)?;
            match status {
                s if s.is_handling() => {}
                Status::Assigned => return Err(refuse(Reason::NotSignedFor)),
                Status::Paused => return Err(refuse(Reason::Paused)),
                Status::Resolved | Status::ReturnVisit => {
                    return Err(refuse(Reason::AlreadyResolved));
                }
                _ => return Err(not_from(&HANDLING)),
            }
            next.resolution = Some(resolution.trim().to_owned());
            Status::Resolved
        }
        Action::ReturnVisit { satisfaction, .. } => {
            if status == Status::ReturnVisit {
                return Err(refuse(Reason::AlreadyVisited));
            }
            only(&[Status::Resolved])?;
            next.return_visited = true;
            next.satisfaction = Some(*satisfaction);
            Status::ReturnVisit
        }
        Action::Close { .. } => {
            only(&[Status::Resolved, Status::ReturnVisit])?;
            if state.resolution.is_none() {
                return Err(refuse(Reason::NoResolution));
            }
            if !state.return_visited && !state.return_visit_waived {
                return Err(refuse(Reason::NoReturnVisit));
            }
            Status::Closed
        }
        Action::Reopen { reason } => {
            require("reason", reason)?;
            only(&[Status::Resolved, Status::ReturnVisit, Status::Closed])?;
            if state.reopens >= 1 {
                return Err(refuse(Reason::ReopenedOnce));
            }
            if !state
                .satisfaction
                .is_some_and(Satisfaction::is_dissatisfied)
            {
                return Err(refuse(Reason::NotDissatisfied));
            }
            next.reopens += 1;
            next.resolution = None;
            next.return_visited = false;
            next.satisfaction = None;
            Status::Reopened
        }
        Action::Withdraw { reason } => {
            require("reason", reason)?;
            if status.is_terminal() {
                return Err(refuse(Reason::Final));
            }
            next.paused_from = None;
            Status::Withdrawn
        }
        Action::Reject { reason } => {
            require("reason", reason)?;
            before_resolution(status).map_err(refuse)?;
            next.paused_from = None;
            Status::Rejected
        }
        Action::Merge { into, .. } => {
            before_resolution(status).map_err(refuse)?;
            next.paused_from = None;
            next.merged_into = Some(*into);
            Status::Merged
        }
        Action::Feedback { satisfaction, .. } => {
            only(&[Status::Resolved, Status::ReturnVisit])?;
            next.satisfaction = Some(*satisfaction);
            status
        }
    };
    next.status = to;
    Ok(Transition {
        action: kind,
        from: status,
        to,
        state: next,
    })
}

fn with(a: &[Status], b: &[Status]) -> Vec<Status> {
    a.iter().chain(b).copied().collect()
}

fn same_department(state: &CaseState, to: &str) -> Result<(), Reason> {
    match &state.department {
        Some(d) if d == to.trim() => Err(Reason::SameDepartment {
            department: d.clone(),
        }),
        _ => Ok(()),
    }
}

/// Reject and merge: any status that is not final and not yet resolved.
fn before_resolution(status: Status) -> Result<(), Reason> {
    if status.is_terminal() {
        Err(Reason::Final)
    } else if matches!(status, Status::Resolved | Status::ReturnVisit) {
        Err(Reason::Resolved)
    } else {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ActionKind as K;
    use Status as S;

    fn sat(n: u32) -> Satisfaction {
        Satisfaction::try_from(n).unwrap()
    }

    /// A valid action of each kind, with realistic data.
    fn sample(kind: ActionKind) -> Action {
        match kind {
            K::SignFor => Action::SignFor {
                handler: "xu.fang".into(),
            },
            K::Return => Action::Return {
                reason: "不属于本部门职责：商品质量问题".into(),
            },
            K::Transfer => Action::Transfer {
                to_department: "quality".into(),
                reason: "需质量部鉴定".into(),
            },
            K::Arbitrate => Action::Arbitrate {
                to_department: "quality".into(),
                reason: "投诉中心裁定由质量部处理".into(),
            },
            K::Contact => Action::Contact {
                note: "电话联系投诉人，约定上门取件".into(),
            },
            K::Pause => Action::Pause {
                reason: "appraisal".into(),
                note: "送第三方检测".into(),
            },
            K::Resume => Action::Resume,
            K::Extend => Action::Extend {
                duration: "5wd".parse().unwrap(),
                approver_role: ApproverRole::DepartmentHead,
                reason: "检测报告需 5 个工作日".into(),
            },
            K::Resolve => Action::Resolve {
                resolution: "已退款 199.00 元并致歉".into(),
            },
            K::ReturnVisit => Action::ReturnVisit {
                satisfaction: sat(2),
                note: "投诉人对赔偿金额不满意".into(),
            },
            K::Close => Action::Close {
                reason: "已回访".into(),
            },
            K::Reopen => Action::Reopen {
                reason: "回访不满意，重新处理".into(),
            },
            K::Withdraw => Action::Withdraw {
                reason: "投诉人主动撤诉（已核实非被迫）".into(),
            },
            K::Reject => Action::Reject {
                reason: "广告信息，非投诉".into(),
            },
            K::Merge => Action::Merge {
                into: "0190a0a0-0000-7000-8000-000000000001".parse().unwrap(),
                reason: "同一投诉人重复来电".into(),
            },
            K::Feedback => Action::Feedback {
                satisfaction: sat(1),
                note: "短信评价：非常不满意".into(),
            },
        }
    }

    /// A case in `status` in which the rules other than the status gate
    /// pass: with logistics, a resolution, a dissatisfied return visit,
    /// paused from investigating when paused.
    fn case_in(status: Status) -> CaseState {
        let mut c = CaseState::new(status, Some("logistics"));
        c.resolution = Some("已退款".into());
        c.return_visited = true;
        c.satisfaction = Some(sat(2));
        if status == S::Paused {
            c.paused_from = Some(S::Investigating);
        }
        c
    }

    /// Every status × every action: `None` = refused, else the status
    /// after. Columns in the order of `ActionKind::ALL`:
    /// sign_for return transfer arbitrate contact pause resume extend
    /// resolve return_visit close reopen withdraw reject merge feedback.
    #[rustfmt::skip]
    const TABLE: [(Status, [Option<Status>; 16]); 18] = {
        const N: Option<Status> = None;
        const T: Option<Status> = Some(S::Transferred);
        const W: Option<Status> = Some(S::Withdrawn);
        const R: Option<Status> = Some(S::Rejected);
        const M: Option<Status> = Some(S::Merged);
        const P: Option<Status> = Some(S::Paused);
        const RS: Option<Status> = Some(S::Resolved);
        const I: Option<Status> = Some(S::Investigating);
        [
            (S::Received,         [N, N, N, N, N, N, N, N, N, N, N, N, W, R, M, N]),
            (S::Acknowledged,     [N, N, N, N, N, N, N, N, N, N, N, N, W, R, M, N]),
            (S::Classified,       [N, N, N, N, N, N, N, N, N, N, N, N, W, R, M, N]),
            (S::Assigned,         [Some(S::SignedFor), Some(S::Returned), T, T, N, N, N, N, N, N, N, N, W, R, M, N]),
            (S::SignedFor,        [N, N, T, T, I, P, N, Some(S::SignedFor), RS, N, N, N, W, R, M, N]),
            (S::Investigating,    [N, N, T, T, I, P, N, I, RS, N, N, N, W, R, M, N]),
            (S::SolutionProposed, [N, N, T, T, Some(S::SolutionProposed), P, N, Some(S::SolutionProposed), RS, N, N, N, W, R, M, N]),
            (S::SolutionExecuted, [N, N, T, T, Some(S::SolutionExecuted), P, N, Some(S::SolutionExecuted), RS, N, N, N, W, R, M, N]),
            (S::Resolved,         [N, N, N, N, RS, N, N, N, N, Some(S::ReturnVisit), Some(S::Closed), Some(S::Reopened), W, N, N, RS]),
            (S::ReturnVisit,      [N, N, N, N, Some(S::ReturnVisit), N, N, N, N, N, Some(S::Closed), Some(S::Reopened), W, N, N, Some(S::ReturnVisit)]),
            (S::Closed,           [N, N, N, N, N, N, N, N, N, N, N, Some(S::Reopened), N, N, N, N]),
            (S::Returned,         [N, N, N, T, N, N, N, N, N, N, N, N, W, R, M, N]),
            (S::Transferred,      [N, N, N, T, N, N, N, N, N, N, N, N, W, R, M, N]),
            (S::Paused,           [N, N, N, N, P, N, I, P, N, N, N, N, W, R, M, N]),
            (S::Reopened,         [N, N, T, T, I, P, N, Some(S::Reopened), RS, N, N, N, W, R, M, N]),
            (S::Withdrawn,        [N, N, N, N, N, N, N, N, N, N, N, N, N, N, N, N]),
            (S::Merged,           [N, N, N, N, N, N, N, N, N, N, N, N, N, N, N, N]),
            (S::Rejected,         [N, N, N, N, N, N, N, N, N, N, N, N, N, N, N, N]),
        ]
    };

    #[test]
    fn every_status_times_every_action() {
        assert_eq!(TABLE.len(), Status::ALL.len());
        for (row, (status, outcomes)) in TABLE.iter().enumerate() {
            assert_eq!(*status, Status::ALL[row], "table rows follow Status::ALL");
            for (kind, expected) in ActionKind::ALL.iter().zip(outcomes) {
                let state = case_in(*status);
                let got = apply(&state, &sample(*kind));
                match (expected, got) {
                    (Some(to), Ok(t)) => {
                        assert_eq!(t.to, *to, "{status} × {kind}");
                        assert_eq!(t.from, *status);
                        assert_eq!(t.action, *kind);
                        assert_eq!(t.state.status, *to, "{status} × {kind}: state follows");
                    }
                    (None, Err(r)) => {
                        assert_eq!(r.kind(), RefusalKind::Conflict, "{status} × {kind}: {r}");
                        assert_eq!((r.action, r.status), (*kind, *status));
                        let msg = r.to_string();
                        assert!(
                            msg.contains(&format!("in status {status}:")),
                            "{status} × {kind}: the message names the status: {msg}"
                        );
                        assert!(
                            msg.starts_with(&format!("cannot {}", kind.verb())),
                            "{status} × {kind}: the message names the action: {msg}"
                        );
                        if status.is_terminal() {
                            assert_eq!(r.reason, Reason::Final, "{status} × {kind}");
                        }
                    }
                    (Some(to), Err(r)) => panic!("{status} × {kind}: expected {to}, refused: {r}"),
                    (None, Ok(t)) => panic!("{status} × {kind}: expected a refusal, got {}", t.to),
                }
            }
        }
    }

    #[test]
    fn numbers_and_names_match_the_proto_enum() {
        let names = [
            (1, "received"),
            (4, "assigned"),
            (5, "signed_for"),
            (9, "resolved"),
            (10, "return_visit"),
            (11, "closed"),
            (12, "returned"),
            (13, "transferred"),
            (14, "paused"),
            (15, "reopened"),
            (18, "rejected"),
        ];
        for (n, name) in names {
            let s = Status::from_number(n).unwrap();
            assert_eq!(s.as_str(), name);
            assert_eq!(i32::from(s.number()), n);
            assert_eq!(name.parse::<Status>().unwrap(), s);
        }
        for s in Status::ALL {
            assert_eq!(Status::from_number(i32::from(s.number())), Some(s));
        }
        assert_eq!(Status::from_number(0), None);
        assert_eq!(Status::from_number(19), None);
        assert!("SIGNED_FOR".parse::<Status>().is_err());
    }

    #[test]
    fn event_names_are_subject_tokens_of_the_contract() {
        let events: Vec<&str> = ActionKind::ALL.iter().map(|k| k.event()).collect();
        assert_eq!(
            events,
            [
                "signed_for",
                "returned",
                "transferred",
                "arbitrated",
                "contacted",
                "paused",
                "resumed",
                "extended",
                "resolved",
                "return_visited",
                "closed",
                "reopened",
                "withdrawn",
                "rejected",
                "merged",
                "feedback"
            ]
        );
        for e in events {
            assert!(
                e.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'),
                "{e}"
            );
        }
    }

    #[test]
    fn return_needs_a_reason_and_is_refused_after_arbitration() {
        let assigned = case_in(S::Assigned);
        let r = apply(
            &assigned,
            &Action::Return {
                reason: "  ".into(),
            },
        )
        .unwrap_err();
        assert_eq!(r.kind(), RefusalKind::Invalid { field: "reason" });
        assert_eq!(
            r.to_string(),
            "cannot return a complaint in status assigned: reason is required"
        );

        let t = apply(&assigned, &sample(K::Return)).unwrap();
        assert_eq!(t.state.returned_by, ["logistics"]);
        assert_eq!(t.state.handler, None);

        let mut arbitrated = assigned.clone();
        arbitrated.arbitrated = true;
        let r = apply(&arbitrated, &sample(K::Return)).unwrap_err();
        assert_eq!(r.reason, Reason::Arbitrated);
        assert_eq!(
            r.to_string(),
            "cannot return a complaint in status assigned: the complaint centre arbitrated the department; it can no longer be returned"
        );
        // Arbitration is named even while the new assignment is pending.
        arbitrated.status = S::Transferred;
        assert_eq!(
            apply(&arbitrated, &sample(K::Return)).unwrap_err().reason,
            Reason::Arbitrated
        );

        // After sign-for the department owns it.
        let r = apply(&case_in(S::Investigating), &sample(K::Return)).unwrap_err();
        assert_eq!(r.reason, Reason::SignedForAlready);
        assert!(r.to_string().contains("首问负责制"), "{r}");
    }

    #[test]
    fn a_department_that_returned_twice_is_listed_once() {
        let mut c = case_in(S::Assigned);
        c.returned_by = vec!["logistics".into()];
        let t = apply(&c, &sample(K::Return)).unwrap();
        assert_eq!(t.state.returned_by, ["logistics"]);
    }

    #[test]
    fn arbitration_sets_the_flag_and_transfers_need_another_department() {
        let t = apply(&case_in(S::Returned), &sample(K::Arbitrate)).unwrap();
        assert!(t.state.arbitrated);
        assert_eq!(t.to, S::Transferred);
        assert_eq!(t.action.event(), "arbitrated");

        for kind in [K::Transfer, K::Arbitrate] {
            let to = |d: &str| match kind {
                K::Transfer => Action::Transfer {
                    to_department: d.into(),
                    reason: "职责调整".into(),
                },
                _ => Action::Arbitrate {
                    to_department: d.into(),
                    reason: "职责调整".into(),
                },
            };
            let r = apply(&case_in(S::Investigating), &to("logistics")).unwrap_err();
            assert_eq!(
                r.kind(),
                RefusalKind::Invalid {
                    field: "to_department"
                }
            );
            assert!(r.to_string().contains("already with logistics"), "{r}");
            let r = apply(&case_in(S::Investigating), &to("")).unwrap_err();
            assert_eq!(
                r.kind(),
                RefusalKind::Invalid {
                    field: "to_department"
                }
            );
            let t = apply(&case_in(S::Investigating), &to("quality")).unwrap();
            assert_eq!(t.state.handler, None);
            assert_eq!(t.state.arbitrated, kind == K::Arbitrate);
        }
        let r = apply(
            &case_in(S::Assigned),
            &Action::Transfer {
                to_department: "quality".into(),
                reason: "".into(),
            },
        )
        .unwrap_err();
        assert_eq!(r.kind(), RefusalKind::Invalid { field: "reason" });
        // Paused or waiting for routing: resume first / arbitrate.
        assert_eq!(
            apply(&case_in(S::Paused), &sample(K::Transfer))
                .unwrap_err()
                .reason,
            Reason::Paused
        );
        assert_eq!(
            apply(&case_in(S::Transferred), &sample(K::Transfer))
                .unwrap_err()
                .reason,
            Reason::AwaitingAssignment
        );
    }

    #[test]
    fn arbitration_stays_through_later_transfers() {
        let mut c = case_in(S::SignedFor);
        c.arbitrated = true;
        let t = apply(&c, &sample(K::Transfer)).unwrap();
        assert!(t.state.arbitrated);
    }

    #[test]
    fn pause_needs_a_reason_and_resume_returns_to_the_status_before() {
        for from in [
            S::SignedFor,
            S::Investigating,
            S::SolutionExecuted,
            S::Reopened,
        ] {
            let t = apply(&case_in(from), &sample(K::Pause)).unwrap();
            assert_eq!(t.to, S::Paused);
            assert_eq!(t.state.paused_from, Some(from));
            let back = apply(&t.state, &Action::Resume).unwrap();
            assert_eq!(back.to, from);
            assert_eq!(back.state.paused_from, None);
        }
        let r = apply(
            &case_in(S::Investigating),
            &Action::Pause {
                reason: "".into(),
                note: "等材料".into(),
            },
        )
        .unwrap_err();
        assert_eq!(r.kind(), RefusalKind::Invalid { field: "reason" });

        let r = apply(&case_in(S::Paused), &sample(K::Pause)).unwrap_err();
        assert_eq!(r.reason, Reason::AlreadyPaused);
        assert_eq!(
            r.to_string(),
            "cannot pause a complaint in status paused: it is already paused"
        );
        let r = apply(&case_in(S::Investigating), &Action::Resume).unwrap_err();
        assert_eq!(
            r.to_string(),
            "cannot resume a complaint in status investigating: it is not paused"
        );
        assert_eq!(
            apply(&case_in(S::Assigned), &sample(K::Pause))
                .unwrap_err()
                .reason,
            Reason::NotSignedFor
        );
    }

    #[test]
    fn a_contact_while_paused_resumes_to_investigating_later() {
        let mut c = case_in(S::Paused);
        c.paused_from = Some(S::SignedFor);
        let t = apply(&c, &sample(K::Contact)).unwrap();
        assert_eq!(t.to, S::Paused);
        let back = apply(&t.state, &Action::Resume).unwrap();
        assert_eq!(back.to, S::Investigating);
        // From a later status the pause keeps where it came from.
        c.paused_from = Some(S::SolutionProposed);
        let t = apply(&c, &sample(K::Contact)).unwrap();
        assert_eq!(t.state.paused_from, Some(S::SolutionProposed));
    }

    #[test]
    fn extensions_first_by_head_second_by_senior_leader_no_third() {
        let extend = |role| Action::Extend {
            duration: "5wd".parse().unwrap(),
            approver_role: role,
            reason: "等待检测报告".into(),
        };
        let c = case_in(S::Investigating);
        let first = apply(&c, &extend(ApproverRole::DepartmentHead)).unwrap();
        assert_eq!(first.state.extensions, 1);
        assert_eq!(first.to, S::Investigating);

        let r = apply(&first.state, &extend(ApproverRole::DepartmentHead)).unwrap_err();
        assert_eq!(r.reason, Reason::SecondExtensionNeedsSeniorLeader);
        assert_eq!(r.kind(), RefusalKind::Conflict);
        assert_eq!(
            r.to_string(),
            "cannot extend a complaint in status investigating: it was extended once; a second extension needs a senior_leader's approval"
        );
        let second = apply(&first.state, &extend(ApproverRole::SeniorLeader)).unwrap();
        assert_eq!(second.state.extensions, 2);
        for role in [ApproverRole::DepartmentHead, ApproverRole::SeniorLeader] {
            let r = apply(&second.state, &extend(role)).unwrap_err();
            assert_eq!(r.reason, Reason::NoThirdExtension);
        }
        // A senior leader may approve the first one too.
        assert!(apply(&c, &extend(ApproverRole::SeniorLeader)).is_ok());
        // A reason is required: the complainant must be told why.
        let r = apply(
            &c,
            &Action::Extend {
                duration: "3d".parse().unwrap(),
                approver_role: ApproverRole::DepartmentHead,
                reason: "".into(),
            },
        )
        .unwrap_err();
        assert_eq!(r.kind(), RefusalKind::Invalid { field: "reason" });
        // Extending while paused keeps the pause.
        let t = apply(&case_in(S::Paused), &extend(ApproverRole::DepartmentHead)).unwrap();
        assert_eq!(t.to, S::Paused);
        assert_eq!(t.state.paused_from, Some(S::Investigating));
    }

    #[test]
    fn resolve_only_after_sign_for_and_not_while_paused() {
        let r = apply(&case_in(S::Assigned), &sample(K::Resolve)).unwrap_err();
        assert_eq!(r.reason, Reason::NotSignedFor);
        let r = apply(&case_in(S::Paused), &sample(K::Resolve)).unwrap_err();
        assert_eq!(
            r.to_string(),
            "cannot resolve a complaint in status paused: it is paused; resume it first"
        );
        let r = apply(&case_in(S::Resolved), &sample(K::Resolve)).unwrap_err();
        assert_eq!(r.reason, Reason::AlreadyResolved);
        let r = apply(
            &case_in(S::SignedFor),
            &Action::Resolve {
                resolution: " ".into(),
            },
        )
        .unwrap_err();
        assert_eq!(
            r.kind(),
            RefusalKind::Invalid {
                field: "resolution"
            }
        );
        let mut c = case_in(S::SignedFor);
        c.resolution = None;
        let t = apply(&c, &sample(K::Resolve)).unwrap();
        assert_eq!(
            t.state.resolution.as_deref(),
            Some("已退款 199.00 元并致歉")
        );
    }

    #[test]
    fn close_needs_a_resolution_and_a_return_visit_unless_waived() {
        let mut c = CaseState::new(S::Resolved, Some("logistics"));
        c.resolution = Some("已更换新机".into());
        let r = apply(&c, &sample(K::Close)).unwrap_err();
        assert_eq!(r.reason, Reason::NoReturnVisit);
        assert_eq!(
            r.to_string(),
            "cannot close a complaint in status resolved: no return visit was done (only anonymous and confidential complaints close without one)"
        );

        // Anonymous / confidential: waived.
        let mut waived = c.clone();
        waived.return_visit_waived = true;
        assert_eq!(apply(&waived, &sample(K::Close)).unwrap().to, S::Closed);

        let visited = apply(
            &c,
            &Action::ReturnVisit {
                satisfaction: sat(5),
                note: "非常满意".into(),
            },
        )
        .unwrap();
        assert_eq!(visited.to, S::ReturnVisit);
        assert_eq!(visited.state.satisfaction, Some(sat(5)));
        let closed = apply(&visited.state, &sample(K::Close)).unwrap();
        assert_eq!(closed.to, S::Closed);

        let mut unresolved = visited.state.clone();
        unresolved.resolution = None;
        assert_eq!(
            apply(&unresolved, &sample(K::Close)).unwrap_err().reason,
            Reason::NoResolution
        );
        // A second return visit is refused.
        assert_eq!(
            apply(&visited.state, &sample(K::ReturnVisit))
                .unwrap_err()
                .reason,
            Reason::AlreadyVisited
        );
    }

    #[test]
    fn reopen_once_after_dissatisfaction_then_supervision() {
        let mut c = CaseState::new(S::ReturnVisit, Some("logistics"));
        c.resolution = Some("已退款".into());
        c.return_visited = true;
        c.satisfaction = Some(sat(4));
        let r = apply(&c, &sample(K::Reopen)).unwrap_err();
        assert_eq!(r.reason, Reason::NotDissatisfied);

        c.satisfaction = Some(sat(2));
        let reopened = apply(&c, &sample(K::Reopen)).unwrap();
        assert_eq!(reopened.to, S::Reopened);
        assert_eq!(reopened.state.reopens, 1);
        assert_eq!(
            reopened.state.resolution, None,
            "a new resolution is needed"
        );
        assert!(!reopened.state.return_visited);

        // Re-handled, resolved, visited, dissatisfied again: 督办.
        let contacted = apply(&reopened.state, &sample(K::Contact)).unwrap();
        assert_eq!(contacted.to, S::Investigating);
        let resolved = apply(&contacted.state, &sample(K::Resolve)).unwrap();
        let visited = apply(&resolved.state, &sample(K::ReturnVisit)).unwrap();
        let closed = apply(&visited.state, &sample(K::Close)).unwrap();
        for state in [&resolved.state, &visited.state, &closed.state] {
            let r = apply(state, &sample(K::Reopen)).unwrap_err();
            assert_eq!(r.reason, Reason::ReopenedOnce);
            assert!(r.to_string().contains("督办"), "{r}");
        }

        // A closed case reopens after a dissatisfied return visit.
        let mut closed = case_in(S::Closed);
        closed.satisfaction = Some(sat(1));
        assert_eq!(apply(&closed, &sample(K::Reopen)).unwrap().to, S::Reopened);
        // Feedback records dissatisfaction on a resolved case.
        let mut resolved = CaseState::new(S::Resolved, Some("logistics"));
        resolved.resolution = Some("已退款".into());
        assert_eq!(
            apply(&resolved, &sample(K::Reopen)).unwrap_err().reason,
            Reason::NotDissatisfied
        );
        let fb = apply(&resolved, &sample(K::Feedback)).unwrap();
        assert_eq!(fb.to, S::Resolved);
        assert_eq!(
            apply(&fb.state, &sample(K::Reopen)).unwrap().to,
            S::Reopened
        );
        // A reason is required.
        let r = apply(&fb.state, &Action::Reopen { reason: "".into() }).unwrap_err();
        assert_eq!(r.kind(), RefusalKind::Invalid { field: "reason" });
    }

    #[test]
    fn withdraw_and_reject_need_a_reason_and_are_final() {
        for kind in [K::Withdraw, K::Reject] {
            let empty = match kind {
                K::Withdraw => Action::Withdraw { reason: "".into() },
                _ => Action::Reject { reason: "".into() },
            };
            let r = apply(&case_in(S::Assigned), &empty).unwrap_err();
            assert_eq!(r.kind(), RefusalKind::Invalid { field: "reason" });
            let t = apply(&case_in(S::Paused), &sample(kind)).unwrap();
            assert_eq!(t.state.paused_from, None);
            let r = apply(&t.state, &Action::Resume).unwrap_err();
            assert_eq!(r.reason, Reason::Final);
            assert!(r.to_string().ends_with("is a final status"), "{r}");
        }
        assert_eq!(
            apply(&case_in(S::Resolved), &sample(K::Reject))
                .unwrap_err()
                .reason,
            Reason::Resolved
        );
    }

    #[test]
    fn merge_records_the_surviving_case() {
        let t = apply(&case_in(S::Investigating), &sample(K::Merge)).unwrap();
        assert_eq!(t.to, S::Merged);
        assert_eq!(
            t.state.merged_into.map(|c| c.to_string()).as_deref(),
            Some("0190a0a0-0000-7000-8000-000000000001")
        );
    }

    #[test]
    fn sign_for_records_the_handler_and_is_refused_twice() {
        let t = apply(&case_in(S::Assigned), &sample(K::SignFor)).unwrap();
        assert_eq!(t.state.handler.as_deref(), Some("xu.fang"));
        let r = apply(&t.state, &sample(K::SignFor)).unwrap_err();
        assert_eq!(
            r.to_string(),
            "cannot sign for a complaint in status signed_for: it is already signed for"
        );
        let r = apply(
            &case_in(S::Assigned),
            &Action::SignFor { handler: "".into() },
        )
        .unwrap_err();
        assert_eq!(r.kind(), RefusalKind::Invalid { field: "handler" });
        assert_eq!(
            apply(&case_in(S::Returned), &sample(K::SignFor))
                .unwrap_err()
                .reason,
            Reason::AwaitingAssignment
        );
        let r = apply(&case_in(S::Classified), &sample(K::SignFor)).unwrap_err();
        assert_eq!(
            r.to_string(),
            "cannot sign for a complaint in status classified: only allowed in status assigned"
        );
    }

    #[test]
    fn parsed_values_refuse_what_is_out_of_range() {
        for n in [0, 6, 300] {
            assert!(Satisfaction::try_from(n).is_err(), "{n}");
        }
        assert!(sat(1).is_dissatisfied() && sat(2).is_dissatisfied());
        assert!(!sat(3).is_dissatisfied());
        assert_eq!(
            "senior_leader".parse::<ApproverRole>().unwrap(),
            ApproverRole::SeniorLeader
        );
        let e = "manager".parse::<ApproverRole>().unwrap_err();
        assert!(
            e.to_string().contains("department_head or senior_leader"),
            "{e}"
        );
    }
}
