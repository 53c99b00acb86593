/*
 * server.c - the reference engine's sd-server mode (see server.h and README.md).
 *
 * One thread: the main loop waits for connections and runs queued jobs one after another;
 * while a job runs, the denoising loop calls server_poll() between steps, which answers the
 * requests that arrived meanwhile. Each connection carries one request (Connection: close).
 * Only libc + POSIX sockets.
 */
#define _POSIX_C_SOURCE 200809L

#include "server.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/select.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#define MAX_JOBS 64          /* kept at once: queued, running and finished */
#define MAX_QUEUED 32        /* more queued jobs than this are refused (429) */
#define MAX_BODY (1 << 20)
#define FINISHED_TTL_S 300.0 /* a finished job's result is kept this long, then 410 */

enum { J_FREE, J_QUEUED, J_GENERATING, J_COMPLETED, J_FAILED, J_CANCELLED };
static const char *STATUS_NAMES[] = {"", "queued", "generating", "completed", "failed", "cancelled"};

typedef struct {
    int state;
    long long num;   /* the id is "job_<num>" */
    long long order; /* submission order, for queue positions */
    double created, started, finished;
    time_t created_wall, started_wall, finished_wall;
    srv_request req;
    srv_image *images;
    int nimages;
    char error_code[32];
    char error_message[512];
    int cancel;
} job_t;

static job_t g_jobs[MAX_JOBS];
static long long g_next_num = 1;
static int g_listen = -1;
static job_t *g_current;

static double mono_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* ------------------------------------------------------------------ */
/* a growable string                                                   */
/* ------------------------------------------------------------------ */

typedef struct {
    char *s;
    size_t len, cap;
} sbuf;

static void sb_grow(sbuf *b, size_t extra) {
    if (b->len + extra + 1 <= b->cap) return;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < b->len + extra + 1) cap *= 2;
    char *s = (char *)realloc(b->s, cap);
    if (!s) {
        fprintf(stderr, "out of memory\n");
        exit(1);
    }
    b->s = s;
    b->cap = cap;
}

#if defined(__GNUC__) || defined(__clang__)
__attribute__((format(printf, 2, 3)))
#endif
static void sb_printf(sbuf *b, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0) return;
    sb_grow(b, (size_t)n);
    va_start(ap, fmt);
    vsnprintf(b->s + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
}

static void sb_json_string(sbuf *b, const char *s) {
    sb_printf(b, "\"");
    for (const unsigned char *c = (const unsigned char *)s; *c; c++) {
        if (*c == '"' || *c == '\\') sb_printf(b, "\\%c", *c);
        else if (*c < 0x20) sb_printf(b, "\\u%04x", *c);
        else sb_printf(b, "%c", *c);
    }
    sb_printf(b, "\"");
}

static void sb_base64(sbuf *b, const uint8_t *p, size_t n) {
    static const char A[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    sb_grow(b, (n + 2) / 3 * 4);
    char *o = b->s + b->len;
    size_t i = 0;
    for (; i + 2 < n; i += 3) {
        uint32_t v = (uint32_t)p[i] << 16 | (uint32_t)p[i + 1] << 8 | p[i + 2];
        *o++ = A[v >> 18];
        *o++ = A[(v >> 12) & 63];
        *o++ = A[(v >> 6) & 63];
        *o++ = A[v & 63];
    }
    if (i < n) {
        uint32_t v = (uint32_t)p[i] << 16 | (i + 1 < n ? (uint32_t)p[i + 1] << 8 : 0);
        *o++ = A[v >> 18];
        *o++ = A[(v >> 12) & 63];
        *o++ = i + 1 < n ? A[(v >> 6) & 63] : '=';
        *o++ = '=';
    }
    *o = 0;
    b->len = (size_t)(o - b->s);
}

/* ------------------------------------------------------------------ */
/* JSON: just enough to read an img_gen body                           */
/* ------------------------------------------------------------------ */

/* the end of the string token starting at s (on its opening quote), or NULL */
static const char *json_string_end(const char *s) {
    for (const char *c = s + 1; *c; c++) {
        if (*c == '\\') {
            if (!*++c) return NULL;
        } else if (*c == '"') return c + 1;
    }
    return NULL;
}

static const char *skip_ws(const char *c) {
    while (*c == ' ' || *c == '\t' || *c == '\n' || *c == '\r') c++;
    return c;
}

/* The value of the first member named `key`, at any depth (img_gen's names are unique), or NULL. */
static const char *json_find(const char *json, const char *key) {
    size_t klen = strlen(key);
    for (const char *c = json; *c;) {
        if (*c != '"') {
            c++;
            continue;
        }
        const char *end = json_string_end(c);
        if (!end) return NULL;
        const char *after = skip_ws(end);
        if (*after == ':' && (size_t)(end - c - 2) == klen && strncmp(c + 1, key, klen) == 0) return skip_ws(after + 1);
        c = end;
    }
    return NULL;
}

static void put_utf8(sbuf *b, unsigned cp) {
    if (cp < 0x80) sb_printf(b, "%c", (char)cp);
    else if (cp < 0x800) sb_printf(b, "%c%c", (char)(0xc0 | cp >> 6), (char)(0x80 | (cp & 63)));
    else if (cp < 0x10000)
        sb_printf(b, "%c%c%c", (char)(0xe0 | cp >> 12), (char)(0x80 | ((cp >> 6) & 63)), (char)(0x80 | (cp & 63)));
    else
        sb_printf(b, "%c%c%c%c", (char)(0xf0 | cp >> 18), (char)(0x80 | ((cp >> 12) & 63)),
                  (char)(0x80 | ((cp >> 6) & 63)), (char)(0x80 | (cp & 63)));
}

static int hex4(const char *c, unsigned *out) {
    unsigned v = 0;
    for (int i = 0; i < 4; i++) {
        char h = c[i];
        v <<= 4;
        if (h >= '0' && h <= '9') v |= (unsigned)(h - '0');
        else if (h >= 'a' && h <= 'f') v |= (unsigned)(h - 'a' + 10);
        else if (h >= 'A' && h <= 'F') v |= (unsigned)(h - 'A' + 10);
        else return 0;
    }
    *out = v;
    return 1;
}

/* A malloc'd copy of the string value at v; NULL when v is not a string. */
static char *json_string(const char *v) {
    if (!v || *v != '"' || !json_string_end(v)) return NULL;
    sbuf b = {0};
    sb_grow(&b, 0);
    b.s[0] = 0;
    for (const char *c = v + 1; *c != '"'; c++) {
        if (*c != '\\') {
            sb_printf(&b, "%c", *c);
            continue;
        }
        c++;
        unsigned cp;
        switch (*c) {
        case 'n': sb_printf(&b, "\n"); break;
        case 't': sb_printf(&b, "\t"); break;
        case 'r': sb_printf(&b, "\r"); break;
        case 'b': sb_printf(&b, "\b"); break;
        case 'f': sb_printf(&b, "\f"); break;
        case 'u':
            if (!hex4(c + 1, &cp)) {
                free(b.s);
                return NULL;
            }
            c += 4;
            if (cp >= 0xd800 && cp < 0xdc00 && c[1] == '\\' && c[2] == 'u') {
                unsigned lo;
                if (hex4(c + 3, &lo) && lo >= 0xdc00 && lo < 0xe000) {
                    cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
                    c += 6;
                }
            }
            put_utf8(&b, cp);
            break;
        default: sb_printf(&b, "%c", *c);
        }
    }
    return b.s;
}

/* 1 when the value at v is a number (written to *out), 0 when absent, -1 when not a number */
static int json_number(const char *v, double *out) {
    if (!v) return 0;
    char *end;
    errno = 0;
    double d = strtod(v, &end);
    if (end == v || errno == ERANGE) return -1;
    *out = d;
    return 1;
}

/* ------------------------------------------------------------------ */
/* HTTP                                                                */
/* ------------------------------------------------------------------ */

static void send_all(int fd, const char *p, size_t n) {
    while (n > 0) {
        ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
        if (w < 0) {
            if (errno == EINTR) continue;
            return;
        }
        p += w;
        n -= (size_t)w;
    }
}

static void respond(int fd, int status, const sbuf *body) {
    const char *reason = status == 200   ? "OK"
                         : status == 202 ? "Accepted"
                         : status == 400 ? "Bad Request"
                         : status == 404 ? "Not Found"
                         : status == 405 ? "Method Not Allowed"
                         : status == 409 ? "Conflict"
                         : status == 410 ? "Gone"
                         : status == 413 ? "Payload Too Large"
                         : status == 429 ? "Too Many Requests"
                                         : "Internal Server Error";
    char head[256];
    int n = snprintf(head, sizeof(head),
                     "HTTP/1.1 %d %s\r\nContent-Type: application/json\r\nContent-Length: %zu\r\n"
                     "Connection: close\r\n\r\n",
                     status, reason, body->len);
    send_all(fd, head, (size_t)n);
    send_all(fd, body->s, body->len);
}

static void respond_error(int fd, int status, const char *code, const char *message) {
    sbuf b = {0};
    sb_printf(&b, "{\"error\":{\"code\":");
    sb_json_string(&b, code);
    sb_printf(&b, ",\"message\":");
    sb_json_string(&b, message);
    sb_printf(&b, "}}");
    respond(fd, status, &b);
    free(b.s);
}

/* ------------------------------------------------------------------ */
/* jobs                                                                */
/* ------------------------------------------------------------------ */

static void job_clear(job_t *j) {
    free(j->req.prompt);
    free(j->req.negative);
    free(j->req.sample_method);
    free(j->req.scheduler);
    for (int i = 0; i < j->nimages; i++) free(j->images[i].data);
    free(j->images);
    memset(j, 0, sizeof(*j));
}

static int finished(const job_t *j) {
    return j->state == J_COMPLETED || j->state == J_FAILED || j->state == J_CANCELLED;
}

/* a free slot, dropping the oldest finished job when none is free; NULL when all are live */
static job_t *job_slot(void) {
    double now = mono_s();
    job_t *oldest = NULL;
    for (int i = 0; i < MAX_JOBS; i++) {
        job_t *j = &g_jobs[i];
        if (finished(j) && now - j->finished > FINISHED_TTL_S) job_clear(j);
        if (j->state == J_FREE) return j;
        if (finished(j) && (!oldest || j->finished < oldest->finished)) oldest = j;
    }
    if (oldest) job_clear(oldest);
    return oldest;
}

static job_t *job_find(const char *id) {
    if (strncmp(id, "job_", 4) != 0) return NULL;
    char *end;
    long long num = strtoll(id + 4, &end, 10);
    if (*end) return NULL;
    for (int i = 0; i < MAX_JOBS; i++)
        if (g_jobs[i].state != J_FREE && g_jobs[i].num == num) return &g_jobs[i];
    return NULL;
}

/* was this id ever handed out (then a missing job has expired: 410, else 404) */
static int job_issued(const char *id) {
    if (strncmp(id, "job_", 4) != 0) return 0;
    char *end;
    long long num = strtoll(id + 4, &end, 10);
    return !*end && num > 0 && num < g_next_num;
}

/* jobs that will run before this one: the one generating, and the queued ones submitted earlier */
static int queue_position(const job_t *j) {
    if (j->state != J_QUEUED) return 0;
    int ahead = 0;
    for (int i = 0; i < MAX_JOBS; i++) {
        const job_t *o = &g_jobs[i];
        if (o->state == J_GENERATING || (o->state == J_QUEUED && o->order < j->order)) ahead++;
    }
    return ahead;
}

static void job_json(sbuf *b, const job_t *j, int with_result) {
    sb_printf(b, "{\"id\":\"job_%lld\",\"kind\":\"img_gen\",\"status\":\"%s\",\"created\":%lld,", j->num,
              STATUS_NAMES[j->state], (long long)j->created_wall);
    if (j->started) sb_printf(b, "\"started\":%lld,", (long long)j->started_wall);
    if (finished(j)) sb_printf(b, "\"completed\":%lld,", (long long)j->finished_wall);
    sb_printf(b, "\"queue_position\":%d,\"result\":", queue_position(j));
    if (with_result && j->state == J_COMPLETED) {
        sb_printf(b, "{\"output_format\":\"png\",\"images\":[");
        for (int i = 0; i < j->nimages; i++) {
            sb_printf(b, "%s{\"index\":%d,\"b64_json\":\"", i ? "," : "", i);
            sb_base64(b, j->images[i].data, j->images[i].len);
            sb_printf(b, "\"}");
        }
        sb_printf(b, "]}");
    } else sb_printf(b, "null");
    sb_printf(b, ",\"error\":");
    if (j->state == J_FAILED || j->state == J_CANCELLED) {
        sb_printf(b, "{\"code\":");
        sb_json_string(b, j->error_code);
        sb_printf(b, ",\"message\":");
        sb_json_string(b, j->error_message);
        sb_printf(b, "}");
    } else sb_printf(b, "null");
    sb_printf(b, "}");
}

/* the request's fields, with sd-server's defaults for the ones left out */
static int parse_request(const char *body, srv_request *r, char *err, size_t errlen) {
    memset(r, 0, sizeof(*r));
    const char *trimmed = skip_ws(body);
    if (*trimmed != '{') {
        snprintf(err, errlen, "the body must be a JSON object");
        return 0;
    }
    r->prompt = json_string(json_find(body, "prompt"));
    if (!r->prompt) {
        snprintf(err, errlen, "prompt is required (a string)");
        return 0;
    }
    const char *neg = json_find(body, "negative_prompt");
    r->negative = neg ? json_string(neg) : strdup("");
    const char *method = json_find(body, "sample_method");
    r->sample_method = method ? json_string(method) : strdup("euler_a");
    const char *scheduler = json_find(body, "scheduler");
    r->scheduler = scheduler ? json_string(scheduler) : strdup("discrete");
    if (!r->negative || !r->sample_method || !r->scheduler) {
        snprintf(err, errlen,
                 "negative_prompt, sample_params.sample_method and sample_params.scheduler must be strings");
        return 0;
    }
    static const char *const names[] = {"width", "height", "sample_steps", "batch_count", "txt_cfg", "seed"};
    double values[] = {512, 512, 20, 1, 7.0, -1};
    for (int k = 0; k < 6; k++) {
        if (json_number(json_find(body, names[k]), &values[k]) < 0) {
            snprintf(err, errlen, "%s must be a number", names[k]);
            return 0;
        }
    }
    for (int k = 0; k < 4; k++) {
        if (values[k] != (double)(int)values[k]) {
            snprintf(err, errlen, "%s must be an integer", names[k]);
            return 0;
        }
    }
    r->width = (int)values[0];
    r->height = (int)values[1];
    r->steps = (int)values[2];
    r->batch = (int)values[3];
    r->cfg = values[4];
    r->seed = (long long)values[5];
    return 1;
}

static void handle_submit(int fd, const char *body) {
    char err[512];
    srv_request r;
    if (!parse_request(body, &r, err, sizeof(err)) || engine_check(&r, err, sizeof(err)) != 0) {
        job_t tmp;
        memset(&tmp, 0, sizeof(tmp));
        tmp.req = r;
        job_clear(&tmp);
        respond_error(fd, 400, "invalid_request", err);
        return;
    }
    int queued = 0;
    for (int i = 0; i < MAX_JOBS; i++) queued += g_jobs[i].state == J_QUEUED;
    job_t *j = queued < MAX_QUEUED ? job_slot() : NULL;
    if (!j) {
        job_t tmp;
        memset(&tmp, 0, sizeof(tmp));
        tmp.req = r;
        job_clear(&tmp);
        respond_error(fd, 429, "queue_full", "too many queued jobs");
        return;
    }
    j->state = J_QUEUED;
    j->num = g_next_num++;
    j->order = j->num;
    j->created = mono_s();
    j->created_wall = time(NULL);
    j->req = r;
    sbuf b = {0};
    sb_printf(&b, "{\"id\":\"job_%lld\",\"kind\":\"img_gen\",\"status\":\"queued\",\"created\":%lld,"
                  "\"poll_url\":\"/sdcpp/v1/jobs/job_%lld\"}",
              j->num, (long long)j->created_wall, j->num);
    respond(fd, 202, &b);
    free(b.s);
}

static void handle_cancel(int fd, job_t *j) {
    if (j->state == J_QUEUED) {
        j->state = J_CANCELLED;
        j->finished = mono_s();
        j->finished_wall = time(NULL);
        snprintf(j->error_code, sizeof(j->error_code), "cancelled");
        snprintf(j->error_message, sizeof(j->error_message), "cancelled before it started");
    } else if (j->state == J_GENERATING) {
        j->cancel = 1; /* the denoising loop stops at its next step */
    } else if (j->state != J_CANCELLED) {
        respond_error(fd, 409, "invalid_state", "the job has already finished");
        return;
    }
    sbuf b = {0};
    job_json(&b, j, 0);
    respond(fd, 200, &b);
    free(b.s);
}

/* reads one request from the connection and answers it */
static void handle_connection(int fd) {
    struct timeval tv = {2, 0}; /* a local client sends its request at once */
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    sbuf in = {0};
    size_t header_end = 0, content_length = 0;
    for (;;) {
        sb_grow(&in, 4096);
        ssize_t r = recv(fd, in.s + in.len, in.cap - in.len - 1, 0);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) break;
        in.len += (size_t)r;
        in.s[in.len] = 0;
        if (!header_end) {
            char *e = strstr(in.s, "\r\n\r\n");
            if (!e) {
                if (in.len > 65536) break;
                continue;
            }
            header_end = (size_t)(e - in.s) + 4;
            for (char *h = in.s; h < e; h = strstr(h, "\r\n") + 2) {
                if (strncasecmp(h, "content-length:", 15) == 0) content_length = (size_t)strtoull(h + 15, NULL, 10);
                if (!strstr(h, "\r\n")) break;
            }
            if (content_length > MAX_BODY) {
                respond_error(fd, 413, "invalid_request", "the body is too large");
                free(in.s);
                return;
            }
        }
        if (header_end && in.len >= header_end + content_length) break;
    }
    if (!header_end) {
        free(in.s);
        return;
    }
    in.s[header_end + content_length < in.len ? header_end + content_length : in.len] = 0;
    char method[8] = {0}, path[256] = {0};
    sscanf(in.s, "%7s %255s", method, path);
    const char *body = in.s + header_end;
    static const char JOBS[] = "/sdcpp/v1/jobs/";
    if (strcmp(path, "/sdcpp/v1/img_gen") == 0) {
        if (strcmp(method, "POST") == 0) handle_submit(fd, body);
        else respond_error(fd, 405, "method_not_allowed", "use POST");
    } else if (strcmp(path, "/sdcpp/v1/capabilities") == 0) {
        sbuf b = {0};
        sb_printf(&b, "{\"supported_modes\":[\"img_gen\"],\"limits\":{\"max_queue_size\":%d,\"max_batch_count\":16}}",
                  MAX_QUEUED);
        respond(fd, 200, &b);
        free(b.s);
    } else if (strncmp(path, JOBS, sizeof(JOBS) - 1) == 0) {
        char id[64] = {0};
        const char *rest = path + sizeof(JOBS) - 1;
        size_t idlen = strcspn(rest, "/");
        int cancel = strcmp(rest + idlen, "/cancel") == 0;
        if (idlen >= sizeof(id) || (rest[idlen] && !cancel)) {
            respond_error(fd, 404, "not_found", "no such route");
        } else {
            memcpy(id, rest, idlen);
            job_t *j = job_find(id);
            if (!j) respond_error(fd, job_issued(id) ? 410 : 404, job_issued(id) ? "job_expired" : "not_found",
                                  job_issued(id) ? "the job's result is no longer kept" : "no such job");
            else if (cancel && strcmp(method, "POST") == 0) handle_cancel(fd, j);
            else if (!cancel && strcmp(method, "GET") == 0) {
                sbuf b = {0};
                job_json(&b, j, 1);
                respond(fd, 200, &b);
                free(b.s);
            } else respond_error(fd, 405, "method_not_allowed", cancel ? "use POST" : "use GET");
        }
    } else respond_error(fd, 404, "not_found", "no such route");
    free(in.s);
}

int server_poll(double until) {
    for (;;) {
        double left = until - mono_s();
        if (left < 0) left = 0;
        fd_set set;
        FD_ZERO(&set);
        FD_SET(g_listen, &set);
        struct timeval tv = {(time_t)left, (suseconds_t)((left - (double)(time_t)left) * 1e6)};
        int ready = select(g_listen + 1, &set, NULL, NULL, &tv);
        if (ready > 0) {
            int fd = accept(g_listen, NULL, NULL);
            if (fd >= 0) {
                handle_connection(fd);
                close(fd);
            }
            if (!g_current) break; /* idle: a new job may be waiting to start */
        } else if (ready < 0 && errno != EINTR) break;
        if (ready <= 0 && mono_s() >= until) break;
    }
    return g_current && g_current->cancel;
}

static void run_job(job_t *j) {
    j->state = J_GENERATING;
    j->started = mono_s();
    j->started_wall = time(NULL);
    g_current = j;
    j->images = (srv_image *)calloc((size_t)j->req.batch, sizeof(srv_image));
    char err[512] = {0};
    int n = j->images ? engine_generate(&j->req, j->images, err, sizeof(err)) : -1;
    g_current = NULL;
    j->finished = mono_s();
    j->finished_wall = time(NULL);
    if (n > 0) {
        j->state = J_COMPLETED;
        j->nimages = n;
    } else if (n == 0) {
        j->state = J_CANCELLED;
        snprintf(j->error_code, sizeof(j->error_code), "cancelled");
        snprintf(j->error_message, sizeof(j->error_message), "cancelled while generating");
    } else {
        j->state = J_FAILED;
        snprintf(j->error_code, sizeof(j->error_code), "generation_failed");
        snprintf(j->error_message, sizeof(j->error_message), "%s", err[0] ? err : "generate failed");
    }
}

int server_run(const char *ip, int port) {
    struct sockaddr_in addr;
    memset(&addr, 0, sizeof(addr));
    addr.sin_family = AF_INET;
    addr.sin_port = htons((unsigned short)port);
    if (inet_pton(AF_INET, ip, &addr.sin_addr) != 1) {
        fprintf(stderr, "[ERROR] main.cpp:1060 - invalid listen ip '%s'\n", ip);
        return 1;
    }
    g_listen = socket(AF_INET, SOCK_STREAM, 0);
    int one = 1;
    setsockopt(g_listen, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (g_listen < 0 || bind(g_listen, (struct sockaddr *)&addr, sizeof(addr)) != 0 || listen(g_listen, 64) != 0) {
        fprintf(stderr, "[ERROR] main.cpp:1072 - failed to listen on %s:%d: %s\n", ip, port, strerror(errno));
        return 1;
    }
    printf("[INFO ] main.cpp:1075 - listening on: %s:%d\n", ip, port);
    fflush(stdout);
    for (;;) {
        job_t *next = NULL;
        for (int i = 0; i < MAX_JOBS; i++)
            if (g_jobs[i].state == J_QUEUED && (!next || g_jobs[i].order < next->order)) next = &g_jobs[i];
        if (next) run_job(next);
        else server_poll(mono_s() + 1.0);
    }
}
