-- Each run gets its own deadline at claim, from the job's hold (the engine seconds it pays for)
-- plus allowances for the model load and the upload, under a global ceiling (packages/core
-- jobDeadline). The reconciler stops a run past it even while it heartbeats; before, every run
-- had the same fixed limit, which large paid jobs could never finish within. NULL for rows
-- claimed before this column existed: the reconciler then uses the ceiling from started_at.
ALTER TABLE generation_jobs ADD COLUMN run_deadline_at timestamptz;
