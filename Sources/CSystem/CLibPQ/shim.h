#ifndef FRAMEFLOW_CLIBPQ_SHIM_H
#define FRAMEFLOW_CLIBPQ_SHIM_H
#include <libpq-fe.h>
#endif
