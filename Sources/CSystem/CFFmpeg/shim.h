#ifndef FRAMEFLOW_CFFMPEG_SHIM_H
#define FRAMEFLOW_CFFMPEG_SHIM_H

#include <libavformat/avformat.h>
#include <libavformat/avio.h>
#include <libavcodec/avcodec.h>
#include <libavutil/avutil.h>
#include <libavutil/display.h>
#include <libavutil/error.h>
#include <libavutil/hash.h>
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
static inline int ff_averror_eagain(void) { return AVERROR(EAGAIN); }
static inline int ff_averror_decoder_not_found(void) { return AVERROR_DECODER_NOT_FOUND; }
static inline AVRational ff_time_base_q(void) { return AV_TIME_BASE_Q; }
static inline int ff_avseek_size(void) { return AVSEEK_SIZE; }
static inline int ff_avseek_force(void) { return AVSEEK_FORCE; }
static inline int ff_qp2lambda(void) { return FF_QP2LAMBDA; }

/* av_err2str is a macro over a compound literal: give Swift a buffer-based form. */
static inline void ff_error_string(int errnum, char *buf, size_t size) { av_strerror(errnum, buf, size); }

/* The display matrix side data of a stream as a rotation in degrees (counter-clockwise, as
 * av_display_rotation_get returns it), or NAN when the stream has none. */
static inline double ff_stream_display_rotation(const AVStream *st) {
    size_t size = 0;
    const uint8_t *data = av_stream_get_side_data(st, AV_PKT_DATA_DISPLAYMATRIX, &size);
    if (!data || size < 9 * sizeof(int32_t)) return NAN;
    return av_display_rotation_get((const int32_t *)data);
}

#endif
