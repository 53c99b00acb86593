-- Billing lifecycle: ordering of provider events, reactivation, plan changes, and credits
-- held by running jobs across a period change or a refund.

-- The ordering key of the newest subscription event applied (updated_at, then the renewal
-- and end dates, the status and the variant as tie-breakers): an event applies only when
-- its key is greater, so the same state in other bytes changes nothing and equal
-- updated_at ties resolve the same way in any delivery order.
ALTER TABLE subscriptions ADD COLUMN state_version text;
--> statement-breakpoint
-- The invoice time of the newest invoice event applied (failures, payments, recoveries):
-- the failure count and the banner follow it, not the number of deliveries.
ALTER TABLE subscriptions ADD COLUMN invoice_at timestamptz;
--> statement-breakpoint
-- The invoice the failure count counts.
ALTER TABLE subscriptions ADD COLUMN failed_invoice_id bigint;
--> statement-breakpoint
-- The newest paid renewal applied (its invoice and time): the current period.
ALTER TABLE subscriptions ADD COLUMN period_invoice_id bigint;
--> statement-breakpoint
ALTER TABLE subscriptions ADD COLUMN paid_at timestamptz;
--> statement-breakpoint
-- A renewal paid while the subscription had ended (unpaid): kept, applied when it is live again.
ALTER TABLE subscriptions ADD COLUMN pending_invoice_id bigint;
--> statement-breakpoint
ALTER TABLE subscriptions ADD COLUMN pending_invoice_at timestamptz;
--> statement-breakpoint
-- Invoice time of the newest recovered payment: an unpaid subscription paid after it is live again.
ALTER TABLE subscriptions ADD COLUMN recovered_at timestamptz;
--> statement-breakpoint
-- The period end of the downgrade that ended this subscription; null while it is live.
ALTER TABLE subscriptions ADD COLUMN downgraded_period text;
--> statement-breakpoint
-- Subscription credits belong to a period: a new period (renewal) or an ended plan moves it on.
ALTER TABLE credit_balances ADD COLUMN subscription_period integer NOT NULL DEFAULT 0;
--> statement-breakpoint
-- Purchased credits a refund could not take back because a running job held them: taken from
-- what that job returns.
ALTER TABLE credit_balances ADD COLUMN purchased_debt integer NOT NULL DEFAULT 0;
--> statement-breakpoint
ALTER TABLE credit_balances ADD CONSTRAINT credit_balances_debt_non_negative CHECK (purchased_debt >= 0);
--> statement-breakpoint
-- The period the hold's subscription part came from: returned into a later period, it lapses.
ALTER TABLE credit_holds ADD COLUMN subscription_period integer NOT NULL DEFAULT 0;
--> statement-breakpoint
-- Purchases that matched nobody, found by the buyer's e-mail when that customer signs in.
CREATE INDEX webhook_events_unmatched_email_idx ON webhook_events (lower(payload->'data'->'attributes'->>'user_email'))
  WHERE outcome = 'unknown_user';
--> statement-breakpoint
-- A provider object's recorded events (a refund that overtook its order, an unlinked subscription's invoices).
CREATE INDEX webhook_events_object_idx ON webhook_events (event_name, (payload->'data'->>'id'));
