import Foundation
import Testing
import TestSupport
import Hashing
import OCI
@testable import Registry

struct RegistryAuthTests {
    @Test func parsesChallenges() {
        let c = Challenge.parse(
            #"Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/ubuntu:pull,push""#
        )
        #expect(c?.scheme == "bearer")
        #expect(c?.params["realm"] == "https://auth.docker.io/token")
        #expect(c?.params["service"] == "registry.docker.io")
        #expect(c?.params["scope"] == "repository:library/ubuntu:pull,push")
        #expect(
            Challenge.parse(#"Basic realm="a \"quoted\" realm""#)
                == Challenge(scheme: "basic", params: ["realm": #"a "quoted" realm"#]))
        #expect(
            Challenge.parse("Bearer realm=https://x/token, service=s")?.params == [
                "realm": "https://x/token", "service": "s",
            ])
    }

    func lookup(_ config: String, env extra: [String: String] = [:]) throws -> CredentialLookup {
        let dir = testRoot + "/auth-" + UUID().uuidString
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        try config.write(toFile: dir + "/config.json", atomically: true, encoding: .utf8)
        return CredentialLookup(creds: nil, authFile: nil, environment: ["DOCKER_CONFIG": dir].merging(extra) { $1 })
    }

    @Test func readsDockerConfigEntries() throws {
        let hub = try RegistryReference.parse("docker://mintplexlabs/anything-llm")
        let corp = try RegistryReference.parse("docker://registry.corp.local:5000/ai/app")
        let l = try lookup(
            """
            {"auths": {
              "https://index.docker.io/v1/": {"auth": "\(Hashing.Base64.encode(Array("hubuser:hubpass".utf8)))"},
              "registry.corp.local:5000": {"identitytoken": "refresh-123"},
              "registry.corp.local:5000/ai/app": {"auth": "\(Hashing.Base64.encode(Array("app:only".utf8)))"}
            }}
            """)
        let h = try #require(try l.credential(for: hub))
        #expect(h.username == "hubuser" && h.secret == "hubpass" && !h.isIdentityToken)
        #expect("\(h)" == "hubuser:***")
        // A repository-scoped key wins over the registry's.
        let c = try #require(try l.credential(for: corp))
        #expect(c.username == "app" && c.secret == "only")
        let other = try #require(try l.credential(for: corp.with(tag: nil).withRepository("ai/other")))
        #expect(other.isIdentityToken && other.secret == "refresh-123")
        #expect(try l.credential(for: try RegistryReference.parse("docker://quay.io/x/y")) == nil)
        #expect(
            try CredentialLookup(creds: "u:p:with:colons", authFile: nil, environment: [:]).credential(for: hub)?.secret
                == "p:with:colons")
    }

    @Test func runsCredentialHelpers() throws {
        let bin = testRoot + "/helper-" + UUID().uuidString
        try FileManager.default.createDirectory(atPath: bin, withIntermediateDirectories: true)
        let script = """
            #!/bin/sh
            read server
            [ "$1" = get ] || exit 3
            case "$server" in
              registry.corp.local) printf '{"ServerURL":"%s","Username":"helper-user","Secret":"helper-secret"}' "$server" ;;
              *) echo "credentials not found in native keychain"; exit 1 ;;
            esac
            """
        try script.write(toFile: bin + "/docker-credential-fake", atomically: true, encoding: .utf8)
        chmod(bin + "/docker-credential-fake", 0o755)
        let l = try lookup(
            #"{"credHelpers": {"registry.corp.local": "fake"}, "credsStore": "fake"}"#,
            env: ["PATH": bin + ":/usr/bin:/bin"])
        let c = try #require(try l.credential(for: try RegistryReference.parse("docker://registry.corp.local/ai/app")))
        #expect(c.username == "helper-user" && c.secret == "helper-secret")
        // The store is asked for other registries; "not found" is no credential, not an error.
        #expect(try l.credential(for: try RegistryReference.parse("docker://ghcr.io/o/r")) == nil)
    }
}

extension RegistryReference {
    func withRepository(_ r: String) -> RegistryReference {
        RegistryReference(host: host, repository: r, tag: tag, digest: digest)
    }
}

struct ProxySettingsTests {
    @Test func choosesTheProxyAsCurlDoes() {
        let p = ProxySettings(environment: [
            "https_proxy": "http://u:p%40ss@proxy.corp:3128", "HTTP_PROXY": "proxy.corp",
            "NO_PROXY": "internal.corp, .svc, registry.local:5000,[::1]",
        ])
        #expect(
            p.https == .init(host: "proxy.corp", port: 3128, credentials: Hashing.Base64.encode(Array("u:p@ss".utf8))))
        #expect(p.http == .init(host: "proxy.corp", port: 80, credentials: nil))
        #expect(p.proxy(for: "https://registry-1.docker.io/v2/") == p.https)
        #expect(p.proxy(for: "http://10.0.0.5:5000/v2/") == p.http)
        #expect(p.proxy(for: "https://internal.corp/v2/") == nil)
        #expect(p.proxy(for: "https://a.b.svc:8443/v2/") == nil)
        #expect(p.proxy(for: "https://registry.local:5000/v2/") == nil)
        #expect(p.proxy(for: "https://registry.local/v2/") == p.https)  // NO_PROXY names port 5000 only
        #expect(p.proxy(for: "https://[::1]:5000/v2/") == nil)
        #expect(
            ProxySettings(environment: ["HTTPS_PROXY": "http://x:1", "no_proxy": "*"]).proxy(for: "https://any/") == nil
        )
        #expect(ProxySettings(environment: [:]).proxy(for: "https://any/") == nil)
    }

    /// Each client takes its proxy from the environment it was made with, not the first one a
    /// process happened to use.
    @Test func eachClientHasItsOwnProxyEnvironment() {
        func client(_ env: [String: String]) -> RegistryClient {
            RegistryClient(
                options: RegistryOptions(
                    credentials: .init(creds: nil, authFile: nil, environment: env), environment: env))
        }
        let direct = client([:])
        let proxied = client(["HTTPS_PROXY": "http://proxy.corp:3128"])
        #expect(direct.proxies.proxy(for: "https://registry.corp/v2/") == nil)
        #expect(proxied.proxies.proxy(for: "https://registry.corp/v2/")?.port == 3128)
        #expect(client([:]).proxies.proxy(for: "https://registry.corp/v2/") == nil)
    }
}
