import IO
import OCI

/// An index of an uncompressed tar file (an oci-archive or a `docker save` file): every entry's
/// name, type and where its data starts, so blobs are read in place, never extracted to disk.
///
/// Reads ustar, pax (`x`, `g`) and GNU (`L`, `K`, base-256 sizes) headers. Rejects names that
/// escape the root and data that runs past the end of the file.
///
/// `entries` and `names` are filled by `init`'s scan and never changed after: shared read-only,
/// which is why the unchecked conformance is safe.
public final class TarIndex: @unchecked Sendable {
    public enum EntryType: Equatable, Sendable { case file, directory, symlink(String), hardlink(String), other }

    public struct Entry: Sendable {
        public let name: String
        public let type: EntryType
        public let offset: Int64
        public let size: Int64
    }

    public let file: ReadableFile
    public private(set) var entries: [String: Entry] = [:]
    public private(set) var names: [String] = []

    public init(file: ReadableFile) throws {
        self.file = file
        try scan()
    }

    public convenience init(path: String) throws {
        try self.init(file: ReadableFile(path))
    }

    private func fail(_ m: String) -> IOError { .read(file.path, m) }

    private func scan() throws {
        var offset: Int64 = 0
        var paxPath: String?
        var paxLink: String?
        var paxSize: Int64?
        var gnuLong: String?
        var gnuLink: String?
        var sawEnd = false
        guard file.size >= 512 else {
            throw file.size == 0
                ? fail("empty file, not a tar archive") : fail("not a tar archive (shorter than one header)")
        }
        while offset + 512 <= file.size {
            let h = try file.read(at: offset, count: 512)
            if h.allSatisfy({ $0 == 0 }) {
                sawEnd = true
                break
            }
            guard TarHeader.checksumOK(h) else {
                if offset == 0 { throw fail("not a tar archive") }
                throw fail("corrupt tar header at byte \(offset)")
            }
            let type = h[156]
            guard var size = TarHeader.validSize(TarHeader.number(h, 124, 12)) else {
                throw fail("corrupt tar header at byte \(offset): the size field is not a size")
            }
            let data = offset + 512
            if let s = paxSize { size = s }
            let next = data + (size + 511) / 512 * 512
            guard data + size <= file.size else {
                throw IOError.truncated(file.path, expected: data + size, found: file.size)
            }
            switch type {
            case UInt8(ascii: "x"):
                let body = try file.read(at: data, count: Int(size))
                for (k, v) in TarHeader.parsePax(body) {
                    switch k {
                    case "path": paxPath = v
                    case "linkpath": paxLink = v
                    case "size":
                        guard let s = TarHeader.paxSize(v) else {
                            throw fail("pax header at byte \(offset): size \"\(v.prefix(40))\" is not a size")
                        }
                        paxSize = s
                    default: break
                    }
                }
                offset = next
                continue
            case UInt8(ascii: "g"):
                offset = next
                continue
            case UInt8(ascii: "L"), UInt8(ascii: "K"):
                let body = try file.read(at: data, count: Int(size))
                let s = String(decoding: body.prefix { $0 != 0 }, as: UTF8.self)
                if type == UInt8(ascii: "L") { gnuLong = s } else { gnuLink = s }
                offset = next
                continue
            default: break
            }
            var name = paxPath ?? gnuLong ?? TarHeader.name(h)
            let link = paxLink ?? gnuLink ?? TarHeader.string(h, 157, 100)
            paxPath = nil
            paxLink = nil
            paxSize = nil
            gnuLong = nil
            gnuLink = nil

            guard Path.isSafeEntryName(name) else { throw fail("entry \"\(name)\" escapes the archive root") }
            name = Path.clean(name) ?? ""
            let et: EntryType
            switch type {
            case UInt8(ascii: "0"), 0, UInt8(ascii: "7"): et = .file
            case UInt8(ascii: "5"): et = .directory
            case UInt8(ascii: "2"): et = .symlink(link)
            case UInt8(ascii: "1"):
                guard Path.isSafeEntryName(link) else { throw fail("hard link \"\(name)\" points outside the archive") }
                et = .hardlink(Path.clean(link) ?? "")
            default: et = .other
            }
            if !name.isEmpty {
                if entries[name] == nil { names.append(name) }
                entries[name] = Entry(name: name, type: et, offset: data, size: (et == .file) ? size : 0)
            }
            offset = next
        }
        // Ending inside the last entry's padding, or inside a header, is a cut; ending exactly
        // after an entry without the two zero blocks is tolerated (some writers omit them).
        if !sawEnd && offset != file.size {
            throw IOError.truncated(file.path, expected: offset < file.size ? offset + 512 : offset, found: file.size)
        }
    }

    /// The regular file `name` resolves to, following symlinks and hard links inside the archive.
    public func resolve(_ name: String) throws -> Entry {
        guard var current = Path.clean(name) else { throw fail("\"\(name)\" escapes the archive root") }
        for _ in 0..<40 {
            guard let e = entries[current] else { throw fail("no entry \"\(current)\" in the archive") }
            switch e.type {
            case .file: return e
            case .hardlink(let target): current = target
            case .symlink(let target):
                let joined = target.hasPrefix("/") ? target : Path.dirname(current) + "/" + target
                guard let c = Path.clean(joined.hasPrefix("./") ? String(joined.dropFirst(2)) : joined) else {
                    throw fail("symlink \"\(current)\" points outside the archive")
                }
                current = c
            default: throw fail("\"\(current)\" is not a regular file")
            }
        }
        throw fail("too many links resolving \"\(name)\"")
    }

    public func contains(_ name: String) -> Bool { entries[Path.clean(name) ?? ""] != nil }

    /// The bytes of a small file entry.
    public func read(_ name: String, limit: Int64 = 64 << 20) throws -> [UInt8] {
        let e = try resolve(name)
        guard e.size <= limit else { throw fail("\"\(name)\" is larger than \(limit) bytes") }
        return try file.read(at: e.offset, count: Int(e.size))
    }

    public func section(_ name: String) throws -> FileSection {
        let e = try resolve(name)
        return file.section(offset: e.offset, length: e.size)
    }
}
