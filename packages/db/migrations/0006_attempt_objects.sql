-- Each claim of a job gets a fresh random object prefix (`images/<128 random bits>`): the worker
-- may upload only under it, and worker.complete stores exactly those keys on the image row. A
-- worker whose lease was taken over keeps a prefix nobody else uses, so it can never overwrite
-- another attempt's (or a finished job's) image, and object keys no longer reveal a user id.
ALTER TABLE generation_jobs ADD COLUMN attempt_prefix text;
--> statement-breakpoint
-- The orphan sweep asks, per listed object, "is this the prefix of a running attempt?" and
-- "does an image row point at this key?"; both must stay index lookups on large tables.
CREATE UNIQUE INDEX generation_jobs_attempt_prefix_idx ON generation_jobs (attempt_prefix)
  WHERE attempt_prefix IS NOT NULL;
--> statement-breakpoint
CREATE INDEX images_original_key_idx ON images (original_key);
--> statement-breakpoint
CREATE INDEX images_thumb_key_idx ON images (thumb_key);
