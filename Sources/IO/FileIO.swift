import Glibc
import Failures
import Hashing
import Synchronization

public enum IOError: KindedError, Equatable {
    case open(String, String)
    case read(String, String)
    case write(String, String)
    case truncated(String, expected: Int64, found: Int64)

    public var description: String {
        switch self {
        case let .open(p, m): return "\(p): \(m)"
        case let .read(p, m): return "\(p): read failed: \(m)"
        case let .write(p, m): return "\(p): write failed: \(m)"
        case let .truncated(p, e, f): return "\(p): truncated: expected \(e) bytes, found \(f)"
        }
    }

    public var kind: ErrorKind {
        switch self {
        case .open, .read, .write: return .io
        case .truncated: return .badInput
        }
    }

    static func errnoText() -> String { String(cString: strerror(errno)) }
}

/// Something bytes are written to.
public protocol ByteSink: AnyObject {
    func write(_ buffer: UnsafeRawBufferPointer) throws
}

extension ByteSink {
    public func write(_ bytes: [UInt8]) throws { try bytes.withUnsafeBytes { try write($0) } }
}

/// Something bytes are read from, front to back.
public protocol ByteSource: AnyObject {
    /// Reads up to `buffer.count` bytes; 0 at the end.
    func read(into buffer: UnsafeMutableRawBufferPointer) throws -> Int
}

/// A source that can pass over bytes without reading them (a file section: a seek).
public protocol SkippingSource: ByteSource {
    /// Moves `count` bytes on; returns how many it moved (fewer only at the end).
    func skip(_ count: Int64) throws -> Int64
}

/// A file open for reading; positional reads, so several readers can share it.
public final class ReadableFile: Sendable {
    public let path: String
    public let fd: Int32
    public let size: Int64

    public init(_ path: String) throws {
        self.path = path
        // Opened without blocking: a FIFO would wait for a writer forever. Only regular files
        // are read (a device or a FIFO has no size and no end to trust).
        let fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK)
        guard fd >= 0 else { throw IOError.open(path, IOError.errnoText()) }
        var st = stat()
        guard fstat(fd, &st) == 0 else {
            close(fd)
            throw IOError.open(path, IOError.errnoText())
        }
        if (st.st_mode & S_IFMT) == S_IFDIR {
            close(fd)
            throw IOError.open(path, "is a directory")
        }
        if (st.st_mode & S_IFMT) != S_IFREG {
            close(fd)
            throw IOError.open(path, "is not a regular file (\(Path.kind(st.st_mode)))")
        }
        _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK)
        self.fd = fd
        self.size = Int64(st.st_size)
    }

    deinit { close(fd) }

    /// Reads exactly `count` bytes at `offset`, or throws `truncated`.
    public func read(at offset: Int64, count: Int) throws -> [UInt8] {
        var out = [UInt8](repeating: 0, count: count)
        let n = try out.withUnsafeMutableBytes { try pread(into: $0, at: offset) }
        guard n == count else {
            throw IOError.truncated(path, expected: offset + Int64(count), found: offset + Int64(n))
        }
        return out
    }

    /// Reads up to `buffer.count` bytes at `offset`; fewer only at the end of the file.
    public func pread(into buffer: UnsafeMutableRawBufferPointer, at offset: Int64) throws -> Int {
        var done = 0
        while done < buffer.count {
            let n = Glibc.pread(fd, buffer.baseAddress! + done, buffer.count - done, off_t(offset) + off_t(done))
            if n < 0 {
                if errno == EINTR { continue }
                throw IOError.read(path, IOError.errnoText())
            }
            if n == 0 { break }
            done += n
        }
        return done
    }

    /// The whole file (for small documents).
    public func readAll(limit: Int64 = 64 << 20) throws -> [UInt8] {
        guard size <= limit else { throw IOError.read(path, "larger than \(limit) bytes") }
        return try read(at: 0, count: Int(size))
    }

    /// A reader of `length` bytes from `offset`.
    public func section(offset: Int64, length: Int64) -> FileSection {
        FileSection(file: self, offset: offset, length: length)
    }
}

/// A byte range of a file read front to back; short files throw `truncated`.
public final class FileSection: SkippingSource {
    public let file: ReadableFile
    public let offset: Int64
    public let length: Int64
    public private(set) var position: Int64 = 0

    public init(file: ReadableFile, offset: Int64, length: Int64) {
        self.file = file
        self.offset = offset
        self.length = length
    }

    public func read(into buffer: UnsafeMutableRawBufferPointer) throws -> Int {
        let want = Int(min(Int64(buffer.count), length - position))
        guard want > 0 else { return 0 }
        let n = try file.pread(into: UnsafeMutableRawBufferPointer(rebasing: buffer[0..<want]), at: offset + position)
        if n == 0 { throw IOError.truncated(file.path, expected: offset + length, found: offset + position) }
        position += Int64(n)
        return n
    }

    public func skip(_ count: Int64) throws -> Int64 {
        let n = max(0, min(count, length - position))
        position += n
        return n
    }
}

/// Writes into an open file from `offset` on (pwrite: several of them, on several threads, can
/// fill different parts of one file).
public final class PositionalSink: ByteSink {
    let fd: Int32
    let path: String
    public private(set) var offset: Int64
    public init(_ file: WritableFile, at offset: Int64) {
        fd = file.fd
        path = file.path
        self.offset = offset
    }
    public func write(_ buf: UnsafeRawBufferPointer) throws {
        if let e = FileDescriptor.writeAll(fd, buf, at: offset) {
            throw IOError.write(path, FileDescriptor.describe(e))
        }
        offset += Int64(buf.count)
    }
}

/// A source that shows each piece read from it to `observe` on the way (a progress count, a
/// copy to a sink).
public final class ObservedSource: ByteSource {
    let inner: ByteSource
    let observe: (UnsafeRawBufferPointer) throws -> Void
    public init(_ inner: ByteSource, observe: @escaping (UnsafeRawBufferPointer) throws -> Void) {
        self.inner = inner
        self.observe = observe
    }
    public func read(into buffer: UnsafeMutableRawBufferPointer) throws -> Int {
        let n = try inner.read(into: buffer)
        if n > 0 { try observe(UnsafeRawBufferPointer(rebasing: buffer[0..<n])) }
        return n
    }
}

extension ObservedSource {
    /// Writes the bytes read to `sink` too.
    public convenience init(_ inner: ByteSource, tee sink: ByteSink) {
        self.init(inner) { try sink.write($0) }
    }
}

/// A file written front to back. Create it with `create` beside its final name and `commit` it
/// there when complete; `deinit` without `commit` removes it, so nothing half-written stays.
public final class WritableFile: ByteSink {
    public let path: String
    public private(set) var fd: Int32
    public private(set) var written: Int64 = 0
    private var committed = false
    private var buffer: [UInt8] = []
    private static let bufferSize = 1 << 20

    /// Creates a new file exclusively at `path` (mode 0644 minus umask).
    public init(path: String) throws {
        self.path = path
        // Known as pending before it exists: an interrupt right after the open removes it too.
        PendingFiles.shared.add(path)
        fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o644)
        guard fd >= 0 else {
            let e = IOError.open(path, IOError.errnoText())
            PendingFiles.shared.remove(path)
            committed = true  // not ours: deinit must not remove it
            throw e
        }
        buffer.reserveCapacity(WritableFile.bufferSize)
    }

    /// A temp file in the folder of `target`, named after it.
    public static func temporary(beside target: String) throws -> WritableFile {
        StaleTemporaries.sweep(Path.dirname(target))
        for _ in 0..<100 {
            let name = Path.temporaryName(beside: target)
            do { return try WritableFile(path: name) } catch IOError.open(_, let m) where m.contains("exists") {
                continue
            }
        }
        throw IOError.open(target, "cannot create a temporary file beside it")
    }

    deinit {
        if fd >= 0 { close(fd) }
        if !committed { unlink(path) }
        PendingFiles.shared.remove(path)
    }

    public func write(_ buf: UnsafeRawBufferPointer) throws {
        if buffer.count + buf.count > WritableFile.bufferSize { try flush() }
        if buf.count >= WritableFile.bufferSize {
            try writeDirect(buf)
        } else {
            buffer.append(contentsOf: buf)
        }
        written += Int64(buf.count)
    }

    private func writeDirect(_ buf: UnsafeRawBufferPointer) throws {
        if let e = FileDescriptor.writeAll(fd, buf) { throw IOError.write(path, FileDescriptor.describe(e)) }
    }

    /// Writes what is buffered, then continues at `offset` (the bytes before it may be written
    /// by `PositionalSink`s meanwhile).
    public func seek(to offset: Int64) throws {
        try flush()
        guard lseek(fd, off_t(offset), SEEK_SET) >= 0 else { throw IOError.write(path, IOError.errnoText()) }
    }

    public func flush() throws {
        guard !buffer.isEmpty else { return }
        try buffer.withUnsafeBytes { try writeDirect($0) }
        buffer.removeAll(keepingCapacity: true)
    }

    /// Flushes, closes and renames the file to `target`; with `sync`, first waits until its
    /// bytes are on disk (so a power loss cannot leave the new name with missing data).
    public func commit(to target: String, sync: Bool = true) throws {
        try flush()
        if sync { guard fsync(fd) == 0 else { throw IOError.write(path, IOError.errnoText()) } }
        close(fd)
        fd = -1
        guard rename(path, target) == 0 else { throw IOError.write(target, IOError.errnoText()) }
        committed = true
        PendingFiles.shared.remove(path)
    }

    /// Flushes and closes, keeping the file where it is (it is still removed on deinit unless
    /// `keep()` is called).
    public func finish() throws {
        try flush()
        if fd >= 0 {
            close(fd)
            fd = -1
        }
    }

    public func keep() {
        committed = true
        PendingFiles.shared.remove(path)
    }

    /// Drops everything written so far (a download that restarts after a dropped connection).
    public func reset() throws {
        buffer.removeAll(keepingCapacity: true)
        guard ftruncate(fd, 0) == 0, lseek(fd, 0, SEEK_SET) == 0 else { throw IOError.write(path, IOError.errnoText()) }
        written = 0
    }
}

/// Files being written and not yet committed, so that an interrupted run can remove them (and
/// the temporary folders `TemporaryFolders` knows).
public final class PendingFiles: Sendable {
    public static let shared = PendingFiles()
    private let paths = Mutex<Set<String>>([])
    init() {}

    func add(_ p: String) { paths.withLock { _ = $0.insert(p) } }
    func remove(_ p: String) { paths.withLock { _ = $0.remove(p) } }

    /// From a crash handler: unlinks what it can without waiting for the lock (the crashed
    /// thread may hold it, and waiting would hang; it is held only to add or remove a name).
    public func unlinkAllUnlocked() {
        _ = paths.withLockIfAvailable { for p in $0 { unlink(p) } }
    }

    /// Unlinks every pending file and removes every pending folder; called when the process is
    /// interrupted.
    public func removeAll() {
        paths.withLock { paths in
            for p in paths { unlink(p) }
            paths.removeAll()
        }
        TemporaryFolders.removeAll()
    }
}

/// A sink that hashes and counts what passes through it.
public final class DigestingSink: ByteSink {
    public let digester = Digester(.sha256)
    private let next: ByteSink?
    public init(_ next: ByteSink?) { self.next = next }
    public func write(_ buffer: UnsafeRawBufferPointer) throws {
        digester.update(buffer)
        try next?.write(buffer)
    }
    public var count: Int64 { digester.count }
}

/// Bytes in memory, read front to back.
public final class MemorySource: ByteSource {
    let bytes: [UInt8]
    var position = 0
    public init(_ bytes: [UInt8]) { self.bytes = bytes }
    public func read(into buffer: UnsafeMutableRawBufferPointer) throws -> Int {
        let n = min(buffer.count, bytes.count - position)
        guard n > 0 else { return 0 }
        bytes.withUnsafeBytes { src in
            buffer.baseAddress!.copyMemory(from: src.baseAddress! + position, byteCount: n)
        }
        position += n
        return n
    }
}

/// Collects bytes in memory (small documents, tests).
public final class MemorySink: ByteSink {
    public private(set) var bytes: [UInt8] = []
    public init() {}
    public func write(_ buffer: UnsafeRawBufferPointer) throws { bytes.append(contentsOf: buffer) }
}

/// Streams a source into a sink in 1 MiB chunks.
public func copyStream(from source: ByteSource, to sink: ByteSink, chunk: Int = 1 << 20) throws -> Int64 {
    let buf = UnsafeMutableRawBufferPointer.allocate(byteCount: chunk, alignment: 16)
    defer { buf.deallocate() }
    var total: Int64 = 0
    while true {
        let n = try source.read(into: buf)
        if n == 0 { return total }
        try sink.write(UnsafeRawBufferPointer(rebasing: buf[0..<n]))
        total += Int64(n)
    }
}

/// A source that hashes what is read through it; `finish` reads the rest and returns the
/// digest, so a blob's digest comes from the same pass that decompresses it.
public final class HashingSource: ByteSource {
    let inner: ByteSource
    public let digester = Digester(.sha256)
    public init(_ inner: ByteSource) { self.inner = inner }
    public func read(into buffer: UnsafeMutableRawBufferPointer) throws -> Int {
        let n = try inner.read(into: buffer)
        digester.update(UnsafeRawBufferPointer(rebasing: buffer[0..<n]))
        return n
    }
    /// Bytes read so far.
    public var count: Int64 { digester.count }
    public func finish() throws -> String {
        _ = try copyStream(from: self, to: NullSink())
        return digester.finalizeDigest()
    }
}

public final class NullSink: ByteSink {
    public init() {}
    public func write(_ buffer: UnsafeRawBufferPointer) throws {}
}
