-- A claimed job may wait for its model to load on the worker (a model server that was not
-- warm) before its first step. The worker says so in its heartbeat; the flag is kept on the
-- row so that the job's details and a reconnecting client show it too, and it is cleared by
-- the first progress, by completion and whenever the run stops.
ALTER TABLE generation_jobs ADD COLUMN loading_model boolean NOT NULL DEFAULT false;
