/*
 * data.h: datasets stored in HDF5, read by shard.
 *
 * A rank reads only rows [begin, begin+count) of a split (an HDF5 hyperslab), kept as
 * uint8 (images are normalised to float one batch at a time), so the memory a rank
 * holds is about the dataset size divided by the number of ranks.
 */
#ifndef SHARDNET_DATA_H
#define SHARDNET_DATA_H
#include <stdint.h>

typedef struct sn_image_set {
    int64_t  n;                 /* rows held */
    int64_t  first;             /* global row index of the first held row */
    int64_t  total;             /* rows in the split */
    int      channels, height, width;
    uint8_t *images;            /* (n, C, H, W) */
    uint8_t *labels;            /* (n) */
    double   mean, std;         /* normalisation stored with the file */
} sn_image_set_t;

/* Number of rows of /split/images in path, with the layout validated. */
int  sn_mnist_rows(const char *path, const char *split, int64_t *rows);

/* Reads rows [begin, begin+count) of /split of an MNIST-layout file (DESIGN.md). Labels are
 * checked to lie in 0..num_classes-1. */
int  sn_mnist_load(const char *path, const char *split, int64_t begin, int64_t count,
                   int num_classes, sn_image_set_t *out);
void sn_image_set_free(sn_image_set_t *s);

/* The contiguous shard [begin, begin+count) of n rows for `rank` of `size`. */
void sn_shard_range(int64_t n, int rank, int size, int64_t *begin, int64_t *count);

#endif
