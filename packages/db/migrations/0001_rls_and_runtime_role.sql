-- Row-level security and the runtime role.
-- The API connects as a login role that is a member of pingvas_runtime: no superuser, no
-- BYPASSRLS, owns nothing. User requests run `set_config('app.user_id', …, true)` first;
-- system paths (webhooks, worker callbacks, the reconciler) run `set_config('app.system', 'on', true)`.

DO $$ BEGIN
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'pingvas_runtime') THEN
    CREATE ROLE pingvas_runtime NOLOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE;
  END IF;
END $$;
--> statement-breakpoint
CREATE FUNCTION app_current_user_id() RETURNS uuid LANGUAGE sql STABLE AS
  $$ SELECT nullif(current_setting('app.user_id', true), '')::uuid $$;
--> statement-breakpoint
CREATE FUNCTION app_is_system() RETURNS boolean LANGUAGE sql STABLE AS
  $$ SELECT coalesce(current_setting('app.system', true), '') = 'on' $$;
--> statement-breakpoint
ALTER TABLE credit_balances ADD CONSTRAINT credit_balances_non_negative
  CHECK (subscription_credits >= 0 AND purchased_credits >= 0 AND held_credits >= 0);
--> statement-breakpoint
ALTER TABLE credit_holds ADD CONSTRAINT credit_holds_amounts_valid
  CHECK (subscription_amount >= 0 AND purchased_amount >= 0
         AND (captured_amount IS NULL OR (captured_amount >= 0 AND captured_amount <= subscription_amount + purchased_amount)));
--> statement-breakpoint
ALTER TABLE users ENABLE ROW LEVEL SECURITY;
--> statement-breakpoint
ALTER TABLE users FORCE ROW LEVEL SECURITY;
--> statement-breakpoint
CREATE POLICY users_self ON users USING (id = app_current_user_id()) WITH CHECK (id = app_current_user_id());
--> statement-breakpoint
CREATE POLICY users_system ON users USING (app_is_system()) WITH CHECK (app_is_system());
--> statement-breakpoint
DO $$
DECLARE t text;
BEGIN
  FOREACH t IN ARRAY ARRAY['subscriptions', 'credit_balances', 'credit_transactions', 'credit_holds',
                           'generation_jobs', 'images', 'boards', 'board_images'] LOOP
    EXECUTE format('ALTER TABLE %I ENABLE ROW LEVEL SECURITY', t);
    EXECUTE format('ALTER TABLE %I FORCE ROW LEVEL SECURITY', t);
    EXECUTE format('CREATE POLICY %I ON %I USING (user_id = app_current_user_id()) WITH CHECK (user_id = app_current_user_id())', t || '_owner', t);
    EXECUTE format('CREATE POLICY %I ON %I USING (app_is_system()) WITH CHECK (app_is_system())', t || '_system', t);
  END LOOP;
  FOREACH t IN ARRAY ARRAY['webhook_events', 'email_outbox'] LOOP
    EXECUTE format('ALTER TABLE %I ENABLE ROW LEVEL SECURITY', t);
    EXECUTE format('ALTER TABLE %I FORCE ROW LEVEL SECURITY', t);
    EXECUTE format('CREATE POLICY %I ON %I USING (app_is_system()) WITH CHECK (app_is_system())', t || '_system', t);
  END LOOP;
END $$;
--> statement-breakpoint
GRANT USAGE ON SCHEMA public TO pingvas_runtime;
--> statement-breakpoint
GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO pingvas_runtime;
