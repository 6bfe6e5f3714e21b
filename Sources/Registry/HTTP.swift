import AsyncHTTPClient
import Foundation
import Hashing
import IO
import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL
import Synchronization
import OCI

/// A finished HTTP exchange. `body` holds the response body unless it went to a sink (only
/// 2xx bodies do), cut at the collector's limit.
struct HTTPResult {
    var status: Int
    var headers: HTTPHeaders
    var body: [UInt8]

    func header(_ name: String) -> String? { headers.first(name: name) }
}

/// A response body past the size kept for its kind of object.
struct BodyTooLarge: Error { let limit: Int }

/// A request that did not finish within its deadline.
struct Deadline: Error { let seconds: Int64 }

/// What a request sends: nothing, bytes, or a stream re-opened for every attempt.
enum RequestBody {
    case none
    case bytes([UInt8])
    case stream(length: Int64, open: () throws -> ByteSource)

    var length: Int64? {
        switch self {
        case .none: return nil
        case .bytes(let b): return Int64(b.count)
        case .stream(let n, _): return n
        }
    }
}

/// Blocking HTTP over AsyncHTTPClient: stamp's pipeline is synchronous and runs on its own
/// threads, never on the event loops, so waiting on a future here is safe. Redirects are not
/// followed by the client: the registry client follows them itself, dropping credentials when
/// the host changes (blob storage behind a redirect must not see registry tokens).
/// The clients (and their connections) are shared by every caller; which proxy a request takes
/// is the caller's (`proxies`, from the environment its registry client was made with).
final class BlockingHTTP: Sendable {
    static let shared = BlockingHTTP()

    /// One client per proxy (AsyncHTTPClient sets the proxy per client); "" is direct.
    private let clients = Mutex<[String: HTTPClient]>([:])

    private func client(for url: String, proxies: ProxySettings) -> HTTPClient {
        let proxy = proxies.proxy(for: url)
        let key = proxy.map { "\($0.host):\($0.port) \($0.credentials ?? "")" } ?? ""
        return clients.withLock { clients in
            if let c = clients[key] { return c }
            var config = HTTPClient.Configuration()
            config.redirectConfiguration = .disallow
            // Idle: no byte for a minute ends the request (a stalled registry); the whole
            // request has its own deadline (`send`), so a drip of bytes cannot hold it open.
            // A connect gets 3 s (the HTTP client retries a refused connect within it): a
            // registry answers a connect in milliseconds, and a wrong port must fail fast.
            config.timeout = .init(connect: .seconds(3), read: .seconds(60))
            config.decompression = .disabled
            config.httpVersion = .automatic
            if let proxy {
                config.proxy = .server(
                    host: proxy.host, port: proxy.port,
                    authorization: proxy.credentials.map { .basic(credentials: $0) })
            }
            let c = HTTPClient(eventLoopGroup: MultiThreadedEventLoopGroup.singleton, configuration: config)
            clients[key] = c
            return c
        }
    }

    /// A request to completion. `limit`: the most bytes of a body kept in memory (a document, an
    /// error page); more is an error (`BodyTooLarge`), never a silent cut. `seconds`: the whole
    /// request's deadline.
    func send(
        method: HTTPMethod, url: String, headers: HTTPHeaders, body: RequestBody, tls: TLSConfiguration?,
        proxies: ProxySettings, sink: ByteSink?, limit: Int = 4 << 20, seconds: Int64 = 120
    ) throws -> HTTPResult {
        let client = client(for: url, proxies: proxies)
        let loop = client.eventLoopGroup.next()
        var request = try HTTPClient.Request(
            url: url, method: method, headers: headers, body: nil, tlsConfiguration: tls)
        switch body {
        case .none: break
        case .bytes(let b): request.body = .bytes(b)
        case let .stream(length, open):
            let source = try UncheckedSendable(open())
            request.body = .stream(contentLength: length) { writer in
                BlockingHTTP.pump(writer, source, loop)
            }
        }
        let collector = Collector(sink: sink.map(UncheckedSendable.init), limit: limit)
        let task = client.execute(
            request: request, delegate: collector, eventLoop: .delegate(on: loop),
            deadline: .now() + .seconds(seconds))
        do { return try task.wait() } catch let e as HTTPClientError where e == .deadlineExceeded {
            throw Deadline(seconds: seconds)
        }
    }

    private static func pump(
        _ writer: HTTPClient.Body.StreamWriter, _ source: UncheckedSendable<ByteSource>, _ loop: EventLoop
    ) -> EventLoopFuture<Void> {
        var buffer = ByteBufferAllocator().buffer(capacity: 1 << 20)
        let n: Int
        do {
            n = try buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: 1 << 20) {
                try source.value.read(into: $0)
            }
        } catch {
            return loop.makeFailedFuture(error)
        }
        if n == 0 { return loop.makeSucceededVoidFuture() }
        return writer.write(.byteBuffer(buffer)).flatMap { pump(writer, source, loop) }
    }
}

/// AsyncHTTPClient calls a delegate on its task's event loop only, one call at a time, and the
/// waiting thread reads the result after the task's future completes: its state is never touched
/// by two threads at once, which is why the unchecked conformance is safe.
private final class Collector: HTTPClientResponseDelegate, @unchecked Sendable {
    typealias Response = HTTPResult
    let sink: UncheckedSendable<ByteSink>?
    let limit: Int
    var status = 0
    var headers = HTTPHeaders()
    var body: [UInt8] = []

    init(sink: UncheckedSendable<ByteSink>?, limit: Int) {
        self.sink = sink
        self.limit = limit
    }

    func didReceiveHead(task: HTTPClient.Task<HTTPResult>, _ head: HTTPResponseHead) -> EventLoopFuture<Void> {
        status = Int(head.status.code)
        headers = head.headers
        return task.eventLoop.makeSucceededVoidFuture()
    }

    func didReceiveBodyPart(task: HTTPClient.Task<HTTPResult>, _ buffer: ByteBuffer) -> EventLoopFuture<Void> {
        if let sink, (200..<300).contains(status) {
            do { try buffer.withUnsafeReadableBytes { try sink.value.write($0) } } catch {
                return task.eventLoop.makeFailedFuture(error)
            }
        } else if sink == nil, (200..<300).contains(status), body.count + buffer.readableBytes > limit {
            // A document larger than any stamp reads (an endless manifest): stop now.
            return task.eventLoop.makeFailedFuture(BodyTooLarge(limit: limit))
        } else if body.count < limit {
            body.append(contentsOf: buffer.readableBytesView.prefix(limit - body.count))
        }
        return task.eventLoop.makeSucceededVoidFuture()
    }

    func didFinishRequest(task: HTTPClient.Task<HTTPResult>) throws -> HTTPResult {
        HTTPResult(status: status, headers: headers, body: body)
    }
}

/// `HTTPS_PROXY`, `HTTP_PROXY` and `NO_PROXY` (either case), read the way curl reads them:
/// `NO_PROXY` is a comma-separated list of hosts, `.domain` suffixes, `host:port`, or `*`.
struct ProxySettings: Sendable {
    struct Endpoint: Sendable, Equatable {
        var host: String
        var port: Int
        /// `user:password` from the proxy URL, base64-encoded for Proxy-Authorization.
        var credentials: String?
    }

    var http: Endpoint?
    var https: Endpoint?
    var noProxy: [String]

    init(environment e: [String: String]) {
        func value(_ name: String) -> String? { (e[name.lowercased()] ?? e[name]).flatMap { $0.isEmpty ? nil : $0 } }
        http = value("HTTP_PROXY").flatMap(Self.endpoint)
        https = value("HTTPS_PROXY").flatMap(Self.endpoint)
        noProxy = (value("NO_PROXY") ?? "").split(separator: ",").map {
            $0.trimmingCharacters(in: .whitespaces).lowercased()
        }.filter { !$0.isEmpty }
    }

    static func endpoint(_ text: String) -> Endpoint? {
        var rest = Substring(text)
        if let r = rest.range(of: "://") { rest = rest[r.upperBound...] }
        if let slash = rest.firstIndex(of: "/") { rest = rest[..<slash] }
        var credentials: String?
        if let at = rest.lastIndex(of: "@") {
            let userinfo = String(rest[..<at])
            credentials = Base64.encode(Array((userinfo.removingPercentEncoding ?? userinfo).utf8))
            rest = rest[rest.index(after: at)...]
        }
        let (host, port) = splitHostPort(rest)
        return host.isEmpty ? nil : Endpoint(host: host, port: port ?? 80, credentials: credentials)
    }

    /// The proxy for a URL, or nil to connect directly.
    func proxy(for url: String) -> Endpoint? {
        let https = url.hasPrefix("https://")
        guard let endpoint = https ? self.https : http else { return nil }
        var authority = Substring(url.drop { $0 != "/" }.dropFirst(2))
        if let slash = authority.firstIndex(of: "/") { authority = authority[..<slash] }
        let (host, explicitPort) = splitHostPort(Substring(authority.lowercased()))
        let port = explicitPort ?? (https ? 443 : 80)
        for entry in noProxy {
            if entry == "*" { return nil }
            let (name, entryPort) = splitHostPort(Substring(entry))
            if let entryPort, entryPort != port { continue }
            let bare = name.hasPrefix(".") ? name.dropFirst() : Substring(name)
            if host == bare || host.hasSuffix("." + bare) { return nil }
        }
        return endpoint
    }
}

/// `host[:port]` (IPv6 in brackets) into the host, without brackets, and the port if given.
func splitHostPort(_ s: Substring) -> (host: String, port: Int?) {
    var host = s
    var port: Int?
    if let colon = s.lastIndex(of: ":"), !s[colon...].contains("]"), let p = Int(s[s.index(after: colon)...]) {
        port = p
        host = s[..<colon]
    }
    return (host.trimmingCharacters(in: CharacterSet(charactersIn: "[]")), port)
}

/// One plain GET over the same client, proxies and TLS as the registry code, for callers outside
/// it (`stamp canary status`): status, content type and a body of at most `limit` bytes.
public enum HTTPGet {
    public struct Response: Sendable {
        public var status: Int
        public var contentType: String?
        public var body: [UInt8]
        /// Every Set-Cookie header of the answer.
        public var setCookies: [String] = []
    }

    /// `seconds` bounds the whole request; `tlsVerify: false` accepts any certificate.
    public static func get(
        _ url: String, headers: [(String, String)] = [], seconds: Int64, tlsVerify: Bool = true,
        limit: Int = 64 << 10, environment: [String: String] = ProcessInfo.processInfo.environment
    ) throws -> Response {
        var tls = TLSConfiguration.makeClientConfiguration()
        if !tlsVerify { tls.certificateVerification = .none }
        var h = HTTPHeaders()
        for (k, v) in headers { h.add(name: k, value: v) }
        do {
            let r = try BlockingHTTP.shared.send(
                method: .GET, url: url, headers: h, body: .none, tls: url.hasPrefix("https://") ? tls : nil,
                proxies: ProxySettings(environment: environment), sink: nil, limit: limit, seconds: seconds)
            return Response(
                status: r.status, contentType: r.header("Content-Type"), body: r.body,
                setCookies: r.headers["Set-Cookie"])
        } catch is Deadline {
            throw RegistryError.network("\(url): no answer within \(seconds) s")
        } catch let e as BodyTooLarge {
            throw RegistryError.corrupt("\(url): the answer is larger than \(e.limit) bytes")
        } catch let e as RegistryError {
            throw e
        } catch {
            throw RegistryError.network("\(url): \(error)")
        }
    }
}
