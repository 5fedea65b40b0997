/// The MD5 of one sample's raw decoded picture, hashed the way `ffmpeg -f framemd5` does
/// (planes packed with no padding), so samples can be checked against the ffmpeg tool.
public struct SampleDigest: Sendable, Hashable {
    public var sampleIndex: UInt32
    public var pts: Int64
    public var seconds: Double
    /// Lower-case hexadecimal MD5.
    public var md5: String
}
