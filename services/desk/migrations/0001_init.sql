-- The case record as desk holds it. Filled from events in any order:
-- columns only move forward (status by rank along the main path).
CREATE TABLE cases (
    id                  uuid PRIMARY KEY,
    tracking_no         text UNIQUE,
    record              bytea,
    channel             text,
    status              smallint NOT NULL DEFAULT 0,
    department          text,
    handler             text,
    category            text,
    grade               smallint,
    urgency             smallint,
    confidence          double precision,
    resolution_deadline timestamptz,
    received_at         timestamptz,
    created_at          timestamptz NOT NULL DEFAULT now(),
    updated_at          timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX cases_department ON cases (department, id DESC);
CREATE INDEX cases_status ON cases (status, id DESC);

-- Every event about a case, for the timeline / audit.
CREATE TABLE timeline (
    id           bigserial PRIMARY KEY,
    complaint_id uuid NOT NULL,
    event_id     uuid NOT NULL UNIQUE,
    event_type   text NOT NULL,
    producer     text NOT NULL,
    sequence     bigint NOT NULL,
    occurred_at  timestamptz,
    recorded_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX timeline_complaint ON timeline (complaint_id, id);
