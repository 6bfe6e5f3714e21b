import Testing
@testable import Failures

/// Retry and exit status are decided from an error's kind alone.
@Suite struct ErrorKindTests {
    struct Kinded: KindedError {
        let kind: ErrorKind
        var description: String { "kinded \(kind)" }
    }
    struct Plain: Error {}

    @Test func onlyTheNetworkIsWorthRetrying() {
        #expect(ErrorKind.allCases.filter(\.isTransient) == [.network])
    }

    @Test func exitStatusIsTwoButForAMovedBase() {
        for kind in ErrorKind.allCases {
            #expect(kind.exitStatus == (kind == .moved ? 3 : 2), "\(kind)")
        }
    }

    @Test func theKindOfAnErrorIsItsOwnOrTheCallersGuess() {
        #expect(ErrorKind.of(Kinded(kind: .corrupt), unknown: .io) == .corrupt)
        #expect(ErrorKind.of(Plain(), unknown: .io) == .io)
        let boxed: any Error = Kinded(kind: .denied)
        #expect(ErrorKind.of(boxed, unknown: .library) == .denied)
    }
}
