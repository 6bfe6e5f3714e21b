import Foundation
import Testing
import OCI

/// Real built frontends from PyPI wheels (gradio's Vite build run by gradio's own server, a
/// mkdocs-material site, a Sphinx site with sphinx_rtd_theme, swagger-ui, Django's admin),
/// hashed by `stamp assets hash` and loaded in headless Chromium next to their input; and
/// `stamp build --hash-assets` on an anything-llm-shaped image whose frontend is gradio's Vite
/// build, served from the image umoci unpacks. `scripts/frontend_corpus.py` does the work (once
/// for all, about a minute; its downloads and builds are cached outside the clone) and reports
/// JSON; these tests read it.
enum FrontendCorpus {
    static let names = ["gradio", "mkdocs-material", "sphinx-rtd", "swagger-ui", "django-admin"]

    /// name → report; or why the corpus could not be had.
    static let reports: Result<[String: JSONValue], CorpusUnavailable> = {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().path
        do {
            let r = try run(["python3", root + "/scripts/frontend_corpus.py", "--stamp", stampBin])
            if r.status == 77 {
                return .failure(CorpusUnavailable(reason: "PyPI cannot be reached: the frontend corpus is skipped"))
            }
            guard r.status == 0 else {
                return .failure(
                    CorpusUnavailable(reason: "frontend_corpus.py exited \(r.status): \(r.err.suffix(2000))"))
            }
            var out: [String: JSONValue] = [:]
            for line in r.out.split(separator: "\n") {
                let j = try JSONValue.parse(Array(line.utf8))
                if let n = j["name"]?.stringValue { out[n] = j }
            }
            return .success(out)
        } catch {
            return .failure(CorpusUnavailable(reason: "\(error)"))
        }
    }()

    struct CorpusUnavailable: Error { var reason: String }

    /// Only a corpus that cannot be downloaded skips; any other failure fails the tests.
    static var reachable: Bool {
        if case .failure(let e) = reports, e.reason.hasPrefix("PyPI cannot be reached") { return false }
        return true
    }

    static func report(_ name: String) throws -> JSONValue {
        switch reports {
        case .success(let r): return try #require(r[name], "no report for \(name)")
        case .failure(let e): throw e
        }
    }
}

@Suite(.serialized, .enabled(if: FrontendCorpus.reachable, "PyPI cannot be reached: the frontend corpus is skipped"))
struct FrontendCorpusTests {
    @Test(arguments: FrontendCorpus.names)
    func realFrontendStillWorksAfterHashing(_ name: String) throws {
        let r = try FrontendCorpus.report(name)
        #expect(r["hash_exit"]?.int64Value == 0, "\(r["hash_error"]?.stringValue ?? "")")
        #expect(
            r["verify_exit"]?.int64Value == 0,
            "assets verify on a correct output: \(r["verify_findings"].map { JSONValue.encodeString($0) } ?? "")")
        #expect(r["rehash_unchanged"]?.boolValue == true, "hashing the output again changed it")
        #expect(
            r["tamper_exit"]?.int64Value == 1 && r["tamper_named"]?.boolValue == true,
            "one byte of \(r["tampered"]?.stringValue ?? "?") changed: verify must fail naming it")
        let pages = try #require(r["pages"]?.arrayValue)
        #expect(!pages.isEmpty)
        for p in pages {
            let page = p["page"]?.stringValue ?? "?"
            #expect(
                p["new_failures"]?.arrayValue?.isEmpty == true,
                "\(name)\(page): requests that failed only after hashing: \(JSONValue.encodeString(p["new_failures"]!))"
            )
            #expect(p["same_text"]?.boolValue == true, "\(name)\(page) renders other text after hashing")
            #expect(
                (p["text_chars"]?.int64Value ?? 0) > 20 && (p["requests"]?.int64Value ?? 0) > 1,
                "\(name)\(page) did not load")
            #expect(p["new_errors"]?.arrayValue?.isEmpty == true, "\(name)\(page): script errors after hashing")
        }
    }

    /// Where stamp renames, the pages load the new names (the renames are live, not beside the
    /// point); where the bundler named everything already, stamp renames nothing.
    @Test func renamesAreLoadedWhereThereAreAny() throws {
        for name in ["sphinx-rtd", "swagger-ui", "django-admin"] {
            let r = try FrontendCorpus.report(name)
            #expect((r["renamed"]?.int64Value ?? 0) > 0, "\(name)")
            #expect(
                r["pages"]?.arrayValue?.contains { ($0["renamed_requests"]?.int64Value ?? 0) > 0 } == true,
                "\(name): no page asked for a renamed file")
        }
        for name in ["gradio", "mkdocs-material"] {
            let r = try FrontendCorpus.report(name)
            #expect(
                r["renamed"]?.int64Value == 0,
                "\(name) is fingerprinted by its bundler: \(r["renamed"]?.int64Value ?? -1) renamed")
            #expect((r["bundler"]?.int64Value ?? 0) > 0)
        }
    }

    @Test func anythingLLMImageWithARealViteFrontend() throws {
        let r = try FrontendCorpus.report("anything-llm-image")
        #expect(r["build_exit"]?.int64Value == 0, "\(r["build_error"]?.stringValue ?? "")")
        #expect(r["verify_exit"]?.int64Value == 0)
        let page = try #require(r["pages"]?.arrayValue?.first)
        #expect(
            page["failed"]?.arrayValue?.isEmpty == true, "failed requests: \(JSONValue.encodeString(page["failed"]!))")
        #expect(page["same_text"]?.boolValue == true && (page["requests"]?.int64Value ?? 0) > 10)
    }
}
