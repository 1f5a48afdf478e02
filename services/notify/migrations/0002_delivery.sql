-- Deliveries become the send queue and the delivery log (issue 6).
-- One row per cause event × recipient × channel (the UNIQUE key of 0001 is
-- the dedup across replicas). status: pending → delivered | dead, or
-- digested (folded into a digest row), suppressed (quiet hours, with the
-- reason in detail), cancelled (an ack stopped a ladder before it was sent).
ALTER TABLE deliveries
    ADD COLUMN address         text NOT NULL DEFAULT '',
    ADD COLUMN endpoint        text NOT NULL DEFAULT '',
    ADD COLUMN message         jsonb,
    ADD COLUMN rule            text NOT NULL DEFAULT '',
    ADD COLUMN event_at        timestamptz,
    ADD COLUMN next_attempt_at timestamptz NOT NULL DEFAULT now(),
    ADD COLUMN last_status     integer,
    ADD COLUMN last_error      text,
    ADD COLUMN delivered_at    timestamptz,
    ADD COLUMN step            integer NOT NULL DEFAULT 0,
    ADD COLUMN ack_token       text UNIQUE,
    ADD COLUMN acked_at        timestamptz,
    ADD COLUMN acked_by        text,
    ADD COLUMN digest_of       bigint,
    ADD COLUMN updated_at      timestamptz NOT NULL DEFAULT now();
CREATE INDEX deliveries_due ON deliveries (next_attempt_at) WHERE status = 'pending';
CREATE INDEX deliveries_complaint ON deliveries (complaint_id, id);

-- Every attempt: outcome, HTTP/SMTP status, latency, error.
CREATE TABLE delivery_attempts (
    id          bigserial PRIMARY KEY,
    delivery_id bigint NOT NULL REFERENCES deliveries (id) ON DELETE CASCADE,
    attempt     integer NOT NULL,
    at          timestamptz NOT NULL DEFAULT now(),
    outcome     text NOT NULL,
    status_code integer,
    latency_ms  integer NOT NULL,
    error       text
);
CREATE INDEX delivery_attempts_delivery ON delivery_attempts (delivery_id, attempt);
