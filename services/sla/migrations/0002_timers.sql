-- Exact, durable timers (issue 5). Postgres is the truth: a timer row exists
-- until it fires (deleted in the transaction that writes its events) or its
-- clock stops. Replicas share the partitions by lease and hold the next
-- minutes of their timers in memory.

-- The clock model (budget, pauses, extensions) as JSON, and what the
-- explanation API shows. `deadline` is NULL while the clock is paused.
ALTER TABLE clocks
    ADD COLUMN model       jsonb,
    ADD COLUMN duration    text NOT NULL DEFAULT '',
    ADD COLUMN calendar    text NOT NULL DEFAULT '',
    ADD COLUMN grade       smallint NOT NULL DEFAULT 4,
    ADD COLUMN urgency     text NOT NULL DEFAULT 'normal',
    ADD COLUMN variant     text NOT NULL DEFAULT '',
    ADD COLUMN fired       text[] NOT NULL DEFAULT '{}',
    ADD COLUMN met_at      timestamptz,
    ADD COLUMN breached_at timestamptz,
    ADD COLUMN updated_at  timestamptz NOT NULL DEFAULT now(),
    ALTER COLUMN deadline DROP NOT NULL;
DROP INDEX IF EXISTS clocks_running_deadline;

-- What sla knows of each complaint, to start later clocks (sign-off, first
-- contact, return visit) with the grade and urgency routing decided.
CREATE TABLE complaints (
    complaint_id uuid PRIMARY KEY,
    received_at  timestamptz NOT NULL,
    department   text NOT NULL DEFAULT '',
    grade        smallint NOT NULL DEFAULT 4,
    urgency      text NOT NULL DEFAULT 'normal',
    variant      text NOT NULL DEFAULT '',
    open         boolean NOT NULL DEFAULT true
);

-- Pending fires. `partition` = complaint id hash mod sla_partitions.
-- kind: warning (arg = percent) | breach | escalation (arg = ladder step) |
-- ack_timeout (arg = step) | pause_cap | regrade (arg = days open).
CREATE TABLE timers (
    id           bigserial PRIMARY KEY,
    partition    integer NOT NULL,
    due_at       timestamptz NOT NULL,
    complaint_id uuid NOT NULL,
    target       text NOT NULL,
    kind         text NOT NULL,
    arg          integer NOT NULL DEFAULT 0
);
CREATE INDEX timers_due ON timers (partition, due_at);
CREATE INDEX timers_clock ON timers (complaint_id, target);

-- Partition leases: a replica fires the timers of the partitions it holds.
CREATE TABLE leases (
    partition  integer PRIMARY KEY,
    owner      text,
    expires_at timestamptz NOT NULL DEFAULT '-infinity'
);
-- Live replicas (heartbeat), to share partitions fairly.
CREATE TABLE replicas (
    owner   text PRIMARY KEY,
    seen_at timestamptz NOT NULL
);

-- Escalations sent, and their acknowledgement.
CREATE TABLE escalations (
    complaint_id uuid NOT NULL,
    step         integer NOT NULL,
    level        text NOT NULL,
    role         text NOT NULL,
    target       text NOT NULL,
    fired_at     timestamptz NOT NULL DEFAULT now(),
    needs_ack    boolean NOT NULL,
    ack_deadline timestamptz,
    acked_by     text,
    acked_at     timestamptz,
    escalated_to integer,
    PRIMARY KEY (complaint_id, step)
);

-- Every change of a deadline: pauses, resumes, extensions, recomputes on a
-- new policy or calendar, regrades.
CREATE TABLE clock_audit (
    id             bigserial PRIMARY KEY,
    complaint_id   uuid NOT NULL,
    target         text NOT NULL,
    at             timestamptz NOT NULL DEFAULT now(),
    change         text NOT NULL,
    old_deadline   timestamptz,
    new_deadline   timestamptz,
    actor          text NOT NULL DEFAULT '',
    reason         text NOT NULL DEFAULT '',
    policy_version text NOT NULL DEFAULT ''
);
CREATE INDEX clock_audit_complaint ON clock_audit (complaint_id, id);
