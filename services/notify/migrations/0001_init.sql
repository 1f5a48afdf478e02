-- Delivery log: one row per notification attempt outcome.
CREATE TABLE deliveries (
    id             bigserial PRIMARY KEY,
    cause_event_id uuid NOT NULL,
    complaint_id   uuid NOT NULL,
    event_type     text NOT NULL,
    recipient      text NOT NULL,
    channel        text NOT NULL,
    status         text NOT NULL,
    attempts       integer NOT NULL,
    detail         text NOT NULL,
    created_at     timestamptz NOT NULL DEFAULT now(),
    UNIQUE (cause_event_id, recipient, channel)
);
