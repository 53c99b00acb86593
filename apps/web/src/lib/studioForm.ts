import { DEFAULT_SAMPLER, MAX_SEED, MODEL_IDS, MODELS, SAMPLERS, type ModelId, type Sampler } from '@pingvas/core';
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
  };
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
  };
}

export function randomSeed(): number {
  const buffer = new Uint32Array(1);
  crypto.getRandomValues(buffer);
  return buffer[0]! % (MAX_SEED + 1);
}

/**
 * "Use these settings" from an image: every parameter, the seed fixed so the same picture
 * comes back. Values this studio does not offer fall back to the defaults.
 */
export function formFromParams(params: {
  prompt: string;
  negativePrompt?: string | null;
  model: string;
  width: number;
  height: number;
  steps: number;
  cfgScale: number;
  seed?: number | null;
  sampler?: string | null;
}): StudioForm {
  const model = (MODEL_IDS as readonly string[]).includes(params.model) ? (params.model as ModelId) : 'sdxl';
  const sampler = (SAMPLERS as readonly string[]).includes(params.sampler ?? '')
    ? (params.sampler as Sampler)
    : DEFAULT_SAMPLER;
  const size = { width: params.width, height: params.height };
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
    return formFromParams({
      ...merged,
      seed: merged.seedMode === 'fixed' && merged.seed !== '' ? Number(merged.seed) : null,
    });
  } catch {
    return defaultForm();
  }
}

export function saveForm(storage: Pick<Storage, 'setItem'> | undefined, form: StudioForm): void {
  try {
    storage?.setItem(STORAGE_KEY, JSON.stringify(form));
  } catch {
    // Private mode or a full quota: remembering the form is a nicety.
  }
}
