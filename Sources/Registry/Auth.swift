import Foundation
#if canImport(Glibc)
    import Glibc
#endif
import Hashing
import OCI

/// A user name and secret for a registry. Never printed: `description` hides the secret.
public struct Credential: Sendable, CustomStringConvertible {
    public var username: String
    public var secret: String
    /// An OAuth2 refresh token (`identitytoken` in a docker config), not a password.
    public var isIdentityToken: Bool

    public init(username: String, secret: String, isIdentityToken: Bool = false) {
        self.username = username
        self.secret = secret
        self.isIdentityToken = isIdentityToken
    }

    public var description: String { "\(username):***" }

    public var basicHeader: String { "Basic " + Base64.encode(Array("\(username):\(secret)".utf8)) }
}

/// Finds credentials the way the container tools do (containers-auth.json(5), then Docker's):
/// `--creds`, then `--authfile` / `$REGISTRY_AUTH_FILE`, then podman's and skopeo's own
/// (`$XDG_RUNTIME_DIR/containers/auth.json`, root's `/run/containers/0/auth.json` without it,
/// `~/.config/containers/auth.json`), then `$DOCKER_CONFIG/config.json` or
/// `~/.docker/config.json` (`auths` with `auth` or `identitytoken`, `credHelpers`, `credsStore`).
public struct CredentialLookup: Sendable {
    public var creds: String?
    public var authFile: String?
    public var environment: [String: String]

    public init(creds: String?, authFile: String?, environment: [String: String]) {
        self.creds = creds
        self.authFile = authFile
        self.environment = environment
    }

    /// The files searched, in order.
    var files: [String] {
        var list: [String] = []
        if let a = authFile ?? environment["REGISTRY_AUTH_FILE"], !a.isEmpty { list.append(a) }
        // Where `podman login` writes (`skopeo login` too).
        if let x = environment["XDG_RUNTIME_DIR"], !x.isEmpty {
            list.append(x + "/containers/auth.json")
        } else if getuid() == 0 {
            list.append("/run/containers/0/auth.json")
        }
        if let h = environment["HOME"], !h.isEmpty { list.append(h + "/.config/containers/auth.json") }
        if let d = environment["DOCKER_CONFIG"], !d.isEmpty {
            list.append(d + "/config.json")
        } else if let h = environment["HOME"], !h.isEmpty {
            list.append(h + "/.docker/config.json")
        }
        return list
    }

    public func credential(for ref: RegistryReference) throws -> Credential? {
        if let c = creds {
            guard let colon = c.firstIndex(of: ":"), colon != c.startIndex else {
                throw RegistryError.usage("--creds takes USER:PASSWORD")
            }
            return Credential(username: String(c[..<colon]), secret: String(c[c.index(after: colon)...]))
        }
        for file in files where FileManager.default.fileExists(atPath: file) {
            let config: JSONValue
            do {
                config = try JSONValue.parse(Array(try Data(contentsOf: URL(fileURLWithPath: file))))
            } catch {
                throw RegistryError.usage("\(file): not a readable JSON auth file (\(error))")
            }
            if let c = try credential(in: config, file: file, for: ref) { return c }
        }
        return nil
    }

    /// The names a registry may be stored under in `auths` (Docker Hub has several).
    static func aliases(_ host: String) -> [String] {
        host == RegistryReference.dockerHub
            ? ["docker.io", "index.docker.io", "registry-1.docker.io", "https://index.docker.io/v1/"] : [host]
    }

    static func normalisedKey(_ key: String) -> String {
        var k = Substring(key)
        for p in ["https://", "http://"] where k.hasPrefix(p) { k = k.dropFirst(p.count) }
        if k.hasSuffix("/") { k = k.dropLast() }
        if k == "index.docker.io/v1" { return RegistryReference.dockerHub }
        return String(k)
    }

    func credential(in config: JSONValue, file: String, for ref: RegistryReference) throws -> Credential? {
        let hosts = Set(Self.aliases(ref.host).map(Self.normalisedKey))
        // Helpers named for this registry win over stored entries.
        if let helpers = config["credHelpers"]?.objectValue {
            for (key, helper) in helpers where hosts.contains(Self.normalisedKey(key)) {
                if let name = helper.stringValue, let c = try runHelper(name, serverURL: key) { return c }
            }
        }
        if let auths = config["auths"]?.objectValue {
            // The longest matching key wins: `host/namespace` entries (containers auth.json) before `host`.
            let candidates = auths.filter { key, _ in
                let k = Self.normalisedKey(key)
                if hosts.contains(k) { return true }
                return hosts.contains { h in
                    let full = h + "/" + ref.repository
                    return full == k || full.hasPrefix(k + "/")
                }
            }.sorted { Self.normalisedKey($0.0).count > Self.normalisedKey($1.0).count }
            for (key, entry) in candidates {
                if let token = entry["identitytoken"]?.stringValue, !token.isEmpty {
                    return Credential(username: "<token>", secret: token, isIdentityToken: true)
                }
                if let auth = entry["auth"]?.stringValue, !auth.isEmpty {
                    guard let raw = Base64.decode(auth), let text = String(bytes: raw, encoding: .utf8),
                        let colon = text.firstIndex(of: ":")
                    else {
                        throw RegistryError.usage("\(file): the auth entry for \(key) is not base64 of USER:PASSWORD")
                    }
                    return Credential(
                        username: String(text[..<colon]), secret: String(text[text.index(after: colon)...]))
                }
                if let u = entry["username"]?.stringValue, let p = entry["password"]?.stringValue {
                    return Credential(username: u, secret: p)
                }
            }
        }
        if let store = config["credsStore"]?.stringValue, !store.isEmpty {
            let server = ref.host == RegistryReference.dockerHub ? "https://index.docker.io/v1/" : ref.host
            return try runHelper(store, serverURL: server)
        }
        return nil
    }

    /// `docker-credential-NAME get`, server URL on stdin, JSON on stdout. "Not found" is nil.
    func runHelper(_ name: String, serverURL: String) throws -> Credential? {
        let exe = "docker-credential-" + name
        let path = (environment["PATH"] ?? "/usr/local/bin:/usr/bin:/bin").split(separator: ":")
            .map { "\($0)/\(exe)" }.first { FileManager.default.isExecutableFile(atPath: $0) }
        guard let path else { throw RegistryError.usage("credential helper \(exe) is not on PATH") }
        let (status, out) = try runHelperProcess(path, input: serverURL + "\n")
        if status != 0 {
            if String(decoding: out, as: UTF8.self).lowercased().contains("credentials not found") { return nil }
            throw RegistryError.usage("\(exe) get failed for \(serverURL) (exit \(status))")
        }
        guard let j = try? JSONValue.parse(out), let user = j["Username"]?.stringValue,
            let secret = j["Secret"]?.stringValue
        else {
            throw RegistryError.usage("\(exe) get: output is not {\"Username\",\"Secret\"} JSON")
        }
        return Credential(username: user, secret: secret, isIdentityToken: user == "<token>")
    }
}

/// Runs `path get` with `input` on stdin; returns the exit status and stdout. posix_spawn with
/// a clean signal mask and waitpid, so that it works from any thread whatever its mask.
private func runHelperProcess(_ path: String, input: String) throws -> (Int32, [UInt8]) {
    var inPipe: [Int32] = [0, 0], outPipe: [Int32] = [0, 0]
    guard pipe(&inPipe) == 0, pipe(&outPipe) == 0 else { throw RegistryError.usage("cannot create a pipe for \(path)") }
    var actions = posix_spawn_file_actions_t()
    posix_spawn_file_actions_init(&actions)
    defer { posix_spawn_file_actions_destroy(&actions) }
    posix_spawn_file_actions_adddup2(&actions, inPipe[0], 0)
    posix_spawn_file_actions_adddup2(&actions, outPipe[1], 1)
    posix_spawn_file_actions_addopen(&actions, 2, "/dev/null", O_WRONLY, 0)
    for fd in inPipe + outPipe { posix_spawn_file_actions_addclose(&actions, fd) }
    var attr = posix_spawnattr_t()
    posix_spawnattr_init(&attr)
    defer { posix_spawnattr_destroy(&attr) }
    var none = sigset_t()
    sigemptyset(&none)
    posix_spawnattr_setsigmask(&attr, &none)
    posix_spawnattr_setflags(&attr, Int16(POSIX_SPAWN_SETSIGMASK))
    let argv = [strdup(path), strdup("get"), nil]
    defer { argv.forEach { free($0) } }
    var pid: pid_t = 0
    let rc = posix_spawn(&pid, path, &actions, &attr, argv, environ)
    close(inPipe[0])
    close(outPipe[1])
    guard rc == 0 else {
        close(inPipe[1])
        close(outPipe[0])
        throw RegistryError.usage("\(path): cannot run: \(String(cString: strerror(rc)))")
    }
    // A helper that exits without reading stdin must not kill stamp with SIGPIPE: block it on
    // this thread for the write and discard one that is pending.
    var pipeSet = sigset_t(), old = sigset_t()
    sigemptyset(&pipeSet)
    sigaddset(&pipeSet, SIGPIPE)
    pthread_sigmask(SIG_BLOCK, &pipeSet, &old)
    let wrote = input.withCString { write(inPipe[1], $0, strlen($0)) }
    if wrote < 0 && errno == EPIPE {
        var zero = timespec(tv_sec: 0, tv_nsec: 0)
        _ = sigtimedwait(&pipeSet, nil, &zero)
    }
    pthread_sigmask(SIG_SETMASK, &old, nil)
    close(inPipe[1])
    var out: [UInt8] = []
    var buf = [UInt8](repeating: 0, count: 4096)
    while true {
        let n = read(outPipe[0], &buf, buf.count)
        if n < 0 && errno == EINTR { continue }
        if n <= 0 { break }
        out += buf[0..<n]
        if out.count > 1 << 20 { break }
    }
    close(outPipe[0])
    var status: Int32 = 0
    while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
    return ((status & 0x7f) == 0 ? (status >> 8) & 0xff : 128 + (status & 0x7f), out)
}

/// `WWW-Authenticate: Bearer realm="…",service="…",scope="…"` (or Basic).
struct Challenge: Equatable {
    var scheme: String
    var params: [String: String]

    static func parse(_ header: String) -> Challenge? {
        let h = header.trimmingCharacters(in: .whitespaces)
        guard let space = h.firstIndex(of: " ") else {
            return h.isEmpty ? nil : Challenge(scheme: h.lowercased(), params: [:])
        }
        let scheme = h[..<space].lowercased()
        var params: [String: String] = [:]
        var rest = Substring(h[h.index(after: space)...])
        while !rest.isEmpty {
            rest = rest.drop { $0 == " " || $0 == "," }
            guard let eq = rest.firstIndex(of: "=") else { break }
            let key = rest[..<eq].trimmingCharacters(in: .whitespaces).lowercased()
            rest = rest[rest.index(after: eq)...]
            var value = ""
            if rest.first == "\"" {
                rest = rest.dropFirst()
                var escaped = false
                while let c = rest.first {
                    rest = rest.dropFirst()
                    if escaped {
                        value.append(c)
                        escaped = false
                        continue
                    }
                    if c == "\\" {
                        escaped = true
                        continue
                    }
                    if c == "\"" { break }
                    value.append(c)
                }
            } else {
                let end = rest.firstIndex(of: ",") ?? rest.endIndex
                value = rest[..<end].trimmingCharacters(in: .whitespaces)
                rest = rest[end...]
            }
            params[key] = value
        }
        return Challenge(scheme: scheme, params: params)
    }
}

/// Percent-encoding for query values (RFC 3986 unreserved kept).
func queryEscape(_ s: String) -> String {
    var out = ""
    for b in s.utf8 {
        if (48...57).contains(b) || (65...90).contains(b) || (97...122).contains(b) || "-._~".utf8.contains(b) {
            out.append(Character(UnicodeScalar(b)))
        } else {
            out += "%" + String(b, radix: 16, uppercase: true).leftPadded(2)
        }
    }
    return out
}

extension String {
    func leftPadded(_ n: Int) -> String { count >= n ? self : String(repeating: "0", count: n - count) + self }
}
