/*
 * png_selftest.c - writes PNGs (and the raw pixels beside them) and zlib
 * streams of awkward inputs, for smoke.sh to check with an independent decoder
 * (Python's zlib). Build: cc -std=c11 -O2 -I.. png_selftest.c ../png.c -o png_selftest
 * Usage: png_selftest <dir>
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../png.h"

static unsigned long long st = 88172645463325252ULL;
static unsigned rnd(void) {
    st ^= st << 13;
    st ^= st >> 7;
    st ^= st << 17;
    return (unsigned)(st >> 32);
}

static int write_file(const char *path, const unsigned char *p, size_t n) {
    FILE *f = fopen(path, "wb");
    if (!f) return -1;
    size_t w = fwrite(p, 1, n, f);
    fclose(f);
    return w == n ? 0 : -1;
}

static int emit_png(const char *dir, const char *name, const unsigned char *rgb, int w, int h) {
    char path[1024];
    unsigned char *png;
    size_t len;
    png_text t[2] = {{"Software", "selftest"}, {"parameters", "caf\xc3\xa9 \xe2\x80\x94 UTF-8 text"}};
    if (png_encode_rgb(rgb, w, h, t, 2, &png, &len) != 0) return -1;
    snprintf(path, sizeof path, "%s/%s.png", dir, name);
    if (write_file(path, png, len)) return -1;
    free(png);
    snprintf(path, sizeof path, "%s/%s.raw", dir, name);
    return write_file(path, rgb, (size_t)w * h * 3);
}

static int emit_z(const char *dir, const char *name, const unsigned char *d, size_t n) {
    char path[1024];
    unsigned char *z;
    size_t len;
    if (zlib_compress(d, n, &z, &len) != 0) return -1;
    snprintf(path, sizeof path, "%s/%s.z", dir, name);
    if (write_file(path, z, len)) return -1;
    free(z);
    snprintf(path, sizeof path, "%s/%s.bin", dir, name);
    return write_file(path, d, n);
}

int main(int argc, char **argv) {
    if (argc < 2) return 2;
    const char *dir = argv[1];
    int sizes[][2] = {{1, 1}, {8, 1}, {1, 8}, {3, 5}, {64, 64}, {333, 97}, {512, 512}, {1024, 768}};
    int fails = 0;
    for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++) {
        int w = sizes[s][0], h = sizes[s][1];
        size_t n = (size_t)w * h * 3;
        unsigned char *p = malloc(n);
        char name[64];
        for (int kind = 0; kind < 5; kind++) {
            for (size_t i = 0; i < n; i++) {
                size_t px = i / 3, x = px % (size_t)w, y = px / (size_t)w;
                switch (kind) {
                case 0: p[i] = (unsigned char)rnd(); break;                         /* noise */
                case 1: p[i] = 77; break;                                           /* flat */
                case 2: p[i] = (unsigned char)(x * 255 / (w > 1 ? w - 1 : 1) + i % 3 * y); break; /* gradients */
                case 3: p[i] = ((x / 7 + y / 5) & 1) ? 250 : 3; break;              /* checks */
                default: p[i] = (rnd() % 100 < 3) ? (unsigned char)rnd() : (unsigned char)(y * 3); break; /* sparse */
                }
            }
            snprintf(name, sizeof name, "img_%dx%d_k%d", w, h, kind);
            if (emit_png(dir, name, p, w, h)) fails++;
        }
        free(p);
    }
    /* raw zlib edge cases */
    size_t big = 300000;
    unsigned char *d = malloc(big);
    memset(d, 0, big);
    if (emit_z(dir, "zeros", d, big)) fails++;
    for (size_t i = 0; i < big; i++) d[i] = (unsigned char)rnd();
    if (emit_z(dir, "random", d, big)) fails++;
    for (size_t i = 0; i < big; i++) d[i] = (unsigned char)(i < 32768 ? rnd() : d[i - 32768]); /* max distance */
    if (emit_z(dir, "dist32768", d, big)) fails++;
    for (size_t i = 0; i < big; i++) d[i] = (unsigned char)(i < 32769 ? rnd() : d[i - 32769]); /* just out of reach */
    if (emit_z(dir, "dist32769", d, big)) fails++;
    for (size_t i = 0; i < big; i++) d[i] = "abcabcabd"[i % 9] + (unsigned char)(i % 1000 == 0);
    if (emit_z(dir, "text", d, big)) fails++;
    if (emit_z(dir, "empty", d, 0)) fails++;
    if (emit_z(dir, "one", d, 1)) fails++;
    if (emit_z(dir, "two", d, 2)) fails++;
    free(d);
    printf("png_selftest: wrote test files to %s (%d failures)\n", dir, fails);
    return fails ? 1 : 0;
}
