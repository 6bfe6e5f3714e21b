// swift-tools-version:6.0
import PackageDescription

let package = Package(
    name: "stamp",
    // Linux only (glibc, /proc, Debian's C libraries); no platforms to claim.
    products: [
        .executable(name: "stamp", targets: ["stamp"]),
        .library(name: "StampCore", targets: ["StampCore"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/jpsim/Yams", from: "6.2.2"),
        .package(url: "https://github.com/swift-server/async-http-client", from: "1.37.0"),
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-nio-ssl", from: "2.37.6"),
    ],
    targets: [
        // C libraries from Debian's -dev packages.
        .systemLibrary(
            name: "CArchive", pkgConfig: "libarchive",
            providers: [.apt(["libarchive-dev"])]),
        .systemLibrary(
            name: "CCrypto", pkgConfig: "libcrypto",
            providers: [.apt(["libssl-dev"])]),
        // Intel's ISA-L: gzip inflate at 2-3x zlib's speed, for reading base layers.
        .systemLibrary(
            name: "CIsal", pkgConfig: "libisal",
            providers: [.apt(["libisal-dev"])]),
        // libdeflate: whole-buffer deflate at 3-4x zlib's speed (and a better ratio), for the
        // blocks of the new layer. Linked statically (Debian's libdeflate-dev ships the .a, see
        // Layers' linker settings): the layer's bytes depend on libdeflate's version, so they are
        // stamp's, not the runner's (Debian 12 has 1.14, Ubuntu 22.04 1.10, 24.04 1.19).
        .systemLibrary(
            name: "CDeflate",
            providers: [.apt(["libdeflate-dev"])]),

        // What kind of failure an error is (retry and exit status are decided from it). No deps.
        .target(name: "Failures", dependencies: []),
        // SHA-256/384 over OpenSSL; the only importer of CCrypto.
        .target(name: "Hashing", dependencies: ["CCrypto"]),
        // Bytes and files: byte sources and sinks, files written atomically, paths, temporary
        // files removed on interrupt, the parallel map. No C library.
        .target(name: "IO", dependencies: ["Failures", "Hashing"]),
        // The OCI spec: descriptors, media types, references, lossless JSON. No files, no C.
        .target(name: "OCI", dependencies: ["Failures"]),
        // Tar reading/writing, compression; the only importer of CArchive.
        .target(
            name: "Layers", dependencies: ["CArchive", "CIsal", "CDeflate", "Failures", "Hashing", "IO", "OCI"],
            linkerSettings: [.linkedLibrary(":libdeflate.a")]),
        // Content-hashed frontend assets: names, references, manifest, verification. No C.
        .target(name: "Assets", dependencies: ["Failures", "Hashing", "IO", "OCI"]),
        // The OCI Distribution API: pull, push, auth, retries. The only importer of the HTTP stack.
        .target(
            name: "Registry",
            dependencies: [
                "Failures", "OCI", "Hashing", "IO",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
            ]),
        // stamp canary: Kubernetes manifests for a canary beside stable, and the folder's edits.
        .target(
            name: "Canary",
            dependencies: [
                "Failures", "Hashing", "IO", "OCI", "Registry", "Templates", .product(name: "Yams", package: "Yams"),
            ]),
        // Rendered text: health-check script, Dockerfile. No C.
        .target(name: "Templates", dependencies: []),
        // The pipeline: plan, profiles, sources, destinations, stamper, inspect, verify.
        .target(
            name: "StampCore",
            dependencies: [
                "Failures", "OCI", "IO", "Layers", "Hashing", "Templates", "Assets", "Registry",
                .product(name: "Yams", package: "Yams"),
            ]),
        // Commands; thin.
        .target(
            name: "StampCLI",
            dependencies: [
                "StampCore", "Assets", "Canary", "Failures", "OCI", "IO", "Registry", "Layers", "Hashing",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            plugins: ["CommitInfo"]),
        // `stamp version`'s commit: written before each build from `git rev-parse HEAD`.
        .plugin(name: "CommitInfo", capability: .buildTool()),
        .executableTarget(name: "stamp", dependencies: ["StampCLI"]),
        // A seeded mutation fuzzer of the parsers of untrusted input (`make fuzz`).
        .executableTarget(name: "stamp-fuzz", dependencies: ["StampCore", "Assets", "Canary", "IO", "Layers", "OCI"]),

        // What every test target shares: the folder a test run's files go in, removed at exit.
        .target(name: "TestSupport", path: "Tests/TestSupport"),
        .testTarget(name: "CanaryTests", dependencies: ["Canary", .product(name: "Yams", package: "Yams")]),
        .testTarget(name: "FailuresTests", dependencies: ["Failures"]),
        .testTarget(name: "HashingTests", dependencies: ["Hashing"]),
        .testTarget(name: "IOTests", dependencies: ["IO"]),
        .testTarget(name: "OCITests", dependencies: ["OCI"]),
        .testTarget(name: "RegistryTests", dependencies: ["Registry", "OCI", "TestSupport"]),
        .testTarget(name: "TemplatesTests", dependencies: ["Templates", "TestSupport"]),
        .testTarget(name: "AssetsTests", dependencies: ["Assets", "Hashing", "IO", "OCI", "TestSupport"]),
        .testTarget(name: "LayersTests", dependencies: ["Layers", "Hashing", "IO", "OCI", "TestSupport"]),
        .testTarget(
            name: "StampCoreTests",
            dependencies: [
                "StampCore", "Failures", "OCI", "IO", "Layers", "Hashing", "Templates", "Assets", "Registry",
                "TestSupport", "Canary", .product(name: "Yams", package: "Yams"),
            ],
            exclude: ["Fixtures"]),
    ]
)
