/* h5util.h: shared helpers of the HDF5 readers in src/data. */
#ifndef SHARDNET_DATA_H5UTIL_H
#define SHARDNET_DATA_H5UTIL_H
#include <hdf5.h>

/* Opens path read-only into *f (default driver: each rank reads independently); on
 * failure *f = -1 and an SN_E* code with a message naming the file and the problem. */
int sn_h5_open_read(const char *path, hid_t *f);

#endif
