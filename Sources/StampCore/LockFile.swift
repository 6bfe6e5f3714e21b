import Foundation
import IO
import Layers
import OCI

/// `--lock FILE`: the base a build used (reference, top digest, per-platform manifests) and
/// what it produced. `--locked` refuses a base whose reference now resolves elsewhere.
public struct LockFile: Equatable, Sendable {
    public struct Image: Equatable, Sendable {
        public var reference: String
        public var digest: String
        public var platforms: [(String, String)]
        /// The version stamped into it (the output only; `stamp canary render` reads it).
        public var version: String?
        /// What the app needs from whoever runs it (the output only).
        public var app: AppFacts?

        public static func == (a: Image, b: Image) -> Bool {
            a.reference == b.reference && a.digest == b.digest && a.platforms.elementsEqual(b.platforms, by: ==)
                && a.version == b.version && a.app == b.app
        }

        var json: JSONValue {
            var j: JSONValue = .object([
                ("reference", .string(reference)), ("digest", .string(digest)),
                ("platforms", .object(platforms.map { ($0.0, JSONValue.string($0.1)) })),
            ])
            if let version { j["version"] = .string(version) }
            if let app { j["app"] = app.json }
            return j
        }

        init(
            reference: String, digest: String, platforms: [(String, String)], version: String? = nil,
            app: AppFacts? = nil
        ) {
            self.reference = reference
            self.digest = digest
            self.platforms = platforms
            self.version = version
            self.app = app
        }

        init(json j: JSONValue, file: String, key: String) throws {
            guard let r = j["reference"]?.stringValue, let d = j["digest"]?.stringValue, Digest.isValid(d) else {
                throw StampError.usage("\(file): \"\(key)\" needs a reference and a valid digest")
            }
            reference = r
            digest = d
            platforms = (j["platforms"]?.objectValue ?? []).compactMap { k, v in v.stringValue.map { (k, $0) } }
            version = j["version"]?.stringValue
            app = j["app"].flatMap(AppFacts.init(json:))
        }
    }

    public var base: Image
    public var output: Image?

    public var json: JSONValue {
        var j: JSONValue = .object([("lockVersion", JSONValue(Int64(1))), ("base", base.json)])
        if let output { j["output"] = output.json }
        return j
    }

    public static func read(_ path: String) throws -> LockFile {
        guard Path.exists(path) else {
            throw StampError.usage(
                "--locked: \(path) does not exist (write it first with --lock \(path) and no --locked)")
        }
        let j: JSONValue
        do { j = try JSONValue.parse(try ReadableFile(path).readAll(limit: 1 << 20)) } catch {
            throw StampError.usage("\(path): not a stamp lock file (\(error))")
        }
        guard j["lockVersion"]?.int64Value == 1, let b = j["base"] else {
            throw StampError.usage("\(path): not a stamp lock file (lockVersion 1 with a base)")
        }
        return LockFile(
            base: try Image(json: b, file: path, key: "base"),
            output: try j["output"].map { try Image(json: $0, file: path, key: "output") })
    }

    /// Written beside its final name and renamed, so a failed build leaves the old lock intact.
    public func write(_ path: String) throws {
        let f: WritableFile
        do { f = try WritableFile.temporary(beside: path) } catch {
            throw StampError.output("--lock \(path): \(error)")
        }
        try f.write(JSONValue.encodePretty(json))
        try f.commit(to: path)
    }
}
