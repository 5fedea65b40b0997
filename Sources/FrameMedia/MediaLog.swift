import CFFmpeg

/// FFmpeg's own console logging, which FrameMedia silences by default.
///
/// Decoders log every concealed macroblock of a damaged file to stderr; a service or a CLI
/// with a progress line must not print that. Failures reach callers as ``MediaError``s.
public enum MediaLog {
    /// Sets FFmpeg's log level (an `AV_LOG_*` value, e.g. 16 for errors, 32 for info).
    public static func setFFmpegLevel(_ level: Int32) {
        _ = configured
        av_log_set_level(level)
    }

    private static let configured: Bool = {
        av_log_set_level(AV_LOG_FATAL)
        return true
    }()

    static func configure() { _ = configured }
}
