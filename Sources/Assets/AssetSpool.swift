import Foundation
import Hashing
import IO
import Glibc
import OCI
import Synchronization

/// Rewritten frontend files, appended to one temp file as they are produced, so a large
/// frontend is never held in memory: each becomes an `AssetFile.OnDisk` range of it. The file
/// is unlinked as soon as it is created (nothing is left behind, whatever ends the process) and
/// read back through `/proc/self/fd/N` while this object lives; every range keeps it alive.
public final class AssetSpool: Sendable {
    public let path: String
    private let fd: Int32
    /// Where the next append goes; held while a file is appended, so appends do not interleave.
    private let end = Mutex<Int64>(0)

    public init(directory: String = NSTemporaryDirectory()) throws {
        var template =
            Array((directory.hasSuffix("/") ? directory : directory + "/").utf8CString.dropLast())
            + Array("stamp-assets-XXXXXX".utf8CString)
        let fd = template.withUnsafeMutableBufferPointer { mkstemp($0.baseAddress!) }
        if fd >= 0 { _ = fcntl(fd, F_SETFD, FD_CLOEXEC) }
        guard fd >= 0 else {
            throw AssetError.invalid("\(directory): cannot create a temp file: \(String(cString: strerror(errno)))")
        }
        template.withUnsafeBufferPointer { _ = unlink($0.baseAddress!) }
        self.fd = fd
        path = "/proc/self/fd/\(fd)"
    }

    deinit { close(fd) }

    /// Appends what `produce` emits, piece by piece (a file streamed out of a layer, never whole
    /// in memory); returns where it is, with its digests. Other appends wait meanwhile.
    public func append(streaming produce: (_ emit: (UnsafeRawBufferPointer) throws -> Void) throws -> Void) throws
        -> AssetFile.OnDisk
    {
        let d = ContentDigester()
        let at = try end.withLock { end in
            let at = end
            var written: Int64 = 0
            try produce { piece in
                d.update(piece)
                if let e = FileDescriptor.writeAll(fd, piece, at: at + written) {
                    throw AssetError.invalid("temp file: \(FileDescriptor.describe(e))")
                }
                written += Int64(piece.count)
            }
            end += written
            return at
        }
        var o = d.onDisk(source: path)
        o.offset = at
        o.spool = self
        return o
    }

    /// Appends `bytes`; returns where they are, with their digests.
    public func append(_ bytes: [UInt8]) throws -> AssetFile.OnDisk {
        let d = ContentDigester()
        bytes.withUnsafeBytes { d.update($0) }
        let at = try end.withLock { end in
            let at = end
            if let e = bytes.withUnsafeBytes({ FileDescriptor.writeAll(fd, $0, at: at) }) {
                throw AssetError.invalid("temp file: \(FileDescriptor.describe(e))")
            }
            end += Int64(bytes.count)
            return at
        }
        var o = d.onDisk(source: path)
        o.offset = at
        o.spool = self
        return o
    }
}
