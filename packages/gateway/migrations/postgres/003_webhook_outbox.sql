-- Webhooks. Which events a job's webhook is sent for: a JSON array of event names; NULL is
-- RunPod's behaviour (`completed` only).
ALTER TABLE jobs ADD COLUMN webhook_events jsonb;

-- The outbox: one row per webhook call to make, written before the first attempt so that a
-- gateway restart loses none. Not tied to jobs by a foreign key: the payload is a copy, and a
-- delivery (a failed one above all) outlives the job's own retention.
CREATE TABLE webhook_deliveries (
  -- Sent as webhook-id, the same on every attempt, so receivers can drop duplicates.
  id              text    PRIMARY KEY,
  job_id          text    NOT NULL,
  -- The job's `retries` when the event happened: a retried job that ends again is owed a new
  -- `completed` call, a job that ended once is owed exactly one.
  job_run         integer NOT NULL,
  endpoint        text    NOT NULL,
  event           text    NOT NULL CHECK (event IN ('start', 'progress', 'output', 'completed')),
  url             text    NOT NULL,
  -- The exact JSON body sent on every attempt (text, not jsonb: jsonb would reorder its keys).
  payload         text    NOT NULL,
  state           text    NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'delivered', 'failed')),
  attempts        integer NOT NULL DEFAULT 0,
  -- When a pending delivery is due. Claiming an attempt pushes it past the attempt's timeout (a
  -- lease): a gateway that dies mid-attempt leaves a delivery another one picks up later.
  next_attempt_at bigint  NOT NULL,
  last_error      text,
  last_status     integer,
  created_at      bigint  NOT NULL,
  delivered_at    bigint
);

CREATE UNIQUE INDEX webhook_deliveries_completed ON webhook_deliveries (job_id, job_run) WHERE event = 'completed';
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (next_attempt_at) WHERE state = 'pending';
CREATE INDEX webhook_deliveries_listing ON webhook_deliveries (endpoint, created_at);
CREATE INDEX webhook_deliveries_listing_state ON webhook_deliveries (endpoint, state, created_at);
-- The finished jobs that may still owe a `completed` delivery: what the outbox catch-up scans.
CREATE INDEX jobs_webhook_finished ON jobs (finished_at) WHERE webhook IS NOT NULL AND finished_at IS NOT NULL;
