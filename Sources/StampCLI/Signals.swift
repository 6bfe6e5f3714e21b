import Dispatch
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
                _exit(128 + sig)
            }
            s.resume()
            sources.append(s)
        }
    }
}
