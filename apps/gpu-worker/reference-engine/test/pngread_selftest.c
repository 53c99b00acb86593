/*
 * pngread_selftest.c - checks the PNG reader and inflate against files another encoder made
 * (the vitest suite writes them with sharp/libpng and zlib): the exact pixels, then every
 * truncation (about 200 of them; each must fail) and seeded byte corruptions (each must return, never crash;
 * build it with -fsanitize=address,undefined when the compiler has them).
 * Build: cc -std=c11 -O1 -I.. pngread_selftest.c ../pngread.c ../inflate.c ../png.c -o pngread_selftest
 * Usage: pngread_selftest <file.png> <expected.rgb>   (8-bit RGB rows, as the reader returns them)
 *        pngread_selftest --zlib <file.z> <expected.bin>
 * Prints one line per file and exits 0 when every check passed.
 */
#define _POSIX_C_SOURCE 200809L

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../inflate.h"
#include "../pngread.h"

static unsigned char *slurp(const char *path, size_t *n) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long len = ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *p = (unsigned char *)malloc(len > 0 ? (size_t)len : 1);
    *n = p ? fread(p, 1, (size_t)len, f) : 0;
    fclose(f);
    return p;
}

static int spit(const char *path, const unsigned char *p, size_t n) {
    FILE *f = fopen(path, "wb");
    if (!f) return -1;
    size_t w = fwrite(p, 1, n, f);
    return fclose(f) == 0 && w == n ? 0 : -1;
}

static unsigned long long rng = 0x9e3779b97f4a7c15ULL;
static unsigned next(void) {
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (unsigned)(rng >> 32);
}

static int check_zlib(const char *zpath, const char *binpath) {
    size_t zn, bn;
    unsigned char *z = slurp(zpath, &zn), *want = slurp(binpath, &bn);
    if (!z || !want) return fprintf(stderr, "cannot read %s or %s\n", zpath, binpath), 1;
    unsigned char *out = (unsigned char *)malloc(bn + 1);
    size_t got;
    int rc = zlib_inflate(z, zn, out, bn + 1, &got);
    if (rc != INFLATE_OK || got != bn || memcmp(out, want, bn) != 0)
        return fprintf(stderr, "%s: %s, %zu of %zu bytes\n", zpath, inflate_strerror(rc), got, bn), 1;
    for (size_t cut = 0; cut < zn; cut = cut + zn / 200 + 1 < zn ? cut + zn / 200 + 1 : (cut < zn - 1 ? zn - 1 : zn))
        if (zlib_inflate(z, cut, out, bn + 1, &got) == INFLATE_OK) /* about 200 cuts, up to all but the last byte */
            return fprintf(stderr, "%s: a cut at %zu bytes was accepted\n", zpath, cut), 1;
    if (bn > 0 && zlib_inflate(z, zn, out, bn - 1, &got) != INFLATE_TOO_LONG)
        return fprintf(stderr, "%s: a short buffer was not refused\n", zpath), 1;
    for (int k = 0; k < 500; k++) { /* corruptions: any answer but a crash */
        unsigned char *bad = (unsigned char *)malloc(zn);
        memcpy(bad, z, zn);
        bad[next() % zn] ^= (unsigned char)(1 + next() % 255);
        zlib_inflate(bad, zn, out, bn + 1, &got);
        free(bad);
    }
    printf("ok %s (%zu -> %zu bytes)\n", zpath, zn, bn);
    free(z);
    free(want);
    free(out);
    return 0;
}

static int check_png(const char *path, const char *rawpath) {
    size_t n, rn;
    unsigned char *file = slurp(path, &n), *want = slurp(rawpath, &rn);
    if (!file || !want) return fprintf(stderr, "cannot read %s or %s\n", path, rawpath), 1;
    png_image img;
    char why[256];
    int rc = png_read_file(path, &img, why, sizeof(why));
    if (rc != PNG_READ_OK) return fprintf(stderr, "%s: %s\n", path, why), 1;
    if ((size_t)img.width * (size_t)img.height * 3 != rn || memcmp(img.rgb, want, rn) != 0)
        return fprintf(stderr, "%s: the pixels differ (%dx%d)\n", path, img.width, img.height), 1;
    free(img.rgb);
    const int w = img.width, h = img.height, channels = img.channels;
    char tmp[64];
    snprintf(tmp, sizeof(tmp), "/tmp/pngread-selftest-%ld.png", (long)getpid());
    for (size_t cut = 0; cut < n; cut = cut + n / 150 + 1 < n ? cut + n / 150 + 1 : (cut < n - 1 ? n - 1 : n)) {
        spit(tmp, file, cut); /* about 150 cuts, from none to all but the last byte */
        if (png_read_file(tmp, &img, why, sizeof(why)) == PNG_READ_OK)
            return fprintf(stderr, "%s: a cut at %zu bytes was accepted\n", path, cut), remove(tmp), 1;
    }
    unsigned char *bad = (unsigned char *)malloc(n);
    for (int k = 0; k < 300; k++) {
        memcpy(bad, file, n);
        bad[8 + next() % (n - 8)] ^= (unsigned char)(1 + next() % 255);
        spit(tmp, bad, n);
        if (png_read_file(tmp, &img, why, sizeof(why)) == PNG_READ_OK) free(img.rgb);
    }
    remove(tmp);
    free(bad);
    printf("ok %s (%dx%d, %d channels)\n", path, w, h, channels);
    free(file);
    free(want);
    return 0;
}

int main(int argc, char **argv) {
    int failed = 0;
    if (argc >= 2 && strcmp(argv[1], "--zlib") == 0) {
        for (int i = 2; i + 1 < argc; i += 2) failed |= check_zlib(argv[i], argv[i + 1]);
    } else {
        for (int i = 1; i + 1 < argc; i += 2) failed |= check_png(argv[i], argv[i + 1]);
    }
    return failed;
}
