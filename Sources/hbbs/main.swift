import Glibc
import RendezvousServer
import ServerConfig
import ServerKit

// hbbs: parse options (flags > --config > .env > environment), start, wait for a stop signal.
let version = "1.1.17-ringdesk"
let environment = ProcessStartup.environment()
Log.configure(environment["RUST_LOG"], target: "hbbs")
let cwd = ProcessStartup.currentDirectory()

let invocation: Invocation<HbbsOptions>
do {
    invocation = try HbbsOptions.load(arguments: Array(CommandLine.arguments.dropFirst()), environment: environment,
                                      workingDirectory: cwd, version: version)
} catch {
    printError("hbbs: \(error)")
    exit(2)
}
switch invocation {
case .showHelp(let text), .showVersion(let text):
    print(text)
    exit(0)
case .run(let options):
    for notice in options.notices { Log.warn(notice) }
    Signals.blockControlSignals()
    let server: HbbsServer
    do {
        server = try HbbsServer(options: options, workingDirectory: cwd)
        try server.start()
    } catch {
        Log.error("\(error)")
        exit(1)
    }
    while true {
        let signal = Signals.wait()
        if signal == SIGHUP {
            // Re-read the relay servers from the same sources (command line > --config > .env >
            // environment). Other options take effect at the next start.
            do {
                if case .run(let fresh) = try HbbsOptions.load(arguments: Array(CommandLine.arguments.dropFirst()), environment: environment,
                                                               workingDirectory: cwd, version: version) {
                    server.reloadRelayServers(fresh.relayServers)
                }
            } catch {
                Log.error("SIGHUP: configuration not reloaded: \(error)")
            }
            continue
        }
        Log.info("signal \(signal): stopping")
        break
    }
    server.stop()
    exit(0)
}
