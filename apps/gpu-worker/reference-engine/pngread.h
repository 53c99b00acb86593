/*
 * pngread.h - reads the PNG files the engine takes as input (init images, masks, images to
 * upscale): 8- and 16-bit gray, gray+alpha, RGB, RGBA and 1/2/4/8-bit palette images,
 * non-interlaced, every chunk CRC-checked. The result is always 8-bit RGB, as stb_image gives
 * sd-cli an image it asks 3 channels of: alpha dropped, gray repeated, 16-bit samples cut to
 * their high byte.
 */
#ifndef REFENGINE_PNGREAD_H
#define REFENGINE_PNGREAD_H

#include <stddef.h>
#include <stdint.h>

#define PNG_READ_MAX_SIDE 16384

typedef struct {
    int width, height;
    int channels; /* as stb_image counts the file's: 1 gray, 2 gray+alpha, 3 RGB or palette, 4 RGBA or palette+tRNS */
    uint8_t *rgb; /* width * height * 3, malloc'd */
} png_image;

enum {
    PNG_READ_OK = 0,
    PNG_READ_IO = -1,          /* the file cannot be opened or read */
    PNG_READ_BAD = -2,         /* not a PNG, or a damaged one */
    PNG_READ_UNSUPPORTED = -3  /* a valid PNG this reader does not take (interlaced, too large) */
};

/* Reads path into img. Returns PNG_READ_OK or a negative code, with why it failed in why. */
int png_read_file(const char *path, png_image *img, char *why, size_t whylen);

#endif
