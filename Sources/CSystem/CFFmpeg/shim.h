#ifndef FRAMEFLOW_CFFMPEG_SHIM_H
#define FRAMEFLOW_CFFMPEG_SHIM_H

#include <libavformat/avformat.h>
#include <libavformat/avio.h>
#include <libavcodec/avcodec.h>
#include <libavutil/avutil.h>
#include <libavutil/display.h>
#include <libavutil/error.h>
#include <libavutil/imgutils.h>
#include <libavutil/mathematics.h>
#include <libavutil/opt.h>
#include <libavutil/pixdesc.h>
#include <libswscale/swscale.h>

/* Macros Swift cannot import: exposed as functions. */
static inline int64_t ff_nopts_value(void) { return AV_NOPTS_VALUE; }
static inline int ff_averror(int e) { return AVERROR(e); }
static inline int ff_averror_eof(void) { return AVERROR_EOF; }
static inline int ff_averror_exit(void) { return AVERROR_EXIT; }
static inline int ff_averror_invaliddata(void) { return AVERROR_INVALIDDATA; }
static inline AVRational ff_time_base_q(void) { return AV_TIME_BASE_Q; }
static inline int ff_avseek_size(void) { return AVSEEK_SIZE; }
static inline int ff_avseek_force(void) { return AVSEEK_FORCE; }
static inline int ff_qp2lambda(void) { return FF_QP2LAMBDA; }

#endif
