-- Images a user uploads to start from (image-to-image) or to paint with (inpainting masks).
-- The browser PUTs the raw file to `raw_key` with a short-lived presigned URL; uploads.complete
-- checks it, stores it re-encoded as a PNG at `image_key` and deletes the raw object.
-- `expires_at` is when the sweep deletes the row and its objects: soon for an upload never
-- completed, later for a checked one nobody used; NULL once a job relies on it (kept).
CREATE TABLE uploads (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  user_id uuid NOT NULL REFERENCES users(id) ON DELETE CASCADE,
  status text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'ready', 'rejected')),
  declared_content_type text NOT NULL,
  declared_bytes integer NOT NULL CHECK (declared_bytes > 0),
  raw_key text NOT NULL UNIQUE,
  image_key text UNIQUE,
  width integer,
  height integer,
  bytes integer,
  created_at timestamptz NOT NULL DEFAULT now(),
  completed_at timestamptz,
  expires_at timestamptz,
  CHECK (status <> 'ready' OR (image_key IS NOT NULL AND width IS NOT NULL AND height IS NOT NULL AND bytes IS NOT NULL))
);
--> statement-breakpoint
CREATE INDEX uploads_expires_idx ON uploads (expires_at) WHERE expires_at IS NOT NULL;
--> statement-breakpoint
CREATE INDEX uploads_user_idx ON uploads (user_id, created_at DESC);
--> statement-breakpoint
ALTER TABLE uploads ENABLE ROW LEVEL SECURITY;
--> statement-breakpoint
ALTER TABLE uploads FORCE ROW LEVEL SECURITY;
--> statement-breakpoint
CREATE POLICY uploads_owner ON uploads USING (user_id = app_current_user_id()) WITH CHECK (user_id = app_current_user_id());
--> statement-breakpoint
CREATE POLICY uploads_system ON uploads USING (app_is_system()) WITH CHECK (app_is_system());
--> statement-breakpoint
GRANT SELECT, INSERT, UPDATE, DELETE ON uploads TO pingvas_runtime;
