import Dispatch
import Foundation
#if canImport(Glibc)
    import Glibc
#endif
import Hashing
import IO
import Layers
import OCI
import Registry
import Synchronization

/// An image ready to be written: the descriptor `index.json` points at, and every blob it
/// reaches, each either in the source (copied as it is, digest-checked on the way) or new.
public struct OutputImage: Sendable {
    public var top: Descriptor
    public var blobs: [String: (size: Int64, location: BlobLocation)]
    /// For Docker's `manifest.json`: config and layer digests of every platform image, in order.
    public var dockerImages: [(platform: String, config: String, layers: [String])]
    /// Docker's `RepoTags` (`NAME:TAG`), one per `--tag`.
    public var repoTags: [String] = []
    /// More `ref.name`s for the top descriptor than the one it carries (`--tag` given again):
    /// each gets an `index.json` entry of its own.
    public var moreRefNames: [String] = []
    /// Other descriptors `index.json` lists after the top one (the sample's layout form that
    /// lists its platform manifests directly, with no index blob).
    public var moreTops: [Descriptor] = []
    /// More tags a registry output is pushed to, beyond its own.
    public var morePushTags: [String] = []
    /// Blobs this run wrote itself, their digests taken as they were written: copied without
    /// hashing them a second time.
    public var ownBlobs: Set<String> = []
}

/// The writers the destinations (`ImageDestination`) share: archives, layouts, their documents.
public enum ImageWriter {
    /// A layout's `index.json`, which must parse: it names the layout's other images.
    static func existingIndex(_ path: String) throws -> JSONValue {
        let old: JSONValue
        do { old = try JSONValue.parse(try ReadableFile(path + "/index.json").readAll(limit: 64 << 20)) } catch {
            throw StampError.badInput(
                "\(path)/index.json: cannot be read (\(error)); it names the layout's images, so stamp will not "
                    + "replace it"
            )
        }
        guard old["manifests"]?.arrayValue != nil else {
            throw StampError.badInput(
                "\(path)/index.json: has no manifests list; it names the layout's images, so stamp will not replace it")
        }
        return old
    }

    static func ociLayoutBytes() -> [UInt8] { JSONValue.encode(.object([("imageLayoutVersion", .string("1.0.0"))])) }

    static func layoutIndex(_ image: OutputImage) -> JSONValue {
        .object([
            ("schemaVersion", JSONValue(2)), ("mediaType", .string(MediaType.ociIndex)),
            ("manifests", .array(topEntries(image).map(\.json))),
        ])
    }

    static func layoutIndex(_ top: Descriptor) -> JSONValue {
        .object([
            ("schemaVersion", JSONValue(2)), ("mediaType", .string(MediaType.ociIndex)),
            ("manifests", .array([top.json])),
        ])
    }

    /// The top descriptor once per name (`--tag` repeated), or once unnamed.
    static func topEntries(_ image: OutputImage) -> [Descriptor] {
        [image.top] + image.moreTops
            + image.moreRefNames.map { name in
                var d = image.top
                var a = d.annotations
                a[AnnotationKey.refName] = name
                d.annotations = a
                return d
            }
    }

    /// Docker's `manifest.json` names one image: `docker load` before Docker 25 and skopeo's
    /// docker-archive reader take one per tag. With several platforms it is linux/amd64 (else
    /// the first); daemons that read `index.json` still see them all.
    static func dockerManifest(_ image: OutputImage) -> [UInt8] {
        guard let d = image.dockerImages.first(where: { $0.platform == "linux/amd64" }) ?? image.dockerImages.first
        else {
            return JSONValue.encode(.array([]))
        }
        let e: JSONValue = .object([
            ("Config", .string("blobs/sha256/\(Digest.hex(d.config))")),
            ("RepoTags", .array(image.repoTags.map { .string($0) })),
            ("Layers", .array(d.layers.map { .string("blobs/sha256/\(Digest.hex($0))") })),
        ])
        return JSONValue.encode(.array([e]))
    }

    /// One tar in a fixed order: `blobs/`; the blobs `started` holds (a build's base layers,
    /// written as the scan read them or copied while the new layer was built), sorted by digest;
    /// the other blobs sorted by digest; then `index.json`, `manifest.json`, `oci-layout`.
    /// `docker`: a `docker save` archive only (configs, layers and `manifest.json`, no OCI
    /// layout), so that podman and skopeo read it as Docker's and keep its format.
    static func writeArchive(
        _ image: OutputImage, path: String, created: Timestamp, progress: ProgressLine = .off,
        started: ArchiveInProgress? = nil, sync: Bool = false, docker: Bool = false,
        blobDone: ((String, Int64, Double?) -> Void)? = nil
    ) throws {
        let archive = try started ?? ArchiveInProgress(path: path, created: created, first: [], sync: sync)
        try archive.wait()
        // The base's layers went in while the base was read (no time of their own).
        for digest in archive.first.sorted() { blobDone?(digest, image.blobs[digest]?.size ?? 0, nil) }
        let tar = archive.state.tar
        let wanted = docker ? Set(image.dockerImages.flatMap { [$0.config] + $0.layers }) : nil
        for digest in image.blobs.keys.sorted()
        where !archive.first.contains(digest) && wanted?.contains(digest) != false {
            let (size, loc) = image.blobs[digest]!
            let start = Diagnostics.now()
            try tar.begin(.init(path: "blobs/sha256/\(Digest.hex(digest))", kind: .file, mode: 0o644, size: size))
            try copyChecked(
                digest: digest, size: size, from: loc, to: TarDataSink(tar), progress: progress,
                hash: !image.ownBlobs.contains(digest))
            blobDone?(digest, size, Diagnostics.now() - start)
        }
        if !docker { try tar.addFile("index.json", JSONValue.encode(layoutIndex(image))) }
        if !image.dockerImages.isEmpty { try tar.addFile("manifest.json", dockerManifest(image)) }
        if !docker { try tar.addFile("oci-layout", ociLayoutBytes()) }
        try tar.finish()
        try archive.state.out.commit(to: path, sync: archive.sync)
    }

    /// Copies a blob, hashing on the way; throws (and so discards the output) on any mismatch.
    /// `hash: false` only for blobs this run wrote and hashed itself.
    static func copyChecked(
        digest: String, size: Int64, from loc: BlobLocation, to sink: ByteSink, progress: ProgressLine = .off,
        hash: Bool = true, cancelled: (() -> Bool)? = nil
    ) throws {
        guard loc.length == size else {
            throw StampError.sizeMismatch(what: "blob \(digest)", expected: size, found: loc.length)
        }
        let hashing = DigestingSink(sink)
        var source: ByteSource = ObservedSource(try loc.open(), progress)
        if let cancelled { source = CancellableSource(source, cancelled) }
        let n = try copyStream(from: source, to: hash ? hashing : sink)
        guard n == size else { throw StampError.sizeMismatch(what: "blob \(digest)", expected: size, found: n) }
        guard hash else { return }
        let found = hashing.digester.finalizeDigest()
        guard found == digest else {
            throw StampError.digestMismatch(what: "blob \(digest)", expected: digest, found: found)
        }
    }

    /// An OCI layout folder: new blobs written under temp names and renamed, `index.json` last.
    /// An existing layout keeps its other images (tagged or not); one with the same `ref.name`
    /// is replaced. Other writers are kept out for the read-merge-write of `index.json` by an
    /// exclusive lock on `index.json.lock` (flock, as containers/image does for layouts); a
    /// blob already there is used only when its bytes are what its name says; an `index.json`
    /// that does not parse is an error, never replaced (it names other images).
    static func writeLayout(
        _ image: OutputImage, path: String, progress: ProgressLine = .off,
        blobDone: ((String, Int64, Double, Bool) -> Void)? = nil
    ) throws {
        if Path.exists(path) && !Path.isDirectory(path) {
            throw StampError.output("\(path): exists and is not a folder")
        }
        let blobsDir = path + "/blobs/sha256"
        do { try FileManager.default.createDirectory(atPath: blobsDir, withIntermediateDirectories: true) } catch {
            throw StampError.output("\(path): cannot create the layout folder: \(error.localizedDescription)")
        }
        let lockFD = open(path + "/index.json.lock", O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
        guard lockFD >= 0 else {
            throw StampError.output("\(path)/index.json.lock: \(String(cString: strerror(errno)))")
        }
        defer { close(lockFD) }
        while flock(lockFD, LOCK_EX) != 0 {
            guard errno == EINTR else {
                throw StampError.output("\(path)/index.json.lock: \(String(cString: strerror(errno)))")
            }
        }
        let old = Path.exists(path + "/index.json") ? try existingIndex(path) : nil
        for digest in image.blobs.keys.sorted() {
            let (size, loc) = image.blobs[digest]!
            let target = blobsDir + "/" + Digest.hex(digest)
            let start = Diagnostics.now()
            if let existing = try? ReadableFile(target), existing.size == size,
                (try? copyChecked(
                    digest: digest, size: size, from: .file(existing, offset: 0, length: size), to: NullSink())) != nil
            {
                blobDone?(digest, size, Diagnostics.now() - start, false)
                continue
            }
            let tmp = try WritableFile.temporary(beside: target)
            try copyChecked(digest: digest, size: size, from: loc, to: tmp, progress: progress)
            try tmp.commit(to: target)
            blobDone?(digest, size, Diagnostics.now() - start, true)
        }
        if !Path.exists(path + "/oci-layout") {
            let f = try WritableFile.temporary(beside: path + "/oci-layout")
            try f.write(ociLayoutBytes())
            try f.commit(to: path + "/oci-layout")
        }
        var index = layoutIndex(image)
        if let old {
            let names = Set(topEntries(image).compactMap { $0.annotations[AnnotationKey.refName] })
            let kept = (old["manifests"]?.arrayValue ?? []).filter { j in
                let d = Descriptor(json: j)
                let dn = d.annotations[AnnotationKey.refName]
                // A tag moves to the new image; an untagged image replaces only its own entry.
                if !names.isEmpty { return dn.map { !names.contains($0) } ?? true }
                return !(dn == nil && d.digest == image.top.digest)
            }
            index = old
            index["manifests"] = .array(kept + topEntries(image).map(\.json))
        }
        let f = try WritableFile.temporary(beside: path + "/index.json")
        try f.write(JSONValue.encode(index))
        try f.commit(to: path + "/index.json")
    }
}

/// An oci-archive or docker-archive being written: its first blobs (the base's layers, whose
/// sizes and order are known before anything is built) each get their place in the file up
/// front, so they can be written in any order and by anyone: a build's scan writes the layers
/// it reads as it reads them (`claim`: one read of each blob, hashed once), and
/// `copyUnclaimed` copies, and checks, the rest on a thread of its own while the new layer is
/// built; `ImageWriter.writeArchive` then appends the other blobs. Dropped before that, it
/// stops the copy and removes the temp file.
/// One owner at a time (the build hands it from the scan to the writer; `waited`, `copying` are
/// the owner's), the shared parts in `State` and `Places`: the unchecked conformance is safe.
public final class ArchiveInProgress: BlobSlots, @unchecked Sendable {
    /// Shared by the scan's threads and the copying thread. `out` is written only with
    /// positional writes (`PositionalSink`, pwrite) to places no two writers share, and `tar`
    /// appends only after every claimed blob is written (`Places.group`); the rest is under a
    /// `Mutex`: that is why the unchecked conformance is safe.
    final class State: @unchecked Sendable {
        let out: WritableFile
        let tar: TarWriter
        private struct Shared {
            var firstError: Error?
            var stop = false
            var claimed: Set<String> = []
        }
        private let shared = Mutex(Shared())
        init(out: WritableFile, tar: TarWriter) {
            self.out = out
            self.tar = tar
        }
        var stopped: Bool {
            get { shared.withLock { $0.stop } }
            set { shared.withLock { $0.stop = newValue } }
        }
        var error: Error? {
            get { shared.withLock { $0.firstError } }
            set { shared.withLock { if $0.firstError == nil { $0.firstError = newValue } } }
        }
        /// True for the first caller only.
        func claim(_ digest: String) -> Bool { shared.withLock { $0.claimed.insert(digest).inserted } }
    }

    struct Slot {
        let digest: String
        let size: Int64
        let location: BlobLocation
        /// Where its tar header starts.
        let offset: Int64
    }

    /// The first blobs' places and who has taken them; shared with the copying thread (which
    /// must not keep the archive itself alive: dropping it is what stops the copy).
    /// Immutable but for `state` (see there) and the group: the unchecked conformance is safe.
    final class Places: @unchecked Sendable {
        let state: State
        let slots: [Slot]
        let index: [String: Int]
        let mtime: Int64
        let group = DispatchGroup()
        init(state: State, slots: [Slot], mtime: Int64) {
            self.state = state
            self.slots = slots
            self.mtime = mtime
            index = Dictionary(uniqueKeysWithValues: slots.enumerated().map { ($1.digest, $0) })
        }

        func claim(_ digest: String) -> ClaimedBlob? {
            guard let i = index[digest], state.claim(digest) else { return nil }
            group.enter()
            let slot = slots[i]
            let tar = TarWriter(sink: PositionalSink(state.out, at: slot.offset), mtime: mtime)
            return ClaimedBlob(tar: tar, entry: ArchiveInProgress.entry(digest, slot.size)) { [state, group] error in
                if let error { state.error = error }
                group.leave()
            }
        }
    }

    var state: State { places.state }
    let first: Set<String>
    /// Put on disk before the rename (`--fsync`).
    let sync: Bool
    private let places: Places
    private var waited = false
    private var copying = false

    /// Starts `path`'s temp file, with a place for each of `blobs` (digest, size, where),
    /// sorted by digest. Blobs still in a registry are fetched when copied (once, however many
    /// threads ask).
    init(
        path: String, created: Timestamp, first blobs: [(digest: String, size: Int64, location: BlobLocation)],
        sync: Bool = false
    ) throws {
        self.sync = sync
        if Path.isDirectory(path) {
            throw StampError.output("\(path): is a directory; an archive output must be a file path")
        }
        let dir = Path.dirname(path)
        guard Path.isDirectory(dir) else { throw StampError.output("\(path): folder \(dir) does not exist") }
        let out: WritableFile
        do { out = try WritableFile.temporary(beside: path) } catch {
            throw StampError.output("\(path): cannot write here: \(error)")
        }
        let mtime = created.epoch
        let tar = TarWriter(sink: out, mtime: mtime)
        try tar.begin(.init(path: "blobs", kind: .directory, mode: 0o755))
        try tar.begin(.init(path: "blobs/sha256", kind: .directory, mode: 0o755))
        try out.flush()
        var seen = Set<String>()
        let unique = blobs.filter { seen.insert($0.digest).inserted }.sorted { $0.digest < $1.digest }
        var at = out.written
        var slots: [Slot] = []
        for b in unique {
            slots.append(Slot(digest: b.digest, size: b.size, location: b.location, offset: at))
            let header = MemorySink()
            try TarWriter(sink: header, mtime: mtime).begin(ArchiveInProgress.entry(b.digest, b.size))
            at += Int64(header.bytes.count) + (b.size + 511) / 512 * 512
        }
        // What comes after the first blobs is written front to back from here.
        try out.seek(to: at)
        places = Places(state: State(out: out, tar: tar), slots: slots, mtime: mtime)
        first = Set(unique.map(\.digest))
    }

    static func entry(_ digest: String, _ size: Int64) -> TarWriter.Entry {
        .init(path: "blobs/sha256/\(Digest.hex(digest))", kind: .file, mode: 0o644, size: size)
    }

    /// The place of first blob `digest`, if nobody has taken it yet: write exactly its bytes
    /// there, then `finish` it (whatever happens). Nil for other blobs, or when taken.
    public func claim(_ digest: String) -> BlobSlot? { places.claim(digest) }

    /// Copies, and checks, every first blob nobody has claimed, on a thread of its own (once;
    /// `wait` starts it if nobody did).
    public func copyUnclaimed() {
        guard !copying else { return }
        copying = true
        let places = self.places, sync = self.sync
        DispatchQueue.global().async(group: places.group) {
            for slot in places.slots {
                guard !places.state.stopped, let c = places.claim(slot.digest) else { continue }
                do {
                    try ImageWriter.copyChecked(
                        digest: slot.digest, size: slot.size, from: slot.location, to: c,
                        cancelled: { places.state.stopped })
                    c.finish(nil)
                } catch {
                    c.finish(error)
                    break
                }
            }
            // With --fsync, put these bytes on disk now, while the new layer is still being
            // built: the fsync before the rename then has only the rest to wait for.
            if sync { _ = fdatasync(places.state.out.fd) }
        }
    }

    /// Waits for the first blobs; throws what went wrong writing them.
    func wait() throws {
        copyUnclaimed()
        if !waited {
            places.group.wait()
            waited = true
        }
        if let e = state.error { throw e }
    }

    deinit {
        state.stopped = true
        places.group.wait()
        // The copy's closure may let go of the file a moment later than this; the temp name is
        // removed now (after a commit it no longer exists).
        unlink(state.out.path)
    }
}

/// A first blob's place in an archive being written, taken by one writer (`ArchiveInProgress.claim`).
final class ClaimedBlob: BlobSlot {
    private let tar: TarWriter
    private let entry: TarWriter.Entry
    private var begun = false
    private var done: ((Error?) -> Void)?

    init(tar: TarWriter, entry: TarWriter.Entry, done: @escaping (Error?) -> Void) {
        self.tar = tar
        self.entry = entry
        self.done = done
    }

    func write(_ buffer: UnsafeRawBufferPointer) throws {
        if !begun {
            try tar.begin(entry)
            begun = true
        }
        try tar.writeData(buffer)
    }

    /// Ends the claim; an error, or data short of the blob's size, fails the archive.
    func finish(_ error: Error?) {
        guard let done else { return }
        self.done = nil
        if error == nil, !begun {
            do {
                try tar.begin(entry)
                begun = true
            } catch {
                done(error)
                return
            }
        }
        if error == nil, !tar.entryComplete {
            done(StampError.output("blob \(entry.path): fewer bytes than its \(entry.size)"))
            return
        }
        done(error)
    }

    deinit { finish(StampError.output("blob \(entry.path): not written")) }
}

/// Stops a copy when `cancelled` says so (the build it serves has failed).
final class CancellableSource: ByteSource {
    let inner: ByteSource
    let cancelled: () -> Bool
    init(_ inner: ByteSource, _ cancelled: @escaping () -> Bool) {
        self.inner = inner
        self.cancelled = cancelled
    }
    func read(into buffer: UnsafeMutableRawBufferPointer) throws -> Int {
        if cancelled() { throw StampError.output("cancelled") }
        return try inner.read(into: buffer)
    }
}
