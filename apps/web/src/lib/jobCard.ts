import { FAILURE_MESSAGES, type FailureCode, type JobEvent, type JobState } from '@pingvas/core';

export interface JobImageRef {
  id: string;
  width: number;
  height: number;
}

/** What one job card shows; built from the create result and then only from onJob events. */
export interface JobCardState {
  jobId: string;
  status: JobState;
  queuePosition: number | null;
  estimatedWaitSeconds: number | null;
  percent: number;
  step: number | null;
  totalSteps: number | null;
  /** Running, but the worker is still loading the model (no step yet). */
  loadingModel: boolean;
  /** The first image, as before batches. */
  image: JobImageRef | null;
  /** Every image of a finished job, in index order (a batch makes up to 4). */
  images: JobImageRef[];
  /** The newest frame of a running job (live only, never stored). */
  preview: { dataUrl: string; step: number; width: number; height: number } | null;
  creditsCharged: number | null;
  /** Credits given back: on failure or cancel, all or part of the hold. */
  refunded: number | null;
  failure: { code: FailureCode; message: string } | null;
}

export function initialJobCard(input: {
  jobId: string;
  status?: JobState;
  queuePosition?: number | null;
  estimatedWaitSeconds?: number | null;
  totalSteps?: number | null;
}): JobCardState {
  return {
    jobId: input.jobId,
    status: input.status ?? 'pending',
    queuePosition: input.queuePosition ?? null,
    estimatedWaitSeconds: input.estimatedWaitSeconds ?? null,
    percent: 0,
    step: null,
    totalSteps: input.totalSteps ?? null,
    loadingModel: false,
    image: null,
    images: [],
    preview: null,
    creditsCharged: null,
    refunded: null,
    failure: null,
  };
}

export function isTerminal(status: JobState): boolean {
  return status === 'completed' || status === 'failed' || status === 'cancelled';
}

/**
 * Applies one onJob event. Events for another job are ignored, and once a job is terminal
 * only a late snapshot confirming that same terminal state may touch it: a delayed
 * `progress` can never resurrect a finished card, and progress never runs backwards.
 */
export function reduceJobEvent(state: JobCardState, event: JobEvent): JobCardState {
  if (event.jobId !== state.jobId) return state;
  if (isTerminal(state.status) && event.type !== 'snapshot') return state;
  switch (event.type) {
    case 'snapshot': {
      if (isTerminal(state.status)) return state;
      return {
        ...state,
        status: event.status,
        percent: Math.max(state.percent, event.progress),
        queuePosition: event.status === 'pending' ? event.queuePosition : null,
        estimatedWaitSeconds: event.status === 'pending' ? event.estimatedWaitSeconds : null,
        loadingModel: event.status === 'in_progress' && (event.loadingModel ?? false),
      };
    }
    case 'queued':
      // A retry puts a running job back in the queue: its progress starts again.
      return {
        ...state,
        status: 'pending',
        queuePosition: event.position,
        estimatedWaitSeconds: event.estimatedWaitSeconds,
        percent: state.status === 'in_progress' ? 0 : state.percent,
        step: state.status === 'in_progress' ? null : state.step,
        preview: null,
        loadingModel: false,
      };
    case 'started':
      return {
        ...state,
        status: 'in_progress',
        queuePosition: null,
        estimatedWaitSeconds: null,
        percent: 0,
        step: 0,
        loadingModel: false,
      };
    case 'loading-model':
      // Only before the first step: a late event must not hide progress already shown.
      if (state.percent > 0) return state;
      return { ...state, status: 'in_progress', queuePosition: null, estimatedWaitSeconds: null, loadingModel: true };
    case 'progress':
      if (event.percent < state.percent && state.status === 'in_progress') return state;
      return {
        ...state,
        status: 'in_progress',
        queuePosition: null,
        estimatedWaitSeconds: null,
        percent: Math.min(100, Math.max(0, event.percent)),
        step: event.step,
        totalSteps: event.totalSteps,
        loadingModel: false,
      };
    case 'preview':
      // A frame that arrives late (the job already moved on) must not replace a newer one.
      if (state.preview && event.step < state.preview.step) return state;
      return {
        ...state,
        preview: { dataUrl: event.dataUrl, step: event.step, width: event.width, height: event.height },
      };
    case 'completed':
      return {
        ...state,
        status: 'completed',
        percent: 100,
        image: event.image,
        images: event.images && event.images.length > 0 ? event.images : [event.image],
        preview: null,
        creditsCharged: event.creditsCharged,
        queuePosition: null,
        estimatedWaitSeconds: null,
      };
    case 'failed':
      return {
        ...state,
        status: 'failed',
        failure: { code: event.code, message: event.message },
        refunded: event.refunded,
        queuePosition: null,
        estimatedWaitSeconds: null,
      };
    case 'cancelled':
      return {
        ...state,
        status: 'cancelled',
        refunded: event.refunded,
        queuePosition: null,
        estimatedWaitSeconds: null,
      };
  }
}

export function canCancel(state: JobCardState): boolean {
  return state.status === 'pending' || state.status === 'in_progress';
}

/** Rounded, human wait text: "about 40 s", "about 3 min". */
export function formatWait(seconds: number | null): string | null {
  if (seconds === null || !Number.isFinite(seconds)) return null;
  if (seconds < 5) return 'a few seconds';
  if (seconds < 90) return `about ${Math.round(seconds / 5) * 5} s`;
  return `about ${Math.round(seconds / 60)} min`;
}

/** The one line under a card's progress area. */
export function describeJobCard(state: JobCardState): string {
  switch (state.status) {
    case 'pending': {
      const wait = formatWait(state.estimatedWaitSeconds);
      if (state.queuePosition === null) return 'Queued';
      const place = state.queuePosition <= 1 ? 'Next in line' : `#${state.queuePosition} in queue`;
      return wait ? `${place} · ${wait}` : place;
    }
    case 'in_progress':
      if (state.loadingModel) return 'Loading the model…';
      return state.step !== null && state.totalSteps !== null
        ? `Step ${state.step} of ${state.totalSteps}`
        : 'Starting…';
    case 'completed':
      return state.creditsCharged !== null ? `Done · ${state.creditsCharged.toLocaleString('en-US')} credits` : 'Done';
    case 'failed': {
      const message = state.failure
        ? state.failure.message || FAILURE_MESSAGES[state.failure.code]
        : 'The generation failed.';
      const refund = state.refunded
        ? ` ${state.refunded.toLocaleString('en-US')} credits were refunded.`
        : ' Your credits were refunded.';
      return `${message}${refund}`;
    }
    case 'cancelled':
      return state.refunded ? `Cancelled · ${state.refunded.toLocaleString('en-US')} credits refunded` : 'Cancelled';
  }
}

/** onJob data is a JobEvent, or `{ id, data }` when the server tracks events for resumption. */
export function unwrapJobEvent(value: unknown): JobEvent | null {
  if (typeof value !== 'object' || value === null) return null;
  if ('type' in value && typeof (value as { type: unknown }).type === 'string') return value as JobEvent;
  if ('data' in value) return unwrapJobEvent((value as { data: unknown }).data);
  return null;
}

/** The fields of `generation.get` a card can be rebuilt from. */
export interface JobViewLike {
  id: string;
  status: JobState;
  progress: number;
  estimatedCredits: number;
  chargedCredits: number | null;
  failure: { code: FailureCode; message: string } | null;
  image: JobImageRef | null;
  images?: JobImageRef[];
  queuePosition?: number | null;
  estimatedWaitSeconds?: number | null;
  loadingModel?: boolean;
}

/**
 * The card as `generation.get` describes the job: used when live events are unavailable
 * (the WebSocket failed) and to recover the image of a job that finished while the card
 * was not listening (its snapshot says `completed` but not which image). The refund of a
 * failed or cancelled job is the hold minus any charge.
 */
export function cardFromView(state: JobCardState, view: JobViewLike): JobCardState {
  if (view.id !== state.jobId) return state;
  const refunded = view.estimatedCredits - (view.chargedCredits ?? 0);
  switch (view.status) {
    case 'pending':
    case 'in_progress':
      return isTerminal(state.status)
        ? state
        : {
            ...state,
            status: view.status,
            percent: Math.max(view.status === state.status ? state.percent : 0, view.progress),
            queuePosition: view.status === 'pending' ? (view.queuePosition ?? state.queuePosition) : null,
            estimatedWaitSeconds:
              view.status === 'pending' ? (view.estimatedWaitSeconds ?? state.estimatedWaitSeconds) : null,
            loadingModel: view.status === 'in_progress' && (view.loadingModel ?? false),
          };
    case 'completed':
      return {
        ...state,
        status: 'completed',
        percent: 100,
        image: view.image ?? state.image,
        images: view.images && view.images.length > 0 ? view.images : view.image ? [view.image] : state.images,
        preview: null,
        creditsCharged: view.chargedCredits ?? state.creditsCharged,
        queuePosition: null,
        estimatedWaitSeconds: null,
      };
    case 'failed':
      return {
        ...state,
        status: 'failed',
        failure: view.failure ?? state.failure,
        refunded: state.refunded ?? refunded,
        queuePosition: null,
        estimatedWaitSeconds: null,
      };
    case 'cancelled':
      return {
        ...state,
        status: 'cancelled',
        refunded: state.refunded ?? refunded,
        queuePosition: null,
        estimatedWaitSeconds: null,
      };
  }
}
