-- Lets PostgreSQL use the GIN index images_search_idx (and the column's statistics) for
-- `search_vector @@ query` under row-level security.
--
-- With RLS on, the planner applies a user's own conditions only after the policy's, unless the
-- functions in them are LEAKPROOF: otherwise a function that raised an error could tell a caller
-- something about rows the policy hides. `tsvector @@ tsquery` is ts_match_vq (its commutator
-- `tsquery @@ tsvector`, ts_match_qv, just swaps the arguments), and PostgreSQL ships it without
-- the mark, so RLS-scoped searches cannot use the index at all.
--
-- Why marking it is safe: ts_match_vq has no side effects and returns a boolean computed from
-- its two arguments. It raises no error that depends on the row's tsvector: the only errors
-- it can raise are stack depth (from the nesting of the query, which is the caller's own input),
-- query cancellation and out-of-memory, the same class as the built-in functions PostgreSQL
-- itself marks LEAKPROOF (texteq, byteaeq, …).
--
-- Only a superuser may mark a function LEAKPROOF. Where the migrating role is not one (managed
-- PostgreSQL), this notes it and goes on; the API checks pg_proc.proleakproof at run time and
-- keeps its index-free search plan there. The mark lives in this database's catalog (pg_proc is
-- per database) and pg_dump does not carry it: after a restore into a new database, run the
-- two ALTER FUNCTION statements below again as a superuser.
DO $$
BEGIN
  ALTER FUNCTION pg_catalog.ts_match_vq(tsvector, tsquery) LEAKPROOF;
  ALTER FUNCTION pg_catalog.ts_match_qv(tsquery, tsvector) LEAKPROOF;
EXCEPTION WHEN insufficient_privilege THEN
  RAISE NOTICE 'ts_match_vq stays not LEAKPROOF (%): full-text search under row-level security cannot use images_search_idx; the API falls back to walking each user''s images newest first', SQLERRM;
END $$;
--> statement-breakpoint
-- Once `@@` can use the column's statistics, the planner's choice between the GIN index (rare
-- words) and the user's keyset index (common ones) is only as good as its estimate. A word
-- missing from the sampled most-common-elements list is estimated at half the rarest listed
-- frequency, at most 0.5%. With the default target (100: 30,000 sampled rows) a word in 1 of
-- 5,000 prompts is listed or not by the luck of the sample; unlisted, it was estimated at 0.5%,
-- 25 times too common, and the planner ANDed the whole of the user's keyset index into the
-- bitmap (100+ ms instead of 1 at 1,000,000 images). A target of 1000 samples 300,000 rows:
-- ANALYZE of the table takes seconds instead of one, and the estimates hold.
ALTER TABLE images ALTER COLUMN search_vector SET STATISTICS 1000;
