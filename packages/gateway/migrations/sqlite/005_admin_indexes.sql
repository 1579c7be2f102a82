-- The dashboard's "last hour" figures: an endpoint's jobs by when they ended, newest first, read
-- as an index range scan stopped at its limit, however many jobs are kept. It carries the times
-- the figures need, so no table row is read.
CREATE INDEX jobs_finished ON jobs (endpoint, finished_at, id, status, queued_at, taken_at) WHERE finished_at IS NOT NULL;

-- The webhook outbox of one job (the admin API's `webhooks?jobId=`), newest first.
CREATE INDEX webhook_deliveries_job ON webhook_deliveries (job_id, created_at, id);
