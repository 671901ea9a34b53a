import Foundation
import Testing

// Deployment artefacts (deploy/, scripts/install.sh). Every run of install.sh goes to a temporary
// DESTDIR with --no-build and a bin directory of dummy executables: nothing outside /tmp is
// touched and nothing is built.

/// The repository root: this file is Tests/DeploymentTests/DeploymentTests.swift.
private let repositoryRoot: String = {
    var url = URL(fileURLWithPath: #filePath)
    for _ in 0..<3 { url.deleteLastPathComponent() }
    return url.path
}()

private let programs = ["hbbs", "hbbr", "rustdesk-utils"]
private let units = ["rustdesk-hbbs.service", "rustdesk-hbbr.service"]

private struct Output {
    var status: Int32
    var stdout: String
    var stderr: String
}

/// Runs `executable` with `arguments`, waits, and returns its exit status and output (collected
/// in files, so neither stream can fill a pipe and stall the child).
private func run(_ executable: String, _ arguments: [String]) throws -> Output {
    let scratch = try Scratch()
    let outPath = scratch.sub("stdout"), errPath = scratch.sub("stderr")
    _ = FileManager.default.createFile(atPath: outPath, contents: nil)
    _ = FileManager.default.createFile(atPath: errPath, contents: nil)
    let out = try #require(FileHandle(forWritingAtPath: outPath))
    let err = try #require(FileHandle(forWritingAtPath: errPath))
    let process = Process()
    process.executableURL = URL(fileURLWithPath: executable)
    process.arguments = arguments
    process.standardOutput = out
    process.standardError = err
    process.standardInput = FileHandle.nullDevice
    try process.run()
    process.waitUntilExit()
    try out.close()
    try err.close()
    return Output(status: process.terminationStatus,
                  stdout: try String(contentsOfFile: outPath, encoding: .utf8),
                  stderr: try String(contentsOfFile: errPath, encoding: .utf8))
}

/// A directory under /tmp, removed with everything in it when released.
private final class Scratch {
    let path: String
    init() throws {
        path = NSTemporaryDirectory() + "ringdesk-deploy-" + UUID().uuidString
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    }
    deinit { try? FileManager.default.removeItem(atPath: path) }
    func sub(_ name: String) -> String { path + "/" + name }
}

/// A bin directory with three dummy executables named like the real ones (each prints its name).
private func dummyBinaries(in scratch: Scratch) throws -> String {
    let dir = scratch.sub("bin")
    try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    for name in programs {
        let file = dir + "/" + name
        try "#!/bin/sh\necho dummy \(name)\n".write(toFile: file, atomically: true, encoding: .utf8)
        try FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: file)
    }
    return dir
}

private func install(bin: String, destdir: String, prefix: String) throws -> Output {
    try run("/bin/bash", [repositoryRoot + "/scripts/install.sh",
                          "--no-build", "--bin-dir", bin, "--destdir", destdir, "--prefix", prefix])
}

private func mode(_ path: String) -> Int {
    var info = stat()
    guard stat(path, &info) == 0 else { return -1 }
    return Int(info.st_mode & 0o7777)
}

private func isDirectory(_ path: String) -> Bool {
    var directory: ObjCBool = false
    return FileManager.default.fileExists(atPath: path, isDirectory: &directory) && directory.boolValue
}

private func lines(_ text: String) -> [Substring] { text.split(separator: "\n", omittingEmptySubsequences: false) }

/// Active (non-comment) `Key=value` lines of a unit.
private func directives(_ unit: String) -> [String] {
    lines(unit).map { $0.trimmingCharacters(in: .whitespaces) }
        .filter { !$0.isEmpty && !$0.hasPrefix("#") && !$0.hasPrefix(";") && !$0.hasPrefix("[") }
}

/// The first executable named `name` on PATH, or nil.
private func which(_ name: String) -> String? {
    let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin"
    for dir in path.split(separator: ":") {
        let candidate = "\(dir)/\(name)"
        if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
    }
    return nil
}

/// A child process whose output goes to files in its own scratch directory (also its working
/// directory, where the servers write their key pair and database).
private final class Child {
    let scratch: Scratch
    let process = Process()
    let outPath: String

    init(_ executable: String, _ arguments: [String]) throws {
        scratch = try Scratch()
        outPath = scratch.sub("output")
        _ = FileManager.default.createFile(atPath: outPath, contents: nil)
        let out = try #require(FileHandle(forWritingAtPath: outPath))
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        process.currentDirectoryURL = URL(fileURLWithPath: scratch.path)
        process.standardOutput = out
        process.standardError = out
        process.standardInput = FileHandle.nullDevice
        try process.run()
        try out.close()
    }

    var output: String { (try? String(contentsOfFile: outPath, encoding: .utf8)) ?? "" }

    /// Waits up to `seconds` for `text` in the output; false if it never came or the child exited.
    func waitFor(_ text: String, seconds: Double) -> Bool {
        let deadline = Date().addingTimeInterval(seconds)
        while Date() < deadline {
            if output.contains(text) { return true }
            if !process.isRunning { return output.contains(text) }
            usleep(20_000)
        }
        return false
    }

    /// Waits up to `seconds` for the child to exit on its own.
    func waitForExit(seconds: Double) -> Bool {
        let deadline = Date().addingTimeInterval(seconds)
        while process.isRunning && Date() < deadline { usleep(20_000) }
        return !process.isRunning
    }

    /// SIGTERM (what systemd and `docker stop` send), then the exit status.
    func stop() -> Int32 {
        if process.isRunning { process.terminate() }
        process.waitUntilExit()
        return process.terminationStatus
    }

    deinit { if process.isRunning { kill(process.processIdentifier, SIGKILL); process.waitUntilExit() } }
}

/// The directory holding the built server executables: next to the test bundle, else .build/debug.
private func builtProductsDirectory() -> String? {
    var candidates: [String] = []
    if let exe = try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe") {
        candidates.append(URL(fileURLWithPath: exe).deletingLastPathComponent().path)
    }
    candidates += [repositoryRoot + "/.build/debug", repositoryRoot + "/.build/release"]
    return candidates.first { dir in
        ["hbbs", "hbbr"].allSatisfy { FileManager.default.isExecutableFile(atPath: dir + "/" + $0) }
    }
}

@Suite(.timeLimit(.minutes(2)))
struct DeploymentTests {
    @Test func installsIntoDestdirWithUpstreamPaths() throws {
        let scratch = try Scratch()
        let bin = try dummyBinaries(in: scratch)
        let dest = scratch.sub("root")
        let result = try install(bin: bin, destdir: dest, prefix: "/usr")
        #expect(result.status == 0, "install.sh failed: \(result.stderr)")

        for name in programs {
            let installed = dest + "/usr/bin/" + name
            #expect(mode(installed) == 0o755, "\(installed)")
            #expect(FileManager.default.contentsEqual(atPath: installed, andPath: bin + "/" + name))
            #expect(result.stdout.contains("installed  \(installed)"))
        }
        for (unit, program) in zip(units, ["hbbs", "hbbr"]) {
            let path = dest + "/etc/systemd/system/" + unit
            #expect(mode(path) == 0o644, "\(path)")
            let text = try String(contentsOfFile: path, encoding: .utf8)
            let active = directives(text)
            // PROTOCOL.md §13: no arguments, same working directory, restart policy.
            #expect(active.filter { $0.hasPrefix("ExecStart=") } == ["ExecStart=/usr/bin/\(program)"])
            #expect(active.contains("WorkingDirectory=/var/lib/rustdesk-server"))
            #expect(active.contains("Restart=always"))
            #expect(active.contains("LimitNOFILE=1048576"))
            #expect(active.contains("KillSignal=SIGTERM"))
            #expect(active.contains { $0.hasPrefix("TimeoutStopSec=") })
            #expect(active.contains("User=rustdesk"))
            #expect(active.contains("NoNewPrivileges=yes"))
            #expect(active.contains("ProtectSystem=strict"))
            #expect(active.contains("ReadWritePaths=/var/lib/rustdesk-server"))
            #expect(active.contains("RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX"))
            // An allow-list syscall filter would have to name io_uring; the units ship only a deny
            // list ("~"), and it must not name io_uring either (see the comment in the unit).
            let filters = active.filter { $0.hasPrefix("SystemCallFilter=") }
            #expect(filters.allSatisfy { $0.hasPrefix("SystemCallFilter=~") }, "\(filters)")
            #expect(!filters.contains { $0.contains("io_uring") || $0.contains("@io-event") || $0.contains("@system-service") })
            // Only ExecStart changes from the template.
            let template = try String(contentsOfFile: repositoryRoot + "/deploy/systemd/" + unit, encoding: .utf8)
            #expect(text == template)
        }
        #expect(mode(dest + "/etc/sysusers.d/rustdesk-server.conf") == 0o644)
        #expect(isDirectory(dest + "/var/lib/rustdesk-server"))
        #expect(isDirectory(dest + "/var/log/rustdesk-server"))
        #expect(result.stdout.contains("systemctl daemon-reload"))
        #expect(result.stdout.contains("systemctl enable --now rustdesk-hbbs rustdesk-hbbr"))
    }

    @Test func substitutesThePrefixInExecStart() throws {
        let scratch = try Scratch()
        let bin = try dummyBinaries(in: scratch)
        let dest = scratch.sub("root")
        let result = try install(bin: bin, destdir: dest, prefix: "/opt/ringdesk/")
        #expect(result.status == 0, "install.sh failed: \(result.stderr)")
        for name in programs {
            #expect(FileManager.default.isExecutableFile(atPath: dest + "/opt/ringdesk/bin/" + name))
        }
        #expect(!FileManager.default.fileExists(atPath: dest + "/usr/bin/hbbs"))
        for (unit, program) in zip(units, ["hbbs", "hbbr"]) {
            let text = try String(contentsOfFile: dest + "/etc/systemd/system/" + unit, encoding: .utf8)
            #expect(directives(text).filter { $0.hasPrefix("ExecStart=") } == ["ExecStart=/opt/ringdesk/bin/\(program)"])
            #expect(!text.contains("/usr/bin/hbb"))
        }
    }

    @Test func isIdempotentAndUpdatesWhatChanged() throws {
        let scratch = try Scratch()
        let bin = try dummyBinaries(in: scratch)
        let dest = scratch.sub("root")
        // Existing data (as after upstream) must survive untouched.
        try FileManager.default.createDirectory(atPath: dest + "/var/lib/rustdesk-server", withIntermediateDirectories: true)
        try "KEY".write(toFile: dest + "/var/lib/rustdesk-server/id_ed25519.pub", atomically: true, encoding: .utf8)

        let first = try install(bin: bin, destdir: dest, prefix: "/usr")
        #expect(first.status == 0, "\(first.stderr)")
        #expect(first.stdout.contains("exists     \(dest)/var/lib/rustdesk-server"))
        let snapshot = try units.map { try String(contentsOfFile: dest + "/etc/systemd/system/" + $0, encoding: .utf8) }

        let second = try install(bin: bin, destdir: dest, prefix: "/usr")
        #expect(second.status == 0, "\(second.stderr)")
        #expect(!second.stdout.contains("installed  "))
        #expect(!second.stdout.contains("updated  "))
        #expect(second.stdout.contains("nothing to do"))
        #expect(lines(second.stdout).filter { $0.contains("unchanged") }.count == 6)
        #expect(try units.map { try String(contentsOfFile: dest + "/etc/systemd/system/" + $0, encoding: .utf8) } == snapshot)
        #expect(try String(contentsOfFile: dest + "/var/lib/rustdesk-server/id_ed25519.pub", encoding: .utf8) == "KEY")
        let leftovers = try FileManager.default.contentsOfDirectory(atPath: dest + "/usr/bin").filter { $0.contains(".tmp.") }
        #expect(leftovers.isEmpty)

        // A new binary is replaced (and reported), the rest stays.
        try "#!/bin/sh\necho newer\n".write(toFile: bin + "/hbbr", atomically: true, encoding: .utf8)
        try FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: bin + "/hbbr")
        let third = try install(bin: bin, destdir: dest, prefix: "/usr")
        #expect(third.status == 0, "\(third.stderr)")
        #expect(third.stdout.contains("updated    \(dest)/usr/bin/hbbr"))
        #expect(third.stdout.contains("unchanged  \(dest)/usr/bin/hbbs"))
        #expect(FileManager.default.contentsEqual(atPath: dest + "/usr/bin/hbbr", andPath: bin + "/hbbr"))
    }

    @Test func refusesBadArgumentsWithoutInstalling() throws {
        let scratch = try Scratch()
        let bin = try dummyBinaries(in: scratch)
        for prefix in ["usr", "/opt/ring desk", "/opt/%n", "/a|b", "/a&b"] {
            let dest = scratch.sub("bad-prefix")
            let result = try install(bin: bin, destdir: dest, prefix: prefix)
            #expect(result.status != 0, "prefix \(prefix) accepted")
            #expect(!FileManager.default.fileExists(atPath: dest + "/etc"), "prefix \(prefix)")
        }
        try FileManager.default.removeItem(atPath: bin + "/rustdesk-utils")
        let dest = scratch.sub("missing-binary")
        let result = try install(bin: bin, destdir: dest, prefix: "/usr")
        #expect(result.status != 0)
        #expect(result.stderr.contains("rustdesk-utils"))
        #expect(!FileManager.default.fileExists(atPath: dest + "/usr/bin/hbbs"))
    }

    @Test func systemdAnalyzeVerifiesTheInstalledUnits() throws {
        guard let analyze = which("systemd-analyze") else {
            print("DeploymentTests: skipping systemd-analyze verify: systemd-analyze is not installed (apt-get install systemd)")
            return
        }
        let scratch = try Scratch()
        let bin = try dummyBinaries(in: scratch)
        let dest = scratch.sub("root")
        let result = try install(bin: bin, destdir: dest, prefix: "/usr")
        #expect(result.status == 0, "install.sh failed: \(result.stderr)")

        // `verify --root` resolves everything inside the root: the dummy binaries are there; the
        // system's own units (multi-user.target, sysinit.target...) and /bin/kill (ExecReload) are
        // added from the host so that only our units can produce errors.
        let systemUnits = ["/usr/lib/systemd/system", "/lib/systemd/system"].first { isDirectory($0) }
        guard let systemUnits else {
            print("DeploymentTests: skipping systemd-analyze verify: no /usr/lib/systemd/system on this host")
            return
        }
        try FileManager.default.createDirectory(atPath: dest + "/usr/lib/systemd", withIntermediateDirectories: true)
        try FileManager.default.copyItem(atPath: systemUnits, toPath: dest + "/usr/lib/systemd/system")
        try FileManager.default.createDirectory(atPath: dest + "/bin", withIntermediateDirectories: true)
        try "#!/bin/sh\n".write(toFile: dest + "/bin/kill", atomically: true, encoding: .utf8)
        try FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: dest + "/bin/kill")

        let verify = try run(analyze, ["verify", "--root=" + dest] + units)
        // verify exits 0 for warnings such as unknown keys: any output at all is a failure.
        #expect(verify.status == 0, "systemd-analyze verify: \(verify.stderr)")
        #expect(verify.stderr.isEmpty, "systemd-analyze verify: \(verify.stderr)")
        #expect(verify.stdout.isEmpty, "systemd-analyze verify: \(verify.stdout)")

        // The check is real: a typo in a unit is reported.
        let unit = dest + "/etc/systemd/system/rustdesk-hbbs.service"
        let broken = try String(contentsOfFile: unit, encoding: .utf8)
            .replacingOccurrences(of: "ProtectHome=yes", with: "ProtectHomme=yes")
        try broken.write(toFile: unit, atomically: true, encoding: .utf8)
        let typo = try run(analyze, ["verify", "--root=" + dest, units[0]])
        #expect(typo.stderr.contains("ProtectHomme"))
    }

    @Test func seccompProfileAllowsIoUring() throws {
        let path = repositoryRoot + "/deploy/docker/seccomp-io_uring.json"
        let data = try Data(contentsOf: URL(fileURLWithPath: path))
        let profile = try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
        #expect(profile["defaultAction"] as? String == "SCMP_ACT_ERRNO")
        let rules = try #require(profile["syscalls"] as? [[String: Any]])
        var allowed: Set<String> = []
        var seen: [String: Int] = [:]
        for rule in rules {
            let names = try #require(rule["names"] as? [String])
            for name in names { seen[name, default: 0] += 1 }
            if rule["action"] as? String == "SCMP_ACT_ALLOW" && rule["args"] == nil {
                allowed.formUnion(names)
            }
        }
        for name in ["io_uring_setup", "io_uring_enter", "io_uring_register"] {
            #expect(allowed.contains(name), "\(name) is not allowed unconditionally")
        }
        // What the servers cannot start without (sockets, threads, files, signals).
        for name in ["socket", "bind", "listen", "accept4", "setsockopt", "recvmsg", "sendmsg", "openat",
                     "read", "write", "close", "mmap", "munmap", "mprotect", "futex", "execve",
                     "exit_group", "rt_sigtimedwait", "sched_setaffinity", "getrandom", "fcntl", "splice", "pipe2"] {
            #expect(allowed.contains(name), "\(name) is not allowed")
        }
        #expect(seen.filter { $0.value > 1 }.isEmpty, "listed twice: \(seen.filter { $0.value > 1 }.keys)")
        // clone3 must fail with ENOSYS (glibc then falls back to clone), never EPERM.
        let clone3 = try #require(rules.first { ($0["names"] as? [String]) == ["clone3"] })
        #expect(clone3["errnoRet"] as? Int == 38)
    }

    /// The profile is loaded for real (libseccomp through deploy/docker/seccomp-run.py, as runc
    /// would load it) and the real servers start, generate keys, open the database, and stop
    /// cleanly on SIGTERM under it; without the io_uring syscalls they refuse to start.
    @Test func serversRunUnderTheSeccompProfile() throws {
        guard let python = which("python3") else {
            print("DeploymentTests: skipping the seccomp run: python3 is not installed")
            return
        }
        guard let bin = builtProductsDirectory() else {
            print("DeploymentTests: skipping the seccomp run: hbbs/hbbr are not built (swift build --build-tests)")
            return
        }
        let runner = repositoryRoot + "/deploy/docker/seccomp-run.py"
        let profile = repositoryRoot + "/deploy/docker/seccomp-io_uring.json"

        for program in ["hbbs", "hbbr"] {
            var started = false
            for _ in 0..<3 where !started {
                // hbbs uses P-1..P+2, hbbr Q and Q+2: random ports below the ephemeral range (which a
                // concurrent load generator may fill), retried if taken.
                let port = Int.random(in: 10_000...32_000)
                let child = try Child(python, [runner, profile, "--", bin + "/" + program, "-p", String(port)])
                if child.waitFor("listening", seconds: 15) {
                    started = true
                    let status = child.stop()
                    #expect(status == 0, "\(program) under the profile: exit \(status)\n\(child.output)")
                    #expect(child.output.contains("stopped"), "\(child.output)")
                    if program == "hbbs" {
                        #expect(FileManager.default.fileExists(atPath: child.scratch.sub("id_ed25519.pub")))
                        #expect(FileManager.default.fileExists(atPath: child.scratch.sub("db_v2.sqlite3")))
                    }
                } else {
                    let status = child.stop()
                    if status == 125 && child.output.contains("libseccomp.so.2 is not available") {
                        print("DeploymentTests: skipping the seccomp run: \(child.output)")
                        return
                    }
                    if !child.output.lowercased().contains("in use") {
                        Issue.record("\(program) did not start under the profile (exit \(status)):\n\(child.output)")
                        return
                    }
                }
            }
            #expect(started, "\(program): no free port found")
        }

        // Control: the same profile without the three io_uring syscalls (Docker's default case).
        let denied = try Child(python, [runner, profile, "--without", "io_uring_setup,io_uring_enter,io_uring_register",
                                        "--", bin + "/hbbr", "-p", String(Int.random(in: 10_000...32_000))])
        let exited = denied.waitForExit(seconds: 15)
        #expect(exited, "hbbr kept running without io_uring")
        #expect(denied.stop() != 0)
        #expect(denied.output.contains("denied with EPERM"), "\(denied.output)")
    }

    @Test func dockerfileBuildsOnSwiftAndRunsOnBookwormSlim() throws {
        let text = try String(contentsOfFile: repositoryRoot + "/deploy/docker/Dockerfile", encoding: .utf8)
        let froms = directives(text).filter { $0.hasPrefix("FROM ") }
        #expect(froms.count == 2)
        #expect(froms.first?.contains("AS build") == true)
        #expect(froms.last == "FROM debian:bookworm-slim")
        for package in ["liburing2", "libsodium23", "libsqlite3-0"] { #expect(text.contains(package)) }
        for program in programs { #expect(text.contains(program)) }
        let readme = try String(contentsOfFile: repositoryRoot + "/deploy/docker/README.md", encoding: .utf8)
        #expect(readme.contains("--security-opt seccomp=deploy/docker/seccomp-io_uring.json"))
    }
}
