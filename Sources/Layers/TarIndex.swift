import IO
import OCI

/// An index of an uncompressed tar file (an oci-archive or a `docker save` file): every entry's
/// name, type and where its data starts, so blobs are read in place, never extracted to disk.
///
/// Headers are read by `TarStream` (ustar, pax, GNU; Go's archive/tar's rules), which seeks past
/// the data. Rejects names that escape the root and data that runs past the end of the file.
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

    /// Reads every header with `TarStream` (the one set of header rules), seeking past data.
    private func scan() throws {
        guard file.size >= 512 else {
            throw file.size == 0
                ? fail("empty file, not a tar archive") : fail("not a tar archive (shorter than one header)")
        }
        let path = file.path
        let stream = TarStream(
            file.section(offset: 0, length: file.size), label: path, bufferSize: 16 << 10,
            error: { IOError.read(path, $0) })
        while let e = try stream.next() {
            guard Path.isSafeEntryName(e.path) else { throw fail("entry \"\(e.path)\" escapes the archive root") }
            let name = Path.clean(e.path) ?? ""
            var type = e.type
            if case .hardlink(let link) = e.type {
                guard Path.isSafeEntryName(link) else { throw fail("hard link \"\(name)\" points outside the archive") }
                type = .hardlink(Path.clean(link) ?? "")
            }
            if !name.isEmpty {
                if entries[name] == nil { names.append(name) }
                entries[name] = Entry(name: name, type: type, offset: stream.dataOffset, size: e.size)
            }
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
