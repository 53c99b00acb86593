/*
 * server.h - the reference engine's sd-server mode: a small single-threaded HTTP/1.1 server on
 * loopback speaking the subset of stable-diffusion.cpp's native async API the worker uses
 * (POST /sdcpp/v1/img_gen, GET /sdcpp/v1/jobs/{id}, POST /sdcpp/v1/jobs/{id}/cancel,
 * GET /sdcpp/v1/capabilities). Jobs run one at a time; requests are answered between
 * denoising steps, so polls and cancels work while an image is being made.
 */
#ifndef REFENGINE_SERVER_H
#define REFENGINE_SERVER_H

#include <stddef.h>
#include <stdint.h>

/* One img_gen request, as read from its JSON body. */
typedef struct {
    char *prompt, *negative, *sample_method, *scheduler;
    int width, height, steps, batch;
    double cfg;
    long long seed;
} srv_request;

typedef struct {
    uint8_t *data;
    size_t len;
} srv_image;

/* Implemented by refengine.c. */
/* 0 when the request can run; else writes why to err. */
int engine_check(const srv_request *r, char *err, size_t errlen);
/* Makes r->batch PNGs into out; returns how many, 0 when cancelled, -1 when generation failed (err says why). */
int engine_generate(const srv_request *r, srv_image *out, char *err, size_t errlen);

/* Implemented by server.c. */
/* Serves until the process is killed; `ip`/`port` as --listen-ip/--listen-port. */
int server_run(const char *ip, int port);
/* Answers requests until `until` (now_s clock); returns 1 when the running job was cancelled. */
int server_poll(double until);

#endif
