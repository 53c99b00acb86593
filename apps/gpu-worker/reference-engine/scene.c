/*
 * scene.c - prompt -> scene -> target picture (see scene.h).
 * All arithmetic that decides pixels is deterministic (detmath.h).
 */
#include "scene.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "detmath.h"

enum {
    SH_DISC,
    SH_RING,
    SH_BOX,
    SH_GLOW,
    SH_STRIPED,
    SH_FLOWER,
    SH_CRESCENT,
    SH_PLANET, /* the first 8 can be picked by hashing an unknown word */
    SH_MOUNTAIN,
    SH_BAND,
    SH_WAVE,
    SH_SUN,
    SH_STARS,
    SH_TREES,
    SH_CITY,
    SH_RAINBOW,
    SH_CLOUD,
    SH_COUNT
};

static const char *SHAPE_NAMES[SH_COUNT] = {"disc", "ring",     "box",  "glow", "striped", "flower",
                                            "moon", "planet",   "mountain", "band", "wave", "sun",
                                            "stars", "trees",   "city", "rainbow", "cloud"};

const char *scene_shape_name(int shape) { return shape >= 0 && shape < SH_COUNT ? SHAPE_NAMES[shape] : "?"; }

/* drawing order: sky first, subjects last */
static int shape_layer(int shape) {
    switch (shape) {
    case SH_STARS: return 0;
    case SH_SUN: case SH_CRESCENT: case SH_PLANET: case SH_RAINBOW: case SH_CLOUD: return 1;
    case SH_MOUNTAIN: return 2;
    case SH_CITY: case SH_TREES: return 3;
    case SH_BAND: case SH_WAVE: return 4;
    case SH_GLOW: return 5;
    default: return 6;
    }
}

/* ------------------------------------------------------------------ */
/* vocabulary                                                          */
/* ------------------------------------------------------------------ */

enum { K_OBJ, K_COLOR, K_MOOD, K_STOP };
enum { PL_ANY, PL_SKY, PL_HORIZON, PL_GROUND, PL_SUBJECT };
enum { M_DARK, M_SUNSET, M_BRIGHT, M_COLD, M_NEON, M_AUTUMN, M_FOG, M_UNDERWATER, M_SKY, M_DETAIL, M_CINEMA, M_PASTEL, M_MONO, M_COUNT };

typedef struct {
    const char *w;
    unsigned char kind;
    short hue;          /* degrees, -1: from the hash */
    signed char sat;    /* percent, -1: default */
    signed char light;  /* percent, -1: default */
    unsigned char what; /* shape (K_OBJ) or mood (K_MOOD) */
    unsigned char place;
} vocab_t;

static const vocab_t VOCAB[] = {
    /* colours: tint the next subject (or the background when none follows) */
    {"red", K_COLOR, 0, 80, 50, 0, 0}, {"crimson", K_COLOR, 348, 75, 42, 0, 0}, {"scarlet", K_COLOR, 6, 85, 50, 0, 0},
    {"orange", K_COLOR, 28, 90, 55, 0, 0}, {"amber", K_COLOR, 40, 90, 52, 0, 0}, {"gold", K_COLOR, 46, 80, 52, 0, 0},
    {"golden", K_COLOR, 45, 80, 55, 0, 0}, {"yellow", K_COLOR, 55, 90, 58, 0, 0}, {"lime", K_COLOR, 90, 75, 50, 0, 0},
    {"green", K_COLOR, 120, 60, 42, 0, 0}, {"emerald", K_COLOR, 145, 70, 40, 0, 0}, {"teal", K_COLOR, 175, 60, 38, 0, 0},
    {"turquoise", K_COLOR, 172, 65, 50, 0, 0}, {"cyan", K_COLOR, 186, 80, 52, 0, 0}, {"azure", K_COLOR, 205, 80, 55, 0, 0},
    {"blue", K_COLOR, 220, 75, 48, 0, 0}, {"navy", K_COLOR, 228, 65, 25, 0, 0}, {"indigo", K_COLOR, 250, 60, 38, 0, 0},
    {"violet", K_COLOR, 270, 60, 55, 0, 0}, {"purple", K_COLOR, 282, 60, 45, 0, 0}, {"magenta", K_COLOR, 305, 80, 50, 0, 0},
    {"pink", K_COLOR, 330, 75, 72, 0, 0}, {"rose", K_COLOR, 342, 65, 62, 0, 0}, {"brown", K_COLOR, 25, 45, 30, 0, 0},
    {"white", K_COLOR, 40, 10, 93, 0, 0}, {"black", K_COLOR, 220, 10, 8, 0, 0}, {"gray", K_COLOR, 210, 6, 50, 0, 0},
    {"grey", K_COLOR, 210, 6, 50, 0, 0}, {"silver", K_COLOR, 210, 10, 76, 0, 0},
    /* subjects with a known look and place */
    {"sun", K_OBJ, 45, 95, 62, SH_SUN, PL_SKY}, {"moon", K_OBJ, 52, 25, 86, SH_CRESCENT, PL_SKY},
    {"star", K_OBJ, 55, 30, 90, SH_STARS, PL_SKY}, {"starry", K_OBJ, 55, 30, 90, SH_STARS, PL_SKY},
    {"galaxy", K_OBJ, 280, 40, 85, SH_STARS, PL_SKY}, {"cosmos", K_OBJ, 260, 40, 85, SH_STARS, PL_SKY},
    {"planet", K_OBJ, 30, 50, 55, SH_PLANET, PL_SKY}, {"saturn", K_OBJ, 38, 55, 62, SH_PLANET, PL_SKY},
    {"sea", K_OBJ, 200, 70, 38, SH_WAVE, PL_GROUND}, {"ocean", K_OBJ, 205, 75, 35, SH_WAVE, PL_GROUND},
    {"water", K_OBJ, 195, 65, 42, SH_WAVE, PL_GROUND}, {"lake", K_OBJ, 200, 55, 45, SH_BAND, PL_GROUND},
    {"river", K_OBJ, 195, 60, 45, SH_WAVE, PL_GROUND}, {"wave", K_OBJ, 198, 70, 45, SH_WAVE, PL_GROUND},
    {"beach", K_OBJ, 42, 55, 68, SH_BAND, PL_GROUND}, {"sand", K_OBJ, 40, 55, 66, SH_BAND, PL_GROUND},
    {"desert", K_OBJ, 35, 60, 60, SH_WAVE, PL_GROUND}, {"dune", K_OBJ, 33, 60, 58, SH_WAVE, PL_GROUND},
    {"grass", K_OBJ, 105, 55, 40, SH_BAND, PL_GROUND}, {"field", K_OBJ, 95, 55, 45, SH_BAND, PL_GROUND},
    {"meadow", K_OBJ, 100, 55, 45, SH_BAND, PL_GROUND}, {"garden", K_OBJ, 115, 50, 40, SH_BAND, PL_GROUND},
    {"snow", K_OBJ, 210, 15, 92, SH_BAND, PL_GROUND}, {"ice", K_OBJ, 195, 35, 85, SH_BAND, PL_GROUND},
    {"mountain", K_OBJ, 225, 22, 45, SH_MOUNTAIN, PL_HORIZON}, {"peak", K_OBJ, 225, 20, 48, SH_MOUNTAIN, PL_HORIZON},
    {"alps", K_OBJ, 220, 20, 50, SH_MOUNTAIN, PL_HORIZON}, {"volcano", K_OBJ, 10, 35, 28, SH_MOUNTAIN, PL_HORIZON},
    {"hill", K_OBJ, 110, 45, 38, SH_MOUNTAIN, PL_HORIZON},
    {"forest", K_OBJ, 135, 50, 28, SH_TREES, PL_GROUND}, {"tree", K_OBJ, 125, 50, 32, SH_TREES, PL_GROUND},
    {"pine", K_OBJ, 140, 45, 25, SH_TREES, PL_GROUND}, {"jungle", K_OBJ, 120, 65, 30, SH_TREES, PL_GROUND},
    {"wood", K_OBJ, 130, 45, 28, SH_TREES, PL_GROUND},
    {"city", K_OBJ, 220, 15, 32, SH_CITY, PL_GROUND}, {"skyline", K_OBJ, 225, 18, 30, SH_CITY, PL_GROUND},
    {"building", K_OBJ, 215, 12, 38, SH_CITY, PL_GROUND}, {"skyscraper", K_OBJ, 210, 15, 40, SH_CITY, PL_GROUND},
    {"tower", K_OBJ, 30, 12, 45, SH_BOX, PL_SUBJECT}, {"house", K_OBJ, 18, 40, 45, SH_BOX, PL_GROUND},
    {"castle", K_OBJ, 35, 12, 55, SH_BOX, PL_SUBJECT}, {"cabin", K_OBJ, 22, 45, 35, SH_BOX, PL_GROUND},
    {"cloud", K_OBJ, 210, 15, 94, SH_CLOUD, PL_SKY}, {"cloudy", K_OBJ, 210, 10, 88, SH_CLOUD, PL_SKY},
    {"smoke", K_OBJ, 220, 8, 70, SH_CLOUD, PL_ANY},
    {"fire", K_OBJ, 18, 100, 55, SH_GLOW, PL_SUBJECT}, {"flame", K_OBJ, 25, 100, 55, SH_GLOW, PL_SUBJECT},
    {"lava", K_OBJ, 12, 100, 48, SH_GLOW, PL_GROUND}, {"light", K_OBJ, 50, 80, 75, SH_GLOW, PL_ANY},
    {"flower", K_OBJ, 330, 70, 65, SH_FLOWER, PL_ANY}, {"blossom", K_OBJ, 335, 60, 80, SH_FLOWER, PL_ANY},
    {"tulip", K_OBJ, 355, 75, 55, SH_FLOWER, PL_ANY}, {"sunflower", K_OBJ, 50, 90, 55, SH_FLOWER, PL_SUBJECT},
    {"rainbow", K_OBJ, 0, 80, 55, SH_RAINBOW, PL_SKY},
    {"portrait", K_OBJ, 25, 45, 65, SH_DISC, PL_SUBJECT}, {"face", K_OBJ, 25, 45, 65, SH_DISC, PL_SUBJECT},
    {"robot", K_OBJ, 210, 12, 60, SH_BOX, PL_SUBJECT}, {"car", K_OBJ, 0, 70, 45, SH_BOX, PL_SUBJECT},
    {"ball", K_OBJ, -1, -1, -1, SH_DISC, PL_SUBJECT}, {"bubble", K_OBJ, 190, 50, 80, SH_RING, PL_ANY},
    {"ring", K_OBJ, 45, 70, 55, SH_RING, PL_SUBJECT}, {"circle", K_OBJ, -1, -1, -1, SH_DISC, PL_SUBJECT},
    {"square", K_OBJ, -1, -1, -1, SH_BOX, PL_SUBJECT}, {"box", K_OBJ, 30, 35, 45, SH_BOX, PL_SUBJECT},
    {"cube", K_OBJ, -1, -1, -1, SH_BOX, PL_SUBJECT}, {"stripe", K_OBJ, -1, -1, -1, SH_STRIPED, PL_SUBJECT},
    {"orb", K_OBJ, -1, -1, -1, SH_GLOW, PL_SUBJECT},
    /* moods and styles */
    {"night", K_MOOD, 0, 0, 0, M_DARK, 0}, {"dark", K_MOOD, 0, 0, 0, M_DARK, 0}, {"midnight", K_MOOD, 0, 0, 0, M_DARK, 0},
    {"noir", K_MOOD, 0, 0, 0, M_DARK, 0}, {"moody", K_MOOD, 0, 0, 0, M_DARK, 0}, {"space", K_MOOD, 0, 0, 0, M_DARK, 0},
    {"gothic", K_MOOD, 0, 0, 0, M_DARK, 0}, {"sunset", K_MOOD, 0, 0, 0, M_SUNSET, 0},
    {"sunrise", K_MOOD, 0, 0, 0, M_SUNSET, 0}, {"dusk", K_MOOD, 0, 0, 0, M_SUNSET, 0}, {"dawn", K_MOOD, 0, 0, 0, M_SUNSET, 0},
    {"twilight", K_MOOD, 0, 0, 0, M_SUNSET, 0}, {"bright", K_MOOD, 0, 0, 0, M_BRIGHT, 0},
    {"sunny", K_MOOD, 0, 0, 0, M_BRIGHT, 0}, {"day", K_MOOD, 0, 0, 0, M_BRIGHT, 0}, {"daylight", K_MOOD, 0, 0, 0, M_BRIGHT, 0},
    {"summer", K_MOOD, 0, 0, 0, M_BRIGHT, 0}, {"winter", K_MOOD, 0, 0, 0, M_COLD, 0}, {"frozen", K_MOOD, 0, 0, 0, M_COLD, 0},
    {"snowy", K_MOOD, 0, 0, 0, M_COLD, 0}, {"arctic", K_MOOD, 0, 0, 0, M_COLD, 0}, {"neon", K_MOOD, 0, 0, 0, M_NEON, 0},
    {"cyberpunk", K_MOOD, 0, 0, 0, M_NEON, 0}, {"synthwave", K_MOOD, 0, 0, 0, M_NEON, 0},
    {"vaporwave", K_MOOD, 0, 0, 0, M_NEON, 0}, {"autumn", K_MOOD, 0, 0, 0, M_AUTUMN, 0}, {"fall", K_MOOD, 0, 0, 0, M_AUTUMN, 0},
    {"fog", K_MOOD, 0, 0, 0, M_FOG, 0}, {"foggy", K_MOOD, 0, 0, 0, M_FOG, 0}, {"mist", K_MOOD, 0, 0, 0, M_FOG, 0},
    {"misty", K_MOOD, 0, 0, 0, M_FOG, 0}, {"haze", K_MOOD, 0, 0, 0, M_FOG, 0}, {"underwater", K_MOOD, 0, 0, 0, M_UNDERWATER, 0},
    {"sky", K_MOOD, 0, 0, 0, M_SKY, 0}, {"detailed", K_MOOD, 0, 0, 0, M_DETAIL, 0}, {"intricate", K_MOOD, 0, 0, 0, M_DETAIL, 0},
    {"textured", K_MOOD, 0, 0, 0, M_DETAIL, 0}, {"cinematic", K_MOOD, 0, 0, 0, M_CINEMA, 0},
    {"dramatic", K_MOOD, 0, 0, 0, M_CINEMA, 0}, {"pastel", K_MOOD, 0, 0, 0, M_PASTEL, 0},
    {"soft", K_MOOD, 0, 0, 0, M_PASTEL, 0}, {"monochrome", K_MOOD, 0, 0, 0, M_MONO, 0}, {"bw", K_MOOD, 0, 0, 0, M_MONO, 0},
    /* words that draw nothing */
    {"a", K_STOP, 0, 0, 0, 0, 0}, {"an", K_STOP, 0, 0, 0, 0, 0}, {"the", K_STOP, 0, 0, 0, 0, 0}, {"of", K_STOP, 0, 0, 0, 0, 0},
    {"and", K_STOP, 0, 0, 0, 0, 0}, {"with", K_STOP, 0, 0, 0, 0, 0}, {"in", K_STOP, 0, 0, 0, 0, 0}, {"on", K_STOP, 0, 0, 0, 0, 0},
    {"at", K_STOP, 0, 0, 0, 0, 0}, {"by", K_STOP, 0, 0, 0, 0, 0}, {"for", K_STOP, 0, 0, 0, 0, 0}, {"to", K_STOP, 0, 0, 0, 0, 0},
    {"from", K_STOP, 0, 0, 0, 0, 0}, {"is", K_STOP, 0, 0, 0, 0, 0}, {"are", K_STOP, 0, 0, 0, 0, 0}, {"very", K_STOP, 0, 0, 0, 0, 0},
    {"over", K_STOP, 0, 0, 0, 0, 0}, {"under", K_STOP, 0, 0, 0, 0, 0}, {"near", K_STOP, 0, 0, 0, 0, 0},
    {"behind", K_STOP, 0, 0, 0, 0, 0}, {"its", K_STOP, 0, 0, 0, 0, 0}, {"his", K_STOP, 0, 0, 0, 0, 0}, {"her", K_STOP, 0, 0, 0, 0, 0},
    {"their", K_STOP, 0, 0, 0, 0, 0}, {"this", K_STOP, 0, 0, 0, 0, 0}, {"that", K_STOP, 0, 0, 0, 0, 0},
    {"best", K_STOP, 0, 0, 0, 0, 0}, {"quality", K_STOP, 0, 0, 0, 0, 0}, {"masterpiece", K_STOP, 0, 0, 0, 0, 0},
    {"high", K_STOP, 0, 0, 0, 0, 0}, {"highly", K_STOP, 0, 0, 0, 0, 0}, {"ultra", K_STOP, 0, 0, 0, 0, 0}, {"hd", K_STOP, 0, 0, 0, 0, 0},
    {"hdr", K_STOP, 0, 0, 0, 0, 0}, {"4k", K_STOP, 0, 0, 0, 0, 0}, {"8k", K_STOP, 0, 0, 0, 0, 0}, {"uhd", K_STOP, 0, 0, 0, 0, 0},
    {"realistic", K_STOP, 0, 0, 0, 0, 0}, {"photorealistic", K_STOP, 0, 0, 0, 0, 0}, {"photo", K_STOP, 0, 0, 0, 0, 0},
    {"photograph", K_STOP, 0, 0, 0, 0, 0}, {"illustration", K_STOP, 0, 0, 0, 0, 0}, {"painting", K_STOP, 0, 0, 0, 0, 0},
    {"art", K_STOP, 0, 0, 0, 0, 0}, {"artwork", K_STOP, 0, 0, 0, 0, 0}, {"digital", K_STOP, 0, 0, 0, 0, 0},
    {"style", K_STOP, 0, 0, 0, 0, 0}, {"render", K_STOP, 0, 0, 0, 0, 0}, {"lighting", K_STOP, 0, 0, 0, 0, 0},
    {"beautiful", K_STOP, 0, 0, 0, 0, 0}, {"sharp", K_STOP, 0, 0, 0, 0, 0}, {"focus", K_STOP, 0, 0, 0, 0, 0},
    {"trending", K_STOP, 0, 0, 0, 0, 0}, {"artstation", K_STOP, 0, 0, 0, 0, 0}, {"octane", K_STOP, 0, 0, 0, 0, 0},
    {"unreal", K_STOP, 0, 0, 0, 0, 0}, {"engine", K_STOP, 0, 0, 0, 0, 0}, {"award", K_STOP, 0, 0, 0, 0, 0},
    {"winning", K_STOP, 0, 0, 0, 0, 0}, {"lowres", K_STOP, 0, 0, 0, 0, 0}, {"blurry", K_STOP, 0, 0, 0, 0, 0},
    {"worst", K_STOP, 0, 0, 0, 0, 0}, {"low", K_STOP, 0, 0, 0, 0, 0}, {"bad", K_STOP, 0, 0, 0, 0, 0},
    {"ugly", K_STOP, 0, 0, 0, 0, 0}, {"watermark", K_STOP, 0, 0, 0, 0, 0}, {"text", K_STOP, 0, 0, 0, 0, 0},
    {"signature", K_STOP, 0, 0, 0, 0, 0}, {"jpeg", K_STOP, 0, 0, 0, 0, 0}, {"artifacts", K_STOP, 0, 0, 0, 0, 0},
    {"deformed", K_STOP, 0, 0, 0, 0, 0}, {"extra", K_STOP, 0, 0, 0, 0, 0},
};

static const vocab_t *vocab_find(const char *w) {
    for (size_t i = 0; i < sizeof(VOCAB) / sizeof(VOCAB[0]); i++)
        if (strcmp(VOCAB[i].w, w) == 0) return &VOCAB[i];
    /* plurals: "mountains", "stars", "trees", "bushes" */
    size_t n = strlen(w);
    char t[32];
    if (n > 3 && n < sizeof(t) && w[n - 1] == 's') {
        memcpy(t, w, n - 1);
        t[n - 1] = 0;
        for (size_t i = 0; i < sizeof(VOCAB) / sizeof(VOCAB[0]); i++)
            if (VOCAB[i].kind != K_STOP && strcmp(VOCAB[i].w, t) == 0) return &VOCAB[i];
        if (n > 4 && w[n - 2] == 'e') {
            t[n - 2] = 0;
            for (size_t i = 0; i < sizeof(VOCAB) / sizeof(VOCAB[0]); i++)
                if (VOCAB[i].kind != K_STOP && strcmp(VOCAB[i].w, t) == 0) return &VOCAB[i];
        }
    }
    return NULL;
}

/* ------------------------------------------------------------------ */
/* tokenizer: lower-cased words; (emphasis) and [de-emphasis] weights  */
/* ------------------------------------------------------------------ */

#define MAX_WORDS 64

typedef struct {
    char w[24];
    float weight;
} word_t;

static int is_word_byte(unsigned char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c >= 0x80; }

static int tokenize(const char *s, word_t *out, int max) {
    int n = 0, paren = 0, brack = 0;
    if (!s) return 0;
    while (*s && n < max) {
        unsigned char c = (unsigned char)*s;
        if (!is_word_byte(c)) {
            if (c == '(') paren++;
            else if (c == ')' && paren > 0) paren--;
            else if (c == '[') brack++;
            else if (c == ']' && brack > 0) brack--;
            s++;
            continue;
        }
        char w[24];
        int len = 0, digits = 1;
        while (*s && is_word_byte((unsigned char)*s)) {
            unsigned char ch = (unsigned char)*s++;
            if (ch >= 'A' && ch <= 'Z') ch = (unsigned char)(ch - 'A' + 'a');
            if (!(ch >= '0' && ch <= '9')) digits = 0;
            if (len < 23) w[len++] = (char)ch;
        }
        w[len] = 0;
        if (digits) continue; /* "(cat:1.3)" -> the weight's digits draw nothing */
        float wt = 1.0f;
        for (int i = 0; i < paren && i < 4; i++) wt *= 1.1f;
        for (int i = 0; i < brack && i < 4; i++) wt /= 1.1f;
        memcpy(out[n].w, w, (size_t)len + 1);
        out[n].weight = wt;
        n++;
    }
    return n;
}

/* ------------------------------------------------------------------ */
/* colour helpers                                                      */
/* ------------------------------------------------------------------ */

static float wrap_hue(float h) {
    h = h - 360.0f * (float)floor((double)h / 360.0);
    return h >= 360.0f ? h - 360.0f : h;
}

static float hue_channel(float p, float q, float t) {
    if (t < 0) t += 1;
    if (t > 1) t -= 1;
    if (t < 1.0f / 6) return p + (q - p) * 6 * t;
    if (t < 0.5f) return q;
    if (t < 2.0f / 3) return p + (q - p) * (2.0f / 3 - t) * 6;
    return p;
}

static rgbf hsl(float hue, float sat, float light) {
    hue = wrap_hue(hue) / 360.0f;
    sat = clampf(sat, 0, 1);
    light = clampf(light, 0, 1);
    rgbf c;
    if (sat <= 0) {
        c.r = c.g = c.b = light;
        return c;
    }
    float q = light < 0.5f ? light * (1 + sat) : light + sat - light * sat, p = 2 * light - q;
    c.r = hue_channel(p, q, hue + 1.0f / 3);
    c.g = hue_channel(p, q, hue);
    c.b = hue_channel(p, q, hue - 1.0f / 3);
    return c;
}

static float hue_dist(float a, float b) {
    float d = wrap_hue(a - b);
    return d > 180 ? 360 - d : d;
}

/* pushes hue h at least 60 degrees away from each avoided hue */
static float avoid_hues(float h, const float *avoid, int n) {
    for (int pass = 0; pass < 2; pass++)
        for (int i = 0; i < n; i++)
            if (hue_dist(h, avoid[i]) < 40) {
                float d = wrap_hue(h - avoid[i]);
                h = d <= 180 ? avoid[i] + 60 : avoid[i] - 60;
            }
    return wrap_hue(h);
}

/* ------------------------------------------------------------------ */
/* scene construction                                                  */
/* ------------------------------------------------------------------ */

typedef struct {
    float hue, sat, light;
} hsl_t;

static void place_element(scene_element *e, int place, rng64 *r) {
    switch (place) {
    case PL_SKY: e->u = rng_range(r, 0.15f, 0.85f); e->v = rng_range(r, 0.12f, 0.33f); break;
    case PL_HORIZON: e->u = rng_range(r, 0.12f, 0.88f); e->v = rng_range(r, 0.30f, 0.52f); break;
    case PL_GROUND: e->u = rng_range(r, 0.2f, 0.8f); e->v = rng_range(r, 0.64f, 0.80f); break;
    case PL_SUBJECT: e->u = rng_range(r, 0.38f, 0.62f); e->v = rng_range(r, 0.42f, 0.6f); break;
    default: e->u = rng_range(r, 0.12f, 0.88f); e->v = rng_range(r, 0.15f, 0.85f); break;
    }
}

static void size_element(scene_element *e, int place, float weight, rng64 *r) {
    float s;
    switch (e->shape) {
    case SH_SUN: s = rng_range(r, 0.07f, 0.11f); break;
    case SH_CRESCENT: s = rng_range(r, 0.07f, 0.10f); break;
    case SH_PLANET: s = rng_range(r, 0.08f, 0.13f); break;
    case SH_CLOUD: s = rng_range(r, 0.12f, 0.2f); break;
    case SH_GLOW: s = rng_range(r, 0.15f, 0.32f); break;
    case SH_RAINBOW: s = rng_range(r, 0.5f, 0.7f); break;
    case SH_MOUNTAIN: s = rng_range(r, 0.2f, 0.4f); break;
    case SH_BAND: case SH_WAVE: s = rng_range(r, 0.3f, 0.5f); break;
    default: s = place == PL_SUBJECT ? rng_range(r, 0.17f, 0.27f) : rng_range(r, 0.07f, 0.17f); break;
    }
    e->size = s * weight;
    e->aspect = rng_range(r, 0.7f, 1.45f);
    switch (e->shape) {
    case SH_MOUNTAIN: e->param = rng_range(r, 0.75f, 1.45f); break; /* slope */
    case SH_BAND: e->param = rng_range(r, -0.06f, 0.06f); break;    /* tilt */
    case SH_WAVE: e->param = rng_range(r, 0.01f, 0.025f); break;    /* amplitude */
    default: e->param = rng_range(r, 0.0f, 1.0f); break;
    }
}

void scene_build(scene *s, const char *prompt, const char *negative, int64_t seed, float cfg) {
    memset(s, 0, sizeof(*s));
    word_t words[MAX_WORDS], neg[MAX_WORDS];
    int nw = tokenize(prompt, words, MAX_WORDS), nn = tokenize(negative, neg, MAX_WORDS);
    s->n_words = nw;
    s->n_neg_words = nn;
    uint64_t useed = mix64((uint64_t)seed ^ 0x243f6a8885a308d3ULL);
    uint64_t ph = hash_bytes(prompt ? prompt : "", prompt ? strlen(prompt) : 0, 1);
    uint64_t nh = hash_bytes(negative ? negative : "", negative ? strlen(negative) : 0, 2);
    rng64 g;
    rng_seed(&g, useed ^ ph);

    /* what the negative prompt asks to avoid */
    float avoid[MAX_WORDS];
    int navoid = 0, neg_mood[M_COUNT] = {0};
    for (int i = 0; i < nn; i++) {
        const vocab_t *v = vocab_find(neg[i].w);
        if (v && v->kind == K_MOOD) neg_mood[v->what] = 1;
        if (v && v->kind == K_STOP) continue;
        if (v && v->kind != K_MOOD && v->hue >= 0) avoid[navoid++] = v->hue;
        else if (!v) avoid[navoid++] = (float)(hash_bytes(neg[i].w, strlen(neg[i].w), 3) % 360);
    }

    /* moods */
    int mood[M_COUNT] = {0};
    for (int i = 0; i < nw; i++) {
        const vocab_t *v = vocab_find(words[i].w);
        if (v && v->kind == K_MOOD && !neg_mood[v->what]) mood[v->what] = 1;
    }

    /* elements */
    const vocab_t *pending = NULL, *bg_color = NULL;
    int have_subject = 0;
    for (int i = 0; i < nw && s->n < SCENE_MAX_ELEMENTS; i++) {
        const vocab_t *v = vocab_find(words[i].w);
        if (v && (v->kind == K_MOOD || v->kind == K_STOP)) continue;
        int removed = 0; /* a word in both prompts cancels out */
        for (int j = 0; j < nn; j++)
            if (strcmp(neg[j].w, words[i].w) == 0) removed = 1;
        if (removed) {
            s->n_removed++;
            if (!v || v->kind != K_COLOR) pending = NULL;
            continue;
        }
        if (v && v->kind == K_COLOR) {
            pending = v;
            bg_color = v;
            continue;
        }
        scene_element *e = &s->el[s->n];
        uint64_t wh = hash_bytes(words[i].w, strlen(words[i].w), 4);
        e->h = mix64(wh ^ useed ^ ((uint64_t)s->n * 0x9e3779b97f4a7c15ULL));
        rng64 r;
        rng_seed(&r, e->h);
        int place;
        hsl_t c;
        if (v) {
            e->shape = v->what;
            place = v->place;
            c.hue = v->hue >= 0 ? (float)v->hue + rng_range(&r, -8, 8) : (float)(wh % 360);
            c.sat = v->sat >= 0 ? v->sat / 100.0f : 0.5f + (float)((wh >> 12) % 40) / 100.0f;
            c.light = v->light >= 0 ? v->light / 100.0f : 0.38f + (float)((wh >> 20) % 28) / 100.0f;
        } else {
            e->shape = (int)((wh >> 32) % 8);
            place = have_subject ? PL_ANY : PL_SUBJECT;
            c.hue = (float)(wh % 360);
            c.sat = 0.5f + (float)((wh >> 12) % 40) / 100.0f;
            c.light = 0.38f + (float)((wh >> 20) % 28) / 100.0f;
        }
        if (place == PL_SUBJECT) {
            if (have_subject) place = PL_ANY;
            have_subject = 1;
        }
        if (pending) {
            c.hue = pending->hue + rng_range(&r, -4, 4);
            c.sat = pending->sat / 100.0f;
            c.light = pending->light / 100.0f;
            pending = NULL;
            bg_color = NULL; /* it coloured a subject */
        }
        if (navoid) c.hue = avoid_hues(c.hue, avoid, navoid);
        e->col = hsl(c.hue, c.sat, c.light);
        e->alpha = e->shape == SH_GLOW ? 0.75f : e->shape == SH_CLOUD ? 0.8f : 0.93f;
        place_element(e, place, &r);
        size_element(e, place, words[i].weight, &r);
        e->layer = shape_layer(e->shape);
        snprintf(e->word, sizeof(e->word), "%s", words[i].w);
        s->n++;
    }
    if (s->n == 0) { /* empty prompt (or everything removed): an abstract composition from the seed */
        for (int k = 0; k < 3; k++) {
            scene_element *e = &s->el[s->n++];
            e->h = mix64(useed + (uint64_t)k);
            rng64 r;
            rng_seed(&r, e->h);
            e->shape = (int)(rng_next(&r) % 8);
            float hue = rng_range(&r, 0, 360);
            if (navoid) hue = avoid_hues(hue, avoid, navoid);
            e->col = hsl(hue, rng_range(&r, 0.4f, 0.8f), rng_range(&r, 0.35f, 0.65f));
            e->alpha = 0.85f;
            place_element(e, PL_ANY, &r);
            size_element(e, PL_ANY, 1.0f, &r);
            e->layer = shape_layer(e->shape);
            snprintf(e->word, sizeof(e->word), "(seed)");
        }
    }
    /* stable sort by layer */
    for (int i = 1; i < s->n; i++) {
        scene_element t = s->el[i];
        int j = i - 1;
        while (j >= 0 && s->el[j].layer > t.layer) {
            s->el[j + 1] = s->el[j];
            j--;
        }
        s->el[j + 1] = t;
    }

    /* background */
    float bh = (float)(ph % 360) + rng_range(&g, -25, 25);
    if (bg_color) bh = bg_color->hue;
    if (nn) bh += (float)((int)(nh % 41) - 20); /* the negative prompt shifts the palette */
    hsl_t top = {bh, 0.35f, 0.72f}, bot = {bh + 35, 0.40f, 0.45f};
    /* palettes, weakest first: a later one wins */
    if (mood[M_SKY]) top = (hsl_t){205, 0.6f, 0.7f};
    if (mood[M_AUTUMN]) {
        top.hue = 35;
        bot.hue = 18;
        top.sat = bot.sat = 0.6f;
    }
    if (mood[M_COLD]) {
        top = (hsl_t){205, 0.3f, 0.85f};
        bot = (hsl_t){200, 0.25f, 0.72f};
    }
    if (mood[M_UNDERWATER]) {
        top = (hsl_t){188, 0.6f, 0.45f};
        bot = (hsl_t){215, 0.7f, 0.16f};
    }
    if (mood[M_SUNSET]) {
        top = (hsl_t){262, 0.45f, 0.32f};
        bot = (hsl_t){24, 0.85f, 0.58f};
    }
    if (mood[M_NEON]) {
        top = (hsl_t){285, 0.9f, 0.2f};
        bot = (hsl_t){320, 0.95f, 0.35f};
    }
    if (mood[M_DARK]) {
        top.light *= 0.2f;
        bot.light *= 0.45f;
        top.hue = mood[M_SUNSET] ? top.hue : 235;
    }
    if (mood[M_BRIGHT]) {
        top.light = clampf(top.light + 0.12f, 0, 0.9f);
        bot.light = clampf(bot.light + 0.15f, 0, 0.85f);
    }
    if (mood[M_PASTEL]) {
        top.sat *= 0.5f;
        bot.sat *= 0.5f;
        top.light = clampf(top.light + 0.12f, 0, 0.92f);
        bot.light = clampf(bot.light + 0.15f, 0, 0.9f);
    }
    if (navoid) {
        top.hue = avoid_hues(top.hue, avoid, navoid);
        bot.hue = avoid_hues(bot.hue, avoid, navoid);
    }
    s->top = hsl(top.hue, top.sat, top.light);
    s->bottom = hsl(bot.hue, bot.sat, bot.light);

    s->tex_seed = mix64(useed ^ ph ^ (nn ? nh : 0));
    s->tex_amp = mood[M_DETAIL] ? 0.11f : mood[M_FOG] ? 0.03f : 0.06f;
    s->vignette = mood[M_CINEMA] ? 0.45f : 0.22f;
    if (nn) s->vignette += (float)((nh >> 8) % 21) / 100.0f - 0.1f;

    /* cfg scale: low = washed out, 7 = neutral, high = saturated and contrasty ("burnt") */
    if (!(cfg >= 0)) cfg = 0;
    s->sat = clampf(0.25f + 0.107f * cfg, 0.2f, 1.9f);
    s->contrast = cfg <= 7 ? 0.75f + 0.0357f * cfg : 1.0f + (cfg - 7) * 0.04f;
    s->contrast = clampf(s->contrast, 0.6f, 2.0f);
    s->bright = 0;
    if (mood[M_FOG]) s->contrast *= 0.7f;
    if (mood[M_PASTEL]) s->sat *= 0.7f;
    if (mood[M_MONO]) s->sat = 0;
}

void scene_summary(const scene *s, char *buf, size_t cap) {
    size_t at = 0;
    int n = snprintf(buf, cap, "%d prompt words, %d negative words, %d removed by the negative prompt; %d shapes:",
                     s->n_words, s->n_neg_words, s->n_removed, s->n);
    if (n < 0) return;
    at = (size_t)n;
    for (int i = 0; i < s->n && at < cap; i++) {
        const scene_element *e = &s->el[i];
        n = snprintf(buf + at, cap - at, " %s=%s#%02x%02x%02x", e->word, scene_shape_name(e->shape),
                     (int)(e->col.r * 255 + 0.5f), (int)(e->col.g * 255 + 0.5f), (int)(e->col.b * 255 + 0.5f));
        if (n < 0) return;
        at += (size_t)n;
    }
}

/* ------------------------------------------------------------------ */
/* rendering                                                           */
/* ------------------------------------------------------------------ */

typedef struct {
    float *px;
    int w, h;
    float m; /* min(w, h) */
} canvas;

static inline float *at(const canvas *c, int x, int y) { return c->px + ((size_t)y * (size_t)c->w + (size_t)x) * 3; }

static inline void blend(float *p, rgbf col, float a) {
    p[0] += (col.r - p[0]) * a;
    p[1] += (col.g - p[1]) * a;
    p[2] += (col.b - p[2]) * a;
}

static inline void screen(float *p, rgbf col, float a) {
    p[0] = 1 - (1 - p[0]) * (1 - col.r * a);
    p[1] = 1 - (1 - p[1]) * (1 - col.g * a);
    p[2] = 1 - (1 - p[2]) * (1 - col.b * a);
}

static inline rgbf shade(rgbf c, float k) {
    rgbf o = {clampf(c.r * k, 0, 1), clampf(c.g * k, 0, 1), clampf(c.b * k, 0, 1)};
    return o;
}

static inline rgbf mixc(rgbf a, rgbf b, float t) {
    rgbf o = {a.r + (b.r - a.r) * t, a.g + (b.g - a.g) * t, a.b + (b.b - a.b) * t};
    return o;
}

static inline float cover(float d) { return clampf(0.5f - d, 0, 1); } /* d: signed distance in pixels */

static void bbox(const canvas *c, float cx, float cy, float rx, float ry, int *x0, int *y0, int *x1, int *y1) {
    *x0 = (int)floor((double)(cx - rx - 2));
    *x1 = (int)floor((double)(cx + rx + 2));
    *y0 = (int)floor((double)(cy - ry - 2));
    *y1 = (int)floor((double)(cy + ry + 2));
    if (*x0 < 0) *x0 = 0;
    if (*y0 < 0) *y0 = 0;
    if (*x1 > c->w - 1) *x1 = c->w - 1;
    if (*y1 > c->h - 1) *y1 = c->h - 1;
}

static void draw_disc(const canvas *c, float cx, float cy, float R, rgbf col, float alpha, int shaded) {
    int x0, y0, x1, y1;
    bbox(c, cx, cy, R, R, &x0, &y0, &x1, &y1);
    for (int y = y0; y <= y1; y++)
        for (int x = x0; x <= x1; x++) {
            float dx = (float)x + 0.5f - cx, dy = (float)y + 0.5f - cy;
            float a = cover(sqrtf(dx * dx + dy * dy) - R);
            if (a <= 0) continue;
            rgbf k = shaded ? shade(col, 1.0f - 0.16f * (dx + dy) / (1.4142f * R)) : col;
            blend(at(c, x, y), k, a * alpha);
        }
}

static void draw_glow(const canvas *c, float cx, float cy, float R, rgbf col, float alpha) {
    int x0, y0, x1, y1;
    bbox(c, cx, cy, R, R, &x0, &y0, &x1, &y1);
    float inv = 1.0f / (R * R);
    for (int y = y0; y <= y1; y++)
        for (int x = x0; x <= x1; x++) {
            float dx = (float)x + 0.5f - cx, dy = (float)y + 0.5f - cy;
            float t = 1.0f - (dx * dx + dy * dy) * inv;
            if (t <= 0) continue;
            screen(at(c, x, y), col, t * t * alpha);
        }
}

static void draw_blob(const canvas *c, float cx, float cy, float R, rgbf col, float alpha) {
    int x0, y0, x1, y1;
    bbox(c, cx, cy, R, R, &x0, &y0, &x1, &y1);
    float inv = 1.0f / (R * R);
    for (int y = y0; y <= y1; y++)
        for (int x = x0; x <= x1; x++) {
            float dx = (float)x + 0.5f - cx, dy = (float)y + 0.5f - cy;
            float t = clampf(1.8f * (1.0f - (dx * dx + dy * dy) * inv), 0, 1);
            if (t <= 0) continue;
            blend(at(c, x, y), col, t * alpha);
        }
}

/* ring; ys > 1 flattens it vertically (planet rings). part: 0 all, -1 back half, +1 front half */
static void draw_ring(const canvas *c, float cx, float cy, float R, float thick, float ys, rgbf col, float alpha,
                      int part) {
    int x0, y0, x1, y1;
    bbox(c, cx, cy, R + thick, (R + thick) / ys, &x0, &y0, &x1, &y1);
    for (int y = y0; y <= y1; y++) {
        float dy = (float)y + 0.5f - cy;
        if ((part < 0 && dy > 0) || (part > 0 && dy <= 0)) continue;
        for (int x = x0; x <= x1; x++) {
            float dx = (float)x + 0.5f - cx, ey = dy * ys;
            float a = cover(fabsf(sqrtf(dx * dx + ey * ey) - R) - thick);
            if (a > 0) blend(at(c, x, y), col, a * alpha);
        }
    }
}

static void draw_box(const canvas *c, float cx, float cy, float hw, float hh, rgbf col, float alpha) {
    int x0, y0, x1, y1;
    bbox(c, cx, cy, hw, hh, &x0, &y0, &x1, &y1);
    float rr = 0.18f * (hw < hh ? hw : hh);
    for (int y = y0; y <= y1; y++)
        for (int x = x0; x <= x1; x++) {
            float dx = (float)x + 0.5f - cx, dy = (float)y + 0.5f - cy;
            float qx = fabsf(dx) - hw + rr, qy = fabsf(dy) - hh + rr;
            float ox = qx > 0 ? qx : 0, oy = qy > 0 ? qy : 0, in = qx > qy ? qx : qy;
            float d = sqrtf(ox * ox + oy * oy) + (in < 0 ? in : 0) - rr;
            float a = cover(d);
            if (a > 0) blend(at(c, x, y), shade(col, 1.08f - 0.2f * (dy + hh) / (2 * hh)), a * alpha);
        }
}

/* triangle with its peak at (cx, cy) going down to the bottom edge */
static void draw_peak(const canvas *c, float cx, float cy, float slope, rgbf col, float alpha, int cap, float capR) {
    float norm = 1.0f / sqrtf(1 + slope * slope);
    int y0 = (int)floor((double)cy) - 1;
    if (y0 < 0) y0 = 0;
    rgbf white = {0.95f, 0.96f, 0.98f};
    for (int y = y0; y < c->h; y++) {
        float dy = (float)y + 0.5f - cy, half = dy / slope;
        int x0 = (int)floor((double)(cx - half - 2)), x1 = (int)floor((double)(cx + half + 2));
        if (x0 < 0) x0 = 0;
        if (x1 > c->w - 1) x1 = c->w - 1;
        for (int x = x0; x <= x1; x++) {
            float dx = (float)x + 0.5f - cx;
            float a = cover((fabsf(dx) * slope - dy) * norm);
            if (a <= 0) continue;
            rgbf k = shade(col, dx < 0 ? 1.1f : 0.88f);
            if (cap && dy < capR) k = mixc(k, white, clampf((capR - dy) / (capR * 0.25f), 0, 1) * 0.9f);
            blend(at(c, x, y), k, a * alpha);
        }
    }
}

/* ground: everything below edge(x) = cy + tilt*(x - w/2) + amp*sin(...) */
static void draw_ground(const canvas *c, float cy, float tilt, float amp, float period, float phase, rgbf col,
                        float alpha) {
    float *edge = (float *)malloc(sizeof(float) * (size_t)c->w);
    if (!edge) return;
    float top = (float)c->h;
    for (int x = 0; x < c->w; x++) {
        float fx = (float)x + 0.5f;
        edge[x] = cy + tilt * (fx - 0.5f * (float)c->w);
        if (amp > 0) edge[x] += amp * (float)r_sin(2 * R_PI * (double)fx / (double)period + (double)phase);
        if (edge[x] < top) top = edge[x];
    }
    int y0 = (int)floor((double)top) - 1;
    if (y0 < 0) y0 = 0;
    float depth = (float)c->h - top + 1;
    for (int y = y0; y < c->h; y++)
        for (int x = 0; x < c->w; x++) {
            float dy = (float)y + 0.5f - edge[x];
            float a = cover(-dy);
            if (a <= 0) continue;
            float k = 1.0f - 0.3f * clampf(dy / depth, 0, 1);
            if (amp > 0 && dy > 0 && dy < 2.5f) k += 0.25f; /* bright crest */
            blend(at(c, x, y), shade(col, k), a * alpha);
        }
    free(edge);
}

static void draw_element(const canvas *c, const scene_element *e, const scene *s) {
    float m = c->m, cx = e->u * (float)c->w, cy = e->v * (float)c->h, R = e->size * m;
    rng64 r;
    rng_seed(&r, e->h ^ 0x5bd1e995ULL);
    switch (e->shape) {
    case SH_DISC: draw_disc(c, cx, cy, R, e->col, e->alpha, 1); break;
    case SH_RING: draw_ring(c, cx, cy, R, R * 0.16f, 1.0f, e->col, e->alpha, 0); break;
    case SH_BOX: draw_box(c, cx, cy, R * e->aspect, R / e->aspect, e->col, e->alpha); break;
    case SH_GLOW: draw_glow(c, cx, cy, R, e->col, e->alpha); break;
    case SH_STRIPED: {
        int x0, y0, x1, y1;
        bbox(c, cx, cy, R, R, &x0, &y0, &x1, &y1);
        float period = R * 0.3f + 2;
        rgbf alt = shade(e->col, 0.55f);
        for (int y = y0; y <= y1; y++)
            for (int x = x0; x <= x1; x++) {
                float dx = (float)x + 0.5f - cx, dy = (float)y + 0.5f - cy;
                float a = cover(sqrtf(dx * dx + dy * dy) - R);
                if (a <= 0) continue;
                float t = (dx + dy) * 0.70710678f / period;
                float f = t - (float)floor((double)t);
                float sa = cover((fabsf(f - 0.5f) - 0.25f) * period);
                blend(at(c, x, y), mixc(alt, e->col, sa), a * e->alpha);
            }
        break;
    }
    case SH_FLOWER: {
        double rot = (double)e->param * R_PI / 3;
        for (int k = 0; k < 6; k++) {
            double ang = rot + (double)k * R_PI / 3;
            float px = cx + 0.55f * R * (float)r_cos(ang), py = cy + 0.55f * R * (float)r_sin(ang);
            draw_disc(c, px, py, 0.42f * R, e->col, e->alpha, 1);
        }
        draw_disc(c, cx, cy, 0.33f * R, hsl(48, 0.85f, 0.5f), 1.0f, 1);
        break;
    }
    case SH_CRESCENT: {
        draw_glow(c, cx, cy, R * 2.0f, e->col, 0.25f);
        int x0, y0, x1, y1;
        bbox(c, cx, cy, R, R, &x0, &y0, &x1, &y1);
        float ox = cx + 0.4f * R, oy = cy - 0.25f * R, R2 = 0.9f * R;
        for (int y = y0; y <= y1; y++)
            for (int x = x0; x <= x1; x++) {
                float dx = (float)x + 0.5f - cx, dy = (float)y + 0.5f - cy;
                float ex = (float)x + 0.5f - ox, ey = (float)y + 0.5f - oy;
                float a = cover(sqrtf(dx * dx + dy * dy) - R) * (1 - cover(sqrtf(ex * ex + ey * ey) - R2));
                if (a > 0) blend(at(c, x, y), e->col, a * e->alpha);
            }
        break;
    }
    case SH_PLANET: {
        rgbf rc = shade(e->col, 1.25f);
        draw_ring(c, cx, cy, R * 1.75f, R * 0.1f, 3.2f, rc, 0.85f, -1);
        draw_disc(c, cx, cy, R, e->col, e->alpha, 1);
        draw_ring(c, cx, cy, R * 1.75f, R * 0.1f, 3.2f, rc, 0.85f, +1);
        break;
    }
    case SH_SUN:
        draw_glow(c, cx, cy, R * 2.8f, e->col, 0.55f);
        draw_disc(c, cx, cy, R, shade(e->col, 1.15f), 1.0f, 0);
        break;
    case SH_CLOUD:
        for (int k = 0; k < 4; k++) {
            float ox = rng_range(&r, -1.1f, 1.1f) * R, oy = rng_range(&r, -0.25f, 0.2f) * R;
            draw_blob(c, cx + ox, cy + oy, R * rng_range(&r, 0.55f, 0.85f), e->col, e->alpha);
        }
        break;
    case SH_STARS: {
        int count = (int)(60.0f + 60.0f * e->param);
        float area = (float)c->w * (float)c->h / (512.0f * 512.0f);
        count = (int)((float)count * (area < 1 ? area : area > 4 ? 4 : area)) + 8;
        float unit = m / 512.0f;
        for (int k = 0; k < count; k++) {
            float sx = rng_unit(&r) * (float)c->w, sy = rng_unit(&r) * (float)c->h * 0.7f;
            float sr = (0.8f + 1.8f * rng_unit(&r) * rng_unit(&r)) * (unit < 1 ? 1 : unit);
            draw_glow(c, sx, sy, sr * 1.6f, e->col, 0.95f);
        }
        break;
    }
    case SH_MOUNTAIN: {
        int snowy = e->col.r > 0.25f && e->col.b > e->col.g; /* bluish rock: snow caps */
        draw_peak(c, cx, cy, e->param, e->col, e->alpha, snowy, R * 0.35f);
        /* a smaller neighbour */
        float nx = cx + (e->aspect > 1.05f ? 1 : -1) * R * 1.1f;
        draw_peak(c, nx, cy + R * 0.35f, e->param * 1.1f, shade(e->col, 0.85f), e->alpha, 0, 0);
        break;
    }
    case SH_TREES: {
        int count = 5 + (int)(e->param * 6);
        float base = cy;
        for (int k = 0; k < count; k++) {
            float tx = ((float)k + rng_range(&r, 0.1f, 0.9f)) / (float)count * (float)c->w;
            float th = R * rng_range(&r, 0.45f, 0.9f);
            draw_peak(c, tx, base - th, 3.2f, shade(e->col, rng_range(&r, 0.8f, 1.15f)), 1.0f, 0, 0);
        }
        break;
    }
    case SH_CITY: {
        int count = 6 + (int)(e->param * 7);
        float base = cy, cell = (float)c->w / (float)count, win = m / 120.0f + 1.5f;
        int lit_night = s->top.r + s->top.g + s->top.b < 0.9f;
        for (int k = 0; k < count; k++) {
            float bw = cell * rng_range(&r, 0.55f, 0.95f), bx = ((float)k + 0.5f) * cell + rng_range(&r, -0.2f, 0.2f) * cell;
            float bh = R * rng_range(&r, 0.6f, 1.6f);
            rgbf bc = shade(e->col, rng_range(&r, 0.8f, 1.2f));
            int x0, y0, x1, y1;
            bbox(c, bx, base - bh * 0.5f + (float)c->h * 0.5f, bw * 0.5f, bh * 0.5f + (float)c->h * 0.5f, &x0, &y0, &x1,
                 &y1);
            float top = base - bh;
            uint64_t bhash = mix64(e->h + (uint64_t)k);
            for (int y = y0; y <= y1; y++)
                for (int x = x0; x <= x1; x++) {
                    float fx = (float)x + 0.5f, fy = (float)y + 0.5f;
                    float d = fabsf(fx - bx) - bw * 0.5f, dt = top - fy;
                    float a = cover(d > dt ? d : dt);
                    if (a <= 0) continue;
                    rgbf k2 = bc;
                    int wx = (int)((fx - bx + bw) / win), wy = (int)((fy - top) / (win * 1.4f));
                    if ((wx & 1) && (wy & 1) && fy > top + win) {
                        uint64_t wh = mix64(bhash ^ ((uint64_t)wx << 20) ^ (uint64_t)wy);
                        if ((wh & 3) == 0 || (lit_night && (wh & 3) != 3)) k2 = mixc(bc, hsl(46, 0.9f, 0.7f), lit_night ? 0.85f : 0.3f);
                    }
                    blend(at(c, x, y), k2, a * e->alpha);
                }
        }
        break;
    }
    case SH_BAND: draw_ground(c, cy, e->param, 0, 1, 0, e->col, e->alpha); break;
    case SH_WAVE: {
        float amp = e->param * m, period = m * rng_range(&r, 0.12f, 0.3f);
        draw_ground(c, cy, 0, amp, period, rng_range(&r, 0, 6.28f), e->col, e->alpha);
        break;
    }
    case SH_RAINBOW: {
        static const short hues[7] = {0, 28, 55, 120, 205, 245, 280};
        float bwid = R * 0.07f, ccy = (float)c->h * (0.75f + 0.1f * e->param);
        int x0, y0, x1, y1;
        bbox(c, cx, ccy, R, R, &x0, &y0, &x1, &y1);
        for (int y = y0; y <= y1; y++) {
            float dy = (float)y + 0.5f - ccy;
            if (dy > 0) break;
            for (int x = x0; x <= x1; x++) {
                float dx = (float)x + 0.5f - cx, rr = sqrtf(dx * dx + dy * dy);
                float a = cover(rr - R) * cover((R - 7 * bwid) - rr);
                if (a <= 0) continue;
                int band = (int)((R - rr) / bwid);
                if (band < 0) band = 0;
                if (band > 6) band = 6;
                blend(at(c, x, y), hsl(hues[band], 0.85f, 0.55f), a * 0.55f);
            }
        }
        break;
    }
    default: break;
    }
}

/* value noise: smooth random field in [-1, 1] */
typedef struct {
    int g;
    float v[13 * 13];
} vnoise;

static void vnoise_init(vnoise *n, int g, uint64_t seed) {
    rng64 r;
    rng_seed(&r, seed);
    n->g = g;
    for (int i = 0; i < g * g; i++) n->v[i] = rng_range(&r, -1, 1);
}

static inline float vnoise_at(const vnoise *n, float u, float v) { /* u, v in [0, 1] */
    float gx = u * (float)(n->g - 1), gy = v * (float)(n->g - 1);
    int ix = (int)gx, iy = (int)gy;
    if (ix > n->g - 2) ix = n->g - 2;
    if (iy > n->g - 2) iy = n->g - 2;
    float fx = gx - (float)ix, fy = gy - (float)iy;
    fx = fx * fx * (3 - 2 * fx);
    fy = fy * fy * (3 - 2 * fy);
    const float *p = n->v + iy * n->g + ix;
    float a = p[0] + (p[1] - p[0]) * fx, b = p[n->g] + (p[n->g + 1] - p[n->g]) * fx;
    return a + (b - a) * fy;
}

void scene_render(const scene *s, float *dst, int w, int h) {
    canvas c = {dst, w, h, (float)(w < h ? w : h)};
    vnoise n1, n2;
    vnoise_init(&n1, 5, s->tex_seed);
    vnoise_init(&n2, 13, s->tex_seed ^ 0xabcdefULL);

    /* background: vertical gradient, a diagonal light, soft texture */
    for (int y = 0; y < h; y++) {
        float v = ((float)y + 0.5f) / (float)h, t = v * v * (3 - 2 * v);
        rgbf row = mixc(s->top, s->bottom, t);
        float *p = dst + (size_t)y * (size_t)w * 3;
        for (int x = 0; x < w; x++, p += 3) {
            float u = ((float)x + 0.5f) / (float)w;
            float k = 1.0f + 0.08f * (0.5f - u) + s->tex_amp * (vnoise_at(&n1, u, v) + 0.5f * vnoise_at(&n2, u, v));
            p[0] = row.r * k;
            p[1] = row.g * k;
            p[2] = row.b * k;
        }
    }
    for (int i = 0; i < s->n; i++) draw_element(&c, &s->el[i], s);

    /* vignette, then saturation and contrast (cfg), into [-1, 1] */
    for (int y = 0; y < h; y++) {
        float v = ((float)y + 0.5f) / (float)h - 0.5f;
        float *p = dst + (size_t)y * (size_t)w * 3;
        for (int x = 0; x < w; x++, p += 3) {
            float u = ((float)x + 0.5f) / (float)w - 0.5f;
            float k = 1.0f - s->vignette * (u * u + v * v) * 2.0f;
            float r = p[0] * k, g = p[1] * k, b = p[2] * k;
            float l = 0.299f * r + 0.587f * g + 0.114f * b;
            r = l + (r - l) * s->sat;
            g = l + (g - l) * s->sat;
            b = l + (b - l) * s->sat;
            r = 0.5f + (r - 0.5f) * s->contrast + s->bright;
            g = 0.5f + (g - 0.5f) * s->contrast + s->bright;
            b = 0.5f + (b - 0.5f) * s->contrast + s->bright;
            p[0] = clampf(r, 0, 1) * 2 - 1;
            p[1] = clampf(g, 0, 1) * 2 - 1;
            p[2] = clampf(b, 0, 1) * 2 - 1;
        }
    }
}

/* ------------------------------------------------------------------ */
/* label                                                               */
/* ------------------------------------------------------------------ */

typedef struct {
    char ch;
    unsigned char rows[7]; /* 5 bits each, MSB = left */
} glyph_t;

static const glyph_t FONT[] = {
    {'A', {0x0e, 0x11, 0x11, 0x1f, 0x11, 0x11, 0x11}}, {'C', {0x0e, 0x11, 0x10, 0x10, 0x10, 0x11, 0x0e}},
    {'D', {0x1e, 0x11, 0x11, 0x11, 0x11, 0x11, 0x1e}}, {'E', {0x1f, 0x10, 0x10, 0x1e, 0x10, 0x10, 0x1f}},
    {'F', {0x1f, 0x10, 0x10, 0x1e, 0x10, 0x10, 0x10}}, {'G', {0x0e, 0x11, 0x10, 0x17, 0x11, 0x11, 0x0f}},
    {'I', {0x0e, 0x04, 0x04, 0x04, 0x04, 0x04, 0x0e}}, {'L', {0x10, 0x10, 0x10, 0x10, 0x10, 0x10, 0x1f}},
    {'M', {0x11, 0x1b, 0x15, 0x15, 0x11, 0x11, 0x11}}, {'N', {0x11, 0x19, 0x15, 0x13, 0x11, 0x11, 0x11}},
    {'O', {0x0e, 0x11, 0x11, 0x11, 0x11, 0x11, 0x0e}}, {'R', {0x1e, 0x11, 0x11, 0x1e, 0x14, 0x12, 0x11}},
    {'S', {0x0f, 0x10, 0x10, 0x0e, 0x01, 0x01, 0x1e}}, {'T', {0x1f, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04}},
    {'-', {0x00, 0x00, 0x00, 0x1f, 0x00, 0x00, 0x00}},
};

static const unsigned char *glyph(char ch) {
    for (size_t i = 0; i < sizeof(FONT) / sizeof(FONT[0]); i++)
        if (FONT[i].ch == ch) return FONT[i].rows;
    return NULL; /* drawn as a space */
}

static void put_px(uint8_t *rgb, int w, int x, int y, int r, int g, int b, int a256) {
    uint8_t *p = rgb + ((size_t)y * (size_t)w + (size_t)x) * 3;
    p[0] = (uint8_t)((p[0] * (256 - a256) + r * a256) >> 8);
    p[1] = (uint8_t)((p[1] * (256 - a256) + g * a256) >> 8);
    p[2] = (uint8_t)((p[2] * (256 - a256) + b * a256) >> 8);
}

void label_draw(uint8_t *rgb, int w, int h, const char *text) {
    int len = (int)strlen(text), m = w < h ? w : h;
    int sc = m / 512 > 1 ? m / 512 : 1;
    int tw = (len * 6 - 1) * sc, th = 7 * sc, pad = 3 * sc, margin = 6 * sc;
    if (tw + 2 * pad + 2 * margin > w || th + 2 * pad + 2 * margin > h / 4) return;
    int bx0 = margin, by0 = h - margin - th - 2 * pad;
    for (int y = by0; y < by0 + th + 2 * pad; y++)
        for (int x = bx0; x < bx0 + tw + 2 * pad; x++) put_px(rgb, w, x, y, 0, 0, 0, 110);
    for (int i = 0; i < len; i++) {
        const unsigned char *g = glyph(text[i]);
        if (!g) continue;
        int gx = bx0 + pad + i * 6 * sc, gy = by0 + pad;
        for (int row = 0; row < 7; row++)
            for (int col = 0; col < 5; col++)
                if (g[row] & (0x10 >> col))
                    for (int yy = 0; yy < sc; yy++)
                        for (int xx = 0; xx < sc; xx++) put_px(rgb, w, gx + col * sc + xx, gy + row * sc + yy, 255, 255, 255, 230);
    }
}
