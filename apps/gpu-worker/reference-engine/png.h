/*
 * png.h - a small, dependency-free PNG writer (8-bit RGB).
 *
 * Rows are filtered with the usual minimum-sum-of-absolute-differences choice
 * among the five PNG filters, then compressed with our own deflate: LZ77 with
 * hash chains and dynamic Huffman blocks (falling back to stored blocks when
 * those are smaller). CRC32 and Adler32 are computed here too. The output
 * depends only on the pixels and the texts: no timestamps.
 */
#ifndef REFENGINE_PNG_H
#define REFENGINE_PNG_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
    const char *key;  /* 1-79 Latin-1 characters */
    const char *text; /* written as tEXt when pure ASCII, else as UTF-8 iTXt */
} png_text;

/* Encodes w*h RGB pixels (rows top to bottom, 3 bytes a pixel). On success
 * returns 0 and a malloc'd buffer in *out (caller frees); -1 when memory runs out. */
int png_encode_rgb(const uint8_t *rgb, int w, int h, const png_text *texts, int ntexts, uint8_t **out,
                   size_t *out_len);

/* zlib stream (RFC 1950) of data, exposed for tests. Same return convention. */
int zlib_compress(const uint8_t *data, size_t n, uint8_t **out, size_t *out_len);

uint32_t png_crc32(uint32_t crc, const uint8_t *p, size_t n);
uint32_t png_adler32(uint32_t adler, const uint8_t *p, size_t n);

#endif
