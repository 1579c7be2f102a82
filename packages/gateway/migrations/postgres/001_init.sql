-- Jobs, their stream chunks and captured worker logs. Runs with search_path set to the store's
-- schema. Times are epoch milliseconds (bigint).

CREATE TABLE jobs (
  id                   text    PRIMARY KEY,
  -- Insertion order: FIFO among jobs queued in the same millisecond.
  seq                  bigint  GENERATED ALWAYS AS IDENTITY,
  endpoint             text    NOT NULL,
  status               text    NOT NULL
    CHECK (status IN ('IN_QUEUE', 'IN_PROGRESS', 'COMPLETED', 'FAILED', 'CANCELLED', 'TIMED_OUT')),
  input                jsonb   NOT NULL,
  webhook              text,
  policy               jsonb   NOT NULL,
  s3_config            jsonb,
  -- SQL NULL: no output yet; the jsonb 'null': an output of null.
  output               jsonb,
  error                text,
  worker_id            text,
  attempts             integer NOT NULL DEFAULT 0,
  retries              integer NOT NULL DEFAULT 0,
  low_priority         boolean NOT NULL DEFAULT false,
  created_at           bigint  NOT NULL,
  queued_at            bigint  NOT NULL,
  taken_at             bigint,
  finished_at          bigint,
  expires_at           bigint  NOT NULL,
  execution_deadline   bigint,
  execution_timeout_ms bigint  NOT NULL,
  retain_until         bigint,
  idempotency_key      text,
  -- Last stream chunk number handed out: bumping it (a row lock) serialises concurrent appends.
  stream_seq           integer NOT NULL DEFAULT 0
);

CREATE INDEX jobs_claim ON jobs (endpoint, status, low_priority, queued_at, seq);
CREATE INDEX jobs_execution_deadline ON jobs (execution_deadline) WHERE status = 'IN_PROGRESS';
CREATE INDEX jobs_held_by ON jobs (worker_id) WHERE status = 'IN_PROGRESS';
CREATE INDEX jobs_expires_at ON jobs (expires_at);
CREATE INDEX jobs_retain_until ON jobs (retain_until) WHERE retain_until IS NOT NULL;
CREATE UNIQUE INDEX jobs_idempotency_key ON jobs (endpoint, idempotency_key) WHERE idempotency_key IS NOT NULL;

CREATE TABLE job_stream (
  job_id text    NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
  seq    integer NOT NULL,
  output jsonb   NOT NULL,
  PRIMARY KEY (job_id, seq)
);

CREATE TABLE worker_logs (
  seq       bigint  GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  endpoint  text    NOT NULL,
  worker_id text    NOT NULL,
  job_id    text,
  stream    text    NOT NULL CHECK (stream IN ('stdout', 'stderr')),
  time      bigint  NOT NULL,
  line      text    NOT NULL
);

CREATE INDEX worker_logs_endpoint ON worker_logs (endpoint, seq);
CREATE INDEX worker_logs_worker ON worker_logs (worker_id, seq);
CREATE INDEX worker_logs_job ON worker_logs (job_id, seq) WHERE job_id IS NOT NULL;
