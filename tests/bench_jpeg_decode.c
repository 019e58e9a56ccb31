/*
 * bench_jpeg_decode.c: what libjpeg-turbo alone costs per image of a folder, the floor
 * under any resize tool built on it (sn-resize, sn-pack, and PIL, which decodes with the
 * same library): per JPEG, CPU ms of (1) the entropy decoding alone (jpeg_read_coefficients:
 * no IDCT, no colour conversion), (2) a full decode to RGB rows, and (3) a decode at the
 * DCT scale that --fast-decode picks for S. Files are read into memory first (no I/O in
 * the times); each figure is the best of `runs` passes over the folder.
 * Built with the tests, never run by ctest (timings are measurements, not checks).
 *     bench_jpeg_decode DIR [S=256] [runs=3]
 */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <jpeglib.h>
#include "image.h"
#include "bench_util.h"

enum { MODE_ENTROPY, MODE_FULL, MODE_SCALED, MODES };

typedef struct { unsigned char *data; unsigned long size; } blob_t;

/* CPU seconds to decode one in-memory JPEG in the given mode. */
static double decode(const blob_t *b, int mode, int S)
{
    struct jpeg_decompress_struct ci;
    struct jpeg_error_mgr jerr;
    ci.err = jpeg_std_error(&jerr);   /* a broken file exits: this is a benchmark of good ones */
    jpeg_create_decompress(&ci);
    jpeg_mem_src(&ci, b->data, b->size);
    jpeg_read_header(&ci, TRUE);
    double t0 = bench_cpu();
    if (mode == MODE_ENTROPY) {
        jpeg_read_coefficients(&ci);
    } else {
        ci.out_color_space = JCS_RGB;
        if (mode == MODE_SCALED) {
            ci.scale_num = (unsigned)dp_image_dct_scale((int)ci.image_width, (int)ci.image_height, S);
            ci.scale_denom = 8;
        }
        jpeg_start_decompress(&ci);
        JSAMPROW row = malloc((size_t)ci.output_width * ci.output_components);
        while (ci.output_scanline < ci.output_height) jpeg_read_scanlines(&ci, &row, 1);
        free(row);
        jpeg_finish_decompress(&ci);
    }
    double t = bench_cpu() - t0;
    jpeg_destroy_decompress(&ci);
    return t;
}

static int load_folder(const char *dir, blob_t **out)
{
    DIR *d = opendir(dir);
    if (!d) { perror(dir); return -1; }
    int n = 0, cap = 0;
    blob_t *v = NULL;
    for (struct dirent *e; (e = readdir(d));) {
        size_t len = strlen(e->d_name);
        if (len < 4 || (strcmp(e->d_name + len - 4, ".jpg") != 0 && strcmp(e->d_name + len - 4, ".JPG") != 0)) continue;
        char path[4096];
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        FILE *f = fopen(path, "rb");
        if (!f) continue;
        fseek(f, 0, SEEK_END);
        long size = ftell(f);
        rewind(f);
        if (n == cap) {
            blob_t *w = realloc(v, (size_t)(cap = cap ? 2 * cap : 256) * sizeof *v);
            if (!w) { fprintf(stderr, "bench_jpeg_decode: out of memory\n"); exit(1); }
            v = w;
        }
        if (size <= 0 || !(v[n].data = malloc((size_t)size))) {
            fclose(f);
            continue;
        }
        v[n].size = (unsigned long)fread(v[n].data, 1, (size_t)size, f);
        fclose(f);
        n++;
    }
    closedir(d);
    *out = v;
    return n;
}

int main(int argc, char **argv)
{
    if (argc < 2 || strcmp(argv[1], "--help") == 0) {
        fprintf(argc < 2 ? stderr : stdout, "usage: bench_jpeg_decode DIR [S=256] [runs=3]\n");
        return argc < 2 ? 2 : 0;
    }
    int S = argc > 2 ? atoi(argv[2]) : 256, runs = argc > 3 ? atoi(argv[3]) : 3;
    blob_t *files = NULL;
    int n = load_folder(argv[1], &files);
    if (n <= 0) {
        fprintf(stderr, "bench_jpeg_decode: no .jpg files in %s\n", argv[1]);
        return 1;
    }
    double best[MODES];
    for (int m = 0; m < MODES; m++) {
        best[m] = 1e30;
        for (int r = 0; r < runs; r++) {
            double t = 0.0;
            for (int i = 0; i < n; i++) t += decode(&files[i], m, S);
            if (t < best[m]) best[m] = t;
        }
    }
    printf("libjpeg-turbo on %d JPEGs of %s, CPU ms per image (best of %d): entropy decoding only %.3f, "
           "full decode to RGB %.3f, decode at the --fast-decode DCT scale for S=%d %.3f\n", n, argv[1], runs,
           1e3 * best[MODE_ENTROPY] / n, 1e3 * best[MODE_FULL] / n, S, 1e3 * best[MODE_SCALED] / n);
    for (int i = 0; i < n; i++) free(files[i].data);
    free(files);
    return 0;
}
