import Foundation
import PackagePlugin

/// Names the commit stamp is built from, for `stamp version`: before each build of the target,
/// a shell writes `Commit.swift` (`let buildCommit = "…"`) from `git rev-parse HEAD` (with
/// `-dirty` when the work tree differs from it), or "unknown" outside a git checkout. The file is
/// rewritten only when its text changes, so an unchanged tree recompiles nothing. Only the
/// `version` command reads it: no output byte depends on the commit.
@main struct CommitInfo: BuildToolPlugin {
    func createBuildCommands(context: PluginContext, target: Target) throws -> [Command] {
        let out = context.pluginWorkDirectoryURL.appendingPathComponent("commit")
        let script = """
            set -u
            repo=$1; dir=$2
            mkdir -p "$dir"
            commit=$(git -C "$repo" rev-parse HEAD 2>/dev/null) || commit=unknown
            if [ "$commit" != unknown ] && ! git -C "$repo" diff --quiet HEAD -- 2>/dev/null; then
              commit="$commit-dirty"
            fi
            text="let buildCommit = \\"$commit\\""
            [ -f "$dir/Commit.swift" ] && [ "$(cat "$dir/Commit.swift")" = "$text" ] && exit 0
            printf '%s\\n' "$text" > "$dir/Commit.swift.tmp" && mv "$dir/Commit.swift.tmp" "$dir/Commit.swift"
            """
        return [
            .prebuildCommand(
                displayName: "the commit stamp is built from",
                executable: URL(fileURLWithPath: "/bin/sh"),
                arguments: ["-c", script, "sh", context.package.directoryURL.path, out.path],
                outputFilesDirectory: out)
        ]
    }
}
