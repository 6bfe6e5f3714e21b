import Hashing
import IO
import Layers
import OCI

/// Where a blob's bytes are: a byte range of a file (a layout's blob file, an entry of a tar) or
/// memory (documents stamp made, or synthesised from a `docker save` manifest).
/// or a remote blob fetched on first use (a registry layer: pushing it to the same registry
/// may never need its bytes).
public enum BlobLocation: Sendable {
    case file(ReadableFile, offset: Int64, length: Int64)
    case memory([UInt8])
    case lazy(length: Int64, fetch: @Sendable () throws -> BlobLocation)

    public var length: Int64 {
        switch self {
        case .file(_, _, let l): return l
        case .memory(let b): return Int64(b.count)
        case .lazy(let l, _): return l
        }
    }

    /// The bytes at hand: a lazy blob is fetched (and checked) here.
    public func resolved() throws -> BlobLocation {
        if case .lazy(_, let fetch) = self { return try fetch().resolved() }
        return self
    }

    public func open() throws -> ByteSource {
        switch try resolved() {
        case let .file(f, o, l): return f.section(offset: o, length: l)
        case .memory(let b): return MemorySource(b)
        case .lazy: fatalError("resolved() returned a lazy location")
        }
    }

    /// `length` bytes from `offset` (a chunk of an upload).
    public func open(offset: Int64, length: Int64) throws -> ByteSource {
        switch try resolved() {
        case let .file(f, o, _): return f.section(offset: o + offset, length: length)
        case .memory(let b): return MemorySource(Array(b[Int(offset)..<Int(offset + length)]))
        case .lazy: fatalError("resolved() returned a lazy location")
        }
    }

    /// Where the blob is when it is still remote: it can be mounted rather than copied.
    public var remote: Bool { if case .lazy = self { return true } else { return false } }
}

/// Content-addressed blobs of one image source.
public protocol BlobStore: AnyObject, Sendable {
    /// A human name of the store, for messages ("oci-archive:base.tar").
    var name: String { get }
    /// Where the blob is, or nil when the source does not have it.
    func locate(_ digest: String) throws -> BlobLocation?
    /// The same, knowing what the blob is (a registry serves manifests and blobs apart).
    func locate(_ descriptor: Descriptor) throws -> BlobLocation?
}

extension BlobStore {
    public func locate(_ descriptor: Descriptor) throws -> BlobLocation? { try locate(descriptor.digest) }

    public func require(_ digest: String) throws -> BlobLocation {
        guard Digest.isValid(digest) else { throw StampError.badInput("\(name): invalid digest \"\(digest)\"") }
        guard let loc = try locate(digest) else { throw StampError.missingBlob(digest, in: name) }
        return loc
    }

    public func require(_ d: Descriptor) throws -> BlobLocation {
        guard Digest.isValid(d.digest) else { throw StampError.badInput("\(name): invalid digest \"\(d.digest)\"") }
        guard let loc = try locate(d) else { throw StampError.missingBlob(d.digest, in: name) }
        return loc
    }

    /// A small document (manifest, index, config), checked against its descriptor's digest and size.
    public func document(_ d: Descriptor, limit: Int64 = 16 << 20) throws -> [UInt8] {
        let loc = try require(d)
        let what = "\(name): blob \(d.digest)"
        guard loc.length == d.size else {
            throw StampError.sizeMismatch(what: what, expected: d.size, found: loc.length)
        }
        guard loc.length <= limit else {
            throw StampError.badInput("\(what): a \(d.mediaType) of \(loc.length) bytes is too large")
        }
        let bytes: [UInt8]
        switch try loc.resolved() {
        case .memory(let b): bytes = b
        case let .file(f, o, l): bytes = try f.read(at: o, count: Int(l))
        case .lazy: fatalError("resolved() returned a lazy location")
        }
        let found = Digester.digest(bytes)
        guard found == d.digest else { throw StampError.digestMismatch(what: what, expected: d.digest, found: found) }
        return bytes
    }

    public func json(_ d: Descriptor) throws -> JSONValue {
        let bytes = try document(d)
        do { return try JSONValue.parse(bytes) } catch {
            throw StampError.badInput("\(name): blob \(d.digest) (\(d.mediaType)): \(error)")
        }
    }
}

/// `blobs/sha256/<hex>` under a directory.
final class DirectoryBlobStore: BlobStore {
    let root: String
    let name: String
    init(root: String, name: String) {
        self.root = root
        self.name = name
    }
    func locate(_ digest: String) throws -> BlobLocation? {
        let p = "\(root)/blobs/sha256/\(Digest.hex(digest))"
        guard Path.exists(p) else { return nil }
        let f = try ReadableFile(p)
        return .file(f, offset: 0, length: f.size)
    }
}

/// Blobs inside a tar file, read in place; plus documents held in memory. `paths` and `memory`
/// are filled while the archive is opened, before the store is shared, and only read after:
/// the unchecked conformance is safe.
final class TarBlobStore: BlobStore, @unchecked Sendable {
    let index: TarIndex
    let name: String
    /// digest → path inside the tar, for `docker save` files whose blobs are not content-named.
    var paths: [String: String] = [:]
    var memory: [String: [UInt8]] = [:]

    init(index: TarIndex, name: String) {
        self.index = index
        self.name = name
    }

    func locate(_ digest: String) throws -> BlobLocation? {
        if let m = memory[digest] { return .memory(m) }
        let p = paths[digest] ?? "blobs/sha256/\(Digest.hex(digest))"
        guard index.contains(p) else { return nil }
        let e = try index.resolve(p)
        return .file(index.file, offset: e.offset, length: e.size)
    }
}
