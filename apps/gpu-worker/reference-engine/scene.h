/*
 * scene.h - the reference engine's "model": a picture derived deterministically
 * from (prompt, negative prompt, seed, cfg scale, width, height).
 *
 * Words become coloured shapes (a table knows common subjects - sun, sea,
 * mountains, city, flowers, stars... - and colour/mood words; any other word is
 * hashed to a hue, a shape and a place). The negative prompt removes shapes
 * whose word it contains, pushes colours away from its hues and shifts the
 * palette; the cfg scale sets saturation and contrast; the seed moves
 * everything around.
 */
#ifndef REFENGINE_SCENE_H
#define REFENGINE_SCENE_H

#include <stddef.h>
#include <stdint.h>

#define SCENE_MAX_ELEMENTS 16

typedef struct {
    float r, g, b;
} rgbf;

typedef struct {
    int shape;
    float u, v;   /* centre as fractions of width / height */
    float size;   /* fraction of min(width, height) */
    float aspect; /* shape-specific proportions */
    float param;  /* shape-specific: tilt, slope, amplitude... */
    uint64_t h;   /* per-element hash for sub-details */
    rgbf col;
    float alpha;
    int layer;
    char word[24];
} scene_element;

typedef struct {
    rgbf top, bottom;
    float tex_amp;
    uint64_t tex_seed;
    float vignette;
    float sat, contrast, bright;
    int n;
    scene_element el[SCENE_MAX_ELEMENTS];
    int n_words, n_neg_words, n_removed;
} scene;

void scene_build(scene *s, const char *prompt, const char *negative, int64_t seed, float cfg);

/* Renders the picture into dst (w*h*3 floats, interleaved RGB, range [-1, 1]). */
void scene_render(const scene *s, float *dst, int w, int h);

/* One-line description for verbose logs. */
void scene_summary(const scene *s, char *buf, size_t cap);

const char *scene_shape_name(int shape);

/* Burns a small text label (upper-case letters, digits, space, '-') into an
 * 8-bit RGB image, bottom-left. Skipped when the image is too small. */
void label_draw(uint8_t *rgb, int w, int h, const char *text);

#endif
