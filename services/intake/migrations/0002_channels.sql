-- Keys under which later messages find a complaint (email Message-ID,
-- forum topic, WeChat openid within the merge window). A message answering
-- a known key is a follow-up of that complaint.
CREATE TABLE thread_keys (
    key          text PRIMARY KEY,
    complaint_id uuid NOT NULL,
    -- NULL: for ever; else the end of a merge window.
    expires_at   timestamptz
);

-- Follow-ups: replies, forum posts in the complaint's topic (跟帖), further
-- WeChat messages. `record` is the protobuf tousu.v1.ComplaintFollowedUp.
CREATE TABLE follow_ups (
    id                 uuid PRIMARY KEY,
    complaint_id       uuid NOT NULL REFERENCES complaints (id),
    channel            text NOT NULL,
    channel_message_id text,
    record             bytea NOT NULL,
    received_at        timestamptz NOT NULL
);
CREATE INDEX follow_ups_complaint ON follow_ups (complaint_id);

-- Thread heat: the number of follow-ups of each complaint.
ALTER TABLE complaints ADD COLUMN follow_ups integer NOT NULL DEFAULT 0;

-- Quarantine: the status answered, what a replay needs (transport, path,
-- query, headers), and the outcome of the last replay.
ALTER TABLE quarantine
    ADD COLUMN status        smallint NOT NULL DEFAULT 400,
    ADD COLUMN meta          jsonb NOT NULL DEFAULT '{}',
    ADD COLUMN replayed_at   timestamptz,
    ADD COLUMN replay_result text;
CREATE INDEX quarantine_received_at ON quarantine (received_at);
