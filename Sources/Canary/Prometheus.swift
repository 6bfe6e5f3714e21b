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

    /// `user`: Basic auth with the password in `$STAMP_PROMETHEUS_PASSWORD`; else a bearer token
    /// in `$STAMP_PROMETHEUS_TOKEN`, if set.
    public init(url: String, user: String?, environment: [String: String], seconds: Int64) throws {
        guard url.hasPrefix("http://") || url.hasPrefix("https://") else {
            throw CanaryError.usage("--prometheus \(url): an http:// or https:// address")
        }
        if let authority = url.split(separator: "/").dropFirst(1).first, authority.contains("@") {
            throw CanaryError.usage(
                "--prometheus: no credentials in the URL (they would show in logs); --prometheus-user with "
                    + "$STAMP_PROMETHEUS_PASSWORD, or $STAMP_PROMETHEUS_TOKEN")
        }
        var headers: [(String, String)] = []
        if let user {
            guard let password = environment["STAMP_PROMETHEUS_PASSWORD"] else {
                throw CanaryError.usage("--prometheus-user: set the password in $STAMP_PROMETHEUS_PASSWORD")
            }
            headers.append(("Authorization", Credential(username: user, secret: password).basicHeader))
        } else if let token = environment["STAMP_PROMETHEUS_TOKEN"], !token.isEmpty {
            headers.append(("Authorization", "Bearer " + token))
        }
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
            throw CanaryError(kind: .network, message: "Prometheus at \(url) cannot be reached: \(error)")
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
