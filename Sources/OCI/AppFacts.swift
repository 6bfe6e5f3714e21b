/// What a stamped image's app needs from whoever runs it: its port and health check, where it
/// keeps state, who it runs as, which keys make its identity. `stamp build` writes it into its
/// records (the lock file's `output.app`, the metadata file's `stamp.app`, `build --json`'s
/// `app`); `stamp canary` reads it from there, so the two never hold separate copies of a
/// profile's defaults. The known profiles' facts are here and nowhere else.
public struct AppFacts: Codable, Sendable, Equatable {
    /// The profile the image was stamped with (`anything-llm`, `generic`).
    public var profile: String
    /// The port the app serves HTTP on (the health check's), if known.
    public var port: Int?
    /// The path that answers 200 when the app is up.
    public var healthPath: String?
    /// The stamped health-check script in the image; nil when the build wrote none.
    public var healthScript: String?
    /// The image's Healthcheck timing, in whole seconds.
    public var interval: Int
    public var timeout: Int
    public var startPeriod: Int
    public var retries: Int
    /// The folder the app keeps its data in (a database, uploads), nil for a stateless app.
    public var storagePath: String?
    /// The environment variable that tells the app that folder (anything-llm: STORAGE_DIR).
    public var storageEnv: String?
    /// A file the app writes its settings to at run time (anything-llm: its UI writes
    /// /app/server/.env); persisted beside the data when set.
    public var settingsFile: String?
    /// The environment variable that carries the port (anything-llm: SERVER_PORT).
    public var portEnv: String?
    /// The numeric user and group the app runs as (Pod Security "restricted" wants a number).
    public var uid: Int?
    public var gid: Int?
    /// Keys both versions must share (sessions signed on one are checked by the other).
    public var identityKeys: [String]
    /// Keys read when present (anything-llm: AUTH_TOKEN, its single-user password).
    public var optionalIdentityKeys: [String]
    /// The app keeps its users and its auth mode in its database: an empty one accepts every
    /// request unless `authKey` is set.
    public var authInDatabase: Bool
    /// The key that closes an empty instance (anything-llm: AUTH_TOKEN).
    public var authKey: String?
    /// Memory and CPU requests and limits that suit the app (Kubernetes quantities).
    public var memoryRequest: String?
    public var memoryLimit: String?
    public var cpuRequest: String?
    public var cpuLimit: String?

    public init(
        profile: String, port: Int? = nil, healthPath: String? = nil, healthScript: String? = nil,
        interval: Int = 30, timeout: Int = 10, startPeriod: Int = 60, retries: Int = 3
    ) {
        self.profile = profile
        self.port = port
        self.healthPath = healthPath
        self.healthScript = healthScript
        self.interval = interval
        self.timeout = timeout
        self.startPeriod = startPeriod
        self.retries = retries
        identityKeys = []
        optionalIdentityKeys = []
        authInDatabase = false
    }

    /// anything-llm (mintplexlabs/anything-llm): a Node server on 3001, health at /api/ping,
    /// SQLite, documents and vectors under STORAGE_DIR, UI settings in /app/server/.env, uid 1000.
    public static let anythingLLM: AppFacts = {
        var f = AppFacts(
            profile: "anything-llm", port: 3001, healthPath: "/api/ping",
            healthScript: "/app/health-check-enhanced.sh")
        f.storagePath = "/app/server/storage"
        f.storageEnv = "STORAGE_DIR"
        f.settingsFile = "/app/server/.env"
        f.portEnv = "SERVER_PORT"
        f.uid = 1000
        f.gid = 1000
        f.identityKeys = ["JWT_SECRET", "SIG_KEY", "SIG_SALT"]
        f.optionalIdentityKeys = ["AUTH_TOKEN"]
        f.authInDatabase = true
        f.authKey = "AUTH_TOKEN"
        // Measured idle around 300 MB; embedding documents in-process peaks well above.
        f.memoryRequest = "512Mi"
        f.memoryLimit = "2Gi"
        f.cpuRequest = "250m"
        f.cpuLimit = "2"
        return f
    }()

    public static let generic = AppFacts(profile: "generic")

    public static let known = [anythingLLM, generic]

    public static func named(_ name: String) -> AppFacts? { known.first { $0.profile == name } }

    /// The form the records carry.
    public var json: JSONValue {
        var pairs: [(String, JSONValue)] = [("profile", .string(profile))]
        func add(_ k: String, _ v: String?) { if let v { pairs.append((k, .string(v))) } }
        func add(_ k: String, _ v: Int?) { if let v { pairs.append((k, JSONValue(Int64(v)))) } }
        add("port", port)
        add("healthPath", healthPath)
        add("healthScript", healthScript)
        add("interval", interval)
        add("timeout", timeout)
        add("startPeriod", startPeriod)
        add("retries", retries)
        add("storagePath", storagePath)
        add("storageEnv", storageEnv)
        add("settingsFile", settingsFile)
        add("portEnv", portEnv)
        add("uid", uid)
        add("gid", gid)
        pairs.append(("identityKeys", .array(identityKeys.map { .string($0) })))
        pairs.append(("optionalIdentityKeys", .array(optionalIdentityKeys.map { .string($0) })))
        pairs.append(("authInDatabase", .bool(authInDatabase)))
        add("authKey", authKey)
        add("memoryRequest", memoryRequest)
        add("memoryLimit", memoryLimit)
        add("cpuRequest", cpuRequest)
        add("cpuLimit", cpuLimit)
        return .object(pairs)
    }

    /// Reads the records' form; nil when `j` is not one.
    public init?(json j: JSONValue) {
        guard let profile = j["profile"]?.stringValue else { return nil }
        func int(_ k: String) -> Int? { j[k]?.int64Value.flatMap { Int(exactly: $0) } }
        func str(_ k: String) -> String? { j[k]?.stringValue }
        func strings(_ k: String) -> [String] { (j[k]?.arrayValue ?? []).compactMap(\.stringValue) }
        self.init(
            profile: profile, port: int("port"), healthPath: str("healthPath"), healthScript: str("healthScript"),
            interval: int("interval") ?? 30, timeout: int("timeout") ?? 10, startPeriod: int("startPeriod") ?? 60,
            retries: int("retries") ?? 3)
        storagePath = str("storagePath")
        storageEnv = str("storageEnv")
        settingsFile = str("settingsFile")
        portEnv = str("portEnv")
        uid = int("uid")
        gid = int("gid")
        identityKeys = strings("identityKeys")
        optionalIdentityKeys = strings("optionalIdentityKeys")
        authInDatabase = j["authInDatabase"]?.boolValue ?? false
        authKey = str("authKey")
        memoryRequest = str("memoryRequest")
        memoryLimit = str("memoryLimit")
        cpuRequest = str("cpuRequest")
        cpuLimit = str("cpuLimit")
    }
}
