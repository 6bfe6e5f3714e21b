import Foundation
import Registry

/// Prometheus' HTTP API as `stamp canary analyze` uses it: instant queries (`/api/v1/query`)
/// over the registry code's HTTP client (proxies, TLS, time bounds), with Basic auth or a bearer
/// token that never appears in a URL or a message.
public struct PrometheusClient: Sendable {
    public let url: String
    let base: String
    let headers: [(String, String)]
    let seconds: Int64
    /// What an error must never carry.
    let secrets: [String]

    /// `user`: Basic auth with the password in `$STAMP_PROMETHEUS_PASSWORD`; else a bearer token
    /// in `$STAMP_PROMETHEUS_TOKEN`, if set.
    public init(url: String, user: String?, environment: [String: String], seconds: Int64) throws {
        guard url.hasPrefix("http://") || url.hasPrefix("https://") else {
            throw CanaryError.usage("--prometheus \(Redact.url(url)): an http:// or https:// address")
        }
        if Redact.hasCredentials(url) {
            throw CanaryError.usage(
                "--prometheus: no credentials in the URL (they would show in logs); --prometheus-user with "
                    + "$STAMP_PROMETHEUS_PASSWORD, or $STAMP_PROMETHEUS_TOKEN")
        }
        var headers: [(String, String)] = []
        var secrets: [String] = []
        // As read from a file or a Secret: the line break that ends it is not part of it.
        func clean(_ s: String, _ name: String) throws -> String {
            let t = s.trimmingCharacters(in: .whitespacesAndNewlines)
            guard t.unicodeScalars.allSatisfy({ $0.value >= 0x20 && $0.value != 0x7f }) else {
                throw CanaryError.usage("$\(name): holds control characters (it is not printed)")
            }
            return t
        }
        if let user {
            guard let password = environment["STAMP_PROMETHEUS_PASSWORD"] else {
                throw CanaryError.usage("--prometheus-user: set the password in $STAMP_PROMETHEUS_PASSWORD")
            }
            let p = try clean(password, "STAMP_PROMETHEUS_PASSWORD")
            let header = Credential(username: user, secret: p).basicHeader
            headers.append(("Authorization", header))
            secrets += [password, p, header]
        } else if let token = environment["STAMP_PROMETHEUS_TOKEN"], !token.isEmpty {
            let t = try clean(token, "STAMP_PROMETHEUS_TOKEN")
            headers.append(("Authorization", "Bearer " + t))
            secrets += [token, t]
        }
        self.secrets = secrets
        self.url = url
        base = url.hasSuffix("/") ? String(url.dropLast()) : url
        self.headers = headers
        self.seconds = max(1, seconds)
    }

    /// The value of an instant query: nil for an empty result or NaN. Unreachable, refused
    /// credentials or another HTTP error throw (the verdict is then inconclusive).
    public func value(_ promql: String) throws -> Double? {
        var allowed = CharacterSet.alphanumerics
        allowed.insert(charactersIn: "-._~")
        let q = promql.addingPercentEncoding(withAllowedCharacters: allowed) ?? ""
        let r: HTTPGet.Response
        do { r = try HTTPGet.get(base + "/api/v1/query?query=" + q, headers: headers, seconds: seconds) } catch {
            throw CanaryError(
                kind: .network,
                message: Redact.secrets("Prometheus at \(url) cannot be reached: \(error)", secrets))
        }
        if r.status == 401 || r.status == 403 {
            throw CanaryError.usage("Prometheus at \(url) refused the credentials (HTTP \(r.status))")
        }
        guard r.status == 200 || r.status == 400 || r.status == 422 else {
            throw CanaryError(kind: .network, message: "Prometheus at \(url) answered HTTP \(r.status)")
        }
        return try CanaryAnalysis.value(ofAnswer: r.body)
    }
}
