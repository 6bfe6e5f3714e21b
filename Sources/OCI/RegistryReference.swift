/// `docker://HOST[:PORT]/REPO[:TAG|@DIGEST]`, normalised the way Docker names images:
/// a first component without `.` or `:` (and not `localhost`) is a Docker Hub path, and a
/// single-component Docker Hub name is an official image under `library/`.
public struct RegistryReference: Hashable, Sendable, CustomStringConvertible {
    /// The registry as users name it (`docker.io`, `registry.corp.local:5000`).
    public var host: String
    public var repository: String
    public var tag: String?
    public var digest: String?

    public static let dockerHub = "docker.io"

    public init(host: String, repository: String, tag: String? = nil, digest: String? = nil) {
        self.host = host
        self.repository = repository
        self.tag = tag
        self.digest = digest
    }

    /// Where the API is served: Docker Hub's API host differs from its name.
    public var apiHost: String { host == Self.dockerHub ? "registry-1.docker.io" : host }

    /// The tag or digest a manifest request names; `latest` when neither was given.
    public var reference: String { digest ?? tag ?? "latest" }

    /// `HOST/REPO`, the name credentials and cross-repository mounts are about.
    public var name: String { "\(host)/\(repository)" }

    public var description: String {
        var s = "docker://\(host)/\(repository)"
        if let tag { s += ":" + tag }
        if let digest { s += "@" + digest }
        return s
    }

    /// The same repository at another tag or digest.
    public func with(tag: String? = nil, digest: String? = nil) -> RegistryReference {
        RegistryReference(host: host, repository: repository, tag: tag, digest: digest)
    }

    /// Parses what follows `docker://` (also accepted with the prefix).
    public static func parse(_ text: String) throws -> RegistryReference {
        var s = Substring(text)
        if s.hasPrefix("docker://") { s = s.dropFirst(9) }
        let shown = "docker://" + s
        guard !s.isEmpty else { throw OCIError.invalidReference("\(shown): missing image name") }
        // `user:password@host/…`: an `@` before the first `/` is no digest but credentials, which
        // are never quoted back (they would be in every log that shows the reference).
        if let at = s.firstIndex(of: "@"), let slash = s.firstIndex(of: "/"), at < slash {
            throw OCIError.invalidReference(
                "docker://***\(s[at...]): credentials do not go in an image reference (logs would show them); "
                    + "give them with --creds or in an auth file (--authfile, $REGISTRY_AUTH_FILE, docker login)")
        }
        var digest: String?
        if let at = s.firstIndex(of: "@") {
            let d = String(s[s.index(after: at)...])
            guard Digest.isValid(d) else {
                throw OCIError.invalidReference("\(shown): \"\(d)\" is not a valid digest (sha256:<64 hex>)")
            }
            digest = d
            s = s[..<at]
        }
        var tag: String?
        if let colon = s.lastIndex(of: ":"), !s[colon...].contains("/") {
            let t = String(s[s.index(after: colon)...])
            guard isTag(t) else { throw OCIError.invalidReference("\(shown): \"\(t)\" is not a valid tag") }
            tag = t
            s = s[..<colon]
        }
        var parts = s.split(separator: "/", omittingEmptySubsequences: false).map(String.init)
        var host = dockerHub
        if parts.count > 1, parts[0].contains(".") || parts[0].contains(":") || parts[0] == "localhost" {
            host = parts.removeFirst()
        }
        if host == "index.docker.io" || host == "registry-1.docker.io" { host = dockerHub }
        guard !host.isEmpty, host.utf8.allSatisfy({ b in isAlnum(b) || ".-:[]".utf8.contains(b) }) else {
            throw OCIError.invalidReference("\(shown): \"\(host)\" is not a valid registry host")
        }
        if host == dockerHub && parts.count == 1 { parts.insert("library", at: 0) }
        for p in parts where !isComponent(p) {
            throw OCIError.invalidReference(
                "\(shown): \"\(p)\" is not a valid repository name component (lowercase letters, digits, and . _ - "
                    + "between them)"
            )
        }
        let repository = parts.joined(separator: "/")
        guard repository.count <= 255 else {
            throw OCIError.invalidReference("\(shown): repository name longer than 255 characters")
        }
        return RegistryReference(host: host, repository: repository, tag: tag, digest: digest)
    }

    private static func isAlnum(_ b: UInt8) -> Bool {
        (48...57).contains(b) || (97...122).contains(b) || (65...90).contains(b)
    }

    /// `[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*`
    static func isComponent(_ s: String) -> Bool {
        let u = Array(s.utf8)
        guard let f = u.first, let l = u.last else { return false }
        let lowerAlnum: (UInt8) -> Bool = { (48...57).contains($0) || (97...122).contains($0) }
        guard lowerAlnum(f), lowerAlnum(l) else { return false }
        var i = 0
        while i < u.count {
            if lowerAlnum(u[i]) {
                i += 1
                continue
            }
            var j = i
            while j < u.count, !lowerAlnum(u[j]) { j += 1 }
            let sep = String(decoding: u[i..<j], as: UTF8.self)
            guard sep == "." || sep == "_" || sep == "__" || sep.allSatisfy({ $0 == "-" }) else { return false }
            i = j
        }
        return true
    }

    /// `[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}`
    static func isTag(_ s: String) -> Bool {
        let u = Array(s.utf8)
        guard let f = u.first, u.count <= 128, isAlnum(f) || f == UInt8(ascii: "_") else { return false }
        return u.allSatisfy { isAlnum($0) || "_.-".utf8.contains($0) }
    }
}
