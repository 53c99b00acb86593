import { sql } from 'drizzle-orm';
import {
  bigint,
  boolean,
  customType,
  doublePrecision,
  index,
  integer,
  jsonb,
  pgTable,
  primaryKey,
  real,
  text,
  timestamp,
  unique,
  uniqueIndex,
  uuid,
} from 'drizzle-orm/pg-core';

const id = () => uuid('id').primaryKey().defaultRandom();
const createdAt = () => timestamp('created_at', { withTimezone: true }).notNull().defaultNow();
const updatedAt = () => timestamp('updated_at', { withTimezone: true }).notNull().defaultNow();
const ownerId = () =>
  uuid('user_id')
    .notNull()
    .references(() => users.id, { onDelete: 'cascade' });

const tsvector = customType<{ data: string }>({ dataType: () => 'tsvector' });

export const users = pgTable('users', {
  id: id(),
  email: text('email').notNull().unique(),
  name: text('name'),
  avatarUrl: text('avatar_url'),
  googleSub: text('google_sub').unique(),
  tier: text('tier', { enum: ['free', 'starter', 'pro'] })
    .notNull()
    .default('free'),
  /** Bumped to revoke every session of the user at once. */
  sessionVersion: integer('session_version').notNull().default(0),
  /** Why the web shows an account banner (e.g. `subscription_cancelled`), or null. */
  bannerReason: text('banner_reason'),
  createdAt: createdAt(),
  updatedAt: updatedAt(),
});

/** Signed-out sessions (the token's `sid`), kept until the token would have expired. */
export const sessionRevocations = pgTable(
  'session_revocations',
  {
    sessionId: uuid('session_id').primaryKey(),
    userId: ownerId(),
    expiresAt: timestamp('expires_at', { withTimezone: true }).notNull(),
    revokedAt: timestamp('revoked_at', { withTimezone: true }).notNull().defaultNow(),
  },
  (t) => [index('session_revocations_user_expiry_idx').on(t.userId, t.expiresAt)],
);

export const subscriptions = pgTable(
  'subscriptions',
  {
    id: id(),
    userId: ownerId(),
    providerSubscriptionId: bigint('provider_subscription_id', { mode: 'number' }).notNull().unique(),
    providerCustomerId: bigint('provider_customer_id', { mode: 'number' }),
    providerOrderId: bigint('provider_order_id', { mode: 'number' }),
    variantId: bigint('variant_id', { mode: 'number' }).notNull(),
    tier: text('tier', { enum: ['starter', 'pro'] }).notNull(),
    status: text('status').notNull(),
    cancelled: boolean('cancelled').notNull().default(false),
    renewsAt: timestamp('renews_at', { withTimezone: true }),
    endsAt: timestamp('ends_at', { withTimezone: true }),
    paymentFailedCount: integer('payment_failed_count').notNull().default(0),
    updatePaymentUrl: text('update_payment_url'),
    customerPortalUrl: text('customer_portal_url'),
    /** The provider's `updated_at` of the newest event applied: older events change nothing. */
    providerUpdatedAt: timestamp('provider_updated_at', { withTimezone: true }),
    /** Ordering key of the newest subscription event applied (updated_at, then tie-breakers). */
    stateVersion: text('state_version'),
    /** Invoice time of the newest invoice event applied (failure count and banner follow it). */
    invoiceAt: timestamp('invoice_at', { withTimezone: true }),
    failedInvoiceId: bigint('failed_invoice_id', { mode: 'number' }),
    /** The newest paid renewal applied: the current period. */
    periodInvoiceId: bigint('period_invoice_id', { mode: 'number' }),
    paidAt: timestamp('paid_at', { withTimezone: true }),
    /** A renewal paid while the subscription had ended, applied when it is live again. */
    pendingInvoiceId: bigint('pending_invoice_id', { mode: 'number' }),
    pendingInvoiceAt: timestamp('pending_invoice_at', { withTimezone: true }),
    recoveredAt: timestamp('recovered_at', { withTimezone: true }),
    /** The period end of the downgrade that ended it; null while live. */
    downgradedPeriod: text('downgraded_period'),
    createdAt: createdAt(),
    updatedAt: updatedAt(),
  },
  (t) => [index('subscriptions_user_idx').on(t.userId)],
);

export const creditBalances = pgTable('credit_balances', {
  userId: uuid('user_id')
    .primaryKey()
    .references(() => users.id, { onDelete: 'cascade' }),
  subscriptionCredits: integer('subscription_credits').notNull().default(0),
  purchasedCredits: integer('purchased_credits').notNull().default(0),
  heldCredits: integer('held_credits').notNull().default(0),
  /** Moves on at each new period and when the plan ends: held plan credits of an older period lapse. */
  subscriptionPeriod: integer('subscription_period').notNull().default(0),
  /** Refunded purchased credits that running jobs held: taken from what those jobs return. */
  purchasedDebt: integer('purchased_debt').notNull().default(0),
  updatedAt: updatedAt(),
});

export const CREDIT_TRANSACTION_TYPES = [
  'monthly_allocation',
  'purchase',
  'adjustment',
  'refund',
  'downgrade',
  'plan_change',
  'expiry',
  'hold',
  'capture',
  'release',
] as const;

/**
 * One row per change of a balance. The three deltas move the three columns of
 * credit_balances; their sums per user always equal the balance row.
 */
export const creditTransactions = pgTable(
  'credit_transactions',
  {
    id: id(),
    userId: ownerId(),
    type: text('type', { enum: CREDIT_TRANSACTION_TYPES }).notNull(),
    idempotencyKey: text('idempotency_key').notNull().unique(),
    subscriptionDelta: integer('subscription_delta').notNull().default(0),
    purchasedDelta: integer('purchased_delta').notNull().default(0),
    heldDelta: integer('held_delta').notNull().default(0),
    /** Available balance (subscription + purchased) right after this row. */
    balanceAfter: integer('balance_after').notNull(),
    holdId: uuid('hold_id'),
    reference: text('reference'),
    description: text('description'),
    createdAt: createdAt(),
  },
  (t) => [index('credit_transactions_user_keyset_idx').on(t.userId, t.createdAt.desc(), t.id.desc())],
);

/** An open or closed reservation of credits for one job. */
export const creditHolds = pgTable(
  'credit_holds',
  {
    id: id(),
    userId: ownerId(),
    idempotencyKey: text('idempotency_key').notNull().unique(),
    reference: text('reference'),
    status: text('status', { enum: ['open', 'captured', 'released'] })
      .notNull()
      .default('open'),
    subscriptionAmount: integer('subscription_amount').notNull(),
    purchasedAmount: integer('purchased_amount').notNull(),
    capturedAmount: integer('captured_amount'),
    /** The balance's subscription period when held: a later period does not get this hold's plan credits back. */
    subscriptionPeriod: integer('subscription_period').notNull().default(0),
    createdAt: createdAt(),
    closedAt: timestamp('closed_at', { withTimezone: true }),
  },
  (t) => [
    index('credit_holds_open_idx')
      .on(t.userId)
      .where(sql`status = 'open'`),
  ],
);

export const generationJobs = pgTable(
  'generation_jobs',
  {
    id: id(),
    userId: ownerId(),
    status: text('status', { enum: ['pending', 'in_progress', 'completed', 'failed', 'cancelled'] })
      .notNull()
      .default('pending'),
    prompt: text('prompt').notNull(),
    negativePrompt: text('negative_prompt'),
    model: text('model').notNull(),
    width: integer('width').notNull(),
    height: integer('height').notNull(),
    steps: integer('steps').notNull(),
    cfgScale: real('cfg_scale').notNull(),
    seed: bigint('seed', { mode: 'number' }).notNull(),
    sampler: text('sampler').notNull(),
    estimatedCredits: integer('estimated_credits').notNull(),
    holdId: uuid('hold_id'),
    chargedCredits: integer('charged_credits'),
    priority: integer('priority').notNull(),
    queueScore: doublePrecision('queue_score').notNull(),
    retryCount: integer('retry_count').notNull().default(0),
    leaseToken: uuid('lease_token'),
    leaseExpiresAt: timestamp('lease_expires_at', { withTimezone: true }),
    /** Set at claim from the job's hold (core jobDeadline): past it the run is stopped even while it heartbeats. */
    runDeadlineAt: timestamp('run_deadline_at', { withTimezone: true }),
    workerId: text('worker_id'),
    /** The current (or last) claim's object prefix, `images/<random>`: the only place its worker may upload. */
    attemptPrefix: text('attempt_prefix'),
    progress: integer('progress').notNull().default(0),
    /** The worker is loading the job's model (no step yet): shown to the user; cleared by progress and by any stop. */
    loadingModel: boolean('loading_model').notNull().default(false),
    kind: text('kind', { enum: ['txt2img', 'img2img', 'inpaint', 'upscale'] })
      .notNull()
      .default('txt2img'),
    /** Images to make (the engine's batch), 1–4; each becomes its own gallery image. */
    count: integer('count').notNull().default(1),
    /** img2img / inpaint: how far from the init image the result may go (0.05–1). */
    strength: real('strength'),
    /** upscale: 2 or 4. The job's width × height is the delivered size. */
    upscaleScale: integer('upscale_scale'),
    /** Where the init image came from (lineage only: the job runs from `initKey`). */
    initUploadId: uuid('init_upload_id'),
    initImageId: uuid('init_image_id'),
    /** The stored PNG the job starts from (img2img, inpaint) or upscales, and its size. */
    initKey: text('init_key'),
    initWidth: integer('init_width'),
    initHeight: integer('init_height'),
    maskUploadId: uuid('mask_upload_id'),
    /** inpaint: the stored PNG mask, the init image's size (white = repaint). */
    maskKey: text('mask_key'),
    cancelRequested: boolean('cancel_requested').notNull().default(false),
    engineSeconds: real('engine_seconds'),
    failureCode: text('failure_code'),
    failureMessage: text('failure_message'),
    createdAt: createdAt(),
    startedAt: timestamp('started_at', { withTimezone: true }),
    finishedAt: timestamp('finished_at', { withTimezone: true }),
    updatedAt: updatedAt(),
  },
  (t) => [
    index('generation_jobs_user_keyset_idx').on(t.userId, t.createdAt.desc(), t.id.desc()),
    index('generation_jobs_active_idx')
      .on(t.status, t.leaseExpiresAt)
      .where(sql`status in ('pending', 'in_progress')`),
    uniqueIndex('generation_jobs_attempt_prefix_idx')
      .on(t.attemptPrefix)
      .where(sql`attempt_prefix is not null`),
  ],
);

export const images = pgTable(
  'images',
  {
    id: id(),
    userId: ownerId(),
    jobId: uuid('job_id')
      .notNull()
      .references(() => generationJobs.id, { onDelete: 'cascade' }),
    /** Which of its job's images (0 … count − 1). */
    jobIndex: integer('job_index').notNull().default(0),
    kind: text('kind', { enum: ['txt2img', 'img2img', 'inpaint', 'upscale'] })
      .notNull()
      .default('txt2img'),
    /** The gallery image its job started from (an upscale's source, an img2img from the gallery). */
    parentImageId: uuid('parent_image_id'),
    originalKey: text('original_key').notNull(),
    thumbKey: text('thumb_key').notNull(),
    width: integer('width').notNull(),
    height: integer('height').notNull(),
    bytes: integer('bytes'),
    prompt: text('prompt').notNull(),
    negativePrompt: text('negative_prompt'),
    model: text('model').notNull(),
    steps: integer('steps').notNull(),
    cfgScale: real('cfg_scale').notNull(),
    seed: bigint('seed', { mode: 'number' }).notNull(),
    sampler: text('sampler').notNull(),
    /** Which engine made it, e.g. `reference` (labelled "reference engine — no model" in the web). */
    engine: text('engine').notNull(),
    starred: boolean('starred').notNull().default(false),
    searchVector: tsvector('search_vector').generatedAlwaysAs(sql`to_tsvector('english', prompt)`),
    createdAt: createdAt(),
  },
  (t) => [
    index('images_user_keyset_idx').on(t.userId, t.createdAt.desc(), t.id.desc()),
    index('images_user_starred_keyset_idx')
      .on(t.userId, t.createdAt.desc(), t.id.desc())
      .where(sql`starred`),
    index('images_search_idx').using('gin', t.searchVector),
    index('images_original_key_idx').on(t.originalKey),
    index('images_thumb_key_idx').on(t.thumbKey),
    unique('images_job_index_unique').on(t.jobId, t.jobIndex),
    index('images_parent_idx')
      .on(t.parentImageId)
      .where(sql`parent_image_id IS NOT NULL`),
  ],
);

export const boards = pgTable(
  'boards',
  {
    id: id(),
    userId: ownerId(),
    name: text('name').notNull(),
    isPublic: boolean('is_public').notNull().default(false),
    shareSlug: text('share_slug').unique(),
    coverImageId: uuid('cover_image_id').references(() => images.id, { onDelete: 'set null' }),
    createdAt: createdAt(),
    updatedAt: updatedAt(),
  },
  (t) => [index('boards_user_idx').on(t.userId, t.createdAt.desc())],
);

export const boardImages = pgTable(
  'board_images',
  {
    boardId: uuid('board_id')
      .notNull()
      .references(() => boards.id, { onDelete: 'cascade' }),
    imageId: uuid('image_id')
      .notNull()
      .references(() => images.id, { onDelete: 'cascade' }),
    userId: ownerId(),
    addedAt: timestamp('added_at', { withTimezone: true }).notNull().defaultNow(),
  },
  (t) => [
    primaryKey({ columns: [t.boardId, t.imageId] }),
    index('board_images_keyset_idx').on(t.boardId, t.addedAt.desc(), t.imageId.desc()),
    index('board_images_image_idx').on(t.imageId),
  ],
);

export const webhookEvents = pgTable(
  'webhook_events',
  {
    id: id(),
    provider: text('provider').notNull(),
    eventName: text('event_name').notNull(),
    /** Identical deliveries share it (a hash of the raw body): a replay is recorded once. */
    dedupeKey: text('dedupe_key').notNull().unique(),
    userId: uuid('user_id'),
    payload: jsonb('payload').notNull(),
    outcome: text('outcome', { enum: ['applied', 'ignored', 'stale', 'unknown_user'] }).notNull(),
    note: text('note'),
    receivedAt: timestamp('received_at', { withTimezone: true }).notNull().defaultNow(),
  },
  (t) => [
    index('webhook_events_unmatched_email_idx')
      .on(sql`lower(${t.payload}->'data'->'attributes'->>'user_email')`)
      .where(sql`outcome = 'unknown_user'`),
    index('webhook_events_object_idx').on(t.eventName, sql`(${t.payload}->'data'->>'id')`),
  ],
);

export const emailOutbox = pgTable(
  'email_outbox',
  {
    id: id(),
    userId: uuid('user_id'),
    dedupeKey: text('dedupe_key').notNull().unique(),
    toAddress: text('to_address').notNull(),
    template: text('template').notNull(),
    subject: text('subject').notNull(),
    textBody: text('text_body').notNull(),
    htmlBody: text('html_body').notNull(),
    status: text('status', { enum: ['pending', 'sending', 'sent', 'failed'] })
      .notNull()
      .default('pending'),
    attempts: integer('attempts').notNull().default(0),
    nextAttemptAt: timestamp('next_attempt_at', { withTimezone: true }).notNull().defaultNow(),
    lockedUntil: timestamp('locked_until', { withTimezone: true }),
    lastError: text('last_error'),
    sentAt: timestamp('sent_at', { withTimezone: true }),
    createdAt: createdAt(),
  },
  (t) => [
    index('email_outbox_due_idx')
      .on(t.nextAttemptAt)
      .where(sql`status = 'pending'`),
  ],
);

/**
 * An image the user uploaded to start from or to paint with. The browser PUTs to `rawKey`;
 * uploads.complete stores the checked, re-encoded PNG at `imageKey`. The sweep deletes the row
 * and its objects after `expiresAt`; NULL means a job relies on it and it is kept.
 */
export const uploads = pgTable(
  'uploads',
  {
    id: id(),
    userId: ownerId(),
    status: text('status', { enum: ['pending', 'ready', 'rejected'] })
      .notNull()
      .default('pending'),
    declaredContentType: text('declared_content_type').notNull(),
    declaredBytes: integer('declared_bytes').notNull(),
    rawKey: text('raw_key').notNull().unique(),
    imageKey: text('image_key').unique(),
    width: integer('width'),
    height: integer('height'),
    bytes: integer('bytes'),
    createdAt: createdAt(),
    completedAt: timestamp('completed_at', { withTimezone: true }),
    expiresAt: timestamp('expires_at', { withTimezone: true }),
  },
  (t) => [
    index('uploads_expires_idx')
      .on(t.expiresAt)
      .where(sql`expires_at IS NOT NULL`),
    index('uploads_user_idx').on(t.userId, t.createdAt.desc()),
  ],
);

/** Tables whose rows belong to one user: RLS enabled, forced, and scoped by `user_id`. */
export const PER_USER_TABLES = [
  'subscriptions',
  'credit_balances',
  'credit_transactions',
  'credit_holds',
  'generation_jobs',
  'images',
  'boards',
  'board_images',
  'session_revocations',
  'uploads',
] as const;
/** Tables only the system path may touch (RLS forced, no user policy). */
export const SYSTEM_ONLY_TABLES = ['webhook_events', 'email_outbox'] as const;
