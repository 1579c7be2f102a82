-- Jobs, their stream chunks and captured worker logs. Times are epoch milliseconds; JSON is TEXT.

CREATE TABLE jobs (
  id                   TEXT    PRIMARY KEY,
  endpoint             TEXT    NOT NULL,
  status               TEXT    NOT NULL
    CHECK (status IN ('IN_QUEUE', 'IN_PROGRESS', 'COMPLETED', 'FAILED', 'CANCELLED', 'TIMED_OUT')),
  input                TEXT    NOT NULL,
  webhook              TEXT,
  policy               TEXT    NOT NULL,
  s3_config            TEXT,
  -- NULL: no output yet; the JSON text 'null': an output of null.
  output               TEXT,
  error                TEXT,
  worker_id            TEXT,
  attempts             INTEGER NOT NULL DEFAULT 0,
  retries              INTEGER NOT NULL DEFAULT 0,
  low_priority         INTEGER NOT NULL DEFAULT 0 CHECK (low_priority IN (0, 1)),
  created_at           INTEGER NOT NULL,
  queued_at            INTEGER NOT NULL,
  taken_at             INTEGER,
  finished_at          INTEGER,
  expires_at           INTEGER NOT NULL,
  execution_deadline   INTEGER,
  execution_timeout_ms INTEGER NOT NULL,
  retain_until         INTEGER,
  idempotency_key      TEXT,
  -- Last stream chunk number handed out: bumping it is what serialises concurrent appends.
  stream_seq           INTEGER NOT NULL DEFAULT 0
) STRICT;

-- Ties are broken by rowid (insertion order: FIFO), which every index entry of a rowid table carries.
CREATE INDEX jobs_claim ON jobs (endpoint, status, low_priority, queued_at);
CREATE INDEX jobs_execution_deadline ON jobs (execution_deadline) WHERE status = 'IN_PROGRESS';
CREATE INDEX jobs_held_by ON jobs (worker_id) WHERE status = 'IN_PROGRESS';
CREATE INDEX jobs_expires_at ON jobs (expires_at);
CREATE INDEX jobs_retain_until ON jobs (retain_until) WHERE retain_until IS NOT NULL;
CREATE UNIQUE INDEX jobs_idempotency_key ON jobs (endpoint, idempotency_key) WHERE idempotency_key IS NOT NULL;

CREATE TABLE job_stream (
  job_id TEXT    NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
  seq    INTEGER NOT NULL,
  output TEXT    NOT NULL,
  PRIMARY KEY (job_id, seq)
) STRICT, WITHOUT ROWID;

-- AUTOINCREMENT so that a seq is never reused once old lines are pruned: readers page with afterSeq.
CREATE TABLE worker_logs (
  seq       INTEGER PRIMARY KEY AUTOINCREMENT,
  endpoint  TEXT    NOT NULL,
  worker_id TEXT    NOT NULL,
  job_id    TEXT,
  stream    TEXT    NOT NULL CHECK (stream IN ('stdout', 'stderr')),
  time      INTEGER NOT NULL,
  line      TEXT    NOT NULL
) STRICT;

CREATE INDEX worker_logs_endpoint ON worker_logs (endpoint, seq);
CREATE INDEX worker_logs_worker ON worker_logs (worker_id, seq);
CREATE INDEX worker_logs_job ON worker_logs (job_id, seq) WHERE job_id IS NOT NULL;
