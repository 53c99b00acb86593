/**
 * Image formats told from their first bytes, without decoding a pixel: enough to refuse a
 * worker's upload or preview that is not what it claims to be.
 */

const PNG_SIGNATURE = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];
/** Signature (8) + IHDR length (4) + "IHDR" (4) + width (4) + height (4). */
export const PNG_HEADER_BYTES = 24;
/** "RIFF", the file size, "WEBP". */
export const WEBP_HEADER_BYTES = 12;
/** The RIFF header and the first chunk's header, up to the bytes that give the size in every variant. */
const WEBP_SIZE_BYTES = 30;

export function pngSize(head: Uint8Array): { width: number; height: number } | null {
  if (head.length < PNG_HEADER_BYTES || PNG_SIGNATURE.some((byte, i) => head[i] !== byte)) return null;
  if (Buffer.from(head.subarray(12, 16)).toString('latin1') !== 'IHDR') return null;
  const view = new DataView(head.buffer, head.byteOffset, head.byteLength);
  return { width: view.getUint32(16), height: view.getUint32(20) };
}

export function isWebp(head: Uint8Array): boolean {
  const text = Buffer.from(head).toString('latin1');
  return head.length >= WEBP_HEADER_BYTES && text.startsWith('RIFF') && text.slice(8, 12) === 'WEBP';
}

/**
 * The canvas size of a WebP, from whichever first chunk it has: VP8X (extended), VP8L
 * (lossless) or VP8 (lossy); null when the bytes are not a WebP.
 */
export function webpSize(bytes: Uint8Array): { width: number; height: number } | null {
  if (bytes.length < WEBP_SIZE_BYTES || !isWebp(bytes)) return null;
  const b = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  switch (b.toString('latin1', 12, 16)) {
    case 'VP8X':
      return { width: b.readUIntLE(24, 3) + 1, height: b.readUIntLE(27, 3) + 1 };
    case 'VP8L': {
      if (b[20] !== 0x2f) return null;
      const bits = b.readUInt32LE(21);
      return { width: (bits & 0x3fff) + 1, height: ((bits >> 14) & 0x3fff) + 1 };
    }
    case 'VP8 ': {
      // A key frame's start code, then 14-bit width and height.
      if (b[23] !== 0x9d || b[24] !== 0x01 || b[25] !== 0x2a) return null;
      return { width: b.readUInt16LE(26) & 0x3fff, height: b.readUInt16LE(28) & 0x3fff };
    }
    default:
      return null;
  }
}
