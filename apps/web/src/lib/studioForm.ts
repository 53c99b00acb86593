import {
  DEFAULT_SAMPLER,
  DEFAULT_STRENGTH,
  MAX_COUNT,
  MAX_SEED,
  MAX_STRENGTH,
  MIN_STRENGTH,
  MODEL_IDS,
  MODELS,
  SAMPLERS,
  type ImageSource,
  type ModelId,
  type Sampler,
} from '@pingvas/core';
import { matchPreset, presetsFor, type AspectRatio } from './sizes.js';

/** The studio form as the inputs hold it; `toRequest` turns it into generation.create's input. */
export interface StudioForm {
  prompt: string;
  negativePrompt: string;
  model: ModelId;
  size: AspectRatio | 'custom';
  width: number;
  height: number;
  steps: number;
  cfgScale: number;
  seedMode: 'random' | 'fixed';
  /** Text, so a half-typed or empty seed can be shown and reported rather than coerced. */
  seed: string;
  sampler: Sampler;
  /** Images in one job, 1–4. */
  count: number;
  /** The picture to start from: image-to-image, or inpainting with a mask. */
  init: InitImage | null;
  /** How much of the init image is redrawn, 0.05–1 (only sent with an init image). */
  strength: number;
  mask: MaskChoice | null;
}

/** An init image as the form shows it: where it comes from, what it looks like, its size. */
export interface InitImage {
  source: ImageSource;
  /** What the form shows; null when the stored picture is gone (recalled from an old image). */
  url: string | null;
  width: number;
  height: number;
  /** The file name, or what the picture is ("Gallery image"). */
  label: string;
}

/** A mask already uploaded, at the init image's size (white = repaint). */
export interface MaskChoice {
  uploadId: string;
  url: string | null;
}

export function defaultForm(model: ModelId = 'sdxl'): StudioForm {
  const square = presetsFor(model)['1:1'];
  return {
    prompt: '',
    negativePrompt: '',
    model,
    size: '1:1',
    width: square.width,
    height: square.height,
    steps: 30,
    cfgScale: 7,
    seedMode: 'random',
    seed: '',
    sampler: DEFAULT_SAMPLER,
    count: 1,
    init: null,
    strength: DEFAULT_STRENGTH,
    mask: null,
  };
}

/** A new init image drops the old mask: it was painted over another picture. */
export function withInitImage(form: StudioForm, init: InitImage | null): StudioForm {
  return { ...form, init, mask: null };
}

/** Switching model keeps the chosen aspect ratio at the new model's base size. */
export function withModel(form: StudioForm, model: ModelId): StudioForm {
  if (form.size === 'custom') return { ...form, model };
  const size = presetsFor(model)[form.size];
  return { ...form, model, width: size.width, height: size.height };
}

export function withPreset(form: StudioForm, ratio: AspectRatio): StudioForm {
  const size = presetsFor(form.model)[ratio];
  return { ...form, size: ratio, width: size.width, height: size.height };
}

export function toRequest(form: StudioForm) {
  const negative = form.negativePrompt.trim();
  const seedText = form.seed.trim();
  return {
    prompt: form.prompt,
    ...(negative ? { negativePrompt: negative } : {}),
    model: form.model,
    width: form.width,
    height: form.height,
    steps: form.steps,
    cfgScale: form.cfgScale,
    // An empty fixed seed is reported as a missing number by the shared schema, not guessed.
    ...(form.seedMode === 'fixed' ? { seed: seedText === '' ? Number.NaN : Number(seedText) } : {}),
    sampler: form.sampler,
    count: form.count,
    ...(form.init
      ? {
          initImage: form.init.source,
          strength: form.strength,
          ...(form.mask ? { mask: { uploadId: form.mask.uploadId } } : {}),
        }
      : {}),
  };
}

export function randomSeed(): number {
  const buffer = new Uint32Array(1);
  crypto.getRandomValues(buffer);
  return buffer[0]! % (MAX_SEED + 1);
}

/** Where a recalled init image or mask can be seen: the image detail's `sources`. */
export interface RecalledSources {
  initImage?: { width: number; height: number; url: string | null } | null;
  mask?: { url: string | null } | null;
}

function clampCount(count: number | null | undefined): number {
  return typeof count === 'number' && Number.isInteger(count) ? Math.min(MAX_COUNT, Math.max(1, count)) : 1;
}

function clampStrength(strength: number | null | undefined): number {
  return typeof strength === 'number' && Number.isFinite(strength)
    ? Math.min(MAX_STRENGTH, Math.max(MIN_STRENGTH, strength))
    : DEFAULT_STRENGTH;
}

/**
 * "Use these settings" from an image: every parameter, the seed fixed so the same picture
 * comes back, and the init image and mask it started from. Values this studio does not
 * offer fall back to the defaults.
 */
export function formFromParams(
  params: {
    prompt: string;
    negativePrompt?: string | null;
    model: string;
    width: number;
    height: number;
    steps: number;
    cfgScale: number;
    seed?: number | null;
    sampler?: string | null;
    count?: number | null;
    /** As `createInput` says it: one of the two ids. */
    initImage?: { uploadId?: string; imageId?: string } | null;
    strength?: number | null;
    mask?: { uploadId: string } | null;
  },
  sources: RecalledSources = {},
): StudioForm {
  const model = (MODEL_IDS as readonly string[]).includes(params.model) ? (params.model as ModelId) : 'sdxl';
  const sampler = (SAMPLERS as readonly string[]).includes(params.sampler ?? '')
    ? (params.sampler as Sampler)
    : DEFAULT_SAMPLER;
  const size = { width: params.width, height: params.height };
  const source: ImageSource | null = params.initImage?.uploadId
    ? { uploadId: params.initImage.uploadId }
    : params.initImage?.imageId
      ? { imageId: params.initImage.imageId }
      : null;
  const init: InitImage | null = source
    ? {
        source,
        url: sources.initImage?.url ?? null,
        width: sources.initImage?.width ?? params.width,
        height: sources.initImage?.height ?? params.height,
        label: 'uploadId' in source ? 'Uploaded picture' : 'Gallery image',
      }
    : null;
  return {
    prompt: params.prompt,
    negativePrompt: params.negativePrompt ?? '',
    model,
    size: matchPreset(size, model),
    ...size,
    steps: params.steps,
    cfgScale: params.cfgScale,
    seedMode: params.seed === null || params.seed === undefined ? 'random' : 'fixed',
    seed: params.seed === null || params.seed === undefined ? '' : String(params.seed),
    sampler,
    count: clampCount(params.count),
    init,
    strength: clampStrength(params.strength),
    mask: init && params.mask ? { uploadId: params.mask.uploadId, url: sources.mask?.url ?? null } : null,
  };
}

const STORAGE_KEY = 'pingvas.studio.form.v1';

/** The last settings used, so a reload does not lose a carefully tuned form. */
export function loadSavedForm(storage: Pick<Storage, 'getItem'> | undefined): StudioForm {
  try {
    const raw = storage?.getItem(STORAGE_KEY);
    if (!raw) return defaultForm();
    const saved = JSON.parse(raw) as Partial<StudioForm>;
    const base = defaultForm(saved.model && saved.model in MODELS ? saved.model : 'sdxl');
    const merged = { ...base, ...saved };
    // The init image and mask are not remembered: uploads expire, and a stale one would be refused.
    return formFromParams({
      ...merged,
      seed: merged.seedMode === 'fixed' && merged.seed !== '' ? Number(merged.seed) : null,
      initImage: null,
      mask: null,
    });
  } catch {
    return defaultForm();
  }
}

export function saveForm(storage: Pick<Storage, 'setItem'> | undefined, form: StudioForm): void {
  try {
    const { init: _init, mask: _mask, ...remembered } = form;
    storage?.setItem(STORAGE_KEY, JSON.stringify(remembered));
  } catch {
    // Private mode or a full quota: remembering the form is a nicety.
  }
}
