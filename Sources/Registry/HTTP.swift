import AsyncHTTPClient
import Layers
import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL

/// A finished HTTP exchange. `body` holds the response body unless it went to a sink (only
/// 2xx bodies do), cut at the collector's limit.
struct HTTPResult {
    var status: Int
    var headers: HTTPHeaders
    var body: [UInt8]

    func header(_ name: String) -> String? { headers.first(name: name) }
}

/// What a request sends: nothing, bytes, or a stream re-opened for every attempt.
enum RequestBody {
    case none
    case bytes([UInt8])
    case stream(length: Int64, open: () throws -> ByteSource)
}

/// Blocking HTTP over AsyncHTTPClient: stamp's pipeline is synchronous and runs on its own
/// threads, never on the event loops, so waiting on a future here is safe. Redirects are not
/// followed by the client: the registry client follows them itself, dropping credentials when
/// the host changes (blob storage behind a redirect must not see registry tokens).
final class BlockingHTTP: @unchecked Sendable {
    static let shared = BlockingHTTP()

    let client: HTTPClient

    private init() {
        var config = HTTPClient.Configuration()
        config.redirectConfiguration = .disallow
        config.timeout = .init(connect: .seconds(10), read: .seconds(300))
        config.decompression = .disabled
        config.httpVersion = .automatic
        client = HTTPClient(eventLoopGroup: MultiThreadedEventLoopGroup.singleton, configuration: config)
    }

    func send(method: HTTPMethod, url: String, headers: HTTPHeaders, body: RequestBody, tls: TLSConfiguration?,
              sink: ByteSink?, limit: Int = 4 << 20) throws -> HTTPResult {
        let loop = client.eventLoopGroup.next()
        var request = try HTTPClient.Request(url: url, method: method, headers: headers, body: nil, tlsConfiguration: tls)
        switch body {
        case .none: break
        case .bytes(let b): request.body = .bytes(b)
        case let .stream(length, open):
            let source = try UncheckedBox(open())
            request.body = .stream(contentLength: length) { writer in
                BlockingHTTP.pump(writer, source, loop)
            }
        }
        let collector = Collector(sink: sink.map(UncheckedBox.init), limit: limit)
        let task = client.execute(request: request, delegate: collector, eventLoop: .delegate(on: loop))
        return try task.wait()
    }

    private static func pump(_ writer: HTTPClient.Body.StreamWriter, _ source: UncheckedBox<ByteSource>, _ loop: EventLoop) -> EventLoopFuture<Void> {
        var buffer = ByteBufferAllocator().buffer(capacity: 1 << 20)
        let n: Int
        do {
            n = try buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: 1 << 20) { try source.value.read(into: $0) }
        } catch {
            return loop.makeFailedFuture(error)
        }
        if n == 0 { return loop.makeSucceededVoidFuture() }
        return writer.write(.byteBuffer(buffer)).flatMap { pump(writer, source, loop) }
    }
}

/// Carries a non-Sendable value onto the one event loop that uses it.
struct UncheckedBox<T>: @unchecked Sendable {
    let value: T
    init(_ value: T) { self.value = value }
}

private final class Collector: HTTPClientResponseDelegate, @unchecked Sendable {
    typealias Response = HTTPResult
    let sink: UncheckedBox<ByteSink>?
    let limit: Int
    var status = 0
    var headers = HTTPHeaders()
    var body: [UInt8] = []

    init(sink: UncheckedBox<ByteSink>?, limit: Int) { self.sink = sink; self.limit = limit }

    func didReceiveHead(task: HTTPClient.Task<HTTPResult>, _ head: HTTPResponseHead) -> EventLoopFuture<Void> {
        status = Int(head.status.code)
        headers = head.headers
        return task.eventLoop.makeSucceededVoidFuture()
    }

    func didReceiveBodyPart(task: HTTPClient.Task<HTTPResult>, _ buffer: ByteBuffer) -> EventLoopFuture<Void> {
        if let sink, (200..<300).contains(status) {
            do { try buffer.withUnsafeReadableBytes { try sink.value.write($0) } } catch { return task.eventLoop.makeFailedFuture(error) }
        } else if body.count < limit {
            body.append(contentsOf: buffer.readableBytesView.prefix(limit - body.count))
        }
        return task.eventLoop.makeSucceededVoidFuture()
    }

    func didFinishRequest(task: HTTPClient.Task<HTTPResult>) throws -> HTTPResult {
        HTTPResult(status: status, headers: headers, body: body)
    }
}
