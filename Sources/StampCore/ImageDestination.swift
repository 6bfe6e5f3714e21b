import Foundation
import IO
import Layers
import OCI
import Registry

/// Where an image is written: one conformance per transport (an archive file, a layout folder,
/// a registry). A build holds one and calls it in stages: `preflight` before any work,
/// `reserve` (the base's layers, whose sizes and order are known first, get their places now
/// so the scan can write them as it reads them; only an archive offers this), then `write`.
/// Nothing is left under the target name if `write` throws (in a registry: the tag is written
/// last, after every blob and manifest is there).
/// The one-read seam: places a destination reserved for the base's blobs before the build.
/// The scan that reads a blob may take its place and write the blob into it on the way (read
/// once, hashed once); what nobody took is copied by the destination itself. Only an archive
/// offers places (its layout is fixed before anything is built).
public protocol BlobSlots: AnyObject, Sendable {
    /// The place of blob `digest` if it has one nobody took yet: write exactly the blob's bytes
    /// into it, then `finish` it (whatever happens).
    func claim(_ digest: String) -> BlobSlot?
    /// Starts filling the places nobody took, in the background.
    func copyUnclaimed()
}

/// One reserved place, taken by one writer.
public protocol BlobSlot: ByteSink {
    /// Ends the claim; an error, or fewer bytes than the blob's size, fails the destination.
    func finish(_ error: Error?)
}

public protocol ImageDestination: Sendable {
    var reference: ImageReference { get }
    /// Checks that the output can be written before any work is done; `source` is the image
    /// read, which an output must never replace.
    func preflight(source: ImageReference?) throws
    /// Places for `blobs` reserved now, filled while the rest is built; nil when the
    /// destination has no use for them.
    func reserve(_ blobs: [(digest: String, size: Int64, location: BlobLocation)], created: Timestamp, sync: Bool)
        throws -> BlobSlots?
    /// Writes `image` (the reserved blobs already in place); what a push did, nil for local.
    func write(
        _ image: OutputImage, created: Timestamp, reserved: BlobSlots?, sync: Bool, diagnostics: Diagnostics
    ) throws -> PushSummary?
}

extension ImageDestination {
    public func reserve(
        _ blobs: [(digest: String, size: Int64, location: BlobLocation)], created: Timestamp, sync: Bool
    )
        throws -> BlobSlots?
    { nil }
}

extension ImageReference {
    /// The destination this reference names. `registry`: the client for a registry output;
    /// `mountFrom`: a repository of the same registry its blobs may be mounted from.
    public func destination(registry: RegistryClient? = nil, mountFrom: RegistryReference? = nil) -> ImageDestination {
        switch self {
        case .ociArchive(let p, _), .path(let p, _): return ArchiveDestination(reference: self, path: p, docker: false)
        case .dockerArchive(let p, _): return ArchiveDestination(reference: self, path: p, docker: true)
        case .ociLayout(let p, _): return LayoutDestination(reference: self, path: p)
        case .registry(let r):
            return RegistryDestination(
                reference: self, target: r, client: registry ?? RegistryClient.fromEnvironment(), mountFrom: mountFrom)
        }
    }
}

/// An oci-archive, or a `docker save` archive (`docker`).
struct ArchiveDestination: ImageDestination {
    let reference: ImageReference
    let path: String
    let docker: Bool

    /// An archive replaces only a regular file (never a FIFO, a device or a symlink's target),
    /// and never the file it reads, however the two paths are spelled.
    func preflight(source: ImageReference?) throws {
        let path = LocalOutput.trimmed(self.path)
        if Path.isDirectory(path) {
            throw StampError.output("\(path): is a directory; an archive output must be a file path")
        }
        var st = stat()
        if lstat(path, &st) == 0, (st.st_mode & S_IFMT) != S_IFREG {
            throw StampError.output(
                "\(path): exists and is not a regular file (\(Path.kind(st.st_mode))); stamp replaces only a regular "
                    + "file or writes a new path"
            )
        }
        if let source, source.registry == nil, Path.sameFile(path, source.path) {
            throw StampError.usage(
                "\(path): is the file the image is read from (\(source)); write the output elsewhere")
        }
        try LocalOutput.checkParent(path)
    }

    func reserve(_ blobs: [(digest: String, size: Int64, location: BlobLocation)], created: Timestamp, sync: Bool)
        throws -> BlobSlots?
    {
        try ArchiveInProgress(path: path, created: created, first: blobs, sync: sync)
    }

    /// An archive is put on disk before its rename only with `sync` (`--fsync`): it is one new
    /// file that the same inputs make again byte for byte.
    func write(
        _ image: OutputImage, created: Timestamp, reserved: BlobSlots?, sync: Bool, diagnostics: Diagnostics
    ) throws -> PushSummary? {
        let started = reserved as? ArchiveInProgress
        let rest = image.blobs.filter { !(started?.first.contains($0.key) ?? false) }
        let step = diagnostics.step("writing \(reference)")
        let progress = diagnostics.progress("writing \(path)", total: rest.values.sizeSum(\.size))
        defer { progress.finish() }
        try ImageWriter.writeArchive(
            image, path: path, created: created, progress: progress, started: started, sync: sync, docker: docker,
            blobDone: { diagnostics.blob("wrote", digest: $0, size: $1, seconds: $2) })
        step.done()
        return nil
    }
}

/// An OCI layout folder, which other images may share: merged under a lock, synced blob by blob
/// before its `index.json` names them.
struct LayoutDestination: ImageDestination {
    let reference: ImageReference
    let path: String

    func preflight(source: ImageReference?) throws {
        let path = LocalOutput.trimmed(self.path)
        if Path.exists(path) && !Path.isDirectory(path) {
            throw StampError.output("\(path): exists and is not a folder (oci: writes a layout folder)")
        }
        if Path.exists(path + "/index.json") { _ = try ImageWriter.existingIndex(path) }
        try LocalOutput.checkParent(path)
    }

    func write(
        _ image: OutputImage, created: Timestamp, reserved: BlobSlots?, sync: Bool, diagnostics: Diagnostics
    ) throws -> PushSummary? {
        let step = diagnostics.step("writing \(reference)")
        let progress = diagnostics.progress("writing \(path)", total: image.blobs.values.sizeSum(\.size))
        defer { progress.finish() }
        try ImageWriter.writeLayout(
            image, path: path, progress: progress,
            blobDone: { diagnostics.blob($3 ? "wrote" : "kept", digest: $0, size: $1, seconds: $2) })
        step.done()
        return nil
    }
}

/// A repository of a registry: blobs pushed (or mounted, or found there), the tag last.
struct RegistryDestination: ImageDestination {
    let reference: ImageReference
    let target: RegistryReference
    let client: RegistryClient
    let mountFrom: RegistryReference?

    func preflight(source: ImageReference?) throws {}

    func write(
        _ image: OutputImage, created: Timestamp, reserved: BlobSlots?, sync: Bool, diagnostics: Diagnostics
    ) throws -> PushSummary? {
        let step = diagnostics.step("pushing to \(target)")
        let summary = try RegistryImages.push(
            image, to: target, client: client, mountFrom: mountFrom, diagnostics: diagnostics)
        step.done(
            summary.unchanged
                ? "the tag already names \(summary.digest)"
                : "\(summary.uploaded) blobs uploaded (\(ProgressLine.size(summary.uploadedBytes))), "
                    + "\(summary.mounted) mounted, \(summary.existed) already there"
        )
        return summary
    }
}

/// What the two local destinations check alike.
enum LocalOutput {
    static func trimmed(_ path: String) -> String {
        path.hasSuffix("/") && path.count > 1 ? String(path.dropLast()) : path
    }

    static func checkParent(_ path: String) throws {
        let parent = Path.dirname(path)
        guard Path.isDirectory(parent) else { throw StampError.output("\(path): folder \(parent) does not exist") }
        guard access(parent, W_OK) == 0 else { throw StampError.output("\(path): folder \(parent) is not writable") }
    }
}
