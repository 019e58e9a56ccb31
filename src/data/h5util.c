/*
 * h5util.c: opening HDF5 inputs with errors that say what is wrong with the file (missing,
 * a directory, empty, not HDF5, corrupt). HDF5's own error stack printing is turned off:
 * callers report through SN_FAIL.
 * Must not: open for writing.
 */
#include <errno.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>
#include "shardnet/error.h"
#include "data/h5util.h"

int sn_h5_open_read(const char *path, hid_t *out)
{
    *out = -1;
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
    struct stat st;
    if (stat(path, &st) != 0 || access(path, R_OK) != 0) {
        return SN_FAIL(SN_EIO, "%s: cannot open: %s", path, strerror(errno));
    }
    if (S_ISDIR(st.st_mode)) {
        return SN_FAIL(SN_EIO, "%s: is a directory, not an HDF5 file", path);
    }
    if (H5Fis_hdf5(path) <= 0) {
        return SN_FAIL(SN_EFORMAT, "%s: not an HDF5 file (%s)", path, st.st_size ? "truncated or corrupt?" : "empty");
    }
    if ((*out = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT)) < 0)
        return SN_FAIL(SN_EFORMAT, "%s: cannot open as HDF5 (truncated or corrupt?)", path);
    return SN_OK;
}
