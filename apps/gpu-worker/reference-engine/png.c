/*
 * png.c - PNG encoder with a hand-written deflate (RFC 1950/1951/2083).
 */
#include "png.h"

#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------------ */
/* checksums                                                           */
/* ------------------------------------------------------------------ */

static uint32_t crc_table[256];
static int crc_ready;

uint32_t png_crc32(uint32_t crc, const uint8_t *p, size_t n) {
    if (!crc_ready) {
        for (uint32_t i = 0; i < 256; i++) {
            uint32_t c = i;
            for (int k = 0; k < 8; k++) c = (c & 1) ? 0xedb88320u ^ (c >> 1) : c >> 1;
            crc_table[i] = c;
        }
        crc_ready = 1;
    }
    crc = ~crc;
    for (size_t i = 0; i < n; i++) crc = crc_table[(crc ^ p[i]) & 0xff] ^ (crc >> 8);
    return ~crc;
}

uint32_t png_adler32(uint32_t adler, const uint8_t *p, size_t n) {
    uint32_t a = adler & 0xffff, b = adler >> 16;
    while (n > 0) {
        size_t chunk = n < 5552 ? n : 5552; /* largest n with no 32-bit overflow */
        n -= chunk;
        while (chunk--) {
            a += *p++;
            b += a;
        }
        a %= 65521;
        b %= 65521;
    }
    return (b << 16) | a;
}

/* ------------------------------------------------------------------ */
/* growable byte buffer + LSB-first bit writer                         */
/* ------------------------------------------------------------------ */

typedef struct {
    uint8_t *p;
    size_t len, cap;
    int err;
    uint64_t bits;
    int nbits;
} buf_t;

static void buf_reserve(buf_t *b, size_t extra) {
    if (b->err || b->len + extra <= b->cap) return;
    size_t cap = b->cap ? b->cap : 4096;
    while (cap < b->len + extra) cap *= 2;
    uint8_t *np = (uint8_t *)realloc(b->p, cap);
    if (!np) {
        b->err = 1;
        return;
    }
    b->p = np;
    b->cap = cap;
}

static void buf_put(buf_t *b, const void *data, size_t n) {
    buf_reserve(b, n);
    if (b->err) return;
    memcpy(b->p + b->len, data, n);
    b->len += n;
}

static void buf_byte(buf_t *b, uint8_t v) { buf_put(b, &v, 1); }

static void buf_be32(buf_t *b, uint32_t v) {
    uint8_t t[4] = {(uint8_t)(v >> 24), (uint8_t)(v >> 16), (uint8_t)(v >> 8), (uint8_t)v};
    buf_put(b, t, 4);
}

static void put_bits(buf_t *b, uint32_t value, int n) {
    b->bits |= (uint64_t)value << b->nbits;
    b->nbits += n;
    while (b->nbits >= 8) {
        buf_byte(b, (uint8_t)b->bits);
        b->bits >>= 8;
        b->nbits -= 8;
    }
}

static void align_byte(buf_t *b) {
    if (b->nbits > 0) put_bits(b, 0, 8 - b->nbits);
}

/* ------------------------------------------------------------------ */
/* deflate tables                                                      */
/* ------------------------------------------------------------------ */

static const uint16_t LEN_BASE[29] = {3,  4,  5,  6,  7,  8,  9,  10, 11,  13,  15,  17,  19,  23, 27,
                                      31, 35, 43, 51, 59, 67, 83, 99, 115, 131, 163, 195, 227, 258};
static const uint8_t LEN_EXTRA[29] = {0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2,
                                      2, 3, 3, 3, 3, 4, 4, 4, 4, 5, 5, 5, 5, 0};
static const uint16_t DIST_BASE[30] = {1,   2,   3,   4,   5,   7,    9,    13,   17,   25,   33,   49,   65,    97,    129,
                                       193, 257, 385, 513, 769, 1025, 1537, 2049, 3073, 4097, 6145, 8193, 12289, 16385, 24577};
static const uint8_t DIST_EXTRA[30] = {0, 0, 0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6,
                                       6, 7, 7, 8, 8, 9, 9, 10, 10, 11, 11, 12, 12, 13, 13};
static const uint8_t CL_ORDER[19] = {16, 17, 18, 0, 8, 7, 9, 6, 10, 5, 11, 4, 12, 3, 13, 2, 14, 1, 15};

static uint8_t len_code[259];    /* match length -> index into LEN_* */
static uint8_t dist_code[32769]; /* distance -> index into DIST_* */
static int tables_ready;

static void init_tables(void) {
    if (tables_ready) return;
    for (int c = 0; c < 29; c++) {
        int hi = c == 28 ? 258 : LEN_BASE[c] + (1 << LEN_EXTRA[c]) - 1;
        if (c == 27) hi = 257; /* 258 has its own code */
        for (int l = LEN_BASE[c]; l <= hi && l <= 258; l++) len_code[l] = (uint8_t)c;
    }
    for (int c = 0; c < 30; c++) {
        int hi = DIST_BASE[c] + (1 << DIST_EXTRA[c]) - 1;
        for (int d = DIST_BASE[c]; d <= hi && d <= 32768; d++) dist_code[d] = (uint8_t)c;
    }
    tables_ready = 1;
}

/* ------------------------------------------------------------------ */
/* Huffman code construction                                           */
/* ------------------------------------------------------------------ */

typedef struct {
    uint32_t w;
    uint16_t sym;
} leaf_t;

static int leaf_cmp(const void *a, const void *b) {
    const leaf_t *x = (const leaf_t *)a, *y = (const leaf_t *)b;
    if (x->w != y->w) return x->w < y->w ? -1 : 1;
    return (int)x->sym - (int)y->sym;
}

/* Code lengths (<= maxbits) for n symbols from their frequencies. Symbols with
 * frequency 0 get length 0. The caller guarantees at least two used symbols. */
static void huff_lengths(const uint32_t *freq_in, int n, int maxbits, uint8_t *lens) {
    uint32_t freq[320];
    leaf_t leaves[320];
    uint32_t weight[640];
    int parent[640], depth[640];
    memcpy(freq, freq_in, sizeof(uint32_t) * (size_t)n);
    for (;;) {
        int nl = 0;
        for (int s = 0; s < n; s++) {
            lens[s] = 0;
            if (freq[s]) {
                leaves[nl].w = freq[s];
                leaves[nl].sym = (uint16_t)s;
                nl++;
            }
        }
        if (nl == 1) { /* cannot happen with our callers, but stay valid */
            lens[leaves[0].sym] = 1;
            return;
        }
        qsort(leaves, (size_t)nl, sizeof(leaf_t), leaf_cmp);
        for (int i = 0; i < nl; i++) weight[i] = leaves[i].w;
        int li = 0, ii = nl, k;
        for (k = nl; k < 2 * nl - 1; k++) {
            int pick[2];
            for (int t = 0; t < 2; t++) {
                if (li < nl && (ii >= k || weight[li] <= weight[ii])) pick[t] = li++;
                else pick[t] = ii++;
            }
            weight[k] = weight[pick[0]] + weight[pick[1]];
            parent[pick[0]] = parent[pick[1]] = k;
        }
        int root = 2 * nl - 2, maxd = 0;
        depth[root] = 0;
        for (k = root - 1; k >= 0; k--) {
            depth[k] = depth[parent[k]] + 1;
            if (k < nl && depth[k] > maxd) maxd = depth[k];
        }
        if (maxd <= maxbits) {
            for (int i = 0; i < nl; i++) lens[leaves[i].sym] = (uint8_t)depth[i];
            return;
        }
        /* too deep: flatten the distribution and try again */
        for (int s = 0; s < n; s++)
            if (freq[s]) freq[s] = (freq[s] >> 1) | 1;
    }
}

/* canonical codes, stored bit-reversed so they can be written LSB first */
static void huff_codes(const uint8_t *lens, int n, uint16_t *codes) {
    int count[16] = {0}, next[16] = {0};
    for (int s = 0; s < n; s++) count[lens[s]]++;
    count[0] = 0;
    int code = 0;
    for (int b = 1; b < 16; b++) {
        code = (code + count[b - 1]) << 1;
        next[b] = code;
    }
    for (int s = 0; s < n; s++) {
        int l = lens[s];
        if (!l) {
            codes[s] = 0;
            continue;
        }
        int c = next[l]++, r = 0;
        for (int i = 0; i < l; i++) r |= ((c >> i) & 1) << (l - 1 - i);
        codes[s] = (uint16_t)r;
    }
}

/* ------------------------------------------------------------------ */
/* block writer                                                        */
/* ------------------------------------------------------------------ */

typedef struct {
    uint16_t a; /* literal byte, or match length */
    uint16_t d; /* 0 for a literal, else distance */
} token_t;

#define MAX_TOKENS 32768

static void ensure_two(uint32_t *freq, int n) {
    int used = 0;
    for (int s = 0; s < n; s++) used += freq[s] != 0;
    for (int s = 0; s < n && used < 2; s++)
        if (!freq[s]) {
            freq[s] = 1;
            used++;
        }
}

static void write_stored(buf_t *out, const uint8_t *data, size_t start, size_t end, int final) {
    do {
        size_t n = end - start;
        if (n > 65535) n = 65535;
        int last = final && start + n == end;
        put_bits(out, last ? 1u : 0u, 1);
        put_bits(out, 0, 2);
        align_byte(out);
        uint8_t hdr[4] = {(uint8_t)n, (uint8_t)(n >> 8), (uint8_t)~n, (uint8_t)(~n >> 8)};
        buf_put(out, hdr, 4);
        buf_put(out, data + start, n);
        start += n;
    } while (start < end);
}

/* Writes the tokens covering data[start, end) as one dynamic block, or as
 * stored blocks when that is smaller. */
static void write_block(buf_t *out, const token_t *tok, int ntok, const uint8_t *data, size_t start, size_t end,
                        int final) {
    uint32_t lf[286] = {0}, df[30] = {0};
    for (int i = 0; i < ntok; i++) {
        if (tok[i].d == 0) lf[tok[i].a]++;
        else {
            lf[257 + len_code[tok[i].a]]++;
            df[dist_code[tok[i].d]]++;
        }
    }
    lf[256] = 1;
    ensure_two(lf, 286);
    ensure_two(df, 30);
    uint8_t ll[286], dl[30];
    huff_lengths(lf, 286, 15, ll);
    huff_lengths(df, 30, 15, dl);

    int hlit = 286, hdist = 30;
    while (hlit > 257 && ll[hlit - 1] == 0) hlit--;
    while (hdist > 1 && dl[hdist - 1] == 0) hdist--;

    /* run-length encode the code lengths */
    uint8_t all[316];
    memcpy(all, ll, (size_t)hlit);
    memcpy(all + hlit, dl, (size_t)hdist);
    int total = hlit + hdist;
    uint8_t rsym[316], rext[316];
    int nr = 0;
    for (int i = 0; i < total;) {
        int l = all[i], run = 1;
        while (i + run < total && all[i + run] == l) run++;
        if (l == 0 && run >= 3) {
            int r = run > 138 ? 138 : run;
            if (r >= 11) {
                rsym[nr] = 18;
                rext[nr++] = (uint8_t)(r - 11);
            } else {
                rsym[nr] = 17;
                rext[nr++] = (uint8_t)(r - 3);
            }
            i += r;
        } else if (l != 0 && run >= 4) {
            rsym[nr] = (uint8_t)l;
            rext[nr++] = 0;
            int r = run - 1 > 6 ? 6 : run - 1;
            rsym[nr] = 16;
            rext[nr++] = (uint8_t)(r - 3);
            i += 1 + r;
        } else {
            rsym[nr] = (uint8_t)l;
            rext[nr++] = 0;
            i++;
        }
    }
    uint32_t cf[19] = {0};
    for (int i = 0; i < nr; i++) cf[rsym[i]]++;
    ensure_two(cf, 19);
    uint8_t cl[19];
    huff_lengths(cf, 19, 7, cl);
    int hclen = 19;
    while (hclen > 4 && cl[CL_ORDER[hclen - 1]] == 0) hclen--;

    /* cost of the dynamic block in bits */
    uint64_t bits = 3 + 5 + 5 + 4 + 3 * (uint64_t)hclen;
    for (int i = 0; i < nr; i++) bits += cl[rsym[i]] + (rsym[i] == 16 ? 2 : rsym[i] == 17 ? 3 : rsym[i] == 18 ? 7 : 0);
    for (int s = 0; s < 286; s++)
        if (ll[s]) {
            uint32_t f = s == 256 ? 1 : lf[s];
            bits += (uint64_t)f * ll[s];
            if (s >= 257) bits += (uint64_t)f * LEN_EXTRA[s - 257];
        }
    for (int s = 0; s < 30; s++) bits += (uint64_t)df[s] * (dl[s] + DIST_EXTRA[s]);
    /* (the ensure_two dummies are counted as used once: a few bits of slack) */
    size_t raw = end - start;
    uint64_t stored_bits = (uint64_t)raw * 8 + ((raw + 65534) / 65535 + 1) * 40;
    if (stored_bits < bits) {
        write_stored(out, data, start, end, final);
        return;
    }

    uint16_t lc[286], dc[30], cc[19];
    huff_codes(ll, 286, lc);
    huff_codes(dl, 30, dc);
    huff_codes(cl, 19, cc);
    put_bits(out, final ? 1u : 0u, 1);
    put_bits(out, 2, 2); /* dynamic Huffman */
    put_bits(out, (uint32_t)(hlit - 257), 5);
    put_bits(out, (uint32_t)(hdist - 1), 5);
    put_bits(out, (uint32_t)(hclen - 4), 4);
    for (int i = 0; i < hclen; i++) put_bits(out, cl[CL_ORDER[i]], 3);
    for (int i = 0; i < nr; i++) {
        put_bits(out, cc[rsym[i]], cl[rsym[i]]);
        if (rsym[i] == 16) put_bits(out, rext[i], 2);
        else if (rsym[i] == 17) put_bits(out, rext[i], 3);
        else if (rsym[i] == 18) put_bits(out, rext[i], 7);
    }
    for (int i = 0; i < ntok; i++) {
        if (tok[i].d == 0) {
            put_bits(out, lc[tok[i].a], ll[tok[i].a]);
        } else {
            int c = len_code[tok[i].a], s = 257 + c;
            put_bits(out, lc[s], ll[s]);
            if (LEN_EXTRA[c]) put_bits(out, (uint32_t)(tok[i].a - LEN_BASE[c]), LEN_EXTRA[c]);
            int dcx = dist_code[tok[i].d];
            put_bits(out, dc[dcx], dl[dcx]);
            if (DIST_EXTRA[dcx]) put_bits(out, (uint32_t)(tok[i].d - DIST_BASE[dcx]), DIST_EXTRA[dcx]);
        }
    }
    put_bits(out, lc[256], ll[256]);
}

/* ------------------------------------------------------------------ */
/* LZ77                                                                */
/* ------------------------------------------------------------------ */

#define WSIZE 32768
#define WMASK (WSIZE - 1)
#define HBITS 15
#define MAX_CHAIN 24
#define GOOD_LEN 64 /* stop searching once a match this long is found */

static inline uint32_t hash3(const uint8_t *p) {
    uint32_t v = (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16);
    return (v * 2654435761u) >> (32 - HBITS);
}

static int deflate_raw(buf_t *out, const uint8_t *data, size_t n) {
    init_tables();
    int32_t *head = (int32_t *)malloc(sizeof(int32_t) << HBITS);
    int32_t *prev = (int32_t *)malloc(sizeof(int32_t) * WSIZE);
    token_t *tok = (token_t *)malloc(sizeof(token_t) * MAX_TOKENS);
    if (!head || !prev || !tok) {
        free(head);
        free(prev);
        free(tok);
        return -1;
    }
    for (int i = 0; i < (1 << HBITS); i++) head[i] = -1;
    /* positions are stored as int32: images are far below 2 GiB of filtered data */
    int ntok = 0;
    size_t block_start = 0, pos = 0;
    if (n == 0) write_stored(out, data, 0, 0, 1);
    while (pos < n) {
        int best_len = 0, best_dist = 0;
        if (pos + 3 <= n) {
            uint32_t h = hash3(data + pos);
            int32_t cand = head[h];
            size_t maxlen = n - pos < 258 ? n - pos : 258;
            int chain = MAX_CHAIN;
            while (cand >= 0 && pos - (size_t)cand <= WSIZE && chain-- > 0) {
                const uint8_t *a = data + cand, *b = data + pos;
                if (a[best_len] == b[best_len] && a[0] == b[0]) {
                    size_t l = 0;
                    while (l < maxlen && a[l] == b[l]) l++;
                    if ((int)l > best_len) {
                        best_len = (int)l;
                        best_dist = (int)(pos - (size_t)cand);
                        if (l >= maxlen || best_len >= GOOD_LEN) break;
                    }
                }
                int32_t nx = prev[cand & WMASK];
                if (nx >= cand) break; /* slot reused by a newer position */
                cand = nx;
            }
            prev[pos & WMASK] = head[h];
            head[h] = (int32_t)pos;
        }
        if (best_len >= 3) {
            tok[ntok].a = (uint16_t)best_len;
            tok[ntok].d = (uint16_t)best_dist;
            ntok++;
            size_t end = pos + (size_t)best_len;
            for (pos++; pos < end; pos++) {
                if (pos + 3 <= n) {
                    uint32_t h = hash3(data + pos);
                    prev[pos & WMASK] = head[h];
                    head[h] = (int32_t)pos;
                }
            }
        } else {
            tok[ntok].a = data[pos];
            tok[ntok].d = 0;
            ntok++;
            pos++;
        }
        if (ntok == MAX_TOKENS || pos == n) {
            write_block(out, tok, ntok, data, block_start, pos, pos == n);
            ntok = 0;
            block_start = pos;
        }
    }
    align_byte(out);
    free(head);
    free(prev);
    free(tok);
    return out->err ? -1 : 0;
}

int zlib_compress(const uint8_t *data, size_t n, uint8_t **out, size_t *out_len) {
    buf_t b = {0};
    buf_byte(&b, 0x78); /* CM=8, CINFO=7 (32K window) */
    buf_byte(&b, 0x9c); /* FLEVEL=2, FCHECK makes 0x789c a multiple of 31 */
    if (deflate_raw(&b, data, n) != 0) {
        free(b.p);
        return -1;
    }
    buf_be32(&b, png_adler32(1, data, n));
    if (b.err) {
        free(b.p);
        return -1;
    }
    *out = b.p;
    *out_len = b.len;
    return 0;
}

/* ------------------------------------------------------------------ */
/* PNG                                                                 */
/* ------------------------------------------------------------------ */

static void chunk(buf_t *b, const char *type, const uint8_t *data, size_t n) {
    buf_be32(b, (uint32_t)n);
    size_t at = b->len;
    buf_put(b, type, 4);
    if (n) buf_put(b, data, n);
    if (b->err) return;
    buf_be32(b, png_crc32(0, b->p + at, n + 4));
}

static int is_ascii(const char *s) {
    for (; *s; s++)
        if ((unsigned char)*s >= 0x80) return 0;
    return 1;
}

static uint8_t paeth(int a, int b, int c) {
    int p = a + b - c, pa = abs(p - a), pb = abs(p - b), pc = abs(p - c);
    if (pa <= pb && pa <= pc) return (uint8_t)a;
    return (uint8_t)(pb <= pc ? b : c);
}

/* filter every row, choosing the filter with the smallest sum of |residual| */
static uint8_t *filter_rows(const uint8_t *rgb, int w, int h, size_t *out_n) {
    size_t stride = (size_t)w * 3, n = (stride + 1) * (size_t)h;
    uint8_t *f = (uint8_t *)malloc(n);
    uint8_t *cand = (uint8_t *)malloc(stride * 5);
    if (!f || !cand) {
        free(f);
        free(cand);
        return NULL;
    }
    for (int y = 0; y < h; y++) {
        const uint8_t *row = rgb + stride * (size_t)y;
        const uint8_t *up = y ? row - stride : NULL;
        uint32_t score[5] = {0};
        for (size_t i = 0; i < stride; i++) {
            int x = row[i];
            int a = i >= 3 ? row[i - 3] : 0, b = up ? up[i] : 0, c = (up && i >= 3) ? up[i - 3] : 0;
            uint8_t v[5] = {(uint8_t)x, (uint8_t)(x - a), (uint8_t)(x - b), (uint8_t)(x - ((a + b) >> 1)),
                            (uint8_t)(x - paeth(a, b, c))};
            for (int k = 0; k < 5; k++) {
                cand[stride * (size_t)k + i] = v[k];
                score[k] += v[k] < 128 ? v[k] : 256 - v[k];
            }
        }
        int best = 0;
        for (int k = 1; k < 5; k++)
            if (score[k] < score[best]) best = k;
        uint8_t *dst = f + (stride + 1) * (size_t)y;
        dst[0] = (uint8_t)best;
        memcpy(dst + 1, cand + stride * (size_t)best, stride);
    }
    free(cand);
    *out_n = n;
    return f;
}

int png_encode_rgb(const uint8_t *rgb, int w, int h, const png_text *texts, int ntexts, uint8_t **out,
                   size_t *out_len) {
    static const uint8_t sig[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
    buf_t b = {0};
    buf_put(&b, sig, 8);
    uint8_t ihdr[13] = {(uint8_t)(w >> 24), (uint8_t)(w >> 16), (uint8_t)(w >> 8), (uint8_t)w,
                        (uint8_t)(h >> 24), (uint8_t)(h >> 16), (uint8_t)(h >> 8), (uint8_t)h,
                        8 /* bit depth */,  2 /* RGB */,        0,                 0,
                        0 /* no interlace */};
    chunk(&b, "IHDR", ihdr, 13);

    for (int i = 0; i < ntexts; i++) {
        buf_t t = {0};
        size_t kl = strlen(texts[i].key);
        if (kl < 1 || kl > 79) continue;
        buf_put(&t, texts[i].key, kl);
        buf_byte(&t, 0);
        int ascii = is_ascii(texts[i].text);
        if (!ascii) { /* iTXt: uncompressed, no language tag, no translated keyword */
            uint8_t z[4] = {0, 0, 0, 0};
            buf_put(&t, z, 4);
        }
        buf_put(&t, texts[i].text, strlen(texts[i].text));
        if (!t.err) chunk(&b, ascii ? "tEXt" : "iTXt", t.p, t.len);
        else b.err = 1;
        free(t.p);
    }

    size_t fn = 0, zn = 0;
    uint8_t *filtered = filter_rows(rgb, w, h, &fn), *z = NULL;
    if (!filtered || zlib_compress(filtered, fn, &z, &zn) != 0) {
        free(filtered);
        free(b.p);
        return -1;
    }
    free(filtered);
    const size_t IDAT_MAX = 1u << 18;
    for (size_t at = 0; at < zn; at += IDAT_MAX) chunk(&b, "IDAT", z + at, zn - at < IDAT_MAX ? zn - at : IDAT_MAX);
    free(z);
    chunk(&b, "IEND", NULL, 0);
    if (b.err) {
        free(b.p);
        return -1;
    }
    *out = b.p;
    *out_len = b.len;
    return 0;
}
