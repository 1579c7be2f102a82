-- How many progress updates the current run of a job has stored (its `output` keeps only the last
-- one): SSE streams number progress events with it, so a client resuming with Last-Event-ID is
-- sent a progress value only if it is newer than the one it saw. Reset by /retry, with stream_seq.
ALTER TABLE jobs ADD COLUMN progress_seq integer NOT NULL DEFAULT 0;

-- The admin API's job listing: newest first per endpoint, paged by (created_at, id), with or
-- without a status filter, in index order whatever the number of jobs kept. Ids compare bytewise
-- (COLLATE "C", as SQLite's BINARY), so both stores page ties in created_at the same way.
CREATE INDEX jobs_listing ON jobs (endpoint, created_at, id COLLATE "C");
CREATE INDEX jobs_listing_status ON jobs (endpoint, status, created_at, id COLLATE "C");
