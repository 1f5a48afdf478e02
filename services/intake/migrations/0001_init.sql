-- Complaints committed by intake. `record` is the protobuf tousu.v1.Complaint.
CREATE TABLE complaints (
    id                 uuid PRIMARY KEY,
    tracking_no        text NOT NULL UNIQUE,
    channel            text NOT NULL,
    channel_message_id text,
    record             bytea NOT NULL,
    received_at        timestamptz NOT NULL
);

-- Dedup keys: `<channel>:<channel message id>` or `webform:idem:<Idempotency-Key>`.
-- A repeat of a key answers with the complaint it first created.
CREATE TABLE dedup_keys (
    key          text PRIMARY KEY,
    complaint_id uuid NOT NULL
);

-- Per-day sequence behind tracking numbers (TSyyyymmdd-nnnnnn).
CREATE TABLE tracking_sequence (
    day      date PRIMARY KEY,
    last_seq bigint NOT NULL
);

-- Every rejected input, with the reason, kept for inspection and replay.
CREATE TABLE quarantine (
    id           bigserial PRIMARY KEY,
    channel      text NOT NULL,
    reason       text NOT NULL,
    content_type text,
    body         bytea NOT NULL,
    received_at  timestamptz NOT NULL DEFAULT now()
);
