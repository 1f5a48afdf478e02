-- Desk actions (docs/desk.md): the handling state the lifecycle state
-- machine needs, written by the actions in one transaction with the
-- timeline row and the outbox event; and what desk shows of other
-- services' events (linked complaints, follow-ups).
ALTER TABLE cases
    ADD COLUMN arbitrated           boolean     NOT NULL DEFAULT false,
    ADD COLUMN paused_from          smallint,
    ADD COLUMN pause_reason         text,
    ADD COLUMN pause_note           text,
    ADD COLUMN paused_by            text,
    ADD COLUMN paused_at            timestamptz,
    ADD COLUMN extensions           smallint    NOT NULL DEFAULT 0,
    ADD COLUMN returned_by          text[]      NOT NULL DEFAULT '{}',
    ADD COLUMN resolution           text,
    ADD COLUMN return_visited       boolean     NOT NULL DEFAULT false,
    ADD COLUMN satisfaction         smallint,
    ADD COLUMN reopens              smallint    NOT NULL DEFAULT 0,
    ADD COLUMN merged_into          uuid,
    ADD COLUMN linked_complaint_ids uuid[]      NOT NULL DEFAULT '{}',
    -- When the current department got the case: its return window starts.
    ADD COLUMN assigned_at          timestamptz;

-- Who did what and why, for the audit (desk's own actions, and lifecycle
-- events of other producers).
ALTER TABLE timeline
    ADD COLUMN action text,
    ADD COLUMN actor  text,
    ADD COLUMN reason text,
    ADD COLUMN detail jsonb;
CREATE INDEX timeline_action ON timeline (complaint_id, action) WHERE action IS NOT NULL;

-- `complaint.followup.<channel>`: more from the complainant (or others in
-- a forum thread).
CREATE TABLE follow_ups (
    event_id     uuid PRIMARY KEY,
    complaint_id uuid        NOT NULL,
    channel      text        NOT NULL,
    author       text        NOT NULL,
    text         text        NOT NULL,
    attachments  integer     NOT NULL DEFAULT 0,
    received_at  timestamptz
);
CREATE INDEX follow_ups_complaint ON follow_ups (complaint_id, received_at);
