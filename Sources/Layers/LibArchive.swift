import Foundation
import Failures
import IO
internal import CArchive
import Hashing
import OCI

public enum ArchiveError: KindedError, Equatable {
    /// A C library (`libarchive`, `libdeflate`, `isa-l`) failed; its name, and the message.
    case library(String, String)
    /// The bytes are not a valid tar or gzip stream.
    case format(String)
    /// A setting out of range.
    case usage(String)
    public var description: String {
        switch self {
        case .library(_, let m), .format(let m), .usage(let m): return m
        }
    }
    public var kind: ErrorKind {
        switch self {
        case .library: return .library
        case .format: return .badInput
        case .usage: return .usage
        }
    }
}

/// Turns a libarchive status into a throw carrying libarchive's own message.
@discardableResult
private func check(_ a: OpaquePointer?, _ status: CInt, _ what: String) throws -> CInt {
    if status >= ARCHIVE_WARN { return status }
    let msg = archive_error_string(a).map { String(cString: $0) } ?? "error \(status)"
    throw ArchiveError.library("libarchive", "\(what): \(msg)")
}

// MARK: - Compression

/// A sink that compresses what it is given (gzip or zstd through libarchive's filters in `raw`
/// format) and passes the compressed bytes on. The gzip header is pinned (no timestamp) and the
/// output is not padded, so the bytes depend only on the input and the library build.
public final class CompressingSink: ByteSink {
    private var archive: OpaquePointer?
    private let next: ByteSink
    fileprivate var pendingError: Error?
    private let compression: Compression

    /// gzip goes through `ParallelGzipSink` (all cores, same bytes for any core count); zstd
    /// through libarchive's filter with zstd's own worker threads (at least one: 0 and ≥ 1
    /// threads give different bytes, 1, 2 and 4 the same).
    private var gzip: ParallelGzipSink?

    /// `threads`: zstd worker threads (default: the cores, at most 8); the bytes do not depend on it.
    public init(_ compression: Compression, level: Int? = nil, next: ByteSink, threads: Int? = nil) throws {
        self.next = next
        self.compression = compression
        guard compression != .none else { return }
        if compression == .gzip {
            gzip = try ParallelGzipSink(level: level ?? 6, next: next)
            return
        }
        guard let a = archive_write_new() else {
            throw ArchiveError.library("libarchive", "cannot allocate a libarchive writer")
        }
        archive = a
        try check(a, archive_write_set_format_raw(a), "raw format")
        switch compression {
        case .gzip, .none:
            break  // returned above: ParallelGzipSink, or no filter at all
        case .zstd:
            try check(a, archive_write_add_filter_zstd(a), "zstd filter")
            try check(
                a, archive_write_set_filter_option(a, "zstd", "compression-level", String(level ?? 3)), "zstd level")
            let workers = max(1, threads ?? min(8, ProcessInfo.processInfo.activeProcessorCount))
            try check(a, archive_write_set_filter_option(a, "zstd", "threads", String(workers)), "zstd threads")
        case .none: break
        }
        try check(a, archive_write_set_bytes_in_last_block(a, 1), "block size")
        let ctx = Unmanaged.passUnretained(self).toOpaque()
        try check(a, archive_write_open(a, ctx, nil, compressedWrite, nil), "open compressor")
        let entry = archive_entry_new()
        defer { archive_entry_free(entry) }
        archive_entry_set_filetype(entry, stamp_ae_ifreg)
        archive_entry_set_pathname(entry, "layer.tar")
        try check(a, archive_write_header(a, entry), "compressor header")
    }

    deinit { if let archive { archive_write_free(archive) } }

    fileprivate func deliver(_ buf: UnsafeRawBufferPointer) -> Int {
        do {
            try next.write(buf)
            return buf.count
        } catch {
            pendingError = error
            return -1
        }
    }

    public func write(_ buffer: UnsafeRawBufferPointer) throws {
        if let gzip { return try gzip.write(buffer) }
        guard let archive else { return try next.write(buffer) }
        var done = 0
        while done < buffer.count {
            let n = archive_write_data(archive, buffer.baseAddress! + done, buffer.count - done)
            if let e = pendingError { throw e }
            if n < 0 { try check(archive, CInt(n), "compress") }
            done += n
        }
    }

    /// Flushes the compressor; call once at the end.
    public func finish() throws {
        if let gzip { return try gzip.finish() }
        guard let a = archive else { return }
        let status = archive_write_close(a)
        if let e = pendingError { throw e }
        try check(a, status, "finish compression")
        archive_write_free(a)
        archive = nil
    }
}

private func compressedWrite(_ a: OpaquePointer?, _ ctx: UnsafeMutableRawPointer?, _ buf: UnsafeRawPointer?, _ n: Int)
    -> Int
{
    let sink = Unmanaged<CompressingSink>.fromOpaque(ctx!).takeUnretainedValue()
    return sink.deliver(UnsafeRawBufferPointer(start: buf, count: n))
}

// MARK: - Reading

/// Reads a (possibly compressed) layer: either its uncompressed bytes as one stream (`.raw`, to
/// compute a diff_id) or its tar entries (`.tar`). gzip is inflated by ISA-L and a plain or
/// inflated tar parsed by `TarStream`; other compressions go through libarchive. Read it from a
/// `HashingSource` to get the blob's digest from the same pass.
public final class LayerReader {
    public enum Mode { case raw, tar }

    public struct EntryInfo: Sendable {
        public let path: String
        public let type: TarIndex.EntryType
        public let size: Int64
        public let mode: UInt32
        public var uid: Int = 0
        public var gid: Int = 0
        public var xattrs: [Xattr] = []
    }

    /// Who parses the layer: stamp's own tar parser (gzip that ISA-L inflated, or a plain
    /// tar), the stream itself served once as one entry (`.raw`), or libarchive (zstd, xz, ...).
    private enum Backend {
        case tar(TarStream)
        case raw(ByteSource, served: Bool)
        case libarchive(OpaquePointer)
    }

    private var backend: Backend
    private let source: ByteSource
    private let label: String
    fileprivate let buffer: UnsafeMutableRawBufferPointer
    fileprivate var pendingError: Error?

    /// The compression stamp recognised itself (gzip or none); nil when libarchive decides.
    private let knownCompression: Compression?

    /// The uncompressed tar stream hashed as it is read (for a diff_id in the same pass), when
    /// `hashTar` asked for it and stamp sees that stream (gzip or uncompressed).
    private var tarHasher: HashingSource?

    /// The inflating stage, when it runs on a thread of its own (`pipelined`).
    private var pipeline: PipelinedSource?

    /// `pipelined`: inflate gzip on a second thread (worth it for large layers).
    public init(source: ByteSource, mode: Mode, label: String, hashTar: Bool = false, pipelined: Bool = false) throws {
        // gzip, by far the most common layer compression, is inflated by ISA-L before
        // libarchive sees the bytes; libarchive's filters take everything else.
        var head = [UInt8](repeating: 0, count: 4)
        var got = 0
        while got < 4 {
            let n = try head.withUnsafeMutableBytes {
                try source.read(into: UnsafeMutableRawBufferPointer(rebasing: $0[got...]))
            }
            if n == 0 { break }
            got += n
        }
        let prefixed = PrefixedSource(Array(head[0..<got]), source)
        let sniffed = Compression.sniff(Array(head[0..<got]))
        let inflatesGzip = sniffed == .gzip
        // bzip2 and xz are no OCI layer types, but libarchive reads them: not a plain tar either.
        let compressed =
            sniffed != .none || (got >= 3 && head[0..<3] == [0x42, 0x5a, 0x68])
            || (got == 4 && head == [0xfd, 0x37, 0x7a, 0x58])
        var stream: ByteSource = prefixed
        if inflatesGzip {
            stream = GzipInflateSource(prefixed, label: label)
            if pipelined {
                let p = PipelinedSource(stream)
                pipeline = p
                stream = p
            }
        }
        if hashTar && (inflatesGzip || !compressed) {
            let h = HashingSource(stream)
            tarHasher = h
            stream = h
        }
        self.source = stream
        self.label = label
        if inflatesGzip || !compressed {
            knownCompression = inflatesGzip ? .gzip : Compression.none
            buffer = .allocate(byteCount: 0, alignment: 16)  // libarchive's alone
            switch mode {
            case .tar: backend = .tar(TarStream(stream, label: label))
            case .raw: backend = .raw(stream, served: false)
            }
            return
        }
        knownCompression = nil
        guard let a = archive_read_new() else {
            throw ArchiveError.library("libarchive", "cannot allocate a libarchive reader")
        }
        backend = .libarchive(a)
        buffer = .allocate(byteCount: 1 << 20, alignment: 16)
        try check(a, archive_read_support_filter_all(a), label)
        switch mode {
        case .raw: try check(a, archive_read_support_format_raw(a), label)
        case .tar:
            try check(a, archive_read_support_format_tar(a), label)
            try check(a, archive_read_support_format_empty(a), label)
        }
        let ctx = Unmanaged.passUnretained(self).toOpaque()
        let status = archive_read_open(a, ctx, nil, layerRead, nil)
        if let e = pendingError { throw e }
        try check(a, status, label)
    }

    deinit {
        if case .libarchive(let a) = backend { archive_read_free(a) }
        buffer.deallocate()
    }

    fileprivate func fill() -> Int {
        do { return try source.read(into: buffer) } catch {
            pendingError = error
            return -1
        }
    }

    /// The diff_id: the SHA-256 of the whole uncompressed tar (what libarchive left unread is
    /// read here). Nil when `hashTar` was not asked or libarchive decompresses (zstd, ...).
    public func finishTarDigest() throws -> String? {
        try tarHasher?.finish()
    }

    /// Reads the rest of the layer so that the source given to `init` is idle again (the
    /// inflating thread, if any, has finished). Call before reading that source further.
    public func drain() {
        if let tarHasher { _ = try? tarHasher.finish() }
        pipeline?.drain()
    }

    /// The compression libarchive found (after the first `next()`).
    public var detectedCompression: Compression? {
        if let knownCompression { return knownCompression }
        guard case .libarchive(let archive) = backend else { return nil }
        switch archive_filter_code(archive, 0) {
        case ARCHIVE_FILTER_NONE: return Compression.none
        case ARCHIVE_FILTER_GZIP: return .gzip
        case ARCHIVE_FILTER_ZSTD: return .zstd
        default: return nil
        }
    }

    /// The next entry, or nil at the end.
    public func next() throws -> EntryInfo? {
        let a: OpaquePointer
        switch backend {
        case .tar(let tar):
            return try tar.next().map {
                EntryInfo(
                    path: $0.path, type: $0.type, size: $0.size, mode: $0.mode, uid: $0.uid, gid: $0.gid,
                    xattrs: $0.xattrs)
            }
        case .raw(let raw, let served):
            if served { return nil }
            backend = .raw(raw, served: true)
            return EntryInfo(path: "data", type: .file, size: -1, mode: 0o644)
        case .libarchive(let archive): a = archive
        }
        var entry: OpaquePointer?
        let status = archive_read_next_header(a, &entry)
        if let e = pendingError { throw e }
        if status == ARCHIVE_EOF { return nil }
        try check(a, status, label)
        guard let entry else { return nil }
        let path: String
        // The raw name first: under the C.UTF-8 locale stamp sets it is UTF-8 already, and asking
        // for the UTF-8 form costs a character-set conversion per entry.
        if let p = archive_entry_pathname(entry) ?? archive_entry_pathname_utf8(entry) {
            path = String(cString: p)
        } else {
            path = ""
        }
        let ftype = archive_entry_filetype(entry)
        let type: TarIndex.EntryType
        if let hl = archive_entry_hardlink(entry) {
            type = .hardlink(String(cString: hl))
        } else if ftype == stamp_ae_ifreg {
            type = .file
        } else if ftype == stamp_ae_ifdir {
            type = .directory
        } else if let sl = archive_entry_symlink(entry) {
            type = .symlink(String(cString: sl))
        } else {
            type = .other
        }
        let uid = archive_entry_uid(entry), gid = archive_entry_gid(entry)
        var xattrs: [Xattr] = []
        if archive_entry_xattr_reset(entry) > 0 {
            var name: UnsafePointer<CChar>?
            var value: UnsafeRawPointer?
            var size = 0
            while xattrs.count < 128, archive_entry_xattr_next(entry, &name, &value, &size) == ARCHIVE_OK, let name {
                xattrs.append(
                    Xattr(
                        name: String(cString: name),
                        value: value.map { Array(UnsafeRawBufferPointer(start: $0, count: size)) } ?? []))
            }
        }
        return EntryInfo(
            path: path, type: type, size: archive_entry_size_is_set(entry) != 0 ? archive_entry_size(entry) : -1,
            mode: UInt32(archive_entry_perm(entry)),
            uid: (0...Int64(UInt32.max)).contains(uid) ? Int(uid) : 0,
            gid: (0...Int64(UInt32.max)).contains(gid) ? Int(gid) : 0,
            xattrs: xattrs)
    }

    /// Streams the current entry's data (all of it, for `.raw`) into `sink`.
    public func readData(into sink: ByteSink) throws {
        let a: OpaquePointer
        switch backend {
        case .tar(let tar): return try tar.readData(into: sink)
        case .raw(let raw, _):
            _ = try copyStream(from: raw, to: sink)
            return
        case .libarchive(let archive): a = archive
        }
        let out = UnsafeMutableRawBufferPointer.allocate(byteCount: 1 << 20, alignment: 16)
        defer { out.deallocate() }
        while true {
            let n = archive_read_data(a, out.baseAddress, out.count)
            if let e = pendingError { throw e }
            if n == 0 { return }
            if n < 0 { try check(a, CInt(n), label) }
            try sink.write(UnsafeRawBufferPointer(rebasing: out[0..<n]))
        }
    }

    /// The current entry's data, bounded.
    public func readData(limit: Int) throws -> [UInt8] {
        let sink = MemorySink()
        try readData(into: BoundedSink(sink, limit: limit, label: label))
        return sink.bytes
    }
}

private func layerRead(
    _ a: OpaquePointer?, _ ctx: UnsafeMutableRawPointer?, _ out: UnsafeMutablePointer<UnsafeRawPointer?>?
) -> Int {
    let r = Unmanaged<LayerReader>.fromOpaque(ctx!).takeUnretainedValue()
    let n = r.fill()
    out?.pointee = UnsafeRawPointer(r.buffer.baseAddress)
    return n
}

final class BoundedSink: ByteSink {
    let next: ByteSink
    let limit: Int
    let label: String
    var count = 0
    init(_ next: ByteSink, limit: Int, label: String) {
        self.next = next
        self.limit = limit
        self.label = label
    }
    func write(_ buffer: UnsafeRawBufferPointer) throws {
        count += buffer.count
        guard count <= limit else { throw ArchiveError.format("\(label): entry larger than \(limit) bytes") }
        try next.write(buffer)
    }
}
