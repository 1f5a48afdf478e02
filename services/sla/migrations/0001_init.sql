-- SLA clocks: one row per complaint and target. `deadline` is the truth;
-- `state` moves running → met | breached.
CREATE TABLE clocks (
    complaint_id   uuid NOT NULL,
    target         text NOT NULL,
    department     text NOT NULL,
    started_at     timestamptz NOT NULL,
    deadline       timestamptz NOT NULL,
    state          text NOT NULL DEFAULT 'running',
    explanation    text NOT NULL,
    policy_version text NOT NULL,
    PRIMARY KEY (complaint_id, target)
);
CREATE INDEX clocks_running_deadline ON clocks (deadline) WHERE state = 'running';
