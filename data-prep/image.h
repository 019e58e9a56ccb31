/*
 * image.h: decode a JPEG or PNG, convert it to RGB and resize it to S x S with the same
 * Lanczos antialiasing as PIL's Image.resize((S, S), Image.LANCZOS); save JPEG / PNG, or
 * encode a JPEG into memory.
 *
 * Every function is thread-safe and re-entrant: no global state except an atomic counter
 * that makes temporary file names unique, and per-call memory that is bounded by the
 * image's width and S plus, for a JPEG, its file size (the compressed file is read whole;
 * rows are streamed through the resampler, the whole decoded image is never held, except
 * for interlaced PNGs which libpng can only deliver whole).
 * Errors are returned as SN_E* codes; sn_error_message() then names the file and the
 * problem. Nothing here prints, exits or touches MPI.
 */
#ifndef SHARDNET_DATAPREP_IMAGE_H
#define SHARDNET_DATAPREP_IMAGE_H
#include <stddef.h>
#include <stdint.h>

enum { DP_IMAGE_JPEG = 1, DP_IMAGE_PNG = 2 };

/* Largest accepted side of a source image (PNG allows 2^31; such files are refused). */
#define DP_IMAGE_MAX_SIDE 65535

typedef struct dp_image_info {
    int format;            /* DP_IMAGE_JPEG or DP_IMAGE_PNG, from the file's magic bytes */
    int width, height;     /* of the file */
    int components;        /* as stored: 1 gray, 2 gray+alpha, 3 RGB, 4 RGBA or CMYK */
    int decoded_width;     /* after libjpeg's DCT scaling (--fast-decode), else width */
    int decoded_height;
} dp_image_info_t;

/* Decodes a JPEG or PNG (detected by content), converts to RGB, resizes to exactly S x S
 * with PIL-compatible Lanczos antialiasing (aspect ratio not kept, like resize((S,S)));
 * writes (3, S, S) uint8 planar CHW into out. fast_decode: use libjpeg DCT scaling first.
 * Returns 0 or an SN_E* code with sn_error_message() naming the file and problem. */
int dp_image_load_resized(const char *path, int S, int fast_decode, uint8_t *out_chw);

/* The same, writing (S, S, 3) interleaved HWC into out_hwc; info (may be NULL) receives
 * what was found in the file. */
int dp_image_load_resized_hwc(const char *path, int S, int fast_decode, uint8_t *out_hwc,
                              dp_image_info_t *info);

/* Reads only the header: format, size and components. */
int dp_image_probe(const char *path, dp_image_info_t *info);

/* PIL's Lanczos resize of an in-memory image, exactly as Image.resize((out_w, out_h),
 * Image.LANCZOS) computes it for mode "L" (C = 1) or "RGB" (C = 3).
 * in (in_h, in_w, C), out (out_h, out_w, C), both interleaved. */
int dp_image_resize(uint8_t *out, int out_w, int out_h, const uint8_t *in, int in_w, int in_h,
                    int C);

/* The DCT scale numerator M (scale M/8, 1..8) that --fast-decode uses for a w x h JPEG
 * and target S: the smallest whose output is still >= S on both sides. */
int dp_image_dct_scale(int w, int h, int S);

/* Writes an (h, w, 3) HWC RGB image as a baseline JPEG (4:2:0, the given quality; PIL
 * saves with quality 75) or a PNG. The file appears under its final name only when
 * complete: it is written to a temporary file in the same folder and renamed; on failure
 * the temporary is removed and no file named path is created. */
int dp_image_save_jpeg(const char *path, const uint8_t *hwc, int w, int h, int quality);
int dp_image_save_png(const char *path, const uint8_t *hwc, int w, int h);

/* The same JPEG encoding into memory: *out (malloc'ed, free() it) holds *out_len bytes,
 * identical to the file dp_image_save_jpeg writes for the same pixels and quality. */
int dp_image_encode_jpeg(uint8_t **out, size_t *out_len, const uint8_t *hwc, int w, int h, int quality);

const char *dp_image_format_name(int format);

#endif
