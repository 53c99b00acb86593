/*
 * inflate.h - a small zlib (RFC 1950) / deflate (RFC 1951) decoder: stored, fixed-Huffman and
 * dynamic-Huffman blocks, Adler-32 checked. Used to read input PNGs; the output size is known
 * in advance there, so the caller owns the output buffer.
 */
#ifndef REFENGINE_INFLATE_H
#define REFENGINE_INFLATE_H

#include <stddef.h>
#include <stdint.h>

enum {
    INFLATE_OK = 0,
    INFLATE_TRUNCATED = -1, /* the stream ends before its last block */
    INFLATE_CORRUPT = -2,   /* a bad header, block type, code table, length or distance */
    INFLATE_TOO_LONG = -3,  /* more output than dst_cap */
    INFLATE_CHECKSUM = -4   /* the Adler-32 trailer does not match */
};

/* Decompresses the zlib stream src[0..src_len) into dst (at most dst_cap bytes); *dst_len gets
 * the number written. Returns INFLATE_OK or one of the negative codes above. */
int zlib_inflate(const uint8_t *src, size_t src_len, uint8_t *dst, size_t dst_cap, size_t *dst_len);

/* A few words for an INFLATE_* code. */
const char *inflate_strerror(int code);

#endif
