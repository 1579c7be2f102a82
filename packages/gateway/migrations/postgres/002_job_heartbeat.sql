-- When a gateway last vouched for the worker holding an IN_PROGRESS job (set by the claim, then on
-- every supervision tick while the worker is alive). A job whose holder nobody vouches for any
-- more was left by a gateway that died: any gateway may put it back in the queue. NULL on rows
-- claimed before this migration: taken_at stands in for it.
ALTER TABLE jobs ADD COLUMN heartbeat_at bigint;
