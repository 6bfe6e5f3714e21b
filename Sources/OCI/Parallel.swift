import Dispatch

/// `body(i)` for every i in 0..<count, on all cores; the results in index order. Each result
/// is written by exactly one worker and read after all of them are done.
public func parallelMap<T>(count: Int, _ body: @escaping (Int) -> T) -> [T] {
    guard count > 0 else { return [] }
    let slots = UnsafeMutablePointer<T?>.allocate(capacity: count)
    slots.initialize(repeating: nil, count: count)
    defer { slots.deinitialize(count: count); slots.deallocate() }
    let box = UncheckedSendable((slots, body))
    DispatchQueue.concurrentPerform(iterations: count) { i in
        let (slots, body) = box.value
        slots[i] = body(i)
    }
    return (0..<count).map { slots[$0]! }
}

/// Carries a value that is not `Sendable` to another thread, where the caller knows it is safe
/// (only read there, or handed over for good).
public struct UncheckedSendable<T>: @unchecked Sendable {
    public let value: T
    public init(_ value: T) { self.value = value }
}

/// `body`, started now on another thread; `value` waits for its result.
public final class Background<T>: @unchecked Sendable {
    private let done = DispatchGroup()
    private var result: T?

    public init(_ body: @escaping () -> T) {
        let work = UncheckedSendable(body)
        done.enter()
        DispatchQueue.global().async { [self] in
            result = work.value()
            done.leave()
        }
    }

    public var value: T {
        done.wait()
        return result!
    }
}
