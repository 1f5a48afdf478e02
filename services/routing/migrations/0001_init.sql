-- One routing decision per complaint, with the rules that fired and the
-- policy version, so every decision can be explained.
CREATE TABLE decisions (
    complaint_id   uuid PRIMARY KEY,
    category       text NOT NULL,
    department     text NOT NULL,
    grade          smallint NOT NULL,
    urgency        text NOT NULL,
    rules          jsonb NOT NULL,
    policy_version text NOT NULL,
    decided_at     timestamptz NOT NULL DEFAULT now()
);
