/** How the studio names each kind of job (badges on cards and the image page). */
const KIND_LABELS: Record<string, string> = {
  txt2img: 'Text to image',
  img2img: 'Image to image',
  inpaint: 'Inpaint',
  upscale: 'Upscale',
};

export function kindLabel(kind: string): string {
  return KIND_LABELS[kind] ?? kind;
}
