-- The planner (issue 6): what notify knows of each complaint, digest
-- windows and repeats. Deliveries (0001, 0002) stay the queue and the log.

-- What notify needs to know of a complaint to tell people about it, filled
-- from complaint.received / classified / assigned / regraded and the
-- lifecycle events. Events arrive in any order across subjects: each
-- fact keeps the time of the event that set it and only a newer one
-- replaces it.
CREATE TABLE complaint_facts (
    complaint_id   uuid PRIMARY KEY,
    tracking_no    text NOT NULL DEFAULT '',
    summary        text NOT NULL DEFAULT '',
    -- Contacts of the complainant (name, phone, email, wechat_openid,
    -- anonymous) and the Acknowledgement of complaint.received.
    complainant    jsonb,
    ack            jsonb,
    received_at    timestamptz,
    grade          smallint,
    grade_at       timestamptz,
    department     text,
    handler        text,
    co_departments text[] NOT NULL DEFAULT '{}',
    assigned_at    timestamptz,
    status         text NOT NULL DEFAULT '',
    status_at      timestamptz,
    -- closed, withdrawn, rejected or merged: repeats stop.
    closed         boolean NOT NULL DEFAULT false,
    updated_at     timestamptz NOT NULL DEFAULT now()
);

-- Throttling: notices of one kind (sla.warning, sla.breached) for one
-- department and recipient within notify_digest_window_secs. The first
-- notify_digest_threshold go out as usual; the rest are folded into the
-- window's digest delivery (the delivery whose cause_event_id is the
-- window's digest_cause), sent when the window closes.
CREATE TABLE digest_windows (
    department   text NOT NULL,
    recipient    text NOT NULL,
    opened_at    timestamptz NOT NULL,
    closes_at    timestamptz NOT NULL,
    count        integer NOT NULL,
    digest_cause uuid NOT NULL,
    PRIMARY KEY (department, recipient)
);

-- A digest delivery waits in status `collecting` (the sender takes only
-- `pending` rows) until its window closes; then it is rendered with the
-- notices folded into it and becomes `pending`.
CREATE INDEX deliveries_collecting ON deliveries (next_attempt_at) WHERE status = 'collecting';
CREATE INDEX deliveries_digest_of ON deliveries (digest_of, id) WHERE digest_of IS NOT NULL;

-- Rules with `repeat` (alert.major: daily until closed): only the next
-- repeat is kept; when it is due it is planned as a fresh notice (its own
-- cause id, so its own deliveries and ladder) under the rule as the policy
-- in force has it, and the next one is set.
CREATE TABLE repeats (
    id             bigserial PRIMARY KEY,
    cause_event_id uuid NOT NULL,
    complaint_id   uuid NOT NULL,
    rule           text NOT NULL,
    -- The cause event, protobuf-encoded, to plan again.
    event          bytea NOT NULL,
    next_at        timestamptz NOT NULL,
    sent           integer NOT NULL DEFAULT 0,
    UNIQUE (cause_event_id, rule)
);
CREATE INDEX repeats_due ON repeats (next_at);
