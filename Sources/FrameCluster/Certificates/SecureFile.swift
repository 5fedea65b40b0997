#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Foundation

/// Atomic writes of certificates, keys and configuration files.
///
/// The data goes to a temporary file opened with `O_CREAT|O_EXCL` and the
/// final mode, is fsynced, and is renamed over the target: a key is never
/// readable by others, not even for a moment, and a reader sees the old file
/// or the new one, never half of either.
enum SecureFile {
    static func write(_ data: Data, to url: URL, mode: mode_t) throws(CertificateError) {
        let tmp = url.path + ".tmp-\(UUID().uuidString.prefix(8))"
        let fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode)
        guard fd >= 0 else { throw CertificateError.io(tmp, String(cString: strerror(errno))) }
        var failure: String?
        data.withUnsafeBytes { raw in
            var offset = 0
            while offset < raw.count {
                let n = systemWrite(fd, raw.baseAddress! + offset, raw.count - offset)
                if n < 0 {
                    if errno == EINTR { continue }
                    failure = String(cString: strerror(errno))
                    return
                }
                offset += n
            }
        }
        // The umask may have narrowed the mode; the file gets exactly the one asked for.
        if failure == nil, fchmod(fd, mode) != 0 { failure = String(cString: strerror(errno)) }
        if failure == nil, fsync(fd) != 0 { failure = String(cString: strerror(errno)) }
        close(fd)
        if let failure {
            unlink(tmp)
            throw CertificateError.io(url.path, failure)
        }
        guard rename(tmp, url.path) == 0 else {
            let why = String(cString: strerror(errno))
            unlink(tmp)
            throw CertificateError.io(url.path, why)
        }
    }

    private static func systemWrite(_ fd: Int32, _ bytes: UnsafeRawPointer, _ count: Int) -> Int {
        #if canImport(Glibc)
        Glibc.write(fd, bytes, count)
        #else
        Darwin.write(fd, bytes, count)
        #endif
    }
}
