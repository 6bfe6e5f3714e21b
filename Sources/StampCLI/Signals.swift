import Dispatch
import IO
import Layers
#if canImport(Glibc)
    import Glibc
#endif

/// On SIGINT/SIGTERM, remove the temporary files of the run before exiting, so an interrupted
/// build leaves nothing behind (the target name is only ever created by a final rename).
public enum InterruptCleanup {
    nonisolated(unsafe) private static var sources: [DispatchSourceSignal] = []

    public static func install() {
        for sig in [SIGINT, SIGTERM] {
            signal(sig, SIG_IGN)
            let s = DispatchSource.makeSignalSource(signal: sig, queue: .global())
            s.setEventHandler {
                PendingFiles.shared.removeAll()
                // A progress line half drawn on a terminal is erased, so the shell's prompt
                // starts clean.
                if isatty(2) == 1 { _ = write(2, "\r\u{1b}[K", 4) }
                _exit(128 + sig)
            }
            s.resume()
            sources.append(s)
        }
    }
}

/// A crash (a trap, a bad access) ends the run with one line on stderr and exit 70, after its
/// temporary files are removed, instead of a runtime backtrace (`STAMP_BACKTRACE=1` keeps the
/// runtime's, for a developer). Only async-signal-safe calls run in the handler.
public enum CrashReport {
    nonisolated(unsafe) private static var message: [UInt8] = []

    public static func install() {
        if let v = getenv("STAMP_BACKTRACE"), String(cString: v) == "1" { return }
        message = Array("stamp: internal error (a crash; please report it with the command that caused it)\n".utf8)
        var action = sigaction()
        action.__sigaction_handler.sa_handler = { sig in
            CrashReport.message.withUnsafeBytes { _ = write(2, $0.baseAddress, $0.count) }
            PendingFiles.shared.unlinkAllUnlocked()
            _exit(70)
        }
        sigemptyset(&action.sa_mask)
        action.sa_flags = Int32(bitPattern: UInt32(truncatingIfNeeded: SA_RESETHAND))
        for sig in [SIGILL, SIGTRAP, SIGSEGV, SIGBUS, SIGFPE] { sigaction(sig, &action, nil) }
    }
}

/// glibc's malloc keeps an arena per thread that allocates at the same time as another; each
/// keeps what its thread freed. A build's worker threads (layer readers, compressors, the copy)
/// then hold 4-8 MB more at their peak than two arenas do, for no speed. `stamp assets hash`,
/// which allocates on every file from three threads at once, keeps the default.
enum MemoryPolicy {
    @_silgen_name("mallopt") private static func mallopt(_ param: Int32, _ value: Int32) -> Int32
    private static let arenaMax: Int32 = -8  // M_ARENA_MAX in malloc.h, which Swift's Glibc does not bring

    /// Call before the command starts its threads.
    static func fewArenas() {
        #if canImport(Glibc)
            _ = mallopt(arenaMax, 2)
        #endif
    }
}
