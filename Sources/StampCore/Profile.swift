import OCI

/// Defaults for an image family. A profile only supplies defaults; flags and the config file
/// override every value (DESIGN §4).
public struct Profile: Sendable, Equatable {
    public var name: String
    /// Where `version.txt` goes (absolute path in the image), nil for none.
    public var versionFile: String?
    /// Where `version.json` goes, nil for none.
    public var versionJSON: String?
    /// The upstream image's repository, used to name the base when the source does not.
    public var imageName: String?
    /// App facts later stages use (health check, assets).
    public var port: Int?
    public var healthPath: String?
    public var assetRoot: String?
    /// Where the enhanced health check goes; nil for none.
    public var healthScript: String?
    /// The app's dotenv file, read by the health check when SERVER_PORT is not set.
    public var envFile: String?
    /// Frontend files that keep their names (globs relative to the asset root).
    public var assetKeep: [String] = []
    /// Files outside the asset root that reference assets (server code writing HTML).
    public var rewriteFiles: [String] = []

    public static let anythingLLM = Profile(
        name: "anything-llm", versionFile: "/app/version.txt", versionJSON: "/app/version.json",
        imageName: "docker.io/mintplexlabs/anything-llm", port: AppFacts.anythingLLM.port,
        healthPath: AppFacts.anythingLLM.healthPath,
        assetRoot: "/app/server/public",
        healthScript: AppFacts.anythingLLM.healthScript, envFile: AppFacts.anythingLLM.settingsFile,
        // The chat widget is embedded by other sites under a fixed URL.
        assetKeep: ["embed/**"],
        rewriteFiles: ["/app/server/utils/boot/MetaGenerator.js"])

    public static let generic = Profile(name: "generic", versionFile: nil, versionJSON: nil, imageName: nil)

    public static let all = [anythingLLM, generic]

    public static func named(_ n: String) -> Profile? { all.first { $0.name == n } }
}

extension StampPlan {
    /// The facts of this build's app, for the records: the profile's, with the health check
    /// this build wrote (or none).
    public var appFacts: AppFacts {
        var f = AppFacts.named(profile.name) ?? AppFacts(profile: profile.name)
        f.port = health?.port ?? profile.port
        f.healthPath = health?.path ?? profile.healthPath
        f.healthScript = health?.scriptPath
        if let h = health {
            func seconds(_ ns: Int64) -> Int { Int((ns + 999_999_999) / 1_000_000_000) }
            f.interval = seconds(h.interval)
            f.timeout = seconds(h.timeout)
            f.startPeriod = seconds(h.startPeriod)
            f.retries = h.retries
        }
        return f
    }
}
