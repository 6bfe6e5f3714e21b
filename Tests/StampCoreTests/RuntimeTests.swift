import Foundation
import Testing
import TestSupport
import OCI

/// stamp's output run by real container runtimes: Debian's podman (rootful, runc, cgroupfs, a
/// storage of its own under the test's temp folder) and Debian's dockerd (started here on a
/// private socket and data root, no iptables, no bridge, stopped at the end). The bases come from
/// `scripts/runtime_images.py` (a Debian root file system made by mmdebstrap with node and curl
/// and a user `app` owning /app, and a busybox-only one), built once and cached outside the clone.
///
/// The suite skips, with one line, only where this machine cannot run a container at all (the
/// unstamped base does not start) or where the base cannot be made (no Debian mirror).
enum Runtime {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().path

    /// node, busybox, multi → base archive; or why there are none.
    static let bases: Result<[String: String], Unavailable> = {
        do {
            let r = try run(["python3", root + "/scripts/runtime_images.py"])
            if r.status == 77 {
                return .failure(
                    Unavailable(
                        reason:
                            "runtime base images cannot be made here: "
                            + "\(r.err.trimmingCharacters(in: .whitespacesAndNewlines))"
                    ))
            }
            guard r.status == 0 else {
                return .failure(Unavailable(reason: "runtime_images.py exited \(r.status): \(r.err.suffix(2000))"))
            }
            let j = try JSONValue.parse(Array(r.out.utf8))
            return .success(j.stringMap)
        } catch {
            return .failure(Unavailable(reason: "\(error)"))
        }
    }()

    struct Unavailable: Error, CustomStringConvertible {
        var reason: String
        var description: String { reason }
    }

    static func base(_ name: String) throws -> String {
        switch bases {
        case .success(let b): return try #require(b[name])
        case .failure(let e): throw e
        }
    }

    /// A podman with a storage of its own in the test cache (not the machine's; the base layers
    /// stay there between runs, and what a run loads is pruned by the next). podman refuses a
    /// run root longer than 50 characters.
    static let podmanStorage: String = {
        let env = ProcessInfo.processInfo.environment
        let cache =
            env["STAMP_TEST_CACHE"].flatMap { $0.isEmpty ? nil : $0 } ?? (NSHomeDirectory() + "/.cache/stamp-test")
        return cache + "/runtime/podman"
    }()
    static var podman: [String] {
        [
            "podman", "--root", podmanStorage, "--runroot", "/tmp/stamp-test-podman-run", "--runtime", "runc",
            "--cgroup-manager", "cgroupfs",
            "--events-backend", "file",
        ]
    }
    static let runFlags = ["--network", "host", "--ulimit", "nofile=4096:4096", "--ulimit", "nproc=4096:4096"]

    /// Why containers cannot run here, or nil when the unstamped busybox base starts under podman.
    /// A missing podman is a failure, not a reason to skip (the Makefile installs it).
    static let refusal: String? = {
        guard case .success(let b) = bases, let busybox = b["busybox"] else {
            if case .failure(let e) = bases, e.reason.hasPrefix("runtime base images cannot be made") {
                return e.reason
            }
            return nil
        }
        // What an earlier run left: its containers, and images no tag names any more.
        _ = try? run(podman + ["rm", "-a", "-f", "-t", "0"])
        _ = try? run(podman + ["image", "prune", "-f"])
        guard let load = try? run(podman + ["load", "-q", "-i", busybox]), load.status == 0 else { return nil }
        guard
            let r = try? run(
                podman + ["run", "--rm"] + runFlags + ["stamp-runtime/busybox:base", "/bin/sh", "-c", ":"])
        else { return nil }
        if r.status == 0 { return nil }
        let reason = "the kernel refuses containers here: \(r.err.split(separator: "\n").last ?? "podman run failed")"
        print("runtime tests skipped: \(reason)")
        return reason
    }()

    static var canRun: Bool { refusal == nil }

    /// Waits until `url` answers 200 (the app is up), at most `seconds`.
    static func waitFor(_ url: String, seconds: Int = 30) -> Bool {
        for _ in 0..<(seconds * 5) {
            if (try? run(["curl", "-fsS", "-o", "/dev/null", "--max-time", "1", url]))?.status == 0 { return true }
            usleep(200_000)
        }
        return false
    }

    /// Health-check settings that let a stopped app turn unhealthy in seconds.
    /// (The probe gives up 2s before the timeout; a loaded 2-core machine needs the rest.)
    static let fastHealth = [
        "--health-interval", "1s", "--health-timeout", "5s", "--health-retries", "2", "--health-start-period", "0s",
    ]

    /// Stamps `base` into `output` (a transport:path), with the fast health check.
    static func stampImage(_ base: String, _ output: String, version: String, tag: String, extra: [String] = []) throws
        -> RunResult
    {
        try stamp(
            [
                "build", "--base", base, "--output", output, "--version", version, "--tag", tag, "--created",
                "2025-04-05T00:00:00Z",
                "--revision", "0123456789abcdef0123456789abcdef01234567",
            ] + fastHealth + extra)
    }

    /// Owner, group, mode and writability of the app's folders, as the image's user sees them.
    static let folderProbe =
        "for d in /app /app/server /app/server/public /app/server/storage; do "
        + "echo \"$(stat -c '%u:%g %a' \"$d\") $d $(touch \"$d/.probe\" 2>/dev/null && echo writable || echo "
        + "read-only)\"; done"
}

/// One runtime at a time: two images loading at once on two cores make health checks time out.
@Suite(.serialized, .enabled(if: Runtime.canRun, "containers cannot run here"))
struct RuntimeTests {}

extension RuntimeTests {
    @Suite struct PodmanTests {
        let dir: String
        init() throws { dir = try tempDir() }

        func podman(_ args: [String]) throws -> RunResult { try run(Runtime.podman + args) }

        /// Loads `archive`, starts the image with the app on a free port, runs `body`, removes it.
        func withContainer(_ archive: String, image: String, _ body: (String, Int) throws -> Void) throws {
            let load = try podman(["load", "-q", "-i", archive])
            try #require(load.status == 0, "podman load: \(load.err)")
            let port = freePort()
            let r = try podman(["run", "-d", "-e", "SERVER_PORT=\(port)"] + Runtime.runFlags + [image])
            try #require(r.status == 0, "podman run: \(r.err)")
            let id = r.out.trimmingCharacters(in: .whitespacesAndNewlines)
            defer { _ = try? podman(["rm", "-f", "-t", "0", id]) }
            #expect(Runtime.waitFor("http://127.0.0.1:\(port)/api/ping"), "the app did not answer /api/ping")
            try body(id, port)
        }

        @Test func nodeImageKeepsFolderOwnersAndItsHealthCheckRuns() throws {
            let base = try Runtime.base("node")
            let out = dir + "/node-v2.tar"
            let b = try Runtime.stampImage(
                "docker-archive:" + base, "oci-archive:" + out, version: "v2.0.1-rt", tag: "stamp-runtime/node:v2")
            try #require(b.status == 0, "stamp build: \(b.err)")
            // Docker in, Docker out: the manifest podman reads its Healthcheck from.
            #expect(try stamp(["inspect", "--json", out]).out.contains(MediaType.dockerManifest))

            try #require(try podman(["load", "-q", "-i", base]).status == 0)
            try #require(try podman(["load", "-q", "-i", out]).status == 0)
            let before = try podman(
                ["run", "--rm"] + Runtime.runFlags + ["stamp-runtime/node:base", "sh", "-c", Runtime.folderProbe])
            let after = try podman(
                ["run", "--rm"] + Runtime.runFlags + ["stamp-runtime/node:v2", "sh", "-c", Runtime.folderProbe])
            #expect(before.status == 0 && after.status == 0, "\(before.err) \(after.err)")
            #expect(
                after.out == before.out,
                "folders changed owner or mode under podman:\nbase:\n\(before.out)stamped:\n\(after.out)")
            #expect(after.out.contains("1000:1000 775 /app writable"), "\(after.out)")
            #expect(after.out.contains("1000:1000 775 /app/server writable"), "\(after.out)")
            #expect(after.out.contains("1000:1000 755 /app/server/public writable"), "\(after.out)")

            try withContainer(out, image: "stamp-runtime/node:v2") { id, port in
                let hc = try podman(["healthcheck", "run", id])
                #expect(hc.status == 0, "podman healthcheck run: \(hc.out) \(hc.err)")
                let script = try podman(["exec", id, "/app/health-check-enhanced.sh"])
                let lines = script.out.split(separator: "\n")
                #expect(script.status == 0 && lines.count == 1, "\(script.out)\(script.err)")
                let report = try JSONValue.parse(Array((lines.first ?? "").utf8))
                #expect(report["status"]?.stringValue == "pass")
                #expect(report["version"]?.stringValue == "v2.0.1-rt")
                let served = try run(["curl", "-fsS", "http://127.0.0.1:\(port)/version.json"])
                #expect(
                    try JSONValue.parse(Array(served.out.utf8))["version"]?.stringValue == "v2.0.1-rt", "\(served.err)")

                // The app stopped: the check fails within its timeout (5s) and says so.
                #expect(try podman(["kill", "-s", "STOP", id]).status == 0)
                let start = Date()
                let sick = try podman(["healthcheck", "run", id])
                #expect(sick.status != 0 && sick.out.contains("unhealthy"), "\(sick.out) \(sick.err)")
                #expect(
                    Date().timeIntervalSince(start) < 10, "the failing check took \(Date().timeIntervalSince(start))s")
            }
        }

        @Test func dockerArchiveOutputIsReadAsDockerFormat() throws {
            let out = dir + "/node-v3.tar"
            let b = try Runtime.stampImage(
                "docker-archive:" + (try Runtime.base("node")), "docker-archive:" + out, version: "v3",
                tag: "stamp-runtime/node:v3")
            try #require(b.status == 0, "stamp build: \(b.err)")
            let names = try run(["bsdtar", "-tf", out]).out.split(separator: "\n")
            #expect(
                !names.contains("index.json") && !names.contains("oci-layout"),
                "a docker-archive output holds no OCI layout")
            try withContainer(out, image: "stamp-runtime/node:v3") { id, _ in
                let hc = try podman(["healthcheck", "run", id])
                #expect(hc.status == 0, "podman healthcheck run: \(hc.out) \(hc.err)")
                let who = try podman(["exec", id, "sh", "-c", Runtime.folderProbe])
                #expect(who.out.contains("1000:1000 775 /app writable"), "\(who.out)")
            }
        }

        /// What the README's runtime table says of podman: an OCI-format config's Healthcheck is not
        /// read (the reason stamp keeps a Docker base in Docker format).
        @Test func ociFormatHealthcheckIsNotSeenByPodman() throws {
            let out = dir + "/node-oci.tar"
            let b = try Runtime.stampImage(
                "docker-archive:" + (try Runtime.base("node")), "oci-archive:" + out, version: "v6-oci",
                tag: "stamp-runtime/node:v6", extra: ["--format", "oci"])
            try #require(b.status == 0, "stamp build: \(b.err)")
            try withContainer(out, image: "stamp-runtime/node:v6") { id, _ in
                let hc = try podman(["healthcheck", "run", id])
                #expect(
                    hc.status != 0 && hc.err.contains("no defined healthcheck"),
                    "podman now reads OCI healthchecks: update the README's table. \(hc.out) \(hc.err)")
                // The script itself is there and works when run by hand.
                let script = try podman(["exec", id, "/app/health-check-enhanced.sh"])
                #expect(script.status == 0, "\(script.out)\(script.err)")
            }
        }

        /// Issue 27, point 14: a base committed by `buildah commit --format docker` carries Docker's
        /// legacy `container_config`, whose Healthcheck podman 4.3 reads: stamp's Healthcheck must
        /// be there too, and podman must run stamp's check, not the base's (which always fails).
        @Test func aBuildahDockerFormatBaseRunsStampsHealthCheck() throws {
            let storage = ["--storage-driver", "vfs", "--root", dir + "/buildah", "--runroot", dir + "/buildah-run"]
            let from = try run(["buildah"] + storage + ["from", "docker-archive:" + (try Runtime.base("node"))])
            try #require(from.status == 0, "buildah from: \(from.err)")
            let ctr = from.out.trimmingCharacters(in: .whitespacesAndNewlines)
            let cfg = try run(
                ["buildah"] + storage + ["config", "--healthcheck", "CMD-SHELL exit 1", "--label", "base=legacy", ctr])
            try #require(cfg.status == 0, "buildah config: \(cfg.err)")
            let commit = try run(["buildah"] + storage + ["commit", "--format", "docker", ctr, "localhost/legacy:1"])
            try #require(commit.status == 0, "buildah commit: \(commit.err)")
            let base = dir + "/legacy.tar"
            let push = try run(
                ["buildah"] + storage + ["push", "localhost/legacy:1", "docker-archive:\(base):localhost/legacy:1"])
            try #require(push.status == 0, "buildah push: \(push.err)")
            let baseConfig = try JSONValue.parse(
                Array(try run(["skopeo", "inspect", "--config", "--raw", "docker-archive:" + base]).out.utf8))
            try #require(
                baseConfig["container_config"]?["Healthcheck"] != nil,
                "buildah wrote no container_config Healthcheck: the case this test is for does not arise")

            let out = dir + "/legacy-stamped.tar"
            let b = try Runtime.stampImage(
                "docker-archive:" + base, "oci-archive:" + out, version: "v7-legacy", tag: "stamp-runtime/legacy:v7")
            try #require(b.status == 0, "stamp build: \(b.err)")
            let config = try JSONValue.parse(
                Array(try run(["skopeo", "inspect", "--config", "--raw", "oci-archive:" + out]).out.utf8))
            for key in ["config", "container_config"] {
                #expect(
                    config[key]?["Healthcheck"]?["Test"]?.arrayValue?.last?.stringValue
                        == "/app/health-check-enhanced.sh", "\(key)")
                #expect(
                    config[key]?["Labels"]?["org.opencontainers.image.version"]?.stringValue == "v7-legacy", "\(key)")
            }
            try withContainer(out, image: "stamp-runtime/legacy:v7") { id, _ in
                let hc = try podman(["healthcheck", "run", id])
                #expect(hc.status == 0, "podman ran the base's check, not stamp's: \(hc.out) \(hc.err)")
            }
        }

        @Test func busyboxOnlyBaseUsesBusyboxWget() throws {
            let out = dir + "/busybox.tar"
            let b = try Runtime.stampImage(
                "docker-archive:" + (try Runtime.base("busybox")), "oci-archive:" + out, version: "bb-1",
                tag: "stamp-runtime/busybox:bb1")
            try #require(b.status == 0, "a busybox-only base is buildable: \(b.err)")
            #expect(b.err.contains("busybox wget"), "the preflight says what the check will use: \(b.err)")
            try withContainer(out, image: "stamp-runtime/busybox:bb1") { id, _ in
                let hc = try podman(["healthcheck", "run", id])
                #expect(hc.status == 0, "podman healthcheck run: \(hc.out) \(hc.err)")
                let script = try podman(["exec", id, "/app/health-check-enhanced.sh"])
                #expect(
                    try JSONValue.parse(Array(script.out.utf8))["version"]?.stringValue == "bb-1",
                    "\(script.out)\(script.err)")
                let who = try podman(["exec", id, "sh", "-c", Runtime.folderProbe])
                #expect(who.out.contains("1000:1000 775 /app writable"), "\(who.out)")
            }
        }

        @Test func multiPlatformOutputRunsTheHostPlatform() throws {
            let out = dir + "/multi.tar"
            let b = try Runtime.stampImage(
                "oci-archive:" + (try Runtime.base("multi")), "oci-archive:" + out, version: "v4-multi",
                tag: "stamp-runtime/multi:v4")
            try #require(b.status == 0, "stamp build: \(b.err)")
            #expect(try stamp(["inspect", "--json", out]).out.contains(MediaType.dockerManifestList))
            try withContainer(out, image: "stamp-runtime/multi:v4") { id, _ in
                let hc = try podman(["healthcheck", "run", id])
                #expect(hc.status == 0, "podman healthcheck run: \(hc.out) \(hc.err)")
                let script = try podman(["exec", id, "/app/health-check-enhanced.sh"])
                #expect(
                    try JSONValue.parse(Array(script.out.utf8))["version"]?.stringValue == "v4-multi",
                    "\(script.out)\(script.err)")
            }
        }
    }

    /// Debian's dockerd, started for these tests and stopped after them.
    @Suite struct DockerdTests {
        @Test func dockerLoadsEveryFormRunsItAndSeesHealthChange() throws {
            let dir = try tempDir()
            let sock = dir + "/docker.sock"
            let daemon = try spawn(
                [
                    "dockerd", "--host", "unix://" + sock, "--data-root", dir + "/data", "--exec-root", dir + "/exec",
                    "--pidfile", dir + "/docker.pid", "--iptables=false", "--ip6tables=false", "--bridge=none",
                ],
                stdout: dir + "/dockerd.log", stderr: dir + "/dockerd.log")
            defer {
                kill(daemon, SIGTERM)
                _ = exitStatus(daemon)
                // dockerd leaves its network namespace bind-mounted in the exec root; unmounted,
                // the folder can go.
                _ = umount2(dir + "/exec/netns/default", 2)  // MNT_DETACH
                try? FileManager.default.removeItem(atPath: dir)
            }
            let docker = ["docker", "-H", "unix://" + sock]
            var up = false
            for _ in 0..<150 where !up {
                up = (try? run(docker + ["version"]))?.status == 0
                if !up { usleep(200_000) }
            }
            try #require(
                up,
                Comment(
                    rawValue: "dockerd did not start: "
                        + "\((try? String(contentsOfFile: dir + "/dockerd.log", encoding: .utf8))?.suffix(1500) ?? "")")
            )

            let node = "docker-archive:" + (try Runtime.base("node"))
            var outputs: [(String, String, String)] = []  // archive, image name, version
            // Docker format (the base's) as oci-archive and docker-archive, and OCI format (--format oci).
            for (form, version, extra) in [
                ("oci-archive", "v5-oci", []), ("docker-archive", "v5-docker", []),
                ("oci-archive", "v5-ociformat", ["--format", "oci"]),
            ] {
                let out = dir + "/\(version).tar"
                let b = try Runtime.stampImage(
                    node, "\(form):" + out, version: version, tag: "stamp-runtime/node:\(version)", extra: extra)
                try #require(b.status == 0, "stamp build: \(b.err)")
                outputs.append((out, "stamp-runtime/node:\(version)", version))
            }
            let multi = dir + "/multi.tar"
            let m = try Runtime.stampImage(
                "oci-archive:" + (try Runtime.base("multi")), "oci-archive:" + multi, version: "v5-multi",
                tag: "stamp-runtime/multi:v5")
            try #require(m.status == 0, "stamp build: \(m.err)")
            outputs.append((multi, "stamp-runtime/multi:v5", "v5-multi"))

            for (archive, image, version) in outputs {
                let load = try run(docker + ["load", "-i", archive])
                try #require(load.status == 0, "docker load \(archive): \(load.err)")
                #expect(load.out.contains(image), "docker load names \(image): \(load.out)")
                let port = freePort()
                let r = try run(docker + ["run", "-d", "--network", "host", "-e", "SERVER_PORT=\(port)", image])
                try #require(r.status == 0, "docker run: \(r.err)")
                let id = r.out.trimmingCharacters(in: .whitespacesAndNewlines)
                defer { _ = try? run(docker + ["rm", "-f", id]) }
                func health() throws -> String {
                    try run(docker + ["inspect", "--format", "{{.State.Health.Status}}", id]).out.trimmingCharacters(
                        in: .whitespacesAndNewlines)
                }
                func waitHealth(_ want: String, seconds: Int) throws -> String {
                    var h = ""
                    for _ in 0..<(seconds * 4) {
                        h = try health()
                        if h == want { break }
                        usleep(250_000)
                    }
                    return h
                }
                #expect(try waitHealth("healthy", seconds: 30) == "healthy", "\(image): never healthy")
                let who = try run(docker + ["exec", id, "sh", "-c", Runtime.folderProbe])
                #expect(
                    who.out.contains("1000:1000 775 /app writable")
                        && who.out.contains("1000:1000 775 /app/server writable"),
                    "\(image) under dockerd: \(who.out)")
                let script = try run(docker + ["exec", id, "/app/health-check-enhanced.sh"])
                #expect(try JSONValue.parse(Array(script.out.utf8))["version"]?.stringValue == version, "\(script.out)")
                #expect(try run(docker + ["kill", "-s", "STOP", id]).status == 0)
                #expect(
                    try waitHealth("unhealthy", seconds: 30) == "unhealthy",
                    "\(image): still healthy with the app stopped")
            }
        }
    }
}
