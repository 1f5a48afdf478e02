-- What the similarity index needs to be rebuilt at start (the last weeks'
-- complaints), and the classifier's confidence and the full decision.
ALTER TABLE decisions
    ADD COLUMN confidence    double precision NOT NULL DEFAULT 0,
    ADD COLUMN fingerprint   bigint NOT NULL DEFAULT 0,
    ADD COLUMN identity_keys text[] NOT NULL DEFAULT '{}',
    ADD COLUMN product       text NOT NULL DEFAULT '',
    ADD COLUMN location      text NOT NULL DEFAULT '',
    ADD COLUMN received_at   timestamptz,
    ADD COLUMN decision      jsonb;
CREATE INDEX decisions_received_at ON decisions (received_at);
