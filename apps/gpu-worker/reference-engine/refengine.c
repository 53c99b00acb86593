/*
 * refengine.c - Pingvas Studio's reference diffusion engine.
 *
 * A stand-in for stable-diffusion.cpp's `sd-cli` with the same command line,
 * the same stdout/stderr formats and the same exit codes, but no neural
 * network: it denoises seeded noise towards a picture made from the prompt's
 * words (scene.c), doing real work per step proportional to width x height,
 * and writes a PNG (png.c). Fault switches in the environment imitate GPU
 * failures for tests. See README.md.
 *
 * Only libc and libm; C11 + POSIX.
 */
#define _POSIX_C_SOURCE 200809L

#include <errno.h>
#include <limits.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "detmath.h"
#include "png.h"
#include "pngread.h"
#include "scene.h"
#include "server.h"

#define REFENGINE_VERSION "1.0.0"
#define REFENGINE_LABEL "reference engine \xe2\x80\x94 no model" /* UTF-8 em dash */
#define PNG_SOFTWARE "Pingvas reference engine - no model"
#define IMAGE_LABEL "REFERENCE ENGINE - NO MODEL"

#define MAX_SIDE 4096
#define MAX_STEPS 1000
#define MAX_BATCH 16
#define SIGMA_MAX 14.6146
#define SIGMA_MIN 0.0292
#define VAE_TILE 256
#define ESRGAN_TILE 128 /* sd-cli's --upscale-tile-size default */
#define MAX_UPSCALED_SIDE 16384

/* ------------------------------------------------------------------ */
/* logging, in sd-cli's format                                         */
/* ------------------------------------------------------------------ */

enum { L_DEBUG, L_INFO, L_WARN, L_ERROR };
static int g_verbose;
static int g_color; /* --color: only from the end of argument parsing on, as sd-cli */

#if defined(__GNUC__) || defined(__clang__)
__attribute__((format(printf, 4, 5)))
#endif
static void log_at(int level, const char *file, int line, const char *fmt, ...) {
    static const char *names[] = {"DEBUG", "INFO", "WARN", "ERROR"};
    static const int colors[] = {37, 34, 35, 31};
    if (level == L_DEBUG && !g_verbose) return;
    char msg[8192];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    FILE *out = level == L_ERROR ? stderr : stdout; /* as sd-cli: only errors go to stderr */
    if (g_color) fprintf(out, "\033[%d;1m[%-5s]\033[0m ", colors[level], names[level]);
    else fprintf(out, "[%-5s] ", names[level]);
    fprintf(out, "%s:%-4d - %s\n", file, line, msg);
    fflush(out);
}

#define LOG_DEBUG(...) log_at(L_DEBUG, "refengine.c", __LINE__, __VA_ARGS__)
#define LOG_INFO(...) log_at(L_INFO, "refengine.c", __LINE__, __VA_ARGS__)
#define LOG_WARN(...) log_at(L_WARN, "refengine.c", __LINE__, __VA_ARGS__)
#define LOG_ERROR(...) log_at(L_ERROR, "refengine.c", __LINE__, __VA_ARGS__)
/* Messages sd-cli prints from its own sources carry that file and line (stable-diffusion.cpp
 * master-827), so a pattern written against one binary matches the other. */
#define LOG_AS(level, file, line, ...) log_at(level, file, line, __VA_ARGS__)

/* ------------------------------------------------------------------ */
/* time                                                                */
/* ------------------------------------------------------------------ */

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static void sleep_s(double s) {
    if (!(s > 0)) return;
    struct timespec ts;
    ts.tv_sec = (time_t)s;
    ts.tv_nsec = (long)((s - (double)ts.tv_sec) * 1e9);
    if (ts.tv_nsec > 999999999L) ts.tv_nsec = 999999999L;
    while (nanosleep(&ts, &ts) == -1 && errno == EINTR) {
    }
}

/* ------------------------------------------------------------------ */
/* progress bars                                                       */
/* ------------------------------------------------------------------ */

/* sd.cpp's pretty_progress: "\r  |=====>     | 5/30 - 1.23s/it\x1b[K", newline after the last */
static void step_progress(int step, int steps, double secs) {
    char bar[51];
    int cur = (int)((float)step * 50.0f / (float)steps);
    for (int i = 0; i < 50; i++) bar[i] = i > cur ? ' ' : (i == cur && i != 49) ? '>' : '=';
    bar[50] = 0;
    if (secs < 1e-6) secs = 1e-6;
    if (secs > 1.0) printf("\r  |%s| %d/%d - %.2fs/it\x1b[K", bar, step, steps, secs);
    else printf("\r  |%s| %d/%d - %.2fit/s\x1b[K", bar, step, steps, 1.0 / secs);
    if (step == steps) printf("\n");
    fflush(stdout);
}

/* byte progress while loading weights: "\r  |#####      | 565/1130 - 2.29GB/s\x1b[K"; as sd.cpp's
 * pretty_bytes_progress, GB/s from 1024 MB/s up, MB/s below */
static void bytes_progress(int done, int total, double mb_per_s) {
    char bar[51];
    int cur = (int)((float)done * 50.0f / (float)total);
    for (int i = 0; i < 50; i++) bar[i] = i < cur ? '#' : ' ';
    bar[50] = 0;
    if (mb_per_s >= 1024.0) printf("\r  |%s| %d/%d - %.2fGB/s\x1b[K", bar, done, total, mb_per_s / 1024.0);
    else printf("\r  |%s| %d/%d - %.2fMB/s\x1b[K", bar, done, total, mb_per_s);
    if (done == total) printf("\n");
    fflush(stdout);
}

/* ------------------------------------------------------------------ */
/* parameters                                                          */
/* ------------------------------------------------------------------ */

enum {
    S_EULER,
    S_EULER_A,
    S_HEUN,
    S_DPM2,
    S_DPMPP2S_A,
    S_DPMPP2M,
    S_DPMPP2MV2,
    S_IPNDM,
    S_IPNDM_V,
    S_LCM,
    S_DDIM_TRAILING,
    S_TCD,
    S_COUNT
};

/* sd-cli's --sampling-method names, in its order, with its display names; `rule` is the update
 * rule the toy model runs (the samplers sd-cli has beyond the first twelve reuse the nearest). */
static const struct {
    const char *name, *pretty;
    int rule;
} SAMPLERS[] = {
    {"euler", "Euler", S_EULER},
    {"euler_a", "Euler A", S_EULER_A},
    {"heun", "Heun", S_HEUN},
    {"dpm2", "DPM2", S_DPM2},
    {"dpm++2s_a", "DPM++ (2s)", S_DPMPP2S_A},
    {"dpm++2m", "DPM++ (2M)", S_DPMPP2M},
    {"dpm++2mv2", "modified DPM++ (2M)", S_DPMPP2MV2},
    {"ipndm", "iPNDM", S_IPNDM},
    {"ipndm_v", "iPNDM_v", S_IPNDM_V},
    {"lcm", "LCM", S_LCM},
    {"ddim_trailing", "DDIM \"trailing\"", S_DDIM_TRAILING},
    {"tcd", "TCD", S_TCD},
    {"res_multistep", "Res Multistep", S_DPMPP2M},
    {"res_2s", "Res 2s", S_DPMPP2S_A},
    {"er_sde", "ER-SDE", S_EULER_A},
    {"euler_cfg_pp", "Euler CFG++", S_EULER},
    {"euler_a_cfg_pp", "Euler A CFG++", S_EULER_A},
    {"euler_ge", "Euler GE", S_EULER},
    {"dpm++2m_sde", "DPM++ (2M) SDE", S_DPMPP2M},
    {"dpm++2m_sde_bt", "DPM++ (2M) SDE BT", S_DPMPP2M},
    {"lms", "LMS", S_IPNDM},
};
#define SAMPLER_COUNT ((int)(sizeof(SAMPLERS) / sizeof(SAMPLERS[0])))
#define SAMPLER_EULER_A 1

/* sd-cli's --scheduler names; only karras (index 1) changes the toy schedule */
static const char *SCHEDULERS[] = {"discrete", "karras", "exponential", "ays", "gits", "sgm_uniform", "simple",
                                   "smoothstep", "kl_optimal", "lcm", "bong_tangent", "ltx2", "logit_normal",
                                   "flux2", "flux", "beta", NULL};

/* sd-cli's -M modes; img_gen and upscale make images here */
static const char *MODES[] = {"img_gen", "adetailer", "vid_gen", "convert", "upscale", "metadata", NULL};
enum { MODE_IMG_GEN = 0, MODE_UPSCALE = 4 };

/* sd-cli's --preview methods */
static const char *PREVIEWS[] = {"none", "proj", "tae", "vae", NULL};
enum { PREVIEW_NONE, PREVIEW_PROJ };

typedef struct {
    const char *model, *diffusion_model, *vae, *clip_l, *clip_g, *t5xxl, *llm, *llm_vision, *upscale_model;
    const char *prompt, *negative, *output;
    const char *init_img, *mask_img, *preview_path; /* -i, --mask, --preview-path */
    int width, height, steps, threads, batch, sampler, scheduler, mode; /* indexes in SAMPLERS, SCHEDULERS, MODES */
    int width_given, height_given; /* as sd-cli: an init image sets the size unless both were given */
    int upscale_repeats, preview, preview_interval; /* preview: an index in PREVIEWS */
    float cfg, strength;
    long long seed;
} params;

#define VERSION_LINE "stable-diffusion.cpp version refengine-" REFENGINE_VERSION ", commit reference (" REFENGINE_LABEL ")"

static void usage(const char *argv0) {
    printf(VERSION_LINE "\n"
           "Usage: %s [options]\n\n"
           "refengine - Pingvas Studio's " REFENGINE_LABEL ". Same command line and output as\n"
           "stable-diffusion.cpp's sd-cli; draws a picture from the prompt's words instead of running a\n"
           "neural network.\n\n"
           "CLI Options:\n"
           "  -o, --output <file.png>            output path (default: output.png); with -b n > 1 the\n"
           "                                     images are <name>_0.png ... <name>_<n-1>.png\n"
           "  -M, --mode <mode>                  img_gen (default), adetailer, vid_gen, convert, upscale,\n"
           "                                     metadata (only img_gen makes images here)\n"
           "  -v, --verbose                      print extra info\n"
           "  --color                            colour the log tags\n"
           "  -h, --help                         show this help message and exit\n"
           "  --version (first argument only)    print the version and exit\n\n"
           "Context Options:\n"
           "  -m, --model <file>                 model file (this or --diffusion-model is required; it\n"
           "                                     must exist, its contents are never read)\n"
           "  --diffusion-model, --vae, --clip_l, --clip_g, --t5xxl, --llm, --llm_vision <file>\n"
           "                                     split model files (a missing one is only a warning)\n"
           "  --upscale-model <file>             ESRGAN model for -M upscale (after img_gen too: its images are\n"
           "                                     upscaled); any file that exists, its contents are never read\n"
           "  -t, --threads <n>                  accepted; the engine uses one thread\n"
           "  accepted and ignored: --type <t>, --rng <r>, --lora-model-dir <dir>, --embd-dir <dir>,\n"
           "    --vae-tiling, --clip-on-cpu, --vae-on-cpu, --offload-to-cpu, --diffusion-fa, --fa, --mmap,\n"
           "    --auto-fit, --disable-image-metadata\n\n"
           "Generation Options:\n"
           "  -p, --prompt <text>                the prompt to render (default: \"\")\n"
           "  -n, --negative-prompt <text>       the negative prompt (default: \"\")\n"
           "  -W, --width <n> / -H, --height <n> multiple of 8, 8..%d (default: 512)\n"
           "  --steps <n>                        number of sample steps, 1..%d (default: 20)\n"
           "  --cfg-scale <f>                    guidance scale, 0..100 (default: 7.0)\n"
           "  -s, --seed <n>                     RNG seed (default: 42, a negative seed picks a random one)\n"
           "  --sampling-method <name>           euler, euler_a, heun, dpm2, dpm++2s_a, dpm++2m, dpm++2mv2,\n"
           "                                     ipndm, ipndm_v, lcm, ddim_trailing, tcd, res_multistep,\n"
           "                                     res_2s, er_sde, euler_cfg_pp, euler_a_cfg_pp, euler_ge,\n"
           "                                     dpm++2m_sde, dpm++2m_sde_bt, lms (default: euler_a)\n"
           "  --scheduler <name>                 discrete, karras, exponential, ays, gits, sgm_uniform,\n"
           "                                     simple, smoothstep, kl_optimal, lcm, bong_tangent, ltx2,\n"
           "                                     logit_normal, flux2, flux, beta (default: discrete)\n"
           "  -b, --batch-count <n>              number of images, 1..%d (default: 1)\n"
           "  -i, --init-img <file.png>          init image (img2img; -M upscale: the image to upscale)\n"
           "  --mask <file.png>                  inpainting mask, white = repaint (resized to the output size)\n"
           "  --strength <f>                     how much of the init image is replaced, 0..1 (default: 0.75)\n"
           "  --upscale-repeats <n>              run the upscaler this many times, 4x each (default: 1)\n"
           "  --preview <none|proj|tae|vae>      write a preview of the denoised image while sampling\n"
           "                                     (proj: 1/8 size, tae/vae: full size; default: none)\n"
           "  --preview-path <file>              where (default: ./preview.png; replaced atomically)\n"
           "  --preview-interval <n>             every n steps (default: 1)\n"
           "  --clip-skip <n>                    accepted and ignored\n\n"
           "fault switches (environment): REFENGINE_STEP_MS, REFENGINE_LOAD_MS, REFENGINE_OOM_AT_STEP,\n"
           "  REFENGINE_ABORT_AT_STEP, REFENGINE_HANG_AT_STEP, REFENGINE_NO_OUTPUT, REFENGINE_PRINT_FAILURE\n",
           argv0, MAX_SIDE, MAX_STEPS, MAX_BATCH);
}

/* sd-cli's answer to arguments it refuses: an [ERROR] line (its file and line), the usage, exit 1 */
#define ARG_REFUSED(file, line, ...)                                                                                   \
    do {                                                                                                               \
        LOG_AS(L_ERROR, file, line, __VA_ARGS__);                                                                      \
        usage(argv[0]);                                                                                                \
        exit(1);                                                                                                       \
    } while (0)
/* a value sd-cli accepts but the reference engine cannot honour: one line, exit 1 */
#define ARG_ERROR(...)                                                                                                 \
    do {                                                                                                               \
        LOG_ERROR(__VA_ARGS__);                                                                                        \
        exit(1);                                                                                                       \
    } while (0)

static int is(const char *arg, const char *a, const char *b) {
    return (a && strcmp(arg, a) == 0) || (b && strcmp(arg, b) == 0);
}

/* sd-cli converts numbers with std::stoi/stof/stoll: leading blanks and trailing junk are
 * accepted ("12x" is 12), no digits or an out-of-range value throws, and the uncaught
 * exception aborts the program (SIGABRT, status 134 from a shell). */
static void abort_uncaught(const char *type, const char *func) {
    fflush(stdout);
    fprintf(stderr, "terminate called after throwing an instance of 'std::%s'\n  what():  %s\n", type, func);
    fflush(stderr);
    struct rlimit no_core = {0, 0}; /* a test double should not litter core files */
    setrlimit(RLIMIT_CORE, &no_core);
    abort();
}

static long long sto_integer(const char *v, long long lo, long long hi, const char *func) {
    char *end;
    errno = 0;
    long long r = strtoll(v, &end, 10);
    if (end == v) abort_uncaught("invalid_argument", func);
    if (errno == ERANGE || r < lo || r > hi) abort_uncaught("out_of_range", func);
    return r;
}

static float sto_float(const char *v) {
    char *end;
    errno = 0;
    float r = strtof(v, &end);
    if (end == v) abort_uncaught("invalid_argument", "stof");
    if (errno == ERANGE) abort_uncaught("out_of_range", "stof");
    return r;
}

/* a size the reference engine can sample at (sd-cli would align it up to a multiple of 8) */
static void check_side(const char *what, int v, const char *from) {
    const char *src = from ? ", from the init image " : "", *name = from ? from : "";
    if (v < 8 || v > MAX_SIDE) ARG_ERROR("the %s must be between 8 and %d (got %d%s%s)", what, MAX_SIDE, v, src, name);
    if (v % 8) ARG_ERROR("the %s must be a multiple of 8 (got %d%s%s)", what, v, src, name);
}

static int lookup(const char *v, const char *const *names) {
    for (int k = 0; names[k]; k++)
        if (strcmp(v, names[k]) == 0) return k;
    return -1;
}

static void parse_args(int argc, char **argv, params *p) {
    memset(p, 0, sizeof(*p));
    p->prompt = "";
    p->negative = "";
    p->output = "output.png";
    p->width = p->height = 512;
    p->steps = 20;
    p->cfg = 7.0f;
    p->seed = 42;
    p->sampler = SAMPLER_EULER_A;
    p->threads = -1;
    p->batch = 1;
    p->strength = 0.75f;
    p->upscale_repeats = 1;
    p->preview_path = "preview.png";
    p->preview_interval = 1;
    if (argc > 1 && strcmp(argv[1], "--version") == 0) { /* as sd-cli: only as the first argument */
        printf(VERSION_LINE "\n");
        exit(0);
    }
    static const char *const string_flags[][2] = {
        {"-m", "--model"}, {"--diffusion-model", NULL}, {"--vae", NULL}, {"--clip_l", NULL}, {"--clip_g", NULL},
        {"--t5xxl", NULL}, {"--llm", NULL}, {"--llm_vision", NULL}, {"--upscale-model", NULL},
        {"-p", "--prompt"}, {"-n", "--negative-prompt"}, {"-o", "--output"}, {"--type", NULL}, {"--rng", NULL},
        {"--lora-model-dir", NULL}, {"--embd-dir", NULL}, {"-i", "--init-img"}, {"--mask", NULL},
        {"--preview-path", NULL}};
    const char **string_targets[] = {&p->model, &p->diffusion_model, &p->vae, &p->clip_l, &p->clip_g, &p->t5xxl,
                                     &p->llm, &p->llm_vision, &p->upscale_model, &p->prompt, &p->negative,
                                     &p->output, NULL, NULL, NULL, NULL, &p->init_img, &p->mask_img,
                                     &p->preview_path};
    const int n_string = (int)(sizeof(string_targets) / sizeof(string_targets[0]));
    int clip_skip = -1;
    static const char *const int_flags[][2] = {{"-W", "--width"},       {"-H", "--height"},
                                               {"--steps", NULL},       {"-t", "--threads"},
                                               {"-b", "--batch-count"}, {"--clip-skip", NULL},
                                               {"--upscale-repeats", NULL}, {"--preview-interval", NULL}};
    int *int_targets[] = {&p->width,     &p->height, &p->steps,           &p->threads,
                          &p->batch,     &clip_skip, &p->upscale_repeats, &p->preview_interval};
    const int n_int = (int)(sizeof(int_targets) / sizeof(int_targets[0]));
    static const char *const bool_flags[] = {"--vae-tiling", "--clip-on-cpu", "--vae-on-cpu", "--offload-to-cpu",
                                             "--diffusion-fa", "--fa", "--mmap", "--auto-fit",
                                             "--disable-image-metadata", NULL};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        int found = 0;
        for (int k = 0; k < n_string && !found; k++) {
            if (!is(a, string_flags[k][0], string_flags[k][1])) continue;
            found = 1;
            if (++i >= argc) ARG_REFUSED("common.cpp", 320, "error: invalid parameter for argument: %s", a);
            if (string_targets[k]) *string_targets[k] = argv[i];
        }
        for (int k = 0; k < n_int && !found; k++) {
            if (!is(a, int_flags[k][0], int_flags[k][1])) continue;
            found = 1;
            if (++i >= argc) ARG_REFUSED("common.cpp", 320, "error: invalid parameter for argument: %s", a);
            *int_targets[k] = (int)sto_integer(argv[i], INT_MIN, INT_MAX, "stoi");
            if (k == 0) p->width_given = 1;
            if (k == 1) p->height_given = 1;
        }
        if (found) continue;
        if (is(a, "--cfg-scale", NULL)) {
            if (++i >= argc) ARG_REFUSED("common.cpp", 320, "error: invalid parameter for argument: %s", a);
            p->cfg = sto_float(argv[i]);
        } else if (is(a, "--strength", NULL)) {
            if (++i >= argc) ARG_REFUSED("common.cpp", 320, "error: invalid parameter for argument: %s", a);
            p->strength = sto_float(argv[i]);
        } else if (is(a, "--preview", NULL)) {
            const char *v = ++i < argc ? argv[i] : NULL;
            int k = v ? lookup(v, PREVIEWS) : -1;
            if (v && k < 0) LOG_AS(L_ERROR, "main.cpp", 178, "error: preview method %s", v);
            if (k < 0) ARG_REFUSED("common.cpp", 320, "error: invalid parameter for argument: %s", a);
            p->preview = k;
        } else if (is(a, "-s", "--seed")) {
            if (++i >= argc) ARG_REFUSED("common.cpp", 320, "error: invalid parameter for argument: %s", a);
            p->seed = sto_integer(argv[i], LLONG_MIN, LLONG_MAX, "stoll");
        } else if (is(a, "-v", "--verbose")) g_verbose = 1;
        else if (is(a, "--color", NULL)) g_color = -1; /* switched on once the arguments are read */
        else if (lookup(a, bool_flags) >= 0) {
            /* accepted for compatibility, nothing to do */
        } else if (is(a, "-h", "--help")) {
            usage(argv[0]);
            exit(0);
        } else if (is(a, "--sampling-method", NULL)) {
            const char *v = ++i < argc ? argv[i] : NULL;
            int k = 0;
            while (v && k < SAMPLER_COUNT && strcmp(v, SAMPLERS[k].name) != 0) k++;
            if (v && k == SAMPLER_COUNT) LOG_AS(L_ERROR, "common.cpp", 1258, "error: invalid sample method %s", v);
            if (!v || k == SAMPLER_COUNT) ARG_REFUSED("common.cpp", 320, "error: invalid parameter for argument: %s", a);
            p->sampler = k;
        } else if (is(a, "--scheduler", NULL)) {
            const char *v = ++i < argc ? argv[i] : NULL;
            int k = v ? lookup(v, SCHEDULERS) : -1;
            if (v && k < 0) LOG_AS(L_ERROR, "common.cpp", 1286, "error: invalid scheduler %s", v);
            if (k < 0) ARG_REFUSED("common.cpp", 320, "error: invalid parameter for argument: %s", a);
            p->scheduler = k;
        } else if (is(a, "-M", "--mode")) {
            const char *v = ++i < argc ? argv[i] : NULL;
            if (!v) ARG_REFUSED("common.cpp", 320, "error: invalid parameter for argument: %s", a);
            p->mode = lookup(v, MODES);
            if (p->mode < 0) { /* sd-cli exits here without the usage */
                LOG_AS(L_ERROR, "main.cpp", 157,
                       "error: invalid mode %s, must be one of [img_gen, adetailer, vid_gen, convert, upscale, metadata]",
                       v);
                exit(1);
            }
        } else ARG_REFUSED("common.cpp", 325, "error: unknown argument: %s", a);
    }
    const char *mode = MODES[p->mode];
    int upscale = strcmp(mode, "upscale") == 0, no_model_needed = upscale || strcmp(mode, "metadata") == 0;
    if (strcmp(mode, "convert") == 0 && !p->model && !p->diffusion_model && !p->vae && !p->clip_l && !p->clip_g &&
        !p->t5xxl)
        ARG_REFUSED("common.cpp", 738, "error: convert mode needs at least one model input path");
    if (!no_model_needed && strcmp(mode, "convert") != 0 && !p->model && !p->diffusion_model)
        ARG_REFUSED("common.cpp", 742, "error: the following arguments are required: model_path/diffusion_model");
    if (upscale && !p->upscale_model)
        ARG_REFUSED("common.cpp", 748, "error: upscale mode needs an upscaler model (--upscale-model)");
    if (p->batch <= 0) ARG_REFUSED("common.cpp", 2369, "error: batch_count must be greater than 0");
    if (p->steps <= 0) ARG_REFUSED("common.cpp", 2379, "error: the sample_steps must be greater than 0");
    if (p->strength < 0.f || p->strength > 1.f)
        ARG_REFUSED("common.cpp", 2384, "error: can only work with strength in [0.0, 1.0]");
    if (p->cfg < 0) ARG_REFUSED("common.cpp", 2389, "error: cfg_scale must be positive");
    if (p->upscale_repeats < 1) { /* sd-cli refuses it without a message of its own */
        usage(argv[0]);
        exit(1);
    }
    if (upscale && !p->init_img)
        ARG_REFUSED("common.cpp", 2468, "error: upscale mode needs an init image (--init-img)");
    if (p->mode != MODE_IMG_GEN && !upscale)
        ARG_ERROR("the reference engine only does img_gen and upscale (asked for -M %s)", mode);
    if (upscale) { /* sd-cli resizes the input to -W x -H when both are positive, whatever they are */
        p->width_given = p->width_given && p->width > 0;
        p->height_given = p->height_given && p->height > 0;
    } else {
        if (p->width_given) check_side("width", p->width, NULL);
        if (p->height_given) check_side("height", p->height, NULL);
    }
    if (p->steps > MAX_STEPS) ARG_ERROR("the reference engine takes at most %d steps (got %d)", MAX_STEPS, p->steps);
    if (p->batch > MAX_BATCH) ARG_ERROR("the reference engine makes at most %d images (got %d)", MAX_BATCH, p->batch);
    if (!(p->cfg <= 100)) ARG_ERROR("the reference engine takes a cfg scale up to 100 (got %g)", (double)p->cfg);
    if (p->output[0] == 0) ARG_REFUSED("main.cpp", 233, "error: the following arguments are required: output_path");
    if (p->seed < 0) { /* as sd-cli: a random seed, shown in the "generating image" line */
        uint64_t r = mix64((uint64_t)time(NULL) ^ ((uint64_t)getpid() << 32) ^ (uint64_t)(now_s() * 1e9));
        p->seed = (long long)(r & 0x7fffffff);
    }
    if (g_color) g_color = 1;
}

/* ------------------------------------------------------------------ */
/* environment switches                                                */
/* ------------------------------------------------------------------ */

static long env_long(const char *name, long dflt) {
    const char *v = getenv(name);
    if (!v || !*v) return dflt;
    char *end;
    errno = 0;
    long r = strtol(v, &end, 10);
    if (*end != 0 || errno == ERANGE || r < 0) {
        LOG_WARN("ignoring %s='%s' (expected a non-negative integer)", name, v);
        return dflt;
    }
    return r;
}

static int env_flag(const char *name) {
    const char *v = getenv(name);
    return v && *v && strcmp(v, "0") != 0 && strcmp(v, "false") != 0;
}

typedef struct {
    long step_ms, load_ms, oom_at, abort_at, hang_at;
    int no_output, print_failure;
} faults_t;

static faults_t g_faults;

/* sd-server mode (server.c): an out-of-memory fails the job, not the process */
static int g_server_mode;
static jmp_buf g_job_failed;

static void read_faults(void) {
    g_faults.step_ms = env_long("REFENGINE_STEP_MS", 0);
    g_faults.load_ms = env_long("REFENGINE_LOAD_MS", 100);
    g_faults.oom_at = env_long("REFENGINE_OOM_AT_STEP", 0);
    g_faults.abort_at = env_long("REFENGINE_ABORT_AT_STEP", 0);
    g_faults.hang_at = env_long("REFENGINE_HANG_AT_STEP", 0);
    g_faults.no_output = env_flag("REFENGINE_NO_OUTPUT");
    g_faults.print_failure = env_flag("REFENGINE_PRINT_FAILURE");
}

/* ggml's messages reach sd-cli's logger through ggml_extend.hpp, as on a CUDA build */
static void fail_oom(int line_w, int line_h) {
    double mib = (double)line_w * (double)line_h * 3 * 4 * 48 / (1024.0 * 1024.0) + 1536.0;
    LOG_AS(L_ERROR, "ggml_extend.hpp", 73,
           "ggml_backend_cuda_buffer_type_alloc_buffer: allocating %.2f MiB on device 0: cudaMalloc failed: out of memory",
           mib);
    LOG_AS(L_ERROR, "ggml_extend.hpp", 73, "ggml_gallocr_reserve_n: failed to allocate CUDA0 buffer of size %.0f",
           mib * 1024 * 1024);
    LOG_AS(L_ERROR, "ggml_extend.hpp", 2234, "unet: failed to allocate the compute buffer");
    LOG_AS(L_ERROR, "main.cpp", 952, "generate failed");
    if (g_server_mode) longjmp(g_job_failed, 1);
    exit(1);
}

static void fail_abort(void) {
    fflush(stdout);
    fprintf(stderr, "CUDA error: an illegal memory access was encountered\n");
    fprintf(stderr, "  current device: 0, in function ggml_backend_cuda_synchronize at ggml/src/ggml-cuda/ggml-cuda.cu:2628\n");
    fprintf(stderr, "  cudaStreamSynchronize(cuda_ctx->stream())\n");
    fprintf(stderr, "ggml/src/ggml-cuda/ggml-cuda.cu:88: CUDA error\n");
    fflush(stderr);
    struct rlimit no_core = {0, 0}; /* a test double should not litter core files */
    setrlimit(RLIMIT_CORE, &no_core);
    abort();
}

static void hang_forever(void) {
    fflush(stdout);
    fflush(stderr);
    for (;;) pause(); /* default signal dispositions: SIGTERM / SIGKILL / SIGINT end it */
}

/* a real allocation failure is reported like a GPU out-of-memory */
static void *xalloc(size_t bytes, int w, int h) {
    void *p = malloc(bytes);
    if (!p) {
        fprintf(stderr, "ggml_backend_cpu_buffer_type_alloc_buffer: failed to allocate buffer of size %zu\n", bytes);
        LOG_ERROR("diffusion model: failed to allocate the compute buffer (%dx%d)", w, h);
        LOG_ERROR("generate failed");
        exit(1);
    }
    return p;
}

/* ------------------------------------------------------------------ */
/* model files                                                         */
/* ------------------------------------------------------------------ */

static const char *basename_of(const char *path) {
    const char *b = path;
    for (const char *c = path; *c; c++)
        if (*c == '/' || *c == '\\') b = c + 1;
    return b;
}

static const char *format_of(const char *path) {
    size_t n = strlen(path);
    if (n >= 12 && strcmp(path + n - 12, ".safetensors") == 0) return "safetensors";
    if (n >= 5 && strcmp(path + n - 5, ".gguf") == 0) return "gguf";
    if (n >= 5 && strcmp(path + n - 5, ".ckpt") == 0) return "checkpoint";
    return "unknown";
}

/* the file's size; 0 and errno set (err) when it cannot be opened as a file */
static uint64_t model_file_size(const char *path, int *err_out) {
    struct stat st;
    int err = 0;
    memset(&st, 0, sizeof(st));
    if (path[0] == 0) err = ENOENT;
    else if (stat(path, &st) != 0) err = errno;
    else if (S_ISDIR(st.st_mode)) err = EISDIR;
    else {
        FILE *f = fopen(path, "rb");
        if (!f) err = errno;
        else fclose(f);
    }
    *err_out = err;
    return err ? 0 : (uint64_t)st.st_size;
}

/* sd.cpp's model loader on a file it cannot open: its torch loader speaks first for .pt/.pth */
static void warn_unreadable_model(const char *path, int err) {
    size_t n = strlen(path);
    int torch = (n >= 3 && strcmp(path + n - 3, ".pt") == 0) || (n >= 4 && strcmp(path + n - 4, ".pth") == 0);
    if (err == ENOENT && torch) LOG_AS(L_WARN, "model_loader.cpp", 373, "failed to open '%s'", path);
    if (err == ENOENT) LOG_AS(L_WARN, "model_loader.cpp", 254, "file %s not found", path);
    else LOG_AS(L_WARN, "model_loader.cpp", 252, "unknown format %s", path);
}

static void load_models(const params *p) {
    struct {
        const char *what, *path;
    } files[] = {{"model", p->model}, {"diffusion model", p->diffusion_model}, {"vae", p->vae},
                 {"clip_l", p->clip_l}, {"clip_g", p->clip_g}, {"t5xxl", p->t5xxl},
                 {"llm", p->llm}, {"llm_vision", p->llm_vision}};
    uint64_t total = 0;
    int main_loaded = 0;
    double t0 = now_s();
    /* as sd-cli: a -m that cannot be read is fatal; a split part that cannot be read is only a
     * warning (the worker checks its registry's files at start for that reason) */
    for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
        if (!files[i].path || !files[i].path[0]) continue;
        LOG_AS(L_INFO, "stable-diffusion.cpp", 713, "loading %s from '%s'", files[i].what, files[i].path);
        int err;
        uint64_t size = model_file_size(files[i].path, &err);
        if (err) warn_unreadable_model(files[i].path, err);
        if (err && i == 0) {
            LOG_AS(L_ERROR, "stable-diffusion.cpp", 715, "init model loader from file failed: '%s'", files[i].path);
            LOG_AS(L_ERROR, "stable-diffusion.cpp", 905, "get sd version from file failed: '%s'", files[i].path);
            LOG_AS(L_INFO, "main.cpp", 910, "new_sd_ctx_t failed");
            exit(1);
        }
        if (err) {
            LOG_AS(L_WARN, "stable-diffusion.cpp", 793, "loading %s from '%s' failed", files[i].what, files[i].path);
            continue;
        }
        LOG_DEBUG("load %s using %s format", files[i].path, format_of(files[i].path));
        if (i <= 1) main_loaded = 1;
        total += size;
    }
    if (!main_loaded) { /* only split parts that do not exist: sd-cli finds no model version in them */
        LOG_AS(L_ERROR, "stable-diffusion.cpp", 905, "get sd version from file failed: '%s'", p->model ? p->model : "");
        LOG_AS(L_INFO, "main.cpp", 910, "new_sd_ctx_t failed");
        exit(1);
    }
    total += 2048ull << 20; /* the file is a stand-in: the bar shows what a real model would load */
    LOG_INFO("Version: reference procedural model (" REFENGINE_LABEL ")");
    LOG_INFO("Weight type: f32");
    LOG_DEBUG("loading weights (simulated, REFENGINE_LOAD_MS=%ld)", g_faults.load_ms);
    const int tensors = 1130, updates = 10;
    double load_s = (double)g_faults.load_ms / 1000.0, tl = now_s();
    for (int u = 1; u <= updates; u++) {
        sleep_s(tl + load_s * u / updates - now_s());
        double el = now_s() - tl;
        double mb = (double)total * u / updates / (1024.0 * 1024.0);
        bytes_progress(tensors * u / updates, tensors, el > 1e-6 ? mb / el : mb * 1e6);
    }
    LOG_INFO("loading tensors completed, taking %.2fs", now_s() - tl);
    LOG_INFO("total params memory size = %.2fMB (no weights are used by the " REFENGINE_LABEL ")",
             (double)total / (1024.0 * 1024.0));
    LOG_INFO("loading model completed, taking %.2fs", now_s() - t0);
}

/* ------------------------------------------------------------------ */
/* the "model": a denoiser that knows the target picture               */
/* ------------------------------------------------------------------ */

typedef struct {
    int w, h;
    size_t n;        /* w * h * 3 */
    const float *T;  /* target picture, [-1, 1] */
    float *tmp, *tmp2; /* scratch, n floats each */
    float kscale;    /* how imperfect the prediction is at high noise (distilled samplers: small) */
    const float *init;    /* img2img / inpainting: the init image as a latent, else NULL */
    const uint8_t *mask;  /* inpainting: 1 = repaint, 0 = keep the init image; NULL = repaint all */
} model_t;

/* D(x, sigma): a prediction of the clean picture. MODEL_LAYERS passes of a 3x3
 * blur over the scaled input stand in for the network; its output leaks into
 * the prediction in proportion to the noise level, so early steps are blurry
 * and noisy guesses and the last ones are clean. */
#define MODEL_LAYERS 5

static void blur_h(const float *src, float *dst, int w, int h) { /* [1 2 1], unnormalised */
    const size_t stride = (size_t)w * 3;
    for (int y = 0; y < h; y++) {
        const float *r = src + stride * (size_t)y;
        float *t = dst + stride * (size_t)y;
        for (int c = 0; c < 3; c++) {
            t[c] = 3 * r[c] + r[3 + c];
            t[stride - 3 + c] = r[stride - 6 + c] + 3 * r[stride - 3 + c];
        }
        for (size_t i = 3; i < stride - 3; i++) t[i] = r[i - 3] + 2 * r[i] + r[i + 3];
    }
}

static void denoise(const model_t *m, const float *x, double sigma, float *out) {
    const float cin = (float)(1.0 / sqrt(sigma * sigma + 1.0));
    const float k = (float)(m->kscale * 0.12 * sigma / (sigma + 1.5));
    const float keep = 1.0f - k, norm = 0.0625f; /* (1/4)^2 per layer */
    const size_t stride = (size_t)m->w * 3;
    const float *src = x;
    for (int layer = 0; layer < MODEL_LAYERS; layer++) {
        int last = layer == MODEL_LAYERS - 1;
        float scale = norm * (layer == 0 ? cin : 1.0f);
        blur_h(src, m->tmp, m->w, m->h);
        for (int y = 0; y < m->h; y++) { /* vertical [1 2 1] */
            const float *up = m->tmp + stride * (size_t)(y > 0 ? y - 1 : 0);
            const float *mid = m->tmp + stride * (size_t)y;
            const float *dn = m->tmp + stride * (size_t)(y < m->h - 1 ? y + 1 : y);
            if (last) { /* mix with the target */
                const float *T = m->T + stride * (size_t)y;
                float *o = out + stride * (size_t)y;
                const float kc = k * scale;
                for (size_t i = 0; i < stride; i++) o[i] = T[i] * keep + kc * (up[i] + 2 * mid[i] + dn[i]);
            } else {
                float *o = m->tmp2 + stride * (size_t)y;
                for (size_t i = 0; i < stride; i++) o[i] = scale * (up[i] + 2 * mid[i] + dn[i]);
            }
        }
        src = m->tmp2;
    }
    if (m->mask) /* as sd.cpp: the prediction keeps the init image outside the mask */
        for (size_t px = 0; px < (size_t)m->w * (size_t)m->h; px++)
            if (!m->mask[px]) memcpy(out + px * 3, m->init + px * 3, 3 * sizeof(float));
}

/* fresh gaussian noise for ancestral samplers, scaled by amp, added to x */
static void add_noise(float *x, size_t n, float amp, uint64_t stream) {
    rng64 r;
    rng_seed(&r, stream);
    for (size_t i = 0; i < n; i++) x[i] += amp * gauss_from_bits(rng_next(&r));
}

static void make_sigmas(int sampler, int scheduler, int steps, double *sig) {
    int trailing = sampler == S_LCM || sampler == S_DDIM_TRAILING || sampler == S_TCD;
    double lmax = r_log(SIGMA_MAX), lmin = r_log(SIGMA_MIN);
    if (scheduler == 1 && !trailing) { /* karras, rho = 7 */
        double a = r_pow(SIGMA_MAX, 1.0 / 7), b = r_pow(SIGMA_MIN, 1.0 / 7);
        for (int i = 0; i < steps; i++) {
            double t = steps == 1 ? 0 : (double)i / (steps - 1), v = a + t * (b - a);
            double v2 = v * v, v4 = v2 * v2;
            sig[i] = v4 * v2 * v;
        }
    } else if (trailing) { /* trailing timesteps: stop one interval short of sigma_min */
        for (int i = 0; i < steps; i++) sig[i] = r_exp(lmax + (lmin - lmax) * (double)i / steps);
    } else { /* discrete-like: log-linear */
        for (int i = 0; i < steps; i++) sig[i] = r_exp(lmax + (lmin - lmax) * (steps == 1 ? 0 : (double)i / (steps - 1)));
    }
    sig[steps] = 0;
}

/* ancestral split of a step: sigma_down (deterministic part) and sigma_up (fresh noise) */
static void ancestral(double s, double sn, double *down, double *up) {
    if (sn <= 0) {
        *down = 0;
        *up = 0;
        return;
    }
    double u = sqrt(sn * sn * (s * s - sn * sn) / (s * s));
    if (u > sn) u = sn;
    *up = u;
    *down = sqrt(sn * sn - u * u);
}

typedef struct {
    float *x, *den, *aux1, *aux2, *hist[3];
    int nhist;
} bufs_t;

/* one sampler step from sig[i] to sig[i+1] */
static void sampler_step(int sampler, const model_t *m, bufs_t *b, const double *sig, int i, uint64_t noise_stream) {
    const size_t n = m->n;
    const double s = sig[i], sn = sig[i + 1];
    float *x = b->x, *den = b->den;
    denoise(m, x, s, den);
    switch (sampler) {
    case S_EULER:
    case S_DDIM_TRAILING: {
        float r = (float)(sn / s);
        for (size_t k = 0; k < n; k++) x[k] = den[k] + (x[k] - den[k]) * r;
        break;
    }
    case S_EULER_A: {
        double down, up;
        ancestral(s, sn, &down, &up);
        float r = (float)(down / s);
        for (size_t k = 0; k < n; k++) x[k] = den[k] + (x[k] - den[k]) * r;
        if (up > 0) add_noise(x, n, (float)up, noise_stream);
        break;
    }
    case S_HEUN:
    case S_DPM2: {
        if (sn <= 0) {
            memcpy(x, den, n * sizeof(float));
            break;
        }
        double s2 = sampler == S_HEUN ? sn : sqrt(s * sn); /* dpm2: midpoint in log sigma */
        float *x2 = b->aux1, *den2 = b->aux2;
        float r = (float)(s2 / s);
        for (size_t k = 0; k < n; k++) x2[k] = den[k] + (x[k] - den[k]) * r;
        denoise(m, x2, s2, den2);
        float inv_s = (float)(1.0 / s), inv_s2 = (float)(1.0 / s2), dt = (float)(sn - s);
        if (sampler == S_HEUN) {
            for (size_t k = 0; k < n; k++) {
                float d1 = (x[k] - den[k]) * inv_s, d2 = (x2[k] - den2[k]) * inv_s2;
                x[k] += (d1 + d2) * 0.5f * dt;
            }
        } else {
            for (size_t k = 0; k < n; k++) x[k] += (x2[k] - den2[k]) * inv_s2 * dt;
        }
        break;
    }
    case S_DPMPP2S_A: {
        double down, up;
        ancestral(s, sn, &down, &up);
        if (down <= 0) {
            memcpy(x, den, n * sizeof(float));
        } else {
            double ss = sqrt(s * down); /* sigma at the log-space midpoint */
            float *x2 = b->aux1, *den2 = b->aux2;
            float rs = (float)(ss / s), rd = (float)(down / s);
            for (size_t k = 0; k < n; k++) x2[k] = den[k] + (x[k] - den[k]) * rs;
            denoise(m, x2, ss, den2);
            for (size_t k = 0; k < n; k++) x[k] = den2[k] + (x[k] - den2[k]) * rd;
        }
        if (up > 0) add_noise(x, n, (float)up, noise_stream);
        break;
    }
    case S_DPMPP2M:
    case S_DPMPP2MV2: {
        float *old = b->aux1;
        float a = (float)(sn / s);
        if (i == 0 || sn <= 0) {
            for (size_t k = 0; k < n; k++) x[k] = den[k] + (x[k] - den[k]) * a;
        } else {
            double t = -r_log(s), tn = -r_log(sn), tp = -r_log(sig[i - 1]);
            double h = tn - t, hl = t - tp, bcoef;
            double r;
            if (sampler == S_DPMPP2M) {
                r = hl / h;
                bcoef = sn / s - 1.0; /* expm1(-h) */
            } else {
                double hmin = hl < h ? hl : h, hmax = hl < h ? h : hl;
                r = hmax / hmin;
                bcoef = r_exp(-(hmax + hmin) / 2) - 1.0;
            }
            float c1 = (float)(1 + 1 / (2 * r)), c2 = (float)(1 / (2 * r)), bf = (float)bcoef;
            for (size_t k = 0; k < n; k++) {
                float dd = c1 * den[k] - c2 * old[k];
                x[k] = a * x[k] - bf * dd;
            }
        }
        memcpy(old, den, n * sizeof(float));
        break;
    }
    case S_IPNDM:
    case S_IPNDM_V: {
        float dt = (float)(sn - s), inv_s = (float)(1.0 / s);
        float *d = b->aux1; /* current derivative */
        for (size_t k = 0; k < n; k++) d[k] = (x[k] - den[k]) * inv_s;
        int order = b->nhist + 1;
        if (sampler == S_IPNDM_V && order > 2) order = 2;
        float *h1 = b->hist[0], *h2 = b->hist[1], *h3 = b->hist[2];
        if (order == 1) {
            for (size_t k = 0; k < n; k++) x[k] += dt * d[k];
        } else if (order == 2) {
            float c0 = 1.5f, c1 = -0.5f;
            if (sampler == S_IPNDM_V) { /* variable step Adams-Bashforth 2 */
                float dtp = (float)(s - sig[i - 1]), q = dt / (2 * dtp);
                c0 = 1 + q;
                c1 = -q;
            }
            for (size_t k = 0; k < n; k++) x[k] += dt * (c0 * d[k] + c1 * h1[k]);
        } else if (order == 3) {
            for (size_t k = 0; k < n; k++) x[k] += dt * (23 * d[k] - 16 * h1[k] + 5 * h2[k]) * (1.0f / 12);
        } else {
            for (size_t k = 0; k < n; k++) x[k] += dt * (55 * d[k] - 59 * h1[k] + 37 * h2[k] - 9 * h3[k]) * (1.0f / 24);
        }
        /* rotate history: h3 <- h2 <- h1 <- d (ipndm_v keeps h1 only) */
        if (sampler == S_IPNDM) {
            float *t3 = b->hist[2];
            b->hist[2] = b->hist[1];
            b->hist[1] = b->hist[0];
            b->hist[0] = b->aux1;
            b->aux1 = t3;
            if (b->nhist < 3) b->nhist++;
        } else {
            float *t1 = b->hist[0];
            b->hist[0] = b->aux1;
            b->aux1 = t1;
            b->nhist = 1;
        }
        break;
    }
    case S_LCM:
    case S_TCD: {
        if (sampler == S_LCM || sn <= 0) {
            memcpy(x, den, n * sizeof(float));
            if (sn > 0) add_noise(x, n, (float)sn, noise_stream);
        } else {
            double ss = 0.7 * sn; /* gamma = 0.3 */
            float r = (float)(ss / s);
            for (size_t k = 0; k < n; k++) x[k] = den[k] + (x[k] - den[k]) * r;
            add_noise(x, n, (float)sqrt(sn * sn - ss * ss), noise_stream);
        }
        break;
    }
    default: break;
    }
}

/* ------------------------------------------------------------------ */
/* generation                                                          */
/* ------------------------------------------------------------------ */

/* the input images, at the output size (sd-cli crops and resizes them to it) */
typedef struct {
    uint8_t *init; /* -i: W*H*3, or NULL */
    uint8_t *mask; /* --mask: W*H, 1 = repaint, or NULL (repaint everything) */
} inputs_t;

/* sd.cpp's img2img schedule: t_enc = steps * strength (a float product, truncated), one less
 * when that is every step, and the last t_enc + 1 steps of the full schedule are run; strength 1
 * runs them all. Returns how many steps are skipped; *run gets how many are run. */
static int img2img_skip(const params *p, const inputs_t *in, int *run) {
    *run = p->steps;
    if (!in || !in->init || !(p->strength < 1.0f)) return 0;
    int t_enc = (int)((float)p->steps * p->strength);
    if (t_enc == p->steps) t_enc--;
    *run = t_enc + 1;
    return p->steps - t_enc - 1;
}

static uint8_t to_byte(float v) { return (uint8_t)(clampf((v + 1.0f) * 0.5f, 0, 1) * 255.0f + 0.5f); }

static int g_previews; /* previews written so far (the -v debug line counts them) */

/* --preview: the current prediction of the clean image, written to a temporary name and renamed
 * over --preview-path so a reader never sees half a file. proj: the latent projected to RGB at
 * 1/8 of the size, as sd.cpp does for SD 1.x/XL; tae/vae: the full-size decode. */
static void write_preview(const params *p, const float *x, int step, int steps) {
    const int w = p->width, h = p->height, proj = p->preview == PREVIEW_PROJ;
    const int pw = proj ? w / 8 : w, ph = proj ? h / 8 : h;
    uint8_t *rgb = (uint8_t *)xalloc((size_t)pw * (size_t)ph * 3, w, h);
    for (int y = 0; y < ph; y++)
        for (int px = 0; px < pw; px++)
            for (int c = 0; c < 3; c++) {
                float v;
                if (proj) {
                    v = 0;
                    for (int yy = 0; yy < 8; yy++)
                        for (int xx = 0; xx < 8; xx++) v += x[((size_t)(y * 8 + yy) * (size_t)w + (size_t)(px * 8 + xx)) * 3 + (size_t)c];
                    v *= 1.0f / 64;
                } else v = x[((size_t)y * (size_t)w + (size_t)px) * 3 + (size_t)c];
                rgb[((size_t)y * (size_t)pw + (size_t)px) * 3 + (size_t)c] = to_byte(v);
            }
    label_draw(rgb, pw, ph, IMAGE_LABEL);
    png_text text = {"Software", PNG_SOFTWARE};
    uint8_t *png = NULL;
    size_t len = 0;
    int ok = png_encode_rgb(rgb, pw, ph, &text, 1, &png, &len) == 0;
    free(rgb);
    size_t plen = strlen(p->preview_path);
    char *tmp = (char *)malloc(plen + 32);
    if (ok && tmp) {
        snprintf(tmp, plen + 32, "%s.%ld.tmp", p->preview_path, (long)getpid());
        FILE *f = fopen(tmp, "wb");
        ok = f && fwrite(png, 1, len, f) == len;
        if (f && fclose(f) != 0) ok = 0;
        ok = ok && rename(tmp, p->preview_path) == 0;
        if (!ok) remove(tmp);
    } else ok = 0;
    free(tmp);
    free(png);
    if (!ok) LOG_AS(L_ERROR, "main.cpp", 387, "save preview image to '%s' failed", p->preview_path);
    else
        LOG_DEBUG("preview %d: step %d/%d, %dx%d %s, written to '%s'", ++g_previews, step, steps, pw, ph,
                  PREVIEWS[p->preview], p->preview_path);
}

/* samples one image; returns the final latent (w*h*3 floats in [-1, 1]) */
static float *sample_image(const params *p, const inputs_t *in, int index, long long seed) {
    const int w = p->width, h = p->height, steps = p->steps;
    const size_t n = (size_t)w * (size_t)h * 3, bytes = n * sizeof(float), pixels = (size_t)w * (size_t)h;
    LOG_INFO("generating image: %d/%d - seed %lld", index + 1, p->batch, seed);

    /* the "conditioning": the picture the prompt asks for */
    scene sc;
    scene_build(&sc, p->prompt, p->negative, (int64_t)seed, p->cfg);
    if (g_verbose) {
        char desc[2048];
        scene_summary(&sc, desc, sizeof(desc));
        LOG_DEBUG("scene: %s", desc);
    }
    float *T = (float *)xalloc(bytes, w, h);
    scene_render(&sc, T, w, h);

    /* img2img: the model is drawn towards the init image blended with the prompt's picture by
     * strength, so the init shows through in proportion to 1 - strength; inpainting: only inside
     * the mask (outside it, the init image; with a mask and no init image, sd.cpp's zero latent). */
    float *init = NULL;
    const uint8_t *mask = in ? in->mask : NULL;
    if (in && (in->init || in->mask)) {
        init = (float *)xalloc(bytes, w, h);
        for (size_t k = 0; k < n; k++) init[k] = in->init ? (float)in->init[k] / 127.5f - 1.0f : 0.0f;
        const float pull = in->init ? p->strength : 1.0f;
        for (size_t px = 0; px < pixels; px++)
            for (int c = 0; c < 3; c++) {
                size_t k = px * 3 + (size_t)c;
                T[k] = mask && !mask[px] ? init[k] : init[k] + pull * (T[k] - init[k]);
            }
    }

    bufs_t b;
    memset(&b, 0, sizeof(b));
    b.x = (float *)xalloc(bytes, w, h);
    b.den = (float *)xalloc(bytes, w, h);
    int s = SAMPLERS[p->sampler].rule;
    if (s == S_HEUN || s == S_DPM2 || s == S_DPMPP2S_A) {
        b.aux1 = (float *)xalloc(bytes, w, h);
        b.aux2 = (float *)xalloc(bytes, w, h);
    } else if (s == S_DPMPP2M || s == S_DPMPP2MV2) {
        b.aux1 = (float *)xalloc(bytes, w, h);
    } else if (s == S_IPNDM || s == S_IPNDM_V) {
        b.aux1 = (float *)xalloc(bytes, w, h);
        int nh = s == S_IPNDM ? 3 : 1;
        for (int k = 0; k < nh; k++) b.hist[k] = (float *)xalloc(bytes, w, h);
    }
    model_t m = {w, h, n, T, NULL, NULL, (s == S_LCM || s == S_TCD) ? 0.1f : 1.0f, init, mask};
    m.tmp = (float *)xalloc(bytes, w, h);
    m.tmp2 = (float *)xalloc(bytes, w, h);

    double *sig_all = (double *)xalloc(sizeof(double) * (size_t)(steps + 1), w, h);
    make_sigmas(s, p->scheduler, steps, sig_all);
    int run;
    const double *sig = sig_all + img2img_skip(p, in, &run);
    if (g_verbose) {
        char line[256];
        int at = 0;
        for (int k = 0; k <= run && at < 200; k++) at += snprintf(line + at, sizeof(line) - (size_t)at, "%s%.4f", k ? ", " : "", sig[k]);
        LOG_DEBUG("sigmas: %s%s", line, at >= 200 ? ", ..." : "");
    }

    /* initial latent: seeded noise at the first sigma, over the init image when there is one */
    uint64_t useed = mix64((uint64_t)seed);
    {
        rng64 r;
        rng_seed(&r, useed ^ 0x1f83d9abfb41bd6bULL);
        float amp = (float)sig[0];
        for (size_t k = 0; k < n; k++) b.x[k] = (init ? init[k] : 0.0f) + amp * gauss_from_bits(rng_next(&r));
    }

    double t0 = now_s();
    for (int i = 0; i < run; i++) {
        int step = i + 1;
        double ts = now_s();
        if (g_faults.oom_at == step) fail_oom(w, h);
        if (g_faults.abort_at == step) fail_abort();
        if (g_faults.hang_at == step) hang_forever();
        sampler_step(s, &m, &b, sig, i, mix64(useed + (uint64_t)step * 0x9e3779b97f4a7c15ULL));
        if (p->preview != PREVIEW_NONE && step % (p->preview_interval > 0 ? p->preview_interval : 1) == 0)
            write_preview(p, b.den, step, run);
        double until = ts + (double)g_faults.step_ms / 1000.0;
        /* a server answers its clients between steps (and while it stands in for GPU time) */
        int cancelled = g_server_mode ? server_poll(until) : (sleep_s(until - now_s()), 0);
        step_progress(step, run, now_s() - ts);
        if (cancelled) {
            if (step < run) printf("\n");
            LOG_INFO("generation cancelled at step %d/%d", step, run);
            free(b.x);
            b.x = NULL;
            break;
        }
    }
    if (b.x) LOG_INFO("sampling completed, taking %.2fs", now_s() - t0);

    float *x = b.x;
    free(T);
    free(init);
    free(b.den);
    free(b.aux1);
    free(b.aux2);
    for (int k = 0; k < 3; k++) free(b.hist[k]);
    free(m.tmp);
    free(m.tmp2);
    free(sig_all);
    return x;
}

/* "VAE decode": latent -> 8-bit RGB in tiles, with the reference label burnt in. Inpainting:
 * the pixels outside the mask are the init image's, exactly (the label too stays inside the
 * repainted part). */
static uint8_t *decode_latent(const params *p, const inputs_t *in, const float *x) {
    const int w = p->width, h = p->height;
    uint8_t *rgb = (uint8_t *)xalloc((size_t)w * (size_t)h * 3, w, h);
    int tx = (w + VAE_TILE - 1) / VAE_TILE, ty = (h + VAE_TILE - 1) / VAE_TILE, tiles = tx * ty;
    LOG_DEBUG("tiled VAE decode: %d x %d tiles of %dx%d", tx, ty, VAE_TILE, VAE_TILE);
    int done = 0;
    for (int j = 0; j < ty; j++)
        for (int i = 0; i < tx; i++) {
            double ts = now_s();
            int x0 = i * VAE_TILE, y0 = j * VAE_TILE;
            int x1 = x0 + VAE_TILE < w ? x0 + VAE_TILE : w, y1 = y0 + VAE_TILE < h ? y0 + VAE_TILE : h;
            for (int y = y0; y < y1; y++) {
                const float *src = x + ((size_t)y * (size_t)w + (size_t)x0) * 3;
                uint8_t *dst = rgb + ((size_t)y * (size_t)w + (size_t)x0) * 3;
                for (int k = 0; k < (x1 - x0) * 3; k++) dst[k] = to_byte(src[k]);
            }
            step_progress(++done, tiles, now_s() - ts);
        }
    label_draw(rgb, w, h, IMAGE_LABEL);
    if (in && in->mask)
        for (size_t px = 0; px < (size_t)w * (size_t)h; px++)
            if (!in->mask[px]) {
                if (in->init) memcpy(rgb + px * 3, in->init + px * 3, 3);
                else memset(rgb + px * 3, 128, 3); /* the zero latent */
            }
    return rgb;
}

/* ------------------------------------------------------------------ */
/* input images (sd-cli's load_image_common)                          */
/* ------------------------------------------------------------------ */

/* area-average resize of one axis (stb_image_resize's box filter), rows of `ch` channels; the
 * source is src8 (bytes) when given, else src */
static void resize_axis(const uint8_t *src8, const float *src, float *dst, int sn, int dn, int lines, size_t step,
                        size_t src_line, size_t dst_line, int ch) {
    const double scale = (double)sn / (double)dn;
    for (int d = 0; d < dn; d++) {
        double a = d * scale, b = (d + 1) * scale;
        int first = (int)a, last = (int)b < sn ? (int)b : sn - 1;
        for (int l = 0; l < lines; l++)
            for (int c = 0; c < ch; c++) {
                double sum = 0;
                for (int k = first; k <= last; k++) {
                    double lo = k > a ? k : a, hi = k + 1 < b ? k + 1 : b;
                    size_t at = (size_t)l * src_line + (size_t)k * step + (size_t)c;
                    if (hi > lo) sum += (hi - lo) * (src8 ? (double)src8[at] : (double)src[at]);
                }
                dst[(size_t)l * dst_line + (size_t)d * step + (size_t)c] = (float)(sum / (b - a));
            }
    }
}

static uint8_t *resize_box(const uint8_t *src, int sw, int sh, int dw, int dh, int ch) {
    const size_t row = (size_t)dw * (size_t)ch;
    float *b = (float *)xalloc((size_t)sh * row * sizeof(float), dw, dh), *a = (float *)xalloc((size_t)dh * row * sizeof(float), dw, dh);
    resize_axis(src, NULL, b, sw, dw, sh, (size_t)ch, (size_t)sw * (size_t)ch, row, ch); /* rows: sw -> dw */
    resize_axis(NULL, b, a, sh, dh, dw, row, (size_t)ch, (size_t)ch, ch);               /* columns: sh -> dh */
    uint8_t *out = (uint8_t *)xalloc((size_t)dw * (size_t)dh * (size_t)ch, dw, dh);
    for (int y = 0; y < dh; y++)
        for (size_t k = 0; k < (size_t)dw * (size_t)ch; k++) {
            float v = a[(size_t)y * row + k] + 0.5f;
            out[(size_t)y * (size_t)dw * (size_t)ch + k] = (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v);
        }
    free(a);
    free(b);
    return out;
}

/* Reads a PNG with `ch` channels (3: RGB; 1: gray, as stb_image: (77 r + 150 g + 29 b) >> 8).
 * With ew, eh > 0 a different size is centre-cropped to that aspect and resized, with sd-cli's
 * log lines. Returns NULL after sd-cli's (or, for a PNG it would read and we cannot, our own)
 * error line; the caller adds main.cpp's and exits 1. */
static uint8_t *load_input_image(const char *path, int ch, int ew, int eh, int *w_out, int *h_out) {
    png_image img;
    char why[256];
    int rc = png_read_file(path, &img, why, sizeof(why));
    if (rc == PNG_READ_UNSUPPORTED) {
        LOG_ERROR("cannot read '%s': %s", path, why);
        return NULL;
    }
    if (rc != PNG_READ_OK) {
        LOG_DEBUG("'%s': %s", path, why);
        LOG_AS(L_ERROR, "media_io.cpp", 538, "load image from '%s' failed", path);
        return NULL;
    }
    if (img.channels < ch) { /* sd-cli: stb_image's channel count, printed without a newline */
        fflush(stdout);
        fprintf(stderr, "the number of channels for the input image must be >= %d,but got %d channels, image_path = %s",
                ch, img.channels, path);
        fflush(stderr);
        free(img.rgb);
        return NULL;
    }
    int w = img.width, h = img.height;
    uint8_t *px = img.rgb;
    if (ch == 1) {
        px = (uint8_t *)xalloc((size_t)w * (size_t)h, w, h);
        for (size_t k = 0; k < (size_t)w * (size_t)h; k++)
            px[k] = (uint8_t)((img.rgb[k * 3] * 77 + img.rgb[k * 3 + 1] * 150 + img.rgb[k * 3 + 2] * 29) >> 8);
        free(img.rgb);
    }
    if (ew > 0 && eh > 0 && (w != ew || h != eh)) {
        float dst_aspect = (float)ew / (float)eh, src_aspect = (float)w / (float)h;
        int cx = 0, cy = 0, cw = w, chh = h;
        if (src_aspect > dst_aspect) {
            cw = (int)((float)h * dst_aspect);
            cx = (w - cw) / 2;
        } else if (src_aspect < dst_aspect) {
            chh = (int)((float)w / dst_aspect);
            cy = (h - chh) / 2;
        }
        if (cx != 0 || cy != 0) {
            LOG_AS(L_INFO, "media_io.cpp", 575, "crop input image from %dx%d to %dx%d, image_path = %s", w, h, cw, chh, path);
            uint8_t *crop = (uint8_t *)xalloc((size_t)cw * (size_t)chh * (size_t)ch, cw, chh);
            for (int y = 0; y < chh; y++)
                memcpy(crop + (size_t)y * (size_t)cw * (size_t)ch, px + ((size_t)(cy + y) * (size_t)w + (size_t)cx) * (size_t)ch,
                       (size_t)cw * (size_t)ch);
            free(px);
            px = crop;
            w = cw;
            h = chh;
        }
        LOG_AS(L_INFO, "media_io.cpp", 592, "resize input image from %dx%d to %dx%d", w, h, ew, eh);
        uint8_t *resized = resize_box(px, w, h, ew, eh, ch);
        free(px);
        px = resized;
        w = ew;
        h = eh;
    }
    *w_out = w;
    *h_out = h;
    return px;
}

/* -i and --mask, in sd-cli's order: the init image (setting the size unless -W and -H were both
 * given), then the mask at the resolved size, rounded to 0/1 as sd.cpp does. Exits 1 on a bad one. */
static void load_inputs(params *p, inputs_t *in) {
    memset(in, 0, sizeof(*in));
    int both = p->width_given && p->height_given, w, h;
    if (p->init_img) {
        in->init = load_input_image(p->init_img, 3, both ? p->width : 0, both ? p->height : 0, &w, &h);
        if (!in->init) {
            LOG_AS(L_ERROR, "main.cpp", 749, "load image from '%s' failed", p->init_img);
            exit(1);
        }
        if (!both) {
            LOG_AS(L_INFO, "common.cpp", 2205, "set width x height to %d x %d", w, h);
            p->width = w;
            p->height = h;
        }
    }
    if (p->mode == MODE_IMG_GEN) { /* sizes the engine can sample at */
        check_side("width", p->width, p->init_img && !both ? p->init_img : NULL);
        check_side("height", p->height, p->init_img && !both ? p->init_img : NULL);
    }
    if (p->mask_img) {
        in->mask = load_input_image(p->mask_img, 1, p->width, p->height, &w, &h);
        if (!in->mask) {
            LOG_AS(L_ERROR, "main.cpp", 829, "load image from '%s' failed", p->mask_img);
            exit(1);
        }
        for (size_t k = 0; k < (size_t)w * (size_t)h; k++) in->mask[k] = in->mask[k] >= 128;
    }
}

/* ------------------------------------------------------------------ */
/* upscaling (a stand-in for ESRGAN: 4x bilinear)                      */
/* ------------------------------------------------------------------ */

/* sd-cli's new_upscaler_ctx: a file that cannot be read is two [ERROR] lines, and then sd-cli
 * saves the images as they are (exit 0) */
static int load_upscaler(const char *path) {
    int err;
    model_file_size(path, &err);
    if (err) {
        warn_unreadable_model(path, err);
        LOG_AS(L_ERROR, "upscaler.cpp", 84, "init model loader from file failed: '%s'", path);
        LOG_AS(L_ERROR, "main.cpp", 979, "new_upscaler_ctx failed");
        return 0;
    }
    LOG_AS(L_INFO, "upscaler.cpp", 88, "Upscaler weight type: f32 (" REFENGINE_LABEL ": bilinear 4x)");
    return 1;
}

/* tiles along one side as sd-cli's ESRGAN cuts it: one up to a tile's size, else tiles of 128
 * overlapping by a quarter (an approximation of its count, for the bar) */
static int esrgan_tiles(int side) { return side <= ESRGAN_TILE ? 1 : (side - ESRGAN_TILE / 4 + ESRGAN_TILE * 3 / 4 - 1) / (ESRGAN_TILE * 3 / 4); }

/* one 4x pass: bilinear at pixel centres, in integer eighths (deterministic everywhere). As
 * sd-cli, a bar (one tick per tile) only when the input is larger than one tile. */
static uint8_t *upscale4x(const uint8_t *src, int w, int h) {
    const int ow = w * 4, oh = h * 4;
    uint8_t *dst = (uint8_t *)xalloc((size_t)ow * (size_t)oh * 3, ow, oh);
    LOG_AS(L_INFO, "upscaler.cpp", 156, "upscaling from (%i x %i) to (%i x %i)", w, h, ow, oh);
    double t0 = now_s();
    const int tx = esrgan_tiles(w), ty = esrgan_tiles(h), bar = tx * ty > 1;
    const int band_w = (ow + tx - 1) / tx, band_h = (oh + ty - 1) / ty; /* output bands, one per tile */
    int done = 0;
    for (int j = 0; j < ty; j++)
        for (int i = 0; i < tx; i++) {
            double ts = now_s();
            int ylim = (j + 1) * band_h < oh ? (j + 1) * band_h : oh;
            int xlim = (i + 1) * band_w < ow ? (i + 1) * band_w : ow;
            for (int y = j * band_h; y < ylim; y++) {
                int sy = 2 * y - 3; /* (y + 0.5) / 4 - 0.5, in eighths */
                int y0 = sy >= 0 ? sy / 8 : -1, fy = sy - 8 * y0;
                int ya = y0 < 0 ? 0 : y0, yb = y0 + 1 >= h ? h - 1 : y0 + 1;
                for (int x = i * band_w; x < xlim; x++) {
                    int sx = 2 * x - 3;
                    int x0 = sx >= 0 ? sx / 8 : -1, fx = sx - 8 * x0;
                    int xa = x0 < 0 ? 0 : x0, xb = x0 + 1 >= w ? w - 1 : x0 + 1;
                    const uint8_t *p00 = src + ((size_t)ya * (size_t)w + (size_t)xa) * 3, *p01 = src + ((size_t)ya * (size_t)w + (size_t)xb) * 3;
                    const uint8_t *p10 = src + ((size_t)yb * (size_t)w + (size_t)xa) * 3, *p11 = src + ((size_t)yb * (size_t)w + (size_t)xb) * 3;
                    uint8_t *o = dst + ((size_t)y * (size_t)ow + (size_t)x) * 3;
                    for (int c = 0; c < 3; c++) {
                        int top = p00[c] * (8 - fx) + p01[c] * fx, bottom = p10[c] * (8 - fx) + p11[c] * fx;
                        o[c] = (uint8_t)((top * (8 - fy) + bottom * fy + 32) >> 6);
                    }
                }
            }
            ++done;
            if (bar) step_progress(done, tx * ty, now_s() - ts);
        }
    LOG_AS(L_INFO, "upscaler.cpp", 168, "input_image_tensor upscaled, taking %.2fs", now_s() - t0);
    return dst;
}

/* --upscale-repeats passes over *rgb (replaced), then the label at the new size */
static void upscale_image(const params *p, uint8_t **rgb, int *w, int *h) {
    for (int r = 0; r < p->upscale_repeats; r++) {
        uint8_t *bigger = upscale4x(*rgb, *w, *h);
        free(*rgb);
        *rgb = bigger;
        *w *= 4;
        *h *= 4;
    }
    label_draw(*rgb, *w, *h, IMAGE_LABEL);
}

/* the reference engine's limit on what -M upscale or img_gen + --upscale-model would make */
static void check_upscaled_size(const params *p, int w, int h) {
    long long uw = w, uh = h;
    for (int r = 0; r < p->upscale_repeats && uw <= MAX_UPSCALED_SIDE && uh <= MAX_UPSCALED_SIDE; r++) {
        uw *= 4;
        uh *= 4;
    }
    if (uw > MAX_UPSCALED_SIDE || uh > MAX_UPSCALED_SIDE)
        ARG_ERROR("the reference engine upscales to at most %d px a side (%dx%d, %d x 4x, is more)", MAX_UPSCALED_SIDE,
                  w, h, p->upscale_repeats);
}

/* sd-cli's file names: a .png/.jpg/.jpeg/.webp extension is kept, any other gets .png added;
 * with more than one image, _<index> (from 0) goes before the extension and no plain name is
 * written. The reference engine always writes PNG bytes. */
static char *output_path_for(const char *out, int index, int count) {
    size_t n = strlen(out);
    char *path = (char *)malloc(n + 32);
    if (!path) return NULL;
    const char *base = basename_of(out), *dot = strrchr(base, '.');
    static const char *const known[] = {".png", ".jpg", ".jpeg", ".webp", NULL};
    int keep = 0;
    for (int k = 0; dot && dot != base && known[k]; k++) keep |= strcasecmp(dot, known[k]) == 0;
    size_t stem = keep ? (size_t)(dot - out) : n;
    memcpy(path, out, stem);
    path[stem] = 0;
    if (count > 1) sprintf(path + stem, "_%d", index);
    strcat(path, keep ? dot : ".png");
    return path;
}

/* sd-cli creates the output's folders first; a failure there is an [ERROR] and exit 1 */
static int make_parent_dirs(const char *out) {
    char *dir = strdup(out);
    if (!dir) return 0;
    char *slash = strrchr(dir, '/');
    int ok = 1;
    if (slash && slash != dir) {
        *slash = 0;
        for (char *c = dir + 1; ok; c++) {
            if (*c != '/' && *c != 0) continue;
            char saved = *c;
            *c = 0;
            struct stat st;
            if (stat(dir, &st) != 0) ok = mkdir(dir, 0777) == 0 || errno == EEXIST;
            else if (!S_ISDIR(st.st_mode)) {
                errno = ENOTDIR;
                ok = 0;
            }
            if (saved == 0) break;
            *c = saved;
        }
        if (!ok) {
            int err = errno;
            LOG_AS(L_ERROR, "main.cpp", 452, "failed to create directory '%s': %s", dir, strerror(err));
        }
    }
    free(dir);
    return ok;
}

static char *params_text(const params *p, long long seed) {
    const char *model = p->model ? p->model : p->diffusion_model;
    size_t cap = strlen(p->prompt) + strlen(p->negative) + (model ? strlen(model) : 0) + 512;
    char *t = (char *)malloc(cap);
    if (!t) return NULL;
    int at = snprintf(t, cap, "%s\n", p->prompt);
    if (p->negative[0]) at += snprintf(t + at, cap - (size_t)at, "Negative prompt: %s\n", p->negative);
    at += snprintf(t + at, cap - (size_t)at,
                   "Steps: %d, Sampler: %s, Schedule type: %s, CFG scale: %g, Seed: %lld, Size: %dx%d, Model: %s, ",
                   p->steps, SAMPLERS[p->sampler].name, SCHEDULERS[p->scheduler], (double)p->cfg, seed, p->width,
                   p->height, model && strcmp(model, "none") != 0 ? basename_of(model) : "none");
    if (p->init_img) at += snprintf(t + at, cap - (size_t)at, "Denoising strength: %g, ", (double)p->strength);
    if (p->mask_img) at += snprintf(t + at, cap - (size_t)at, "Inpainting: yes, ");
    snprintf(t + at, cap - (size_t)at, "Version: refengine " REFENGINE_VERSION ", Engine: reference engine - no model");
    return t;
}

/* the parameters text of an upscaled image */
static char *upscale_text(const params *p, int w, int h) {
    size_t cap = strlen(p->upscale_model) + 256;
    char *t = (char *)malloc(cap);
    if (t)
        snprintf(t, cap,
                 "Upscale: %d x 4x (bilinear stand-in for ESRGAN), Upscale model: %s, Size: %dx%d, Version: refengine " REFENGINE_VERSION
                 ", Engine: reference engine - no model",
                 p->upscale_repeats, basename_of(p->upscale_model), w, h);
    return t;
}

/* writes the PNG, its parameters text (malloc'd) freed here; returns 1 on success (why not goes
 * to -v output only: sd-cli says just "(failure)") */
static int save_png(const uint8_t *rgb, int w, int h, char *ptext, const char *path) {
    png_text texts[2] = {{"Software", PNG_SOFTWARE}, {"parameters", ptext ? ptext : ""}};
    uint8_t *png = NULL;
    size_t len = 0;
    int ok = png_encode_rgb(rgb, w, h, texts, 2, &png, &len) == 0;
    free(ptext);
    if (!ok) {
        LOG_DEBUG("failed to encode '%s': out of memory", path);
        return 0;
    }
    FILE *f = fopen(path, "wb");
    if (!f) {
        LOG_DEBUG("failed to open '%s' for writing: %s", path, strerror(errno));
        free(png);
        return 0;
    }
    size_t wrote = fwrite(png, 1, len, f);
    int err = wrote == len ? 0 : errno;
    if (fclose(f) != 0 && !err) err = errno;
    free(png);
    if (wrote != len || err) {
        LOG_DEBUG("failed to write '%s': %s", path, strerror(err ? err : EIO));
        remove(path);
        return 0;
    }
    LOG_DEBUG("wrote %zu bytes to '%s'", len, path);
    return 1;
}

/* image i of a batch uses seed + i (as sd-cli), wrapping instead of overflowing */
static long long seed_of(const params *p, int i) {
    unsigned long long u = (unsigned long long)p->seed + (unsigned long long)i;
    return u > (unsigned long long)LLONG_MAX ? -(long long)(~u) - 1 : (long long)u;
}

/* ------------------------------------------------------------------ */
/* sd-server mode                                                      */
/* ------------------------------------------------------------------ */

static params g_server_params; /* the models and defaults the server was started with */

/* the request as command-line params; 0 when valid, else why not in err */
static int request_params(const srv_request *r, params *p, char *err, size_t errlen) {
    *p = g_server_params;
    p->prompt = r->prompt;
    p->negative = r->negative;
    p->width = r->width;
    p->height = r->height;
    p->steps = r->steps;
    p->batch = r->batch;
    p->cfg = (float)r->cfg;
    p->seed = r->seed;
    p->preview = PREVIEW_NONE; /* the job's images only: no inputs, previews or upscaling */
    p->init_img = p->mask_img = p->upscale_model = NULL;
    int k = 0;
    while (k < SAMPLER_COUNT && strcmp(r->sample_method, SAMPLERS[k].name) != 0) k++;
    if (strcmp(r->sample_method, "default") == 0) k = SAMPLER_EULER_A;
    p->sampler = k;
    p->scheduler = strcmp(r->scheduler, "default") == 0 ? 0 : lookup(r->scheduler, SCHEDULERS);
    const char *why = NULL;
    if (k == SAMPLER_COUNT) why = "unknown sample_method";
    else if (p->scheduler < 0) why = "unknown scheduler";
    else if (p->width < 8 || p->width > MAX_SIDE || p->width % 8 || p->height < 8 || p->height > MAX_SIDE ||
             p->height % 8)
        why = "width and height must be multiples of 8 between 8 and 4096";
    else if (p->steps <= 0 || p->steps > MAX_STEPS) why = "sample_steps must be between 1 and 1000";
    else if (p->batch <= 0 || p->batch > MAX_BATCH) why = "batch_count must be between 1 and 16";
    else if (!(p->cfg >= 0 && p->cfg <= 100)) why = "guidance.txt_cfg must be between 0 and 100";
    if (why) {
        snprintf(err, errlen, "%s", why);
        return -1;
    }
    if (p->seed < 0) {
        uint64_t rnd = mix64((uint64_t)time(NULL) ^ ((uint64_t)getpid() << 32) ^ (uint64_t)(now_s() * 1e9));
        p->seed = (long long)(rnd & 0x7fffffff);
    }
    return 0;
}

int engine_check(const srv_request *r, char *err, size_t errlen) {
    params p;
    return request_params(r, &p, err, errlen);
}

int engine_generate(const srv_request *r, srv_image *out, char *err, size_t errlen) {
    static params p; /* static: intact after a longjmp */
    static volatile int made;
    made = 0;
    if (request_params(r, &p, err, errlen) != 0) return -1;
    if (setjmp(g_job_failed)) { /* an out-of-memory: the buffers of this job are lost, the server goes on */
        snprintf(err, errlen, "generate failed: out of memory");
        for (int i = 0; i < made; i++) free(out[i].data);
        return -1;
    }
    double t0 = now_s();
    LOG_INFO("sampling using %s method", SAMPLERS[p.sampler].pretty);
    for (int i = 0; i < p.batch; i++) {
        long long seed = seed_of(&p, i);
        float *latent = sample_image(&p, NULL, i, seed);
        if (!latent) {
            for (int k = 0; k < made; k++) free(out[k].data);
            return 0;
        }
        uint8_t *rgb = decode_latent(&p, NULL, latent);
        free(latent);
        char *ptext = params_text(&p, seed);
        png_text texts[2] = {{"Software", PNG_SOFTWARE}, {"parameters", ptext ? ptext : ""}};
        int ok = png_encode_rgb(rgb, p.width, p.height, texts, 2, &out[i].data, &out[i].len) == 0;
        free(ptext);
        free(rgb);
        if (!ok) {
            snprintf(err, errlen, "could not encode the image: out of memory");
            for (int k = 0; k < made; k++) free(out[k].data);
            return -1;
        }
        made = i + 1;
    }
    LOG_INFO("generate_image completed in %.2fs", now_s() - t0);
    return made;
}

/* sd-server: the same flags as sd-cli plus --listen-ip and --listen-port; models load once */
static int server_main(int argc, char **argv) {
    const char *ip = "127.0.0.1";
    int port = 1234;
    char **rest = (char **)calloc((size_t)argc + 1, sizeof(char *));
    int n = 0;
    for (int i = 0; i < argc; i++) {
        if (i > 0 && strcmp(argv[i], "--listen-ip") == 0 && i + 1 < argc) ip = argv[++i];
        else if (i > 0 && strcmp(argv[i], "--listen-port") == 0 && i + 1 < argc)
            port = (int)sto_integer(argv[++i], 0, 65535, "stoi");
        else rest[n++] = argv[i];
    }
    parse_args(n, rest, &g_server_params);
    read_faults();
    g_server_mode = 1;
    load_models(&g_server_params);
    return server_run(ip, port);
}

/* saves the images as sd-cli's save_results does: name.png, or name_0.png ... with several */
static int save_results(const params *p, uint8_t **images, char **texts, int w, int h, int count) {
    if (!make_parent_dirs(p->output)) return 1;
    int saved = 0;
    for (int i = 0; i < count; i++) {
        char *path = output_path_for(p->output, i, count);
        if (!path) {
            LOG_ERROR("out of memory");
            return 1;
        }
        int ok;
        if (g_faults.print_failure) ok = 0; /* switch: claim the save failed, write nothing */
        else if (g_faults.no_output) ok = 1; /* switch: claim success, write nothing */
        else ok = save_png(images[i], w, h, texts[i], path);
        if (g_faults.print_failure || g_faults.no_output) free(texts[i]);
        LOG_AS(L_INFO, "main.cpp", 490, "save result image %d to '%s' (%s)", i, path, ok ? "success" : "failure");
        saved += ok;
        free(path);
        free(images[i]);
    }
    LOG_AS(L_INFO, "main.cpp", 562, "%d/%d images saved", saved, count);
    return saved ? 0 : 1; /* as sd-cli: no image saved is exit 1, with no [ERROR] line of its own */
}

/* -M upscale: no diffusion model is loaded; the init image, upscaled, is the one result */
static int upscale_main(params *p, inputs_t *in) {
    int w = p->width, h = p->height;
    uint8_t *rgb = in->init;
    free(in->mask);
    check_upscaled_size(p, w, h);
    char *text;
    if (load_upscaler(p->upscale_model)) {
        upscale_image(p, &rgb, &w, &h);
        text = upscale_text(p, w, h);
    } else text = params_text(p, p->seed); /* as sd-cli: the input goes out as it came */
    return save_results(p, &rgb, &text, w, h, 1);
}

int main(int argc, char **argv) {
    const char *self = basename_of(argv[0]);
    size_t len = strlen(self);
    if (len >= 7 && strcmp(self + len - 7, "-server") == 0) return server_main(argc, argv);
    params p;
    parse_args(argc, argv, &p);
    read_faults();
    double t_start = now_s();

    if (g_verbose) {
        printf("Option: \n");
        printf("    n_threads:         %d (the reference engine uses 1)\n", p.threads);
        printf("    mode:              %s\n", MODES[p.mode]);
        printf("    model_path:        %s\n", p.model ? p.model : "(none: " REFENGINE_LABEL ")");
        printf("    output_path:       %s\n", p.output);
        printf("    init_img:          %s\n", p.init_img ? p.init_img : "");
        printf("    mask_img:          %s\n", p.mask_img ? p.mask_img : "");
        printf("    upscale_model:     %s\n", p.upscale_model ? p.upscale_model : "");
        printf("    prompt:            %s\n", p.prompt);
        printf("    negative_prompt:   %s\n", p.negative);
        printf("    cfg_scale:         %.2f\n", (double)p.cfg);
        printf("    strength:          %.2f\n", (double)p.strength);
        printf("    width:             %d%s\n", p.width, p.width_given ? "" : " (unless an init image sets it)");
        printf("    height:            %d%s\n", p.height, p.height_given ? "" : " (unless an init image sets it)");
        printf("    sample_method:     %s\n", SAMPLERS[p.sampler].name);
        printf("    scheduler:         %s\n", SCHEDULERS[p.scheduler]);
        printf("    sample_steps:      %d\n", p.steps);
        printf("    seed:              %lld\n", p.seed);
        printf("    batch_count:       %d\n", p.batch);
        printf("    upscale_repeats:   %d\n", p.upscale_repeats);
        printf("    preview:           %s, every %d steps, to %s\n", PREVIEWS[p.preview], p.preview_interval, p.preview_path);
        fflush(stdout);
        LOG_DEBUG("refengine " REFENGINE_VERSION " (" REFENGINE_LABEL "), CPU, 1 thread");
    }

    inputs_t in;
    load_inputs(&p, &in); /* as sd-cli: before the model loads */
    if (p.mode == MODE_UPSCALE) return upscale_main(&p, &in);
    if (p.upscale_model) check_upscaled_size(&p, p.width, p.height);

    load_models(&p);

    double tc = now_s();
    {
        scene probe; /* tokenizing the prompts stands in for the text encoders */
        scene_build(&probe, p.prompt, p.negative, (int64_t)p.seed, p.cfg);
    }
    LOG_INFO("get_learned_condition completed, taking %.2fs", now_s() - tc);
    if (in.init) {
        int run;
        LOG_AS(L_INFO, "stable-diffusion.cpp", 4925, "IMG2IMG");
        if (p.strength < 1.0f)
            LOG_AS(L_INFO, "stable-diffusion.cpp", 4959, "target t_enc is %d steps", p.steps - img2img_skip(&p, &in, &run) - 1);
    }
    LOG_INFO("sampling using %s method", SAMPLERS[p.sampler].pretty);

    float **latents = (float **)xalloc(sizeof(float *) * (size_t)p.batch, p.width, p.height);
    double tg = now_s();
    for (int i = 0; i < p.batch; i++) latents[i] = sample_image(&p, &in, i, seed_of(&p, i));
    LOG_INFO("generating %d latent images completed, taking %.2fs", p.batch, now_s() - tg);

    LOG_INFO("decoding %d latents", p.batch);
    uint8_t **images = (uint8_t **)xalloc(sizeof(uint8_t *) * (size_t)p.batch, p.width, p.height);
    char **texts = (char **)xalloc(sizeof(char *) * (size_t)p.batch, p.width, p.height);
    double td = now_s();
    for (int i = 0; i < p.batch; i++) {
        double tl = now_s();
        images[i] = decode_latent(&p, &in, latents[i]);
        texts[i] = params_text(&p, seed_of(&p, i));
        free(latents[i]);
        LOG_INFO("latent %d decoded, taking %.2fs", i + 1, now_s() - tl);
    }
    free(latents);
    free(in.init);
    free(in.mask);
    LOG_INFO("decode_first_stage completed, taking %.2fs", now_s() - td);
    LOG_INFO("generate_image completed in %.2fs", now_s() - t_start);

    int w = p.width, h = p.height;
    if (p.upscale_model && load_upscaler(p.upscale_model)) { /* as sd-cli: --upscale-model upscales img_gen's images too */
        for (int i = 0; i < p.batch; i++) {
            w = p.width;
            h = p.height;
            upscale_image(&p, &images[i], &w, &h);
        }
    }
    int rc = save_results(&p, images, texts, w, h, p.batch);
    free(images);
    free(texts);
    return rc;
}
