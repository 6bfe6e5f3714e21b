import IO
import OCI

/// Writes a tar stream whose bytes depend only on the entries given: ustar headers, a pax extended
/// header only when a name is too long or not ASCII or a size does not fit, no user or group names,
/// no device numbers, one mtime for every entry.
///
/// stamp writes its own tar rather than asking libarchive to: every header byte is then fixed by
/// this file, not by a library version, which is what reproducible output needs. libarchive is
/// used for what it is best at: compression and reading any tar that exists.
public final class TarWriter {
    public enum Kind: Sendable { case file, directory, symlink(String) }

    public struct Entry: Sendable {
        public var path: String
        public var kind: Kind
        public var mode: UInt32
        public var size: Int64
        public var uid: Int
        public var gid: Int
        /// Written as pax `SCHILY.xattr.NAME` records, in this order.
        public var xattrs: [Xattr]
        public init(
            path: String, kind: Kind, mode: UInt32, size: Int64 = 0, uid: Int = 0, gid: Int = 0, xattrs: [Xattr] = []
        ) {
            self.path = path
            self.kind = kind
            self.mode = mode
            self.size = size
            self.uid = uid
            self.gid = gid
            self.xattrs = xattrs
        }
    }

    private let sink: ByteSink
    private let mtime: Int64
    private var pending: Int64 = 0

    public init(sink: ByteSink, mtime: Int64) {
        self.sink = sink
        self.mtime = max(0, mtime)
    }

    /// Writes a header; follow with exactly `entry.size` bytes of `writeData` for files.
    public func begin(_ entry: Entry) throws {
        guard pending == 0 else { throw IOError.write("tar", "previous entry is incomplete") }
        // Readers stop a name at NUL: such a name would land as another file.
        if entry.path.utf8.contains(0) {
            throw IOError.write("tar", "entry name \(String(reflecting: entry.path)) holds a NUL byte")
        }
        if case .symlink(let t) = entry.kind, t.utf8.contains(0) {
            throw IOError.write("tar", "link target of \(entry.path) holds a NUL byte")
        }
        var name = entry.path
        if case .directory = entry.kind, !name.hasSuffix("/") { name += "/" }
        var linkName = ""
        var typeflag: UInt8 = UInt8(ascii: "0")
        var size = entry.size
        switch entry.kind {
        case .file: break
        case .directory:
            typeflag = UInt8(ascii: "5")
            size = 0
        case .symlink(let target):
            typeflag = UInt8(ascii: "2")
            linkName = target
            size = 0
        }

        var pax: [(String, [UInt8])] = []
        let nameBytes = Array(name.utf8)
        if nameBytes.count > 100 || !nameBytes.allSatisfy({ $0 < 0x80 }) { pax.append(("path", nameBytes)) }
        let linkBytes = Array(linkName.utf8)
        if linkBytes.count > 100 || !linkBytes.allSatisfy({ $0 < 0x80 }) { pax.append(("linkpath", linkBytes)) }
        if size > 0o77777777777 { pax.append(("size", Array(String(size).utf8))) }
        for x in entry.xattrs { pax.append(("SCHILY.xattr." + x.name, x.value)) }

        if !pax.isEmpty {
            var body: [UInt8] = []
            for (k, v) in pax {
                let rest = 1 + k.utf8.count + 1 + v.count + 1  // " k=v\n"
                var len = rest + 1
                while String(len).utf8.count + rest != len { len = String(len).utf8.count + rest }
                body += Array("\(len) \(k)=".utf8) + v + [0x0A]
            }
            let paxName =
                "PaxHeaders/"
                + String(decoding: Array(Path.basename(entry.path).utf8.filter { $0 < 0x80 }.prefix(80)), as: UTF8.self)
            try sink.write(
                header(
                    name: Array(paxName.utf8), mode: 0o644, uid: 0, gid: 0, size: Int64(body.count),
                    typeflag: UInt8(ascii: "x"), link: []))
            try sink.write(body)
            try pad(Int64(body.count))
        }
        try sink.write(
            header(
                name: Array(nameBytes.prefix(100)), mode: entry.mode, uid: entry.uid, gid: entry.gid,
                size: size > 0o77777777777 ? 0 : size, typeflag: typeflag, link: Array(linkBytes.prefix(100))))
        pending = size
        currentSize = size
    }

    private var currentSize: Int64 = 0

    /// Whether the current entry has all its data.
    public var entryComplete: Bool { pending == 0 }

    public func writeData(_ buf: UnsafeRawBufferPointer) throws {
        guard Int64(buf.count) <= pending else {
            throw IOError.write("tar", "entry data longer than its declared size")
        }
        try sink.write(buf)
        pending -= Int64(buf.count)
        if pending == 0 { try pad(currentSize) }
    }

    public func writeData(_ bytes: [UInt8]) throws { try bytes.withUnsafeBytes { try writeData($0) } }

    /// A whole file in one call.
    public func addFile(_ path: String, _ bytes: [UInt8], mode: UInt32 = 0o644, uid: Int = 0, gid: Int = 0) throws {
        try begin(Entry(path: path, kind: .file, mode: mode, size: Int64(bytes.count), uid: uid, gid: gid))
        if !bytes.isEmpty { try writeData(bytes) }
    }

    private func pad(_ size: Int64) throws {
        let r = Int(size % 512)
        if r != 0 { try sink.write([UInt8](repeating: 0, count: 512 - r)) }
    }

    /// Two zero blocks end the archive.
    public func finish() throws {
        guard pending == 0 else { throw IOError.write("tar", "last entry is incomplete") }
        try sink.write([UInt8](repeating: 0, count: 1024))
    }

    private func header(name: [UInt8], mode: UInt32, uid: Int, gid: Int, size: Int64, typeflag: UInt8, link: [UInt8])
        -> [UInt8]
    {
        var h = [UInt8](repeating: 0, count: 512)
        func put(_ bytes: [UInt8], _ at: Int, _ width: Int) {
            for (i, b) in bytes.prefix(width).enumerated() { h[at + i] = b }
        }
        func octal(_ v: Int64, _ at: Int, _ width: Int) {
            var s = String(v, radix: 8)
            while s.count < width - 1 { s = "0" + s }
            put(Array(s.utf8), at, width - 1)
        }
        put(name, 0, 100)
        octal(Int64(mode & 0o7777), 100, 8)
        octal(Int64(uid), 108, 8)
        octal(Int64(gid), 116, 8)
        octal(size, 124, 12)
        octal(mtime, 136, 12)
        put(Array(repeating: UInt8(ascii: " "), count: 8), 148, 8)
        h[156] = typeflag
        put(link, 157, 100)
        put(Array("ustar\0".utf8), 257, 6)
        put(Array("00".utf8), 263, 2)
        octal(0, 329, 8)  // devmajor
        octal(0, 337, 8)  // devminor
        let sum = h.reduce(0) { $0 + Int64($1) }
        var s = String(sum, radix: 8)
        while s.count < 6 { s = "0" + s }
        put(Array(s.utf8) + [0, UInt8(ascii: " ")], 148, 8)
        return h
    }
}
