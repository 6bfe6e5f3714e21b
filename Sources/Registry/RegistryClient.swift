import Foundation
#if canImport(Glibc)
    import Glibc
#endif
import Failures
import Hashing
import IO
import NIOCore
import NIOHTTP1
import NIOSSL
import OCI
import Synchronization
import AsyncHTTPClient

/// A registry operation that failed, with its kind (`RegistryClient` retries `network` ones).
public struct RegistryError: KindedError {
    public let kind: ErrorKind
    public let message: String
    public var description: String { message }

    /// A flag or file the user gave is wrong.
    public static func usage(_ m: String) -> RegistryError { .init(kind: .usage, message: m) }
    /// The registry answered no (an HTTP error, a broken protocol step).
    public static func failed(_ m: String) -> RegistryError { .init(kind: .refused, message: m) }
    /// The manifest, tag or blob does not exist there.
    public static func notFound(_ m: String) -> RegistryError { .init(kind: .notFound, message: m) }
    /// No credentials, refused credentials, or no access.
    public static func denied(_ m: String) -> RegistryError { .init(kind: .denied, message: m) }
    /// The network or the registry failed, for good or after the retries.
    public static func network(_ m: String) -> RegistryError { .init(kind: .network, message: m) }
    /// Bytes that do not match their digest.
    public static func corrupt(_ m: String) -> RegistryError { .init(kind: .corrupt, message: m) }
}

public struct RegistryOptions: Sendable {
    /// Verify TLS certificates and refuse plain HTTP (`--tls-verify=false` turns both off).
    public var tlsVerify = true
    /// A folder of `*.crt` CA certificates (and `*.cert`/`*.key` client pairs), as containers' certs.d.
    public var certDir: String?
    public var credentials: CredentialLookup
    /// Blobs larger than this are uploaded in chunks of this size.
    public var chunkSize: Int64 = 16 << 20
    /// Blob transfers at once.
    public var parallel = 4
    /// Retries after 429, 5xx and dropped connections.
    public var retries = 5
    /// First backoff delay in seconds; doubled each retry, capped at 10 s.
    public var backoff = 0.25
    /// Where retry notices go (stderr in the CLI).
    public var notice: @Sendable (String) -> Void = { _ in }

    /// Where `HTTP_PROXY`, `HTTPS_PROXY` and `NO_PROXY` are read (the process's, by default).
    public var environment: [String: String]

    public init(credentials: CredentialLookup, environment: [String: String] = ProcessInfo.processInfo.environment) {
        self.credentials = credentials
        self.environment = environment
    }
}

/// How a blob reached the target repository.
public enum PushOutcome: Sendable { case existed, mounted, uploaded }

/// A manifest or index as the registry serves it.
public struct FetchedManifest: Sendable {
    public var bytes: [UInt8]
    public var mediaType: String
    public var digest: String
}

/// The OCI Distribution API over HTTP(S): manifests and blobs, with the registry's auth flow
/// (anonymous, Basic, Bearer tokens), retries with backoff, and redirects.
public final class RegistryClient: Sendable {
    public let options: RegistryOptions
    /// Which proxy each URL takes, from the environment the options were made with.
    let proxies: ProxySettings
    private let hosts = Mutex<[String: Host]>([:])
    private let credentials = Mutex<[String: Credential?]>([:])

    public init(options: RegistryOptions) {
        self.options = options
        proxies = ProxySettings(environment: options.environment)
    }

    public static let manifestAccept = [
        MediaType.ociIndex, MediaType.ociManifest, MediaType.dockerManifestList, MediaType.dockerManifest,
    ]

    // MARK: API

    /// GET a manifest or index by tag or digest; a digest reference is checked against the bytes.
    public func manifest(_ ref: RegistryReference, reference: String? = nil) throws -> FetchedManifest {
        let r = reference ?? ref.reference
        let what = "\(ref.with(tag: Digest.isValid(r) ? nil : r, digest: Digest.isValid(r) ? r : nil))"
        var h = HTTPHeaders()
        h.add(name: "Accept", value: Self.manifestAccept.joined(separator: ", "))
        let res = try perform(
            ref, .GET, "/v2/\(ref.repository)/manifests/\(r)", headers: h, scopes: [pull(ref)], what: what)
        try check(res, ok: [200], what: what, ref: ref)
        let digest = Digester.digest(res.body)
        if Digest.isValid(r), r != digest {
            throw RegistryError.corrupt("\(what): the registry sent a manifest whose digest is \(digest)")
        }
        if let d = res.header("Docker-Content-Digest"), d.hasPrefix("sha256:"), d != digest {
            throw RegistryError.corrupt("\(what): manifest bytes hash to \(digest) but the registry says \(d)")
        }
        let type =
            res.header("Content-Type").map { String($0.split(separator: ";")[0]).trimmingCharacters(in: .whitespaces) }
            ?? ""
        let declared = (try? JSONValue.parse(res.body))?["mediaType"]?.stringValue
        let mediaType = declared ?? (type.isEmpty ? MediaType.ociManifest : type)
        return FetchedManifest(bytes: res.body, mediaType: mediaType, digest: digest)
    }

    /// The digest a tag points at now (HEAD), or nil when the tag does not exist.
    public func manifestDigest(_ ref: RegistryReference, reference: String? = nil) throws -> String? {
        let r = reference ?? ref.reference
        var h = HTTPHeaders()
        h.add(name: "Accept", value: Self.manifestAccept.joined(separator: ", "))
        let res = try perform(
            ref, .HEAD, "/v2/\(ref.repository)/manifests/\(r)", headers: h, scopes: [pull(ref)], what: "\(ref)")
        if res.status == 404 { return nil }
        try check(res, ok: [200], what: "\(ref)", ref: ref)
        if let d = res.header("Docker-Content-Digest"), Digest.isValid(d) { return d }
        return try manifest(ref, reference: r).digest
    }

    /// Streams a blob into `file`, checking its size and digest; restarts on a dropped connection.
    public func fetchBlob(_ ref: RegistryReference, digest: String, size: Int64?, into file: WritableFile) throws {
        let what = "\(ref.with(tag: nil, digest: nil)) blob \(digest)"
        let sink = CheckedDownload(file: file, limit: size)
        let res = try perform(
            ref, .GET, "/v2/\(ref.repository)/blobs/\(digest)", sink: sink, scopes: [pull(ref)], what: what)
        try check(res, ok: [200], what: what, ref: ref)
        try file.flush()
        if let size, sink.count != size {
            throw RegistryError.corrupt("\(what): size mismatch: expected \(size) bytes, received \(sink.count)")
        }
        let found = sink.digester.finalizeDigest()
        guard found == digest else {
            throw RegistryError.corrupt("\(what): digest mismatch: the bytes received hash to \(found)")
        }
    }

    public func blobExists(_ ref: RegistryReference, digest: String) throws -> Bool {
        let what = "\(ref.with(tag: nil, digest: nil)) blob \(digest)"
        let res = try perform(ref, .HEAD, "/v2/\(ref.repository)/blobs/\(digest)", scopes: [push(ref)], what: what)
        if res.status == 404 { return false }
        try check(res, ok: [200], what: what, ref: ref)
        return true
    }

    /// Uploads a blob unless the repository has it: HEAD, then a cross-repository mount when
    /// `mountFrom` is another repository of the same registry, then a monolithic PUT (small
    /// blobs) or PATCH chunks and a closing PUT. `open(offset, length)` gives the bytes.
    public func pushBlob(
        _ ref: RegistryReference, digest: String, size: Int64, mountFrom: RegistryReference?,
        open: @escaping (Int64, Int64) throws -> ByteSource
    ) throws -> PushOutcome {
        if try blobExists(ref, digest: digest) { return .existed }
        let what = "\(ref.with(tag: nil, digest: nil)) blob \(digest)"
        var scopes = [push(ref)]
        var path = "/v2/\(ref.repository)/blobs/uploads/"
        if let from = mountFrom, from.host == ref.host, from.repository != ref.repository {
            path += "?mount=\(queryEscape(digest))&from=\(queryEscape(from.repository))"
            scopes.append(pull(from))
        }
        let start = try perform(ref, .POST, path, headers: ["Content-Length": "0"], scopes: scopes, what: what)
        if start.status == 201 { return .mounted }
        try check(start, ok: [202], what: what, ref: ref)
        var location = try uploadLocation(start, what: what, ref: ref)
        if size > options.chunkSize {
            var offset: Int64 = 0
            while offset < size {
                let n = min(options.chunkSize, size - offset)
                let o = offset
                var h = HTTPHeaders()
                h.add(name: "Content-Type", value: "application/octet-stream")
                h.add(name: "Content-Range", value: "\(o)-\(o + n - 1)")
                let res = try perform(
                    ref, .PATCH, location, headers: h, body: .stream(length: n, open: { try open(o, n) }),
                    scopes: [push(ref)], what: what)
                try check(res, ok: [202, 204], what: what, ref: ref)
                location = try uploadLocation(res, what: what, ref: ref)
                offset += n
            }
            var h = HTTPHeaders()
            h.add(name: "Content-Length", value: "0")
            let done = try perform(
                ref, .PUT, appendQuery(location, "digest=" + queryEscape(digest)), headers: h, scopes: [push(ref)],
                what: what)
            try check(done, ok: [201, 204], what: what, ref: ref)
        } else {
            var h = HTTPHeaders()
            h.add(name: "Content-Type", value: "application/octet-stream")
            let done = try perform(
                ref, .PUT, appendQuery(location, "digest=" + queryEscape(digest)), headers: h,
                body: .stream(length: size, open: { try open(0, size) }), scopes: [push(ref)], what: what)
            try check(done, ok: [201, 204], what: what, ref: ref)
        }
        return .uploaded
    }

    /// PUT a manifest or index under a tag or its digest.
    public func putManifest(_ ref: RegistryReference, reference: String, bytes: [UInt8], mediaType: String) throws {
        let what =
            "\(ref.with(tag: Digest.isValid(reference) ? nil : reference, digest: Digest.isValid(reference) ? reference : nil))"
        var h = HTTPHeaders()
        h.add(name: "Content-Type", value: mediaType)
        let res = try perform(
            ref, .PUT, "/v2/\(ref.repository)/manifests/\(reference)", headers: h, body: .bytes(bytes),
            scopes: [push(ref)], what: what)
        try check(res, ok: [201, 200, 204], what: what, ref: ref)
        let digest = Digester.digest(bytes)
        if let d = res.header("Docker-Content-Digest"), d.hasPrefix("sha256:"), d != digest {
            throw RegistryError.corrupt("\(what): the registry stored the manifest as \(d), not \(digest)")
        }
    }

    // MARK: Requests

    private func pull(_ r: RegistryReference) -> String { "repository:\(r.repository):pull" }
    private func push(_ r: RegistryReference) -> String { "repository:\(r.repository):pull,push" }

    private func uploadLocation(_ res: HTTPResult, what: String, ref: RegistryReference) throws -> String {
        guard let l = res.header("Location"), !l.isEmpty else {
            throw RegistryError.failed("\(what): the registry gave no upload Location")
        }
        return l
    }

    private func appendQuery(_ url: String, _ q: String) -> String { url + (url.contains("?") ? "&" : "?") + q }

    /// Turns a non-success status into one clear line, with the registry's own error code.
    private func check(_ res: HTTPResult, ok: Set<Int>, what: String, ref: RegistryReference) throws {
        guard !ok.contains(res.status) else { return }
        var detail = ""
        if let j = try? JSONValue.parse(res.body), let first = j["errors"]?.arrayValue?.first {
            let code = first["code"]?.stringValue ?? ""
            let message = first["message"]?.stringValue ?? ""
            detail = [code, message].filter { !$0.isEmpty }.joined(separator: ": ")
        }
        let suffix = detail.isEmpty ? "" : " (\(detail))"
        switch res.status {
        case 401:
            let had = (try? credential(for: ref)) ?? nil
            throw RegistryError.denied(
                had == nil
                    ? "\(what): authentication required (pass --creds USER:PASSWORD, or log in so that a docker "
                        + "config or --authfile has \(ref.host))"
                    : "\(what): the registry refused the credentials of \(had!.username)\(suffix)")
        case 403: throw RegistryError.denied("\(what): access denied\(suffix)")
        case 404: throw RegistryError.notFound("\(what): not found\(suffix)")
        default: throw RegistryError.failed("\(what): HTTP \(res.status)\(suffix)")
        }
    }

    /// One request with auth, retries and redirects. `pathOrURL` is a path under the registry
    /// or an absolute URL (upload locations).
    func perform(
        _ ref: RegistryReference, _ method: HTTPMethod, _ pathOrURL: String, headers: HTTPHeaders = HTTPHeaders(),
        body: RequestBody = .none, sink: CheckedDownload? = nil, scopes: [String], what: String
    ) throws -> HTTPResult {
        let host = try self.host(for: ref)
        var url =
            pathOrURL.hasPrefix("http://") || pathOrURL.hasPrefix("https://")
            ? pathOrURL
            : host.base + (pathOrURL.hasPrefix("/") ? pathOrURL : "/" + pathOrURL)
        var attempt = 0
        var authRetried = false
        var redirects = 0
        var sameOrigin = true
        while true {
            var h = headers
            h.replaceOrAdd(name: "User-Agent", value: "stamp")
            if sameOrigin, let a = try authorization(host, ref: ref, scopes: scopes) {
                h.replaceOrAdd(name: "Authorization", value: a)
            }
            let res: HTTPResult
            do {
                try sink?.reset()
                res = try BlockingHTTP.shared.send(
                    method: method, url: url, headers: h, body: body, tls: host.tls, proxies: proxies, sink: sink,
                    seconds: Self.deadline(for: sink?.limit ?? body.length))
            } catch let e as BodyTooLarge {
                throw RegistryError.failed(
                    "\(what): the registry sent more than \(e.limit >> 20) MiB, the most stamp reads of a manifest or "
                        + "index"
                )
            } catch let e as Deadline {
                throw RegistryError.network(
                    "\(what): no complete answer within \(e.seconds) s (the registry is too slow, or stalls)")
            } catch {
                if let tls = tlsProblem(error) {
                    if tls == "WRONG_VERSION_NUMBER" {
                        throw RegistryError.network(
                            "\(what): \(ref.host) does not speak TLS (for a plain-HTTP registry pass "
                                + "--tls-verify=false)"
                        )
                    }
                    throw RegistryError.network(
                        "\(what): TLS with \(ref.host) failed: \(tls) (trust its CA with --cert-dir DIR, or pass "
                            + "--tls-verify=false)"
                    )
                }
                // Only what may pass is retried: an error of stamp's own says what it is (a
                // digest mismatch of a download, a file that cannot be read); the HTTP stack's
                // (a reset connection, a refused connect) are the network's.
                if !ErrorKind.of(error, unknown: .network).isTransient { throw error }
                // A name that does not exist will not exist in a few seconds either (a temporary
                // resolver failure, EAI_AGAIN, is retried).
                let text = "\(error)"
                // Nothing listens there: a wrong port or host, or a registry that is down; six
                // attempts would only make a CI job wait a minute to say so.
                if describe(error) == "connection refused" {
                    throw RegistryError.network(
                        "\(what): connection refused by \(ref.host) (nothing listens there: is the registry running, "
                            + "and the port right?)")
                }
                if text.contains("Name or service not known") || text.contains("No address associated with hostname") {
                    throw RegistryError.network(
                        "\(what): cannot resolve the host name \(ref.host) (it does not exist, or is mistyped)")
                }
                guard attempt < options.retries else {
                    throw RegistryError.network("\(what): \(describe(error)) (gave up after \(attempt + 1) attempts)")
                }
                attempt += 1
                let delay = backoff(attempt)
                options.notice(
                    "\(what): \(describe(error)); retrying in \(format(delay)) (\(attempt)/\(options.retries))")
                Thread.sleep(forTimeInterval: delay)
                continue
            }
            switch res.status {
            case 401 where !authRetried && sameOrigin:
                authRetried = true
                if let c = res.header("WWW-Authenticate").flatMap(Challenge.parse) {
                    host.learn(c)
                    host.forget(scopes)
                    if try authorization(host, ref: ref, scopes: scopes) != nil { continue }
                }
            case 429, 500, 502, 503, 504:
                guard attempt < options.retries else { break }
                attempt += 1
                let delay = retryAfter(res) ?? backoff(attempt)
                options.notice(
                    "\(what): HTTP \(res.status); retrying in \(format(delay)) (\(attempt)/\(options.retries))")
                Thread.sleep(forTimeInterval: delay)
                continue
            case 301, 302, 303, 307, 308:
                if method == .GET || method == .HEAD, redirects < 5, let location = res.header("Location") {
                    redirects += 1
                    url = resolve(location, against: url)
                    sameOrigin = origin(url) == origin(host.base)
                    continue
                }
            default:
                break
            }
            return res
        }
    }

    /// Whether `host[:port]` is a name the resolver says does not exist (EAI_NONAME, EAI_NODATA;
    /// a temporary failure is not an answer).
    static func doesNotResolve(_ hostPort: String) -> Bool {
        var host = hostPort
        if host.hasPrefix("[") { return false }  // an IPv6 literal
        if let colon = host.lastIndex(of: ":") { host = String(host[..<colon]) }
        var hints = addrinfo()
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        var result: UnsafeMutablePointer<addrinfo>?
        let rc = getaddrinfo(host, nil, &hints, &result)
        if let result { freeaddrinfo(result) }
        return rc == EAI_NONAME || rc == -5  // EAI_NODATA
    }

    /// A request's deadline: two minutes (`$STAMP_REGISTRY_DEADLINE` seconds), plus a second for
    /// every 256 KiB it moves (a blob arriving slower than that is stalled, not large).
    static func deadline(for bytes: Int64?) -> Int64 {
        baseDeadline + max(0, bytes ?? 0) / (256 << 10)
    }

    static let baseDeadline: Int64 = {
        if let s = ProcessInfo.processInfo.environment["STAMP_REGISTRY_DEADLINE"], let n = Int64(s), n > 0 { return n }
        return 120
    }()

    private func backoff(_ attempt: Int) -> Double { min(10, options.backoff * pow(2, Double(attempt - 1))) }
    private func format(_ s: Double) -> String { s < 1 ? "\(Int(s * 1000)) ms" : "\(Int(s.rounded())) s" }

    /// `Retry-After` in seconds (an HTTP date is taken as "soon"), capped at a minute.
    private func retryAfter(_ res: HTTPResult) -> Double? {
        guard let v = res.header("Retry-After") else { return nil }
        if let n = Double(v.trimmingCharacters(in: .whitespaces)) { return min(60, max(0, n)) }
        return 1
    }

    private func describe(_ error: Error) -> String {
        if let e = error as? HTTPClientError {
            switch e {
            case .remoteConnectionClosed: return "the connection was closed by the server"
            case .readTimeout: return "read timed out"
            case .connectTimeout: return "connect timed out"
            default: return "\(e)"
            }
        }
        let text = "\(error)"
        if text.contains("connectionRefused") || text.contains("Connection refused") { return "connection refused" }
        if text.contains("reset by peer") || text.contains("ECONNRESET") { return "connection reset" }
        return text
    }

    /// A TLS failure in a few words ("CERTIFICATE_VERIFY_FAILED"), nil for other errors.
    private func tlsProblem(_ error: Error) -> String? {
        guard error is NIOSSLError || error is BoringSSLError || error is NIOSSLExtraError else { return nil }
        let text = "\(error)"
        if let r = text.range(of: "OPENSSL_internal:") {
            let rest = text[r.upperBound...]
            return String(rest.prefix { $0 != " " && $0 != "]" && $0 != ")" })
        }
        return text
    }

    private func resolve(_ location: String, against url: String) -> String {
        if location.hasPrefix("http://") || location.hasPrefix("https://") { return location }
        return origin(url) + (location.hasPrefix("/") ? location : "/" + location)
    }

    /// `scheme://host[:port]` of a URL.
    private func origin(_ url: String) -> String {
        guard let schemeEnd = url.range(of: "://") else { return url }
        let rest = url[schemeEnd.upperBound...]
        let end = rest.firstIndex(of: "/") ?? rest.endIndex
        return String(url[..<end])
    }

    // MARK: Hosts and auth

    final class Host: Sendable {
        let base: String
        let tls: TLSConfiguration?
        private let challenge = Mutex<Challenge?>(nil)
        private let tokens = Mutex<[String: String]>([:])

        init(base: String, tls: TLSConfiguration?) {
            self.base = base
            self.tls = tls
        }

        func learn(_ c: Challenge) { challenge.withLock { $0 = c } }
        func forget(_ scopes: [String]) {
            _ = tokens.withLock { $0.removeValue(forKey: scopes.joined(separator: " ")) }
        }
        var currentChallenge: Challenge? { challenge.withLock { $0 } }
        func token(_ key: String) -> String? { tokens.withLock { $0[key] } }
        func store(_ key: String, _ t: String) { tokens.withLock { $0[key] = t } }
    }

    func credential(for ref: RegistryReference) throws -> Credential? {
        if let c = credentials.withLock({ $0[ref.name] }) { return c }
        let c = try options.credentials.credential(for: ref)
        credentials.withLock { $0[ref.name] = .some(c) }
        return c
    }

    private func authorization(_ host: Host, ref: RegistryReference, scopes: [String]) throws -> String? {
        guard let c = host.currentChallenge else { return nil }
        switch c.scheme {
        case "basic":
            return try credential(for: ref)?.basicHeader
        case "bearer":
            let key = scopes.joined(separator: " ")
            if let t = host.token(key) { return "Bearer " + t }
            let t = try fetchToken(c, scopes: scopes, host: host, ref: ref)
            host.store(key, t)
            return "Bearer " + t
        default:
            return nil
        }
    }

    /// The token flow: GET realm?service=…&scope=… (Basic credentials when there are some), or
    /// an OAuth2 refresh-token POST for an identity token.
    private func fetchToken(_ c: Challenge, scopes: [String], host: Host, ref: RegistryReference) throws -> String {
        guard let realm = c.params["realm"], realm.hasPrefix("http://") || realm.hasPrefix("https://") else {
            throw RegistryError.failed("\(ref.host): Bearer challenge without a usable realm")
        }
        let what = "\(ref.host): token from \(realm)"
        let cred = try credential(for: ref)
        // Credentials go over plain HTTP only where the user allowed the registry itself to be
        // insecure: a verified registry naming an http:// realm would leak them to the network.
        if cred != nil, realm.hasPrefix("http://"), options.tlsVerify {
            throw RegistryError.denied(
                "\(ref.host): refusing to send credentials to \(realm) over plain HTTP (the registry's token realm is "
                    + "not HTTPS; --tls-verify=false allows it for an insecure registry)"
            )
        }
        var res: HTTPResult
        var attempt = 0
        while true {
            do {
                if let cred, cred.isIdentityToken {
                    var form = "grant_type=refresh_token&client_id=stamp&refresh_token=\(queryEscape(cred.secret))"
                    if let s = c.params["service"] { form += "&service=\(queryEscape(s))" }
                    for s in scopes { form += "&scope=\(queryEscape(s))" }
                    var h = HTTPHeaders()
                    h.add(name: "Content-Type", value: "application/x-www-form-urlencoded")
                    res = try BlockingHTTP.shared.send(
                        method: .POST, url: realm, headers: h, body: .bytes(Array(form.utf8)), tls: host.tls,
                        proxies: proxies, sink: nil,
                        seconds: Self.baseDeadline)
                } else {
                    var q: [String] = []
                    if let s = c.params["service"] { q.append("service=\(queryEscape(s))") }
                    for s in scopes { q.append("scope=\(queryEscape(s))") }
                    var h = HTTPHeaders()
                    if let cred { h.add(name: "Authorization", value: cred.basicHeader) }
                    res = try BlockingHTTP.shared.send(
                        method: .GET, url: appendQuery(realm, q.joined(separator: "&")), headers: h,
                        body: .none, tls: host.tls, proxies: proxies, sink: nil, seconds: Self.baseDeadline)
                }
            } catch {
                if let tls = tlsProblem(error) { throw RegistryError.network("\(what): TLS failed: \(tls)") }
                if let e = error as? BodyTooLarge {
                    throw RegistryError.failed("\(what): the token service sent more than \(e.limit >> 20) MiB")
                }
                if let e = error as? Deadline {
                    throw RegistryError.network("\(what): no complete answer within \(e.seconds) s")
                }
                guard attempt < options.retries else { throw RegistryError.network("\(what): \(describe(error))") }
                attempt += 1
                Thread.sleep(forTimeInterval: backoff(attempt))
                continue
            }
            if [429, 500, 502, 503, 504].contains(res.status), attempt < options.retries {
                attempt += 1
                Thread.sleep(forTimeInterval: retryAfter(res) ?? backoff(attempt))
                continue
            }
            break
        }
        if res.status == 401 || res.status == 403 {
            throw RegistryError.denied(
                cred == nil
                    ? "\(ref.host): the token service wants credentials (pass --creds USER:PASSWORD or use a docker "
                        + "config)"
                    : "\(ref.host): the token service refused the credentials of \(cred!.username)")
        }
        guard res.status == 200, let j = try? JSONValue.parse(res.body),
            let token = j["token"]?.stringValue ?? j["access_token"]?.stringValue, !token.isEmpty
        else {
            throw RegistryError.failed("\(what): HTTP \(res.status), no token in the answer")
        }
        return token
    }

    /// The scheme and TLS settings of a registry, found once per process. With TLS verification
    /// on, only HTTPS is spoken; with `--tls-verify=false`, HTTPS without verification is tried
    /// first and plain HTTP after it.
    private func host(for ref: RegistryReference) throws -> Host {
        let name = ref.apiHost
        if let h = hosts.withLock({ $0[name] }) { return h }
        // A mistyped host fails now, not after the HTTP client's connect timeouts and retries
        // (through a proxy, the proxy resolves it).
        if proxies.proxy(for: "https://\(name)/") == nil, Self.doesNotResolve(name) {
            throw RegistryError.network("\(ref.host): cannot resolve the host name (it does not exist, or is mistyped)")
        }
        let tls = try tlsConfiguration(for: ref.host)
        var base = "https://\(name)"
        // Through a proxy the raw probe would ask the wrong server: HTTPS is assumed there.
        // A TLS server may answer a plain request with an HTTP 400 of its own (Go's and nginx's
        // do): then HTTPS, unverified, is tried before plain HTTP is believed.
        if !options.tlsVerify && proxies.proxy(for: "http://\(name)/") == nil,
            let status = plainHTTPStatus(name), status != 400 || !speaksHTTPS(name, tls: tls)
        {
            base = "http://\(name)"
        }
        let h = Host(base: base, tls: tls)
        hosts.withLock { $0[name] = h }
        return h
    }

    /// Whether `host[:port]` completes a TLS handshake and answers `/v2/` over HTTPS (any
    /// status: 401 is an answer), certificates unverified (this is `--tls-verify=false` only).
    private func speaksHTTPS(_ hostPort: String, tls: TLSConfiguration) -> Bool {
        (try? BlockingHTTP.shared.send(
            method: .GET, url: "https://\(hostPort)/v2/", headers: HTTPHeaders(), body: .none, tls: tls,
            proxies: proxies, sink: nil, limit: 64 << 10, seconds: 10)) != nil
    }

    /// The status `host[:port]` answers a plain HTTP request with, or nil when the answer is
    /// no HTTP status line (a TLS server's alert, or a close). A raw socket, so that a wrong
    /// guess costs one round trip rather than the HTTP client's connect retries.
    private func plainHTTPStatus(_ hostPort: String) -> Int? {
        for attempt in 0...options.retries {
            if let answer = probePlainHTTP(hostPort) { return answer >= 0 ? answer : nil }
            if attempt < options.retries { Thread.sleep(forTimeInterval: backoff(attempt + 1)) }
        }
        return nil
    }

    /// One probe: the status of an HTTP answer, -1 for anything else, nil for no answer.
    private func probePlainHTTP(_ hostPort: String) -> Int? {
        let (host, explicitPort) = splitHostPort(Substring(hostPort))
        let port = String(explicitPort ?? 443)
        var hints = addrinfo()
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        var list: UnsafeMutablePointer<addrinfo>?
        guard getaddrinfo(host, port, &hints, &list) == 0, let first = list else { return nil }
        defer { freeaddrinfo(list) }
        let fd = socket(first.pointee.ai_family, first.pointee.ai_socktype, first.pointee.ai_protocol)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var tv = timeval(tv_sec: 5, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        guard connect(fd, first.pointee.ai_addr, first.pointee.ai_addrlen) == 0 else { return nil }
        let request = "GET /v2/ HTTP/1.0\r\nHost: \(hostPort)\r\nUser-Agent: stamp\r\n\r\n"
        guard request.withCString({ send(fd, $0, strlen($0), Int32(MSG_NOSIGNAL)) }) > 0 else { return nil }
        // "HTTP/1.1 200": the status is bytes 9-11.
        var buf = [UInt8](repeating: 0, count: 12)
        let n = recv(fd, &buf, 12, Int32(MSG_WAITALL))
        guard n > 0 else { return nil }  // closed or reset without an answer: ask again
        guard n == 12, buf.starts(with: Array("HTTP/".utf8)),
            let status = Int(String(decoding: buf[9..<12], as: UTF8.self))
        else { return -1 }
        return status
    }

    private func tlsConfiguration(for host: String) throws -> TLSConfiguration {
        var tls = TLSConfiguration.makeClientConfiguration()
        if !options.tlsVerify { tls.certificateVerification = .none }
        var dirs: [String] = []
        if let d = options.certDir {
            guard FileManager.default.fileExists(atPath: d) else {
                throw RegistryError.usage("--cert-dir \(d): no such folder")
            }
            dirs.append(d)
        } else {
            for root in ["/etc/containers/certs.d", "/etc/docker/certs.d"]
            where FileManager.default.fileExists(atPath: "\(root)/\(host)") {
                dirs.append("\(root)/\(host)")
            }
        }
        for dir in dirs {
            let files = ((try? FileManager.default.contentsOfDirectory(atPath: dir)) ?? []).sorted()
            for f in files where f.hasSuffix(".crt") {
                do {
                    let certs = try NIOSSLCertificate.fromPEMFile("\(dir)/\(f)")
                    tls.additionalTrustRoots.append(.certificates(certs))
                } catch { throw RegistryError.usage("\(dir)/\(f): not a PEM certificate (\(error))") }
            }
            for f in files where f.hasSuffix(".cert") {
                let key = "\(dir)/\(f.dropLast(5)).key"
                guard FileManager.default.fileExists(atPath: key) else {
                    throw RegistryError.usage("\(dir)/\(f): client certificate without \(key)")
                }
                do {
                    tls.certificateChain = try NIOSSLCertificate.fromPEMFile("\(dir)/\(f)").map { .certificate($0) }
                    tls.privateKey = .privateKey(try NIOSSLPrivateKey(file: key, format: .pem))
                } catch { throw RegistryError.usage("\(dir)/\(f): cannot load the client certificate (\(error))") }
            }
        }
        return tls
    }
}

/// A download that hashes as it writes, can start over after a dropped connection, and stops
/// a registry that sends more than the descriptor's size.
final class CheckedDownload: ByteSink {
    let file: WritableFile
    let limit: Int64?
    private(set) var digester = Digester(.sha256)
    private(set) var count: Int64 = 0

    init(file: WritableFile, limit: Int64?) {
        self.file = file
        self.limit = limit
    }

    func reset() throws {
        try file.reset()
        digester = Digester(.sha256)
        count = 0
    }

    func write(_ buffer: UnsafeRawBufferPointer) throws {
        count += Int64(buffer.count)
        if let limit, count > limit {
            throw RegistryError.corrupt("the registry sent more than the \(limit) bytes the descriptor gives")
        }
        digester.update(buffer)
        try file.write(buffer)
    }
}

/// Runs `body` on each item with at most `width` at once; the first error is rethrown after
/// all started work ends, and no new item starts after an error.
public func forEachConcurrently<T: Sendable>(_ items: [T], width: Int, _ body: @escaping @Sendable (T) throws -> Void)
    throws
{
    guard items.count > 1, width > 1 else {
        for i in items { try body(i) }
        return
    }
    let work = ConcurrentWork(items, body)
    let group = DispatchGroup()
    for _ in 0..<min(width, items.count) {
        group.enter()
        Thread.detachNewThread {
            defer { group.leave() }
            work.drain()
        }
    }
    group.wait()
    if let failure = work.failure { throw failure }
}

private final class ConcurrentWork<T: Sendable>: Sendable {
    let items: [T]
    let body: @Sendable (T) throws -> Void
    /// The next item to hand out, and the first error (which stops handing out).
    private let state = Mutex<(next: Int, failure: Error?)>((0, nil))

    init(_ items: [T], _ body: @escaping @Sendable (T) throws -> Void) {
        self.items = items
        self.body = body
    }

    var failure: Error? { state.withLock { $0.failure } }

    func drain() {
        while true {
            let i: Int? = state.withLock { s in
                guard s.failure == nil, s.next < items.count else { return nil }
                s.next += 1
                return s.next - 1
            }
            guard let i else { return }
            do { try body(items[i]) } catch { state.withLock { if $0.failure == nil { $0.failure = error } } }
        }
    }
}
