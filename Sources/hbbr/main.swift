import Glibc
import RelayServer
import ServerConfig
import ServerKit

// hbbr: parse options (flags > .env > environment), start, wait for a stop signal.
let version = "1.1.17-ringdesk"
let environment = ProcessStartup.environment()
Log.configure(environment["RUST_LOG"], target: "hbbr")
let cwd = ProcessStartup.currentDirectory()

let invocation: Invocation<HbbrOptions>
do {
    invocation = try HbbrOptions.load(arguments: Array(CommandLine.arguments.dropFirst()), environment: environment,
                                      workingDirectory: cwd, version: version)
} catch {
    printError("hbbr: \(error)")
    exit(2)
}
switch invocation {
case .showHelp(let text), .showVersion(let text):
    print(text)
    exit(0)
case .run(let options):
    for notice in options.notices { Log.warn(notice) }
    // Test only: shortens the 30-s waits and the idle timeout (docs/OPERATIONS.md).
    let timings = environment[RelayTimings.testScaleVariable].flatMap(Double.init).map(RelayTimings.init(scale:)) ?? RelayTimings()
    Signals.blockControlSignals()
    let server: HbbrServer
    do {
        server = try HbbrServer(options: options, workingDirectory: cwd, timings: timings)
        try server.start()
    } catch {
        Log.error("\(error)")
        exit(1)
    }
    while true {
        let signal = Signals.wait()
        if signal == SIGHUP { server.reloadLists(); continue }
        server.drainAndStop(signal: signal)
        break
    }
    exit(0)
}
