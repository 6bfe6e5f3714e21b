import Foundation
import Testing
import Yams

@testable import Canary

/// The Canary module's logic without a cluster, a server or Prometheus: the verdict at each
/// threshold's edge, the status's interval, PromQL literals, in-place edits of YAML text (the
/// end-to-end tests with the real consumers are in StampCoreTests).
@Suite struct CanaryUnitTests {
    typealias M = CanaryAnalysis.Metric
    let base: [M: Double] = [.requests: 1000, .errorRate: 0.002, .latencyAvg: 100, .latencyP95: 200, .memory: 1000]

    func verdict(_ change: (inout [M: Double]) -> Void) -> CanaryAnalysis.Verdict {
        var canary = base
        change(&canary)
        return CanaryAnalysis.judge(stable: base, canary: canary, thresholds: .init()).verdict
    }

    @Test func eachThresholdHoldsAtItsEdgeAndFailsPastIt() {
        #expect(verdict { _ in } == .promote)
        #expect(verdict { $0[.requests] = 200 } == .promote)
        #expect(verdict { $0[.requests] = 199 } == .inconclusive)
        #expect(verdict { $0[.errorRate] = 0.007 } == .promote)  // +0.5% exactly, under 1%
        #expect(verdict { $0[.errorRate] = 0.00701 } == .rollback)
        var t = CanaryAnalysis.Thresholds()
        t.maxErrorRateIncrease = 1
        let high = base.merging([.errorRate: 0.01]) { $1 }
        #expect(CanaryAnalysis.judge(stable: base, canary: high, thresholds: t).verdict == .promote)
        let higher = base.merging([.errorRate: 0.0101]) { $1 }
        #expect(CanaryAnalysis.judge(stable: base, canary: higher, thresholds: t).verdict == .rollback)
        #expect(verdict { $0[.latencyAvg] = 125 } == .promote)
        #expect(verdict { $0[.latencyAvg] = 125.1 } == .rollback)
        #expect(verdict { $0[.latencyP95] = 300 } == .promote)
        #expect(verdict { $0[.latencyP95] = 300.1 } == .rollback)
        #expect(verdict { $0[.memory] = 1500 } == .promote)
        #expect(verdict { $0[.memory] = 1500.1 } == .rollback)
        #expect(verdict { $0[.memory] = nil } == .inconclusive)
        #expect(
            verdict {
                $0[.memory] = nil
                $0[.latencyP95] = 900
            } == .rollback)
        #expect(
            verdict {
                $0[.requests] = 10
                $0[.errorRate] = 0.5
            } == .inconclusive)
    }

    @Test func literalsCarryAnyText() {
        let q = CanaryAnalysis.query(
            .requests, version: "a\"b\\c\ny", pods: "p", selection: .init(namespace: "n\"s", app: nil, window: "5m"))
        #expect(q.contains(#"destination_version="a\"b\\c\ny""#) && q.contains(#"namespace="n\"s""#), "\(q)")
        #expect(CanaryAnalysis.regexQuoted("a.b+c") == #"a\.b\+c"#)
    }

    /// The 99% interval at its edges: a share the weight explains passes, one it does not fails.
    @Test func theSplitIsJudgedByItsInterval() {
        func judge(_ canary: Int, of n: Int, weight: Int) -> Bool {
            let plain = (0..<n).map { $0 < canary ? CanaryStatus.Outcome.version("c") : .version("s") }
            return CanaryStatus.evaluate(
                plain: plain, withHeader: [.version("c")], expect: .init(stable: "s", canary: "c", weight: weight),
                planned: n + 1
            ).ok
        }
        #expect(judge(0, of: 200, weight: 0))
        #expect(!judge(1, of: 200, weight: 0))  // any canary answer at weight 0 is off
        #expect(judge(200, of: 200, weight: 100))
        #expect(judge(10, of: 200, weight: 5))
        // Weight 5% of 200: 3 to 17 canary answers are chance, 2 or 18 are not.
        #expect(judge(3, of: 200, weight: 5) && !judge(2, of: 200, weight: 5))
        #expect(judge(17, of: 200, weight: 5) && !judge(18, of: 200, weight: 5))
        let ci = CanaryStatus.wilson(50, 200)
        #expect(abs(ci.low - 0.1800) < 0.001 && abs(ci.high - 0.3360) < 0.001)
    }

    /// A value replaced where it stands: plain, double- and single-quoted, before a comment;
    /// every other byte stays; the result parses to the new values.
    @Test func valuesAreReplacedInPlace() throws {
        let text = """
            # kept
            a: 95   # weight of stable
            b: "1.10"
            c: 'it''s'
            d: [x]
            """
        let doc = try #require(try Yams.compose(yaml: text))
        func at(_ k: String) throws -> (Int, Int) {
            let m = try #require(doc[k]?.mark)
            return (m.line, m.column)
        }
        let (la, ca) = try at("a"), (lb, cb) = try at("b"), (lc, cc) = try at("c")
        let out = try #require(
            CanaryFolder.apply(
                [
                    .init(line: la, column: ca, text: CanaryFolder.inline(Y.int(70)), oldPlain: "95"),
                    .init(line: lb, column: cb, text: CanaryFolder.inline(Y.str("1.11"))),
                    .init(line: lc, column: cc, text: CanaryFolder.inline(Y.str("plain"))),
                ], to: text))
        #expect(out == "# kept\na: 70   # weight of stable\nb: \"1.11\"\nc: plain\nd: [x]")
        let back = try #require(try Yams.compose(yaml: out))
        #expect(back["a"]?.int == 70 && back["b"]?.string == "1.11" && back["c"]?.string == "plain")
    }

    /// Issue 27, points 1 and 2: lines end where libyaml ends them (CR LF, a bare CR, LF), each
    /// keeping its own break; a plain scalar's extent is its old text, so a flow mapping's next
    /// key stays; an edit that cannot be placed is nil, never a guess.
    @Test func editsKeepLineBreaksAndFlowStyle() throws {
        let text = "# a bare CR ends this comment\r\rroute: [{host: a, weight: 5}, {host: b, weight: 95}]\r\n"
        let doc = try #require(try Yams.compose(yaml: text))
        let w = try #require(doc["route"]?[0]?["weight"]?.mark)
        let out = try #require(
            CanaryFolder.apply([.init(line: w.line, column: w.column, text: "30", oldPlain: "5")], to: text))
        #expect(out == text.replacingOccurrences(of: "weight: 5}", with: "weight: 30}"))
        #expect(CanaryFolder.lines(text).map(\.end.count) == [1, 1, 2, 0])
        #expect(w.line == 3)
        // Not the old value at that place: refused.
        #expect(CanaryFolder.apply([.init(line: w.line, column: w.column, text: "30", oldPlain: "6")], to: text) == nil)
    }
}
