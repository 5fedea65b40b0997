#ifndef FRAMEFLOW_CLINUXIO_SHIM_H
#define FRAMEFLOW_CLINUXIO_SHIM_H
#include <sys/types.h>

/* Linux I/O calls that glibc declares only under _GNU_SOURCE, which Swift's Glibc module is
   built without. The symbols are glibc's own; only the declarations live here. */

#define FRAMEFLOW_SYNC_FILE_RANGE_WRITE 2U
int sync_file_range(int fd, off_t offset, off_t nbytes, unsigned int flags);

#endif
