#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// The write loop every file writer of stamp needs (archives, temp files, asset folders).
public enum FileDescriptor {
    /// Writes all of `buffer` at `offset` (pwrite), or at the file position when nil, again
    /// after a signal or a short write. Returns the errno of a failure, nil when all is written.
    public static func writeAll(_ fd: Int32, _ buffer: UnsafeRawBufferPointer, at offset: Int64? = nil) -> Int32? {
        var done = 0
        while done < buffer.count {
            let rest = buffer.count - done
            let n =
                offset.map { pwrite(fd, buffer.baseAddress! + done, rest, off_t($0) + off_t(done)) }
                ?? write(fd, buffer.baseAddress! + done, rest)
            if n < 0 {
                if errno == EINTR { continue }
                return errno
            }
            done += n
        }
        return nil
    }

    public static func describe(_ code: Int32) -> String { String(cString: strerror(code)) }
}
