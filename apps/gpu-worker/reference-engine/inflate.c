/*
 * inflate.c - zlib/deflate decoder (RFC 1950/1951) with canonical Huffman tables.
 *
 * Codes are decoded through a 9-bit lookup table; longer codes (dynamic blocks may use up to
 * 15 bits) fall back to walking the canonical code counts bit by bit.
 */
#include "inflate.h"

#include <string.h>

#include "png.h" /* png_adler32 */

#define MAX_BITS 15
#define FAST_BITS 9

typedef struct {
    const uint8_t *src;
    size_t len, pos;
    uint32_t bits; /* bit buffer, LSB first */
    int nbits;
    int overrun; /* bits were asked for past the end */
    uint8_t *dst;
    size_t cap, out;
} state;

typedef struct {
    uint16_t count[MAX_BITS + 1]; /* codes of each length */
    uint16_t symbol[288];         /* symbols ordered by code */
    uint16_t fast[1 << FAST_BITS]; /* (length << 9) | symbol for short codes, 0 when none */
} huffman;

static int need(state *s, int n) {
    while (s->nbits < n) {
        if (s->pos >= s->len) {
            s->overrun = 1;
            return 0;
        }
        s->bits |= (uint32_t)s->src[s->pos++] << s->nbits;
        s->nbits += 8;
    }
    return 1;
}

static int getbits(state *s, int n, uint32_t *v) {
    if (n == 0) {
        *v = 0;
        return 1;
    }
    if (!need(s, n)) return 0;
    *v = s->bits & ((1u << n) - 1);
    s->bits >>= n;
    s->nbits -= n;
    return 1;
}

static uint32_t reverse_bits(uint32_t code, int len) {
    uint32_t r = 0;
    for (int i = 0; i < len; i++) r = (r << 1) | ((code >> i) & 1);
    return r;
}

/* Builds the tables from code lengths; returns 0, or -1 for an over-subscribed set. An
 * incomplete set is allowed (a single distance code is legal). */
static int build(huffman *h, const uint8_t *lengths, int n) {
    uint16_t offs[MAX_BITS + 2];
    memset(h->count, 0, sizeof(h->count));
    memset(h->fast, 0, sizeof(h->fast));
    for (int i = 0; i < n; i++) h->count[lengths[i]]++;
    h->count[0] = 0;
    int left = 1;
    for (int len = 1; len <= MAX_BITS; len++) {
        left <<= 1;
        left -= h->count[len];
        if (left < 0) return -1;
    }
    offs[1] = 0;
    for (int len = 1; len <= MAX_BITS; len++) offs[len + 1] = (uint16_t)(offs[len] + h->count[len]);
    for (int i = 0; i < n; i++)
        if (lengths[i]) h->symbol[offs[lengths[i]]++] = (uint16_t)i;
    /* the fast table: canonical codes of length <= FAST_BITS, bit-reversed (deflate sends them MSB first) */
    uint32_t code = 0;
    int index = 0;
    for (int len = 1; len <= FAST_BITS; len++) {
        for (int k = 0; k < h->count[len]; k++, index++, code++) {
            uint32_t rev = reverse_bits(code, len);
            for (uint32_t fill = rev; fill < (1u << FAST_BITS); fill += 1u << len)
                h->fast[fill] = (uint16_t)((len << 9) | h->symbol[index]);
        }
        code <<= 1;
    }
    return 0;
}

/* the next symbol, or -1 (truncated or not a code) */
static int decode(state *s, const huffman *h) {
    int overrun = s->overrun;
    need(s, FAST_BITS); /* may come up short near the end: a short code can still be whole */
    s->overrun = overrun;
    uint16_t e = h->fast[s->bits & ((1u << FAST_BITS) - 1)];
    int len = e >> 9;
    if (e && len <= s->nbits) {
        s->bits >>= len;
        s->nbits -= len;
        return e & 0x1ff;
    }
    int code = 0, first = 0, index = 0;
    for (int len = 1; len <= MAX_BITS; len++) {
        uint32_t b;
        if (!getbits(s, 1, &b)) return -1;
        code |= (int)b;
        int count = h->count[len];
        if (code - count < first) return h->symbol[index + (code - first)];
        index += count;
        first += count;
        first <<= 1;
        code <<= 1;
    }
    return -1;
}

static const uint16_t LEN_BASE[29] = {3,  4,  5,  6,  7,  8,  9,  10, 11,  13,  15,  17,  19,  23, 27,
                                      31, 35, 43, 51, 59, 67, 83, 99, 115, 131, 163, 195, 227, 258};
static const uint8_t LEN_EXTRA[29] = {0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3, 4, 4, 4, 4, 5, 5, 5, 5, 0};
static const uint16_t DIST_BASE[30] = {1,   2,   3,   4,   5,   7,    9,    13,   17,   25,   33,   49,   65,    97,    129,
                                       193, 257, 385, 513, 769, 1025, 1537, 2049, 3073, 4097, 6145, 8193, 12289, 16385, 24577};
static const uint8_t DIST_EXTRA[30] = {0, 0, 0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7, 8, 8, 9, 9, 10, 10, 11, 11, 12, 12, 13, 13};

static int fail(state *s, int code) { return s->overrun ? INFLATE_TRUNCATED : code; }

static int codes(state *s, const huffman *lit, const huffman *dist) {
    for (;;) {
        int sym = decode(s, lit);
        if (sym < 0) return fail(s, INFLATE_CORRUPT);
        if (sym < 256) {
            if (s->out >= s->cap) return INFLATE_TOO_LONG;
            s->dst[s->out++] = (uint8_t)sym;
            continue;
        }
        if (sym == 256) return INFLATE_OK;
        sym -= 257;
        if (sym >= 29) return INFLATE_CORRUPT;
        uint32_t extra;
        if (!getbits(s, LEN_EXTRA[sym], &extra)) return INFLATE_TRUNCATED;
        size_t len = LEN_BASE[sym] + extra;
        int ds = decode(s, dist);
        if (ds < 0) return fail(s, INFLATE_CORRUPT);
        if (ds >= 30) return INFLATE_CORRUPT;
        if (!getbits(s, DIST_EXTRA[ds], &extra)) return INFLATE_TRUNCATED;
        size_t d = DIST_BASE[ds] + extra;
        if (d > s->out) return INFLATE_CORRUPT;
        if (len > s->cap - s->out) return INFLATE_TOO_LONG;
        uint8_t *o = s->dst + s->out;
        for (size_t k = 0; k < len; k++) o[k] = o[(ptrdiff_t)k - (ptrdiff_t)d]; /* overlapping copies repeat */
        s->out += len;
    }
}

static int stored(state *s) {
    s->pos -= (size_t)(s->nbits / 8); /* whole bytes read ahead go back; the partial one is skipped */
    s->bits = 0;
    s->nbits = 0;
    if (s->len - s->pos < 4) return INFLATE_TRUNCATED;
    unsigned len = s->src[s->pos] | (unsigned)s->src[s->pos + 1] << 8;
    unsigned nlen = s->src[s->pos + 2] | (unsigned)s->src[s->pos + 3] << 8;
    s->pos += 4;
    if (len != (~nlen & 0xffffu)) return INFLATE_CORRUPT;
    if (s->len - s->pos < len) return INFLATE_TRUNCATED;
    if (len > s->cap - s->out) return INFLATE_TOO_LONG;
    memcpy(s->dst + s->out, s->src + s->pos, len);
    s->pos += len;
    s->out += len;
    return INFLATE_OK;
}

static int fixed(state *s) {
    static huffman lit, dist;
    static int ready;
    if (!ready) {
        uint8_t l[288];
        int k = 0;
        for (; k < 144; k++) l[k] = 8;
        for (; k < 256; k++) l[k] = 9;
        for (; k < 280; k++) l[k] = 7;
        for (; k < 288; k++) l[k] = 8;
        build(&lit, l, 288);
        for (k = 0; k < 30; k++) l[k] = 5;
        build(&dist, l, 30);
        ready = 1;
    }
    return codes(s, &lit, &dist);
}

static int dynamic(state *s) {
    static const uint8_t ORDER[19] = {16, 17, 18, 0, 8, 7, 9, 6, 10, 5, 11, 4, 12, 3, 13, 2, 14, 1, 15};
    uint32_t hlit, hdist, hclen;
    if (!getbits(s, 5, &hlit) || !getbits(s, 5, &hdist) || !getbits(s, 4, &hclen)) return INFLATE_TRUNCATED;
    int nlen = (int)hlit + 257, ndist = (int)hdist + 1, ncode = (int)hclen + 4;
    if (nlen > 286 || ndist > 30) return INFLATE_CORRUPT;
    uint8_t lengths[320];
    memset(lengths, 0, sizeof(lengths));
    for (int i = 0; i < ncode; i++) {
        uint32_t v;
        if (!getbits(s, 3, &v)) return INFLATE_TRUNCATED;
        lengths[ORDER[i]] = (uint8_t)v;
    }
    huffman lencode, lit, dist;
    if (build(&lencode, lengths, 19) != 0) return INFLATE_CORRUPT;
    int at = 0;
    while (at < nlen + ndist) {
        int sym = decode(s, &lencode);
        if (sym < 0) return fail(s, INFLATE_CORRUPT);
        if (sym < 16) {
            lengths[at++] = (uint8_t)sym;
            continue;
        }
        uint8_t value = 0;
        uint32_t rep;
        if (sym == 16) {
            if (at == 0) return INFLATE_CORRUPT;
            value = lengths[at - 1];
            if (!getbits(s, 2, &rep)) return INFLATE_TRUNCATED;
            rep += 3;
        } else if (sym == 17) {
            if (!getbits(s, 3, &rep)) return INFLATE_TRUNCATED;
            rep += 3;
        } else {
            if (!getbits(s, 7, &rep)) return INFLATE_TRUNCATED;
            rep += 11;
        }
        if (at + (int)rep > nlen + ndist) return INFLATE_CORRUPT;
        while (rep--) lengths[at++] = value;
    }
    if (lengths[256] == 0) return INFLATE_CORRUPT; /* no end-of-block code */
    if (build(&lit, lengths, nlen) != 0 || build(&dist, lengths + nlen, ndist) != 0) return INFLATE_CORRUPT;
    return codes(s, &lit, &dist);
}

int zlib_inflate(const uint8_t *src, size_t src_len, uint8_t *dst, size_t dst_cap, size_t *dst_len) {
    state s;
    memset(&s, 0, sizeof(s));
    s.src = src;
    s.len = src_len;
    s.dst = dst;
    s.cap = dst_cap;
    *dst_len = 0;
    if (src_len < 2) return INFLATE_TRUNCATED;
    /* zlib header: deflate, window <= 32 KiB, check bits, no preset dictionary */
    if ((src[0] & 0x0f) != 8 || (src[0] >> 4) > 7 || ((src[0] << 8) | src[1]) % 31 != 0 || (src[1] & 0x20))
        return INFLATE_CORRUPT;
    s.pos = 2;
    uint32_t last;
    do {
        uint32_t type;
        if (!getbits(&s, 1, &last) || !getbits(&s, 2, &type)) return INFLATE_TRUNCATED;
        int rc = type == 0 ? stored(&s) : type == 1 ? fixed(&s) : type == 2 ? dynamic(&s) : INFLATE_CORRUPT;
        if (rc != INFLATE_OK) return rc;
    } while (!last);
    /* the Adler-32 trailer starts at the next byte boundary; unread whole bytes go back */
    size_t pos = s.pos - (size_t)(s.nbits / 8);
    if (src_len - pos < 4) return INFLATE_TRUNCATED;
    uint32_t want = (uint32_t)src[pos] << 24 | (uint32_t)src[pos + 1] << 16 | (uint32_t)src[pos + 2] << 8 | src[pos + 3];
    if (png_adler32(1, dst, s.out) != want) return INFLATE_CHECKSUM;
    *dst_len = s.out;
    return INFLATE_OK;
}

const char *inflate_strerror(int code) {
    switch (code) {
    case INFLATE_OK: return "ok";
    case INFLATE_TRUNCATED: return "the compressed data is truncated";
    case INFLATE_CORRUPT: return "the compressed data is corrupt";
    case INFLATE_TOO_LONG: return "the compressed data holds more than the image";
    case INFLATE_CHECKSUM: return "the compressed data fails its Adler-32 check";
    default: return "unknown inflate error";
    }
}
