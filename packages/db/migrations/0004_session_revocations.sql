-- Single-session sign-out: each session token carries its own id (`sid`); signing out records
-- that id here until the token would have expired anyway. Signing out everywhere still bumps
-- users.session_version. A token is valid only if its sid is absent here and its version is current.
CREATE TABLE session_revocations (
  session_id uuid PRIMARY KEY,
  user_id uuid NOT NULL REFERENCES users(id) ON DELETE CASCADE,
  expires_at timestamptz NOT NULL,
  revoked_at timestamptz NOT NULL DEFAULT now()
);
--> statement-breakpoint
CREATE INDEX session_revocations_user_expiry_idx ON session_revocations (user_id, expires_at);
--> statement-breakpoint
ALTER TABLE session_revocations ENABLE ROW LEVEL SECURITY;
--> statement-breakpoint
ALTER TABLE session_revocations FORCE ROW LEVEL SECURITY;
--> statement-breakpoint
CREATE POLICY session_revocations_owner ON session_revocations
  USING (user_id = app_current_user_id()) WITH CHECK (user_id = app_current_user_id());
--> statement-breakpoint
CREATE POLICY session_revocations_system ON session_revocations USING (app_is_system()) WITH CHECK (app_is_system());
--> statement-breakpoint
GRANT SELECT, INSERT, UPDATE, DELETE ON session_revocations TO pingvas_runtime;
