-- Acting on a rule's `within` and on the recipient's other channels
-- (issue 6).
-- due_by: when the notice must have gone out (the event time + `within`;
--   NULL: the rule sets no time). Quiet hours never defer past it.
-- fallbacks: the recipient's other channels among the rule's, in its
--   order: [{"channel": "email", "address": "…"}]. A delivery that is
--   dead-lettered, or whose next retry would fall after due_by, is sent on
--   the first of them: a new row (fallback_of = this one's id, fallbacks =
--   the rest), while this one keeps its own retries.
ALTER TABLE deliveries
    ADD COLUMN due_by      timestamptz,
    ADD COLUMN fallbacks   jsonb NOT NULL DEFAULT '[]',
    ADD COLUMN fallback_of bigint;
