#ifndef FRAMEFLOW_CLIBDEFLATE_SHIM_H
#define FRAMEFLOW_CLIBDEFLATE_SHIM_H
/* libdeflate: whole-buffer zlib streams and CRC-32 for the PNG writer (FrameMedia). */
#include <libdeflate.h>
#endif
