#ifndef FRAMEFLOW_CLIBZIP_SHIM_H
#define FRAMEFLOW_CLIBZIP_SHIM_H
#include <zip.h>
#endif
