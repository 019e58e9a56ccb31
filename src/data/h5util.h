/* h5util.h: shared helpers of the HDF5 readers in src/data. */
#ifndef SHARDNET_DATA_H5UTIL_H
#define SHARDNET_DATA_H5UTIL_H
#include <hdf5.h>

/* Opens path read-only (default driver: each rank reads independently); -1 with an
 * SN_FAIL message naming the file and the problem. */
hid_t sn_h5_open_read(const char *path);

#endif
