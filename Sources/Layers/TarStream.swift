import IO

/// The one tar parser: a tar read front to back, each entry's raw name, type, size, permission
/// bits, owner and extended attributes, and its data on request; what the caller does not read
/// is skipped (by a seek when the source is a file, so `TarIndex` reads headers only).
///
/// Header rules (ustar, pax `x`/`g`, GNU `L`/`K`, base-256 sizes) follow Go's archive/tar, the
/// reader the container runtimes use: links, devices, FIFOs and folders are headers only whatever
/// their size says; only a NUL type flag (pre-POSIX) turns a name ending in a slash into a
/// folder; GNU sparse entries are `.other` (their stored bytes are not the file).
/// No C library's per-entry bookkeeping: the scan of a base's 75,000 entries is the cost of a
/// cold build that this saves.
public final class TarStream {
    public struct Entry: Sendable {
        /// The name as written (not cleaned: the caller decides what is safe).
        public let path: String
        public let type: TarIndex.EntryType
        /// Data bytes that follow the header (0 for links and folders).
        public let size: Int64
        /// Permission bits (`mode & 0o7777`).
        public let mode: UInt32
        /// Numeric owner (pax `uid`/`gid` over the header fields; names are never used).
        public let uid: Int
        public let gid: Int
        /// Extended attributes (pax `SCHILY.xattr.NAME`), in the order written.
        public var xattrs: [Xattr] = []
    }

    private let source: ByteSource
    private let label: String
    private let makeError: (String) -> Error
    private let buffer: UnsafeMutableRawBufferPointer
    private var start = 0, end = 0
    private var atEnd = false
    /// Bytes consumed so far (where the next header starts, once `skip` is done).
    private var offset: Int64 = 0
    /// Data of the current entry not read yet, then its padding.
    private var dataLeft: Int64 = 0
    private var padding: Int64 = 0
    private var finished = false
    /// Where the current entry's data starts in the stream.
    public private(set) var dataOffset: Int64 = 0

    /// `error` makes the error of a malformed or cut archive from its message (by default a
    /// format error naming `label`).
    public init(
        _ source: ByteSource, label: String, bufferSize: Int = 256 << 10, error: ((String) -> Error)? = nil
    ) {
        self.source = source
        self.label = label
        makeError = error ?? { ArchiveError.format("\(label): \($0)") }
        buffer = .allocate(byteCount: bufferSize, alignment: 16)
    }

    deinit { buffer.deallocate() }

    private func fail(_ m: String) -> Error { makeError(m) }

    /// Refills the buffer; false at the end of the stream.
    private func fill() throws -> Bool {
        if start == end {
            start = 0
            end = 0
        }
        guard !atEnd else { return false }
        if start > 0 && end == buffer.count {
            let n = end - start
            buffer.baseAddress!.copyMemory(from: buffer.baseAddress! + start, byteCount: n)
            start = 0
            end = n
        }
        let n = try source.read(into: UnsafeMutableRawBufferPointer(rebasing: buffer[end...]))
        if n == 0 {
            atEnd = true
            return false
        }
        end += n
        return true
    }

    /// Exactly `count` bytes (≤ the buffer), or fewer at the end of the stream.
    private func take(_ count: Int) throws -> UnsafeRawBufferPointer {
        while end - start < count { if try !fill() { break } }
        let n = min(count, end - start)
        let out = UnsafeRawBufferPointer(rebasing: buffer[start..<(start + n)])
        start += n
        offset += Int64(n)
        return out
    }

    /// Passes over `count` bytes (what the buffer holds, then a seek when the source can);
    /// false when the stream ends first.
    private func skip(_ count: Int64) throws -> Bool {
        var left = count
        while left > 0 {
            if start == end {
                if let seekable = source as? SkippingSource, !atEnd {
                    let n = try seekable.skip(left)
                    offset += n
                    left -= n
                    if left > 0 { atEnd = true }
                    continue
                }
                if try !fill() { return false }
            }
            let n = Int(min(left, Int64(end - start)))
            start += n
            offset += Int64(n)
            left -= Int64(n)
        }
        return true
    }

    private func skipRest() throws {
        let total = dataLeft + padding
        let at = offset
        dataLeft = 0
        padding = 0
        guard try skip(total) else { throw fail("truncated: the tar ends inside the entry data at byte \(at)") }
    }

    /// A whole small member body (pax header, GNU long name).
    private func body(_ size: Int64) throws -> [UInt8] {
        guard size <= 1 << 20 else { throw fail("tar extension header of \(size) bytes") }
        var out = [UInt8]()
        out.reserveCapacity(Int(size))
        var left = Int(size)
        while left > 0 {
            let piece = try take(min(left, 64 << 10))
            guard !piece.isEmpty else { throw fail("truncated: the tar ends inside an extension header") }
            out.append(contentsOf: piece)
            left -= piece.count
        }
        guard try skip(TarHeader.padding(size)) else {
            throw fail("truncated: the tar ends inside an extension header")
        }
        return out
    }

    /// The next entry, or nil at the end of the archive (two zero blocks, or the end of the
    /// stream right after an entry).
    public func next() throws -> Entry? {
        guard !finished else { return nil }
        try skipRest()
        var paxPath: String?, paxLink: String?, paxSize: Int64?, gnuLong: String?, gnuLink: String?
        var paxUID: Int?, paxGID: Int?
        var xattrs: [Xattr] = []
        while true {
            let at = offset
            let h = try take(512)
            if h.isEmpty && paxPath == nil && gnuLong == nil {
                finished = true
                return nil
            }
            guard h.count == 512 else { throw fail("truncated: the tar ends inside a header at byte \(at)") }
            if h.allSatisfy({ $0 == 0 }) {
                finished = true
                return nil
            }
            guard TarHeader.checksumOK(h) else {
                throw fail(at == 0 ? "not a tar archive" : "corrupt tar header at byte \(at)")
            }
            let type = h[156]
            guard var size = TarHeader.validSize(TarHeader.number(h, 124, 12)) else {
                throw fail("corrupt tar header at byte \(at): the size field is not a size")
            }
            switch type {
            case UInt8(ascii: "x"):
                for (k, raw) in TarHeader.parsePaxRecords(try body(size)) {
                    if k.hasPrefix("SCHILY.xattr.") {
                        if xattrs.count < 128 { xattrs.append(Xattr(name: String(k.dropFirst(13)), value: raw)) }
                        continue
                    }
                    let v = String(decoding: raw, as: UTF8.self)
                    switch k {
                    case "path": paxPath = v
                    case "linkpath": paxLink = v
                    case "size":
                        guard let s = TarHeader.paxSize(v) else {
                            throw fail("pax header before byte \(offset): size \"\(v.prefix(40))\" is not a size")
                        }
                        paxSize = s
                    case "uid": paxUID = Int(v)
                    case "gid": paxGID = Int(v)
                    default: break
                    }
                }
                continue
            case UInt8(ascii: "g"):
                _ = try body(size)
                continue
            case UInt8(ascii: "L"), UInt8(ascii: "K"):
                let s = String(decoding: try body(size).prefix { $0 != 0 }, as: UTF8.self)
                if type == UInt8(ascii: "L") { gnuLong = s } else { gnuLink = s }
                continue
            default: break
            }
            if let paxSize { size = paxSize }
            let name = paxPath ?? gnuLong ?? TarHeader.name(h)
            let link = paxLink ?? gnuLink ?? TarHeader.string(h, 157, 100)
            let et: TarIndex.EntryType
            switch type {
            case 0:
                // Pre-POSIX tars mark a folder only by the slash its name ends with.
                et = name.utf8.last == 0x2F ? .directory : .file
            case UInt8(ascii: "0"), UInt8(ascii: "7"): et = .file
            case UInt8(ascii: "5"): et = .directory
            case UInt8(ascii: "2"): et = .symlink(link)
            case UInt8(ascii: "1"): et = .hardlink(link)
            default: et = .other
            }
            // Links, devices, FIFOs and folders are headers only, whatever their size field
            // says (the rule of Go's archive/tar, which the container runtimes use).
            let data = (49...54).contains(type) ? 0 : size
            dataLeft = data
            padding = TarHeader.padding(data)
            dataOffset = offset
            let mode = UInt32(truncatingIfNeeded: TarHeader.number(h, 100, 8) ?? 0) & 0o7777
            let uid = paxUID ?? TarHeader.id(h, 108), gid = paxGID ?? TarHeader.id(h, 116)
            return Entry(
                path: name, type: et, size: et == .file ? size : 0, mode: mode, uid: uid, gid: gid, xattrs: xattrs)
        }
    }

    /// Streams the current entry's data into `sink`.
    public func readData(into sink: ByteSink) throws {
        while dataLeft > 0 {
            if start == end, try !fill() {
                throw fail("truncated: the tar ends inside the entry data at byte \(offset)")
            }
            let n = Int(min(dataLeft, Int64(end - start)))
            try sink.write(UnsafeRawBufferPointer(rebasing: buffer[start..<(start + n)]))
            start += n
            offset += Int64(n)
            dataLeft -= Int64(n)
        }
    }
}

/// An extended attribute of a tar entry.
public struct Xattr: Sendable, Equatable {
    public var name: String
    public var value: [UInt8]
    public init(name: String, value: [UInt8]) {
        self.name = name
        self.value = value
    }
}

/// Fields of a 512-byte tar header, for `TarStream`.
enum TarHeader {
    static func padding(_ size: Int64) -> Int64 { (512 - size % 512) % 512 }

    /// The stored checksum matches the header's bytes (summed unsigned, or signed as some old
    /// writers did), its own field counted as spaces.
    static func checksumOK(_ h: UnsafeRawBufferPointer) -> Bool {
        guard h.count >= 512, let stored = octal(h, 148, 8) else { return false }
        var unsigned: UInt32 = 0
        for i in 0..<512 { unsigned &+= UInt32(h[i]) }
        for i in 148..<156 { unsigned = unsigned &- UInt32(h[i]) &+ 32 }
        if stored == Int64(unsigned) { return true }
        var signed: Int64 = 0
        for i in 0..<512 { signed += (148..<156).contains(i) ? 32 : Int64(Int8(bitPattern: h[i])) }
        return stored == signed
    }

    static func checksumOK(_ h: [UInt8]) -> Bool { h.withUnsafeBytes { checksumOK($0) } }

    /// An octal field, or GNU's base-256 form (high bit set); nil when malformed, negative
    /// (GNU's 0xff form) or past Int64.
    static func number<H: RandomAccessCollection>(_ h: H, _ at: Int, _ width: Int) -> Int64?
    where H.Element == UInt8, H.Index == Int {
        let base = h.startIndex
        if h[base + at] & 0x80 != 0 {
            guard h[base + at] & 0x40 == 0 else { return nil }  // a negative number
            var v: Int64 = Int64(h[base + at] & 0x3f)
            for i in 1..<width {
                guard v <= Int64.max >> 8 else { return nil }
                v = v << 8 | Int64(h[base + at + i])
            }
            return v
        }
        return octal(h, at, width)
    }

    /// The largest entry size stamp takes (2^56 bytes): sizes are added to offsets and rounded
    /// up to blocks, which a size near Int64.max would overflow.
    static let maxSize: Int64 = 1 << 56

    /// A size from a header field or a pax record, if it is one a real archive can have.
    static func validSize(_ v: Int64?) -> Int64? {
        guard let v, v >= 0, v <= maxSize else { return nil }
        return v
    }

    /// A pax `size` value: decimal digits only.
    static func paxSize(_ s: String) -> Int64? {
        guard !s.isEmpty, s.utf8.allSatisfy({ (48...57).contains($0) }) else { return nil }
        return validSize(Int64(s))
    }

    /// A uid or gid field; 0 when malformed or out of range (an owner is metadata, never a size).
    static func id<H: RandomAccessCollection>(_ h: H, _ at: Int) -> Int where H.Element == UInt8, H.Index == Int {
        guard let v = number(h, at, 8), v >= 0, v <= Int64(UInt32.max) else { return 0 }
        return Int(v)
    }

    static func octal<H: RandomAccessCollection>(_ h: H, _ at: Int, _ width: Int) -> Int64?
    where H.Element == UInt8, H.Index == Int {
        var v: Int64 = 0
        var any = false
        let base = h.startIndex
        for i in at..<at + width {
            let c = h[base + i]
            if c == 0 || c == UInt8(ascii: " ") { if any { break } else { continue } }
            guard (48...55).contains(c) else { return nil }
            v = v * 8 + Int64(c - 48)
            any = true
        }
        return v
    }

    /// A NUL-terminated field.
    static func string<H: RandomAccessCollection>(_ h: H, _ at: Int, _ width: Int) -> String
    where H.Element == UInt8, H.Index == Int {
        let base = h.startIndex
        var n = 0
        while n < width && h[base + at + n] != 0 { n += 1 }
        return String(decoding: h[(base + at)..<(base + at + n)], as: UTF8.self)
    }

    /// The entry name, with the ustar prefix field when there is one.
    static func name<H: RandomAccessCollection>(_ h: H) -> String where H.Element == UInt8, H.Index == Int {
        let name = string(h, 0, 100)
        let base = h.startIndex
        let isUstar = h[(base + 257)..<(base + 262)].elementsEqual("ustar".utf8)
        let prefix = isUstar ? string(h, 345, 155) : ""
        return prefix.isEmpty ? name : prefix + "/" + name
    }

    /// `LEN KEY=VALUE\n` records of a pax extended header, values as bytes (an xattr value need
    /// not be text).
    static func parsePaxRecords(_ body: [UInt8]) -> [(String, [UInt8])] {
        var out: [(String, [UInt8])] = []
        var i = 0
        while i < body.count {
            guard let sp = body[i...].firstIndex(of: UInt8(ascii: " ")),
                let len = Int(String(decoding: body[i..<sp], as: UTF8.self)), len > 0, i + len <= body.count
            else { break }
            let record = body[(sp + 1)..<(i + len - 1)]
            if let eq = record.firstIndex(of: UInt8(ascii: "=")) {
                out.append(
                    (String(decoding: record[record.startIndex..<eq], as: UTF8.self), Array(record[(eq + 1)...])))
            }
            i += len
        }
        return out
    }
}
