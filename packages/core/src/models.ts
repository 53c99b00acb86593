/**
 * The models users may pick. The price factor scales the credit estimate; the engine
 * files behind each id live in the worker's model registry (config), not here.
 */
export const MODELS = {
  sdxl: { id: 'sdxl', name: 'Stable Diffusion XL', priceFactor: 1.5, defaultSize: 1024 },
  sd15: { id: 'sd15', name: 'Stable Diffusion 1.5', priceFactor: 1.0, defaultSize: 512 },
} as const;

export type ModelId = keyof typeof MODELS;
export const MODEL_IDS = Object.keys(MODELS) as [ModelId, ...ModelId[]];
