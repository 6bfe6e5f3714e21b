// stamp-fuzz: a seeded mutation fuzzer for stamp's parsers of untrusted input.
//
//   stamp-fuzz [--seconds N] [--seed S] [--corpus DIR] [--out DIR] [--slow µS-PER-BYTE] [TARGET...]
//
// Targets: tar (the streaming tar reader, gzip included), json (the lossless JSON parser: what
// parses must encode to a text that parses back to itself), assets (reference scanning, analysis
// and rewriting of a small frontend), yaml (a stamp.yaml), reference (image references, times,
// durations), canary (a canary folder's routing file: `weight` edits it, and what it would write
// must read back as that weight), answers (Prometheus query answers and version.json answers as
// `analyze` and `status` read them: a value that parses is finite). Each starts from the seeds in CORPUS/TARGET/ and mutates them (bit flips, bytes
// that parsers care about, cut, repeat, splice) with a PRNG seeded by --seed, so a run can be
// repeated exactly. A crash (trap or bad access) writes the input to OUT/crash-TARGET-N and
// exits 70; an input that takes over 2 s plus --slow µs a byte (200) writes OUT/slow-TARGET-N and exits 1 — each such
// file belongs in a test. Exit 0: nothing found in the time given.
import Assets
import Canary
import Foundation
import IO
import Layers
import OCI
import StampCore

struct SplitMix64 {
    var state: UInt64
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
    mutating func below(_ n: Int) -> Int { n <= 1 ? 0 : Int(next() % UInt64(n)) }
}

/// The input being tried, where a crash handler can write it out.
nonisolated(unsafe) var current = UnsafeMutableRawBufferPointer.allocate(byteCount: 1 << 22, alignment: 8)
nonisolated(unsafe) var currentCount = 0
nonisolated(unsafe) var crashPath: [CChar] = []

func installCrashHandler() {
    var action = sigaction()
    action.__sigaction_handler.sa_handler = { _ in
        let fd = open(crashPath, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        if fd >= 0 {
            _ = write(fd, current.baseAddress, currentCount)
            close(fd)
        }
        let msg = "stamp-fuzz: crash; the input is in the crash file\n"
        _ = msg.withCString { write(2, $0, strlen($0)) }
        _exit(70)
    }
    sigemptyset(&action.sa_mask)
    for sig in [SIGILL, SIGTRAP, SIGSEGV, SIGBUS, SIGFPE, SIGABRT] { sigaction(sig, &action, nil) }
}

let interesting: [UInt8] =
    Array("\0\u{7f}/.\"'`<>()=:;,{}[]\\$%+-*#@ \n0123456789".utf8) + [0xff, 0x80, 0xc3, 0xa9, 0xed, 0xa0]

func mutate(_ input: [UInt8], _ rng: inout SplitMix64, corpus: [[UInt8]]) -> [UInt8] {
    var b = input
    for _ in 0...rng.below(4) {
        switch rng.below(7) {
        case 0 where !b.isEmpty: b[rng.below(b.count)] ^= UInt8(1 << rng.below(8))
        case 1 where !b.isEmpty: b[rng.below(b.count)] = interesting[rng.below(interesting.count)]
        case 2 where !b.isEmpty:
            let at = rng.below(b.count), n = min(b.count - at, 1 + rng.below(64))
            b.removeSubrange(at..<(at + n))
        case 3 where !b.isEmpty:
            // Repeat a piece: what makes a scanner quadratic.
            let at = rng.below(b.count), n = min(b.count - at, 1 + rng.below(16))
            let piece = Array(b[at..<(at + n)])
            let times = 1 + rng.below(rng.below(4) == 0 ? 20_000 : 64)
            if b.count + piece.count * times < (1 << 18) {
                b.insert(contentsOf: Array([[UInt8]](repeating: piece, count: times).joined()), at: at)
            }
        case 4:
            b.insert(interesting[rng.below(interesting.count)], at: rng.below(b.count + 1))
        case 5 where !corpus.isEmpty:
            let other = corpus[rng.below(corpus.count)]
            if !other.isEmpty {
                let at = rng.below(other.count), n = min(other.count - at, 1 + rng.below(256))
                b.insert(contentsOf: other[at..<(at + n)], at: rng.below(b.count + 1))
            }
        default:
            if b.count > 8 { b.removeLast(rng.below(b.count / 2)) }
        }
    }
    return b
}

/// One input to one target; errors are the expected outcome of most inputs.
func run(_ target: String, _ input: [UInt8], scratch: String) {
    switch target {
    case "tar":
        guard let reader = try? LayerReader(source: MemorySource(input), mode: .tar, label: "fuzz") else { return }
        var entries = 0
        while entries < 100_000, let e = try? reader.next() {
            entries += 1
            _ = Path.clean(e.path)
            _ = Path.isSafeEntryName(e.path)
            if (try? reader.readData(into: NullSink())) == nil { break }
        }
        reader.drain()
    case "json":
        // What parses encodes to a text that parses back to the same text (duplicate keys: the
        // last wins, as the encoder writes them).
        guard let v = try? JSONValue.parse(input) else { return }
        let once = JSONValue.encode(v)
        guard let again = try? JSONValue.parse(once) else { fatalError("stamp's own JSON does not parse") }
        if JSONValue.encode(again) != once { fatalError("JSON did not survive encode and parse") }
    case "assets":
        let files = [
            AssetFile(path: "index.html", bytes: input), AssetFile(path: "assets/app.js", bytes: input),
            AssetFile(path: "assets/site.css", bytes: input), AssetFile(path: "img/logo.png", bytes: [1, 2, 3]),
        ]
        if let r = try? AssetHasher.hash(files) { _ = AssetVerifier.verify(r.files) }
    case "yaml":
        let path = scratch + "/stamp.yaml"
        guard (try? Data(input).write(to: URL(fileURLWithPath: path))) != nil else { return }
        if let s = try? StampSettings.load(file: path) {
            _ = try? StampPlan.resolve(s, environment: [:], gitRevision: { nil })
        }
    case "canary":
        canaryEdit(input, scratch: scratch)
    case "answers":
        if let v = try? CanaryAnalysis.value(ofAnswer: input), !v.isFinite {
            fatalError("a Prometheus answer gave \(v), which analyze must never judge")
        }
        _ = CanaryStatus.outcome(status: 200, contentType: "application/json", body: input)
        let header = String(decoding: input, as: UTF8.self)
        if let c = CanaryStatus.cookieValue(header, name: "anything-llm-version"), c.contains(";") {
            fatalError("a cookie value holds a ';': \(c)")
        }
    default:  // reference
        let s = String(decoding: input, as: UTF8.self)
        _ = try? ImageReference.parse(s)
        _ = try? RegistryReference.parse(s)
        _ = Timestamp.parse(s)
        var settings = StampSettings()
        settings.base = "oci-archive:/nonexistent.tar"
        settings.output = "out.tar"
        settings.version = s
        settings.healthInterval = s
        settings.created = s
        _ = try? StampPlan.resolve(settings, environment: [:], gitRevision: { nil })
    }
}

/// The canary target: a rendered Istio folder (Tests/Fuzz/canary-folder) whose
/// virtualservice.yaml is the input. When `weight` accepts it, the texts it would write must
/// give a folder that reads back as the weight asked for: an edit that reports success and
/// means something else is the defect (issue 27, points 1 and 2).
func canaryEdit(_ input: [UInt8], scratch: String) {
    let folder = scratch + "/canary"
    try? FileManager.default.removeItem(atPath: folder)
    guard (try? FileManager.default.copyItem(atPath: canaryFixture, toPath: folder)) != nil,
        (try? Data(input).write(to: URL(fileURLWithPath: folder + "/virtualservice.yaml"))) != nil,
        let f = try? CanaryFolder(path: folder)
    else { return }
    let want = ((f.weight ?? 0) + 37) % 101
    guard (try? f.setWeight(want)) != nil, let planned = try? f.plannedTexts() else { return }
    for (name, text) in planned {
        guard (try? Data(text.utf8).write(to: URL(fileURLWithPath: folder + "/" + name))) != nil else { return }
    }
    guard let again = try? CanaryFolder(path: folder) else {
        fatalError("weight \(want) would write a folder stamp cannot read back")
    }
    if again.weight != want {
        fatalError(
            "weight \(want) would write a folder that reads as weight \(again.weight.map(String.init) ?? "none")")
    }
}

// MARK: main

var seconds = 30.0, seed: UInt64 = 1, slow = 200.0
var corpusDir = "Tests/Fuzz/corpus", outDir = "."
/// The rendered folder the canary target edits: beside the corpus.
nonisolated(unsafe) var canaryFixture = ""
var targets: [String] = []
var args = CommandLine.arguments.dropFirst()
while let a = args.popFirst() {
    switch a {
    case "--seconds": seconds = Double(args.popFirst() ?? "") ?? seconds
    case "--seed": seed = UInt64(args.popFirst() ?? "") ?? seed
    case "--corpus": corpusDir = args.popFirst() ?? corpusDir
    case "--out": outDir = args.popFirst() ?? outDir
    case "--slow": slow = Double(args.popFirst() ?? "") ?? slow
    default: targets.append(a)
    }
}
canaryFixture = URL(fileURLWithPath: corpusDir).deletingLastPathComponent().path + "/canary-folder"
let all = ["tar", "json", "assets", "yaml", "reference", "canary", "answers"]
if targets.isEmpty || targets == ["all"] { targets = all }
for t in targets where !all.contains(t) {
    FileHandle.standardError.write(Data("stamp-fuzz: unknown target \(t) (\(all.joined(separator: ", ")))\n".utf8))
    exit(64)
}
let scratch = NSTemporaryDirectory() + "stamp-fuzz-\(getpid())"
try? FileManager.default.createDirectory(atPath: scratch, withIntermediateDirectories: true)
defer { try? FileManager.default.removeItem(atPath: scratch) }
installCrashHandler()

var rng = SplitMix64(state: seed)
var tried = 0
for target in targets {
    let dir = corpusDir + "/" + target
    let names = ((try? FileManager.default.contentsOfDirectory(atPath: dir)) ?? []).sorted()
    let seeds = names.compactMap { FileManager.default.contents(atPath: dir + "/" + $0).map { [UInt8]($0) } }
    guard !seeds.isEmpty else {
        FileHandle.standardError.write(Data("stamp-fuzz: no seeds in \(dir)\n".utf8))
        exit(66)
    }
    crashPath = Array("\(outDir)/crash-\(target)".utf8CString)
    let end = Date().addingTimeInterval(seconds / Double(targets.count))
    var n = 0
    // Every seed as it is first, then mutations.
    while Date() < end {
        let input = n < seeds.count ? seeds[n] : mutate(seeds[rng.below(seeds.count)], &rng, corpus: seeds)
        currentCount = min(input.count, current.count)
        input.withUnsafeBytes { current.copyMemory(from: UnsafeRawBufferPointer(rebasing: $0[0..<currentCount])) }
        // Linear work stays under `slow` µs a byte (a release build: well under 10; a debug
        // build on a busy machine: 20 times that); quadratic does not. An input over the bound
        // is run twice more and judged by its fastest run: a pause of a loaded machine (the
        // test suite runs beside Chromium and two container runtimes) is not the input's cost.
        let bound = 2 + Double(input.count) * slow / 1_000_000
        func timed() -> Double {
            let start = Date()
            run(target, input, scratch: scratch)
            return Date().timeIntervalSince(start)
        }
        var took = timed()
        if took > bound { took = min(took, timed(), timed()) }
        if took > bound {
            let path = "\(outDir)/slow-\(target)"
            _ = FileManager.default.createFile(atPath: path, contents: Data(input))
            FileHandle.standardError.write(
                Data(
                    ("stamp-fuzz: \(target): an input of \(input.count) bytes took \(took) s at best of three; it is "
                        + "in \(path)\n").utf8))
            exit(1)
        }
        n += 1
    }
    tried += n
    print("\(target): \(n) inputs")
}
print("stamp-fuzz: \(tried) inputs, seed \(seed), nothing found")
