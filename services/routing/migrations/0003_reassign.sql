-- Reassignment (退单 / 转办 / arbitration) and handler selection.

-- What re-routing after a return needs: the complaint as received
-- (protobuf `tousu.v1.Complaint`). NULL for complaints routed before this
-- migration.
ALTER TABLE decisions ADD COLUMN complaint bytea;

-- The current assignment of each complaint.
CREATE TABLE assignments (
    complaint_id   uuid PRIMARY KEY,
    department     text NOT NULL,
    -- NULL when the department has no handlers.
    handler        text,
    handler_reason text NOT NULL DEFAULT '',
    -- 1 for the first assignment, + 1 per reassignment.
    version        integer NOT NULL DEFAULT 1,
    -- desk's sequence number of the last lifecycle event applied: an older
    -- one arriving late changes nothing.
    lifecycle_seq  bigint NOT NULL DEFAULT 0,
    -- Departments that returned the complaint, in order; re-routing skips
    -- them (but the triage department, which takes what nothing else does).
    returned_by    text[] NOT NULL DEFAULT '{}',
    -- The complaint centre decided the department: no further return.
    arbitrated     boolean NOT NULL DEFAULT false,
    -- Counts towards its handler's open cases (least_open, skills).
    open           boolean NOT NULL DEFAULT true,
    -- The first `complaint.assigned` (protobuf `ComplaintAssigned`): its
    -- classification, tracking number, summary, SLA policy and linked
    -- complaints are repeated by every reassignment. NULL for complaints
    -- routed before this migration.
    first_event    bytea,
    assigned_at    timestamptz NOT NULL DEFAULT now(),
    updated_at     timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX assignments_open_handler ON assignments (department, handler) WHERE open;

INSERT INTO assignments (complaint_id, department, assigned_at)
SELECT complaint_id, department, decided_at FROM decisions
ON CONFLICT DO NOTHING;

-- Every reassignment: who asked, why, from where to where, when.
CREATE TABLE reassignments (
    id              bigserial PRIMARY KEY,
    complaint_id    uuid NOT NULL,
    -- The lifecycle event (returned / transferred / arbitrated) it answers.
    event_id        uuid NOT NULL UNIQUE,
    -- The assignment version it produced.
    version         integer NOT NULL,
    because         text NOT NULL CHECK (because IN ('returned', 'transferred', 'arbitrated')),
    from_department text NOT NULL,
    to_department   text NOT NULL,
    handler         text,
    actor           text NOT NULL,
    reason          text NOT NULL,
    returned_by     text[] NOT NULL,
    arbitrated      boolean NOT NULL,
    -- Why the new department and handler (rule hits, as in `decisions`).
    rules           jsonb NOT NULL,
    policy_version  text NOT NULL,
    -- When desk recorded the action; when routing reassigned.
    occurred_at     timestamptz,
    reassigned_at   timestamptz NOT NULL DEFAULT now(),
    UNIQUE (complaint_id, version)
);

-- Round-robin turn per department; its row is also the lock that
-- serializes handler picks of the department across replicas.
CREATE TABLE handler_cursors (
    department text PRIMARY KEY,
    next       bigint NOT NULL DEFAULT 0
);
