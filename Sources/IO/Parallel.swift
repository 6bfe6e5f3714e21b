import Dispatch
import Synchronization

/// `body(i)` for every i in 0..<count, on all cores (Dispatch runs at most one worker per core);
/// the results in index order. `body` is `@Sendable`: what it captures is checked at every
/// call site.
public func parallelMap<T: Sendable>(count: Int, _ body: @Sendable (Int) -> T) -> [T] {
    guard count > 0 else { return [] }
    let slots = Slots<T>(count)
    withoutActuallyEscaping(body) { body in
        let work = Work(slots: slots, body: body)
        DispatchQueue.concurrentPerform(iterations: count) { i in work.run(i) }
    }
    return slots.results()
}

/// One result per index, each written by exactly one worker of `concurrentPerform`, and read
/// only after it has returned (which waits for every worker): no two threads touch a slot at
/// the same time, which is why the unchecked conformance is safe.
private final class Slots<T: Sendable>: @unchecked Sendable {
    private let base: UnsafeMutablePointer<T?>
    private let count: Int
    init(_ count: Int) {
        self.count = count
        base = .allocate(capacity: count)
        base.initialize(repeating: nil, count: count)
    }
    deinit {
        base.deinitialize(count: count)
        base.deallocate()
    }
    func put(_ i: Int, _ value: T) { base[i] = value }
    func results() -> [T] { (0..<count).map { base[$0]! } }
}

private struct Work<T: Sendable>: Sendable {
    let slots: Slots<T>
    let body: @Sendable (Int) -> T
    func run(_ i: Int) { slots.put(i, body(i)) }
}

/// Carries a value that is not `Sendable` to another thread, where the caller knows it is safe:
/// it is handed over for good (the sender no longer uses it). Used for the byte streams of an
/// HTTP body, which one event-loop task at a time reads or writes.
public struct UncheckedSendable<T>: @unchecked Sendable {
    public let value: T
    public init(_ value: T) { self.value = value }
}

/// `body`, started now on another thread; `value` waits for its result.
public final class Background<T: Sendable>: Sendable {
    private let done = DispatchGroup()
    private let result = Mutex<T?>(nil)

    public init(_ body: @escaping @Sendable () -> T) {
        done.enter()
        DispatchQueue.global().async { [self] in
            let r = body()
            result.withLock { $0 = r }
            done.leave()
        }
    }

    public var value: T {
        done.wait()
        return result.withLock { $0! }
    }
}

/// `parallelMap` a batch of indices at a time, each batch's results handed to `take` in index
/// order on the calling thread before the next batch starts: the results of 100,000 items are
/// never all held at once (nor twice, as a map's slots and its array are).
public func parallelBatches<T: Sendable>(
    count: Int, batch: Int = 4096, _ body: @Sendable (Int) -> T, take: (Int, T) throws -> Void
) rethrows {
    var start = 0
    while start < count {
        let n = min(batch, count - start), first = start
        let part = parallelMap(count: n) { body(first + $0) }
        for (k, v) in part.enumerated() { try take(first + k, v) }
        start += n
    }
}
