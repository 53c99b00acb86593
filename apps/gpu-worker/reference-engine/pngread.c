/*
 * pngread.c - PNG decoder for input images (RFC 2083): chunks, CRCs, inflate, row filters,
 * sample unpacking to 8-bit RGB.
 */
#include "pngread.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "inflate.h"
#include "png.h" /* png_crc32 */

#if defined(__GNUC__) || defined(__clang__)
__attribute__((format(printf, 4, 5)))
#endif
static int why_not(int code, char *why, size_t whylen, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, whylen, fmt, ap);
    va_end(ap);
    return code;
}

static uint32_t be32(const uint8_t *p) {
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static int read_all(const char *path, uint8_t **data, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) return -1;
    size_t cap = 1 << 16, n = 0;
    uint8_t *buf = (uint8_t *)malloc(cap);
    while (buf) {
        size_t got = fread(buf + n, 1, cap - n, f);
        n += got;
        if (n < cap) break;
        uint8_t *bigger = (uint8_t *)realloc(buf, cap * 2);
        if (!bigger) {
            free(buf);
            buf = NULL;
            errno = ENOMEM;
            break;
        }
        buf = bigger;
        cap *= 2;
    }
    int failed = !buf || ferror(f);
    int err = errno;
    fclose(f);
    if (failed) {
        free(buf);
        errno = err ? err : EIO;
        return -1;
    }
    *data = buf;
    *len = n;
    return 0;
}

/* what a file that is not a PNG seems to be, for the error message */
static const char *format_guess(const uint8_t *p, size_t n) {
    if (n >= 3 && p[0] == 0xff && p[1] == 0xd8 && p[2] == 0xff) return "a JPEG";
    if (n >= 12 && memcmp(p, "RIFF", 4) == 0 && memcmp(p + 8, "WEBP", 4) == 0) return "a WebP";
    if (n >= 6 && (memcmp(p, "GIF87a", 6) == 0 || memcmp(p, "GIF89a", 6) == 0)) return "a GIF";
    if (n >= 2 && p[0] == 'B' && p[1] == 'M') return "a BMP";
    return NULL;
}

static int paeth(int a, int b, int c) {
    int p = a + b - c, pa = abs(p - a), pb = abs(p - b), pc = abs(p - c);
    return pa <= pb && pa <= pc ? a : pb <= pc ? b : c;
}

/* undoes the row filters in place; raw holds h rows of (1 + stride) bytes */
static int unfilter(uint8_t *raw, int h, size_t stride, int bpp) {
    uint8_t *prev = NULL;
    for (int y = 0; y < h; y++) {
        uint8_t *row = raw + (size_t)y * (stride + 1);
        int type = row[0];
        uint8_t *cur = row + 1;
        for (size_t i = 0; i < stride; i++) {
            int a = i >= (size_t)bpp ? cur[i - (size_t)bpp] : 0;
            int b = prev ? prev[i] : 0;
            int c = prev && i >= (size_t)bpp ? prev[i - (size_t)bpp] : 0;
            int pred;
            switch (type) {
            case 0: pred = 0; break;
            case 1: pred = a; break;
            case 2: pred = b; break;
            case 3: pred = (a + b) >> 1; break;
            case 4: pred = paeth(a, b, c); break;
            default: return -1;
            }
            cur[i] = (uint8_t)(cur[i] + pred);
        }
        prev = cur;
    }
    return 0;
}

int png_read_file(const char *path, png_image *img, char *why, size_t whylen) {
    static const uint8_t SIG[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
    memset(img, 0, sizeof(*img));
    uint8_t *file;
    size_t n;
    if (read_all(path, &file, &n) != 0) return why_not(PNG_READ_IO, why, whylen, "%s", strerror(errno));

    int rc = PNG_READ_OK;
    uint8_t *idat = NULL, *raw = NULL;
    size_t idat_len = 0;
    uint8_t palette[256][3];
    int npalette = 0, has_trns = 0, seen_ihdr = 0, seen_iend = 0;
    int w = 0, h = 0, depth = 0, ctype = 0, interlace = 0;
    if (n < 8 || memcmp(file, SIG, 8) != 0) {
        const char *guess = format_guess(file, n);
        rc = guess ? why_not(PNG_READ_UNSUPPORTED, why, whylen, "%s file, and the reference engine reads only PNG", guess)
                   : why_not(PNG_READ_BAD, why, whylen, "not a PNG file");
        goto done;
    }
    for (size_t at = 8; !seen_iend;) {
        if (n - at < 12) {
            rc = why_not(PNG_READ_BAD, why, whylen, "truncated PNG (no IEND chunk)");
            goto done;
        }
        uint32_t len = be32(file + at);
        const uint8_t *type = file + at + 4, *data = file + at + 8;
        if (len > n - at - 12) {
            rc = why_not(PNG_READ_BAD, why, whylen, "truncated PNG (chunk %.4s)", (const char *)type);
            goto done;
        }
        if (png_crc32(0, type, (size_t)len + 4) != be32(data + len)) {
            rc = why_not(PNG_READ_BAD, why, whylen, "damaged PNG (CRC mismatch in chunk %.4s)", (const char *)type);
            goto done;
        }
        at += (size_t)len + 12;
        if (!seen_ihdr && memcmp(type, "IHDR", 4) != 0) {
            rc = why_not(PNG_READ_BAD, why, whylen, "damaged PNG (IHDR is not the first chunk)");
            goto done;
        }
        if (memcmp(type, "IHDR", 4) == 0) {
            if (len != 13 || seen_ihdr) {
                rc = why_not(PNG_READ_BAD, why, whylen, "damaged PNG (bad IHDR)");
                goto done;
            }
            seen_ihdr = 1;
            uint32_t uw = be32(data), uh = be32(data + 4);
            depth = data[8];
            ctype = data[9];
            interlace = data[12];
            int depth_ok = (ctype == 0 && (depth == 1 || depth == 2 || depth == 4 || depth == 8 || depth == 16)) ||
                           (ctype == 3 && (depth == 1 || depth == 2 || depth == 4 || depth == 8)) ||
                           ((ctype == 2 || ctype == 4 || ctype == 6) && (depth == 8 || depth == 16));
            if (uw == 0 || uh == 0 || !depth_ok || data[10] != 0 || data[11] != 0 || interlace > 1) {
                rc = why_not(PNG_READ_BAD, why, whylen, "damaged PNG (bad IHDR: %ux%u, bit depth %d, colour type %d)",
                             uw, uh, depth, ctype);
                goto done;
            }
            if (interlace) {
                rc = why_not(PNG_READ_UNSUPPORTED, why, whylen,
                             "interlaced (Adam7) PNG, and the reference engine reads only non-interlaced ones");
                goto done;
            }
            if (uw > PNG_READ_MAX_SIDE || uh > PNG_READ_MAX_SIDE) {
                rc = why_not(PNG_READ_UNSUPPORTED, why, whylen, "%ux%u PNG, and the reference engine reads at most %d px a side",
                             uw, uh, PNG_READ_MAX_SIDE);
                goto done;
            }
            w = (int)uw;
            h = (int)uh;
        } else if (memcmp(type, "PLTE", 4) == 0) {
            if (len % 3 || len / 3 > 256 || len == 0) {
                rc = why_not(PNG_READ_BAD, why, whylen, "damaged PNG (bad PLTE)");
                goto done;
            }
            npalette = (int)(len / 3);
            memcpy(palette, data, len);
        } else if (memcmp(type, "tRNS", 4) == 0) {
            has_trns = 1;
        } else if (memcmp(type, "IDAT", 4) == 0) {
            uint8_t *grown = (uint8_t *)realloc(idat, idat_len + len + 1);
            if (!grown) {
                rc = why_not(PNG_READ_IO, why, whylen, "out of memory");
                goto done;
            }
            idat = grown;
            memcpy(idat + idat_len, data, len);
            idat_len += len;
        } else if (memcmp(type, "IEND", 4) == 0) {
            seen_iend = 1;
        } else if (!(type[0] & 0x20)) { /* an unknown critical chunk: the image cannot be read right */
            rc = why_not(PNG_READ_BAD, why, whylen, "PNG with an unknown critical chunk %.4s", (const char *)type);
            goto done;
        }
    }
    if (ctype == 3 && npalette == 0) {
        rc = why_not(PNG_READ_BAD, why, whylen, "damaged PNG (palette image without PLTE)");
        goto done;
    }
    if (!idat) {
        rc = why_not(PNG_READ_BAD, why, whylen, "damaged PNG (no IDAT)");
        goto done;
    }
    {
        static const int SAMPLES[7] = {1, 0, 3, 1, 2, 0, 4};
        int samples = SAMPLES[ctype], bits = samples * depth;
        size_t stride = ((size_t)w * (size_t)bits + 7) / 8, want = (stride + 1) * (size_t)h, got;
        int bpp = bits >= 8 ? bits / 8 : 1;
        raw = (uint8_t *)malloc(want);
        img->rgb = (uint8_t *)malloc((size_t)w * (size_t)h * 3);
        if (!raw || !img->rgb) {
            rc = why_not(PNG_READ_IO, why, whylen, "out of memory for a %dx%d image", w, h);
            goto done;
        }
        int z = zlib_inflate(idat, idat_len, raw, want, &got);
        if (z == INFLATE_OK && got != want) z = INFLATE_TRUNCATED;
        if (z != INFLATE_OK) {
            rc = why_not(PNG_READ_BAD, why, whylen, "damaged PNG (%s)", inflate_strerror(z));
            goto done;
        }
        if (unfilter(raw, h, stride, bpp) != 0) {
            rc = why_not(PNG_READ_BAD, why, whylen, "damaged PNG (unknown row filter)");
            goto done;
        }
        int step = depth == 16 ? 2 : 1; /* 16-bit samples: the high byte, as stb_image */
        for (int y = 0; y < h; y++) {
            const uint8_t *row = raw + (size_t)y * (stride + 1) + 1;
            uint8_t *out = img->rgb + (size_t)y * (size_t)w * 3;
            for (int x = 0; x < w; x++, out += 3) {
                if (depth < 8) { /* packed gray or palette indexes, MSB first */
                    int v = (row[(x * depth) >> 3] >> (8 - depth - ((x * depth) & 7))) & ((1 << depth) - 1);
                    if (ctype == 3) {
                        if (v >= npalette) {
                            rc = why_not(PNG_READ_BAD, why, whylen, "damaged PNG (palette index out of range)");
                            goto done;
                        }
                        memcpy(out, palette[v], 3);
                    } else {
                        out[0] = out[1] = out[2] = (uint8_t)(v * 255 / ((1 << depth) - 1));
                    }
                    continue;
                }
                const uint8_t *px = row + (size_t)x * (size_t)samples * (size_t)step;
                if (ctype == 3) {
                    if (px[0] >= npalette) {
                        rc = why_not(PNG_READ_BAD, why, whylen, "damaged PNG (palette index out of range)");
                        goto done;
                    }
                    memcpy(out, palette[px[0]], 3);
                } else if (ctype == 0 || ctype == 4) {
                    out[0] = out[1] = out[2] = px[0];
                } else {
                    out[0] = px[0];
                    out[1] = px[step];
                    out[2] = px[2 * step];
                }
            }
        }
        img->width = w;
        img->height = h;
        img->channels = ctype == 3 ? (has_trns ? 4 : 3) : samples;
    }
done:
    free(file);
    free(idat);
    free(raw);
    if (rc != PNG_READ_OK) {
        free(img->rgb);
        img->rgb = NULL;
    }
    return rc;
}
